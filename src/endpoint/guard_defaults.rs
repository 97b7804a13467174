//! The front door's default bounds, which [`Guard`](super::Guard) applies
//! (features `axum`, `actix`) and [`config`](crate::config) reads the
//! `ALM_*` overrides of (feature `env`): defined whatever the features, in
//! one place.

use std::time::Duration;

/// How long a client may take to send a request's headers, and then its
/// body: 10 s (ALM gives up after 5 s).
///
/// ```
/// assert_eq!(alm_webhooks::endpoint::DEFAULT_READ_TIMEOUT.as_secs(), 10);
/// ```
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Requests in progress at once (reading their body or being handled)
/// before the next is answered `503`: 256.
///
/// ```
/// assert_eq!(alm_webhooks::endpoint::DEFAULT_MAX_CONCURRENT_REQUESTS, 256);
/// ```
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 256;

/// Body bytes buffered at once beyond each body's first 64 KiB, all
/// requests together, before a request is answered `503`: 32 MiB (four
/// bodies at the 8 MiB limit).
///
/// ```
/// assert_eq!(alm_webhooks::endpoint::DEFAULT_MAX_BUFFERED_BYTES, 32 << 20);
/// ```
pub const DEFAULT_MAX_BUFFERED_BYTES: usize = 32 * 1024 * 1024;

/// Open connections [`Guard::serve`](super::Guard::serve) holds at once: 1024.
///
/// ```
/// assert_eq!(alm_webhooks::endpoint::DEFAULT_MAX_CONNECTIONS, 1024);
/// ```
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// The `Retry-After` of a `503`: 5 s.
///
/// ```
/// assert_eq!(alm_webhooks::endpoint::DEFAULT_RETRY_AFTER.as_secs(), 5);
/// ```
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);

/// How often refused requests are summarised: once a minute at most.
///
/// ```
/// assert_eq!(alm_webhooks::endpoint::DEFAULT_SUMMARY_EVERY.as_secs(), 60);
/// ```
pub const DEFAULT_SUMMARY_EVERY: Duration = Duration::from_secs(60);
