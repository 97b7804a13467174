//! The front door's bounds: `ALM_READ_TIMEOUT_MS`,
//! `ALM_MAX_CONCURRENT_REQUESTS`, `ALM_MAX_BUFFERED_BYTES`,
//! `ALM_REFUSAL_SUMMARY_MS`.

use std::time::Duration;

use super::ConfigError;
use super::vars::Vars;
use crate::endpoint::{
    DEFAULT_MAX_BUFFERED_BYTES, DEFAULT_MAX_CONCURRENT_REQUESTS, DEFAULT_READ_TIMEOUT,
    DEFAULT_SUMMARY_EVERY,
};

/// The bounds of the front door's guard (`Guard`, features `axum` and
/// `actix`), the library's defaults unless set.
///
/// ```
/// use std::time::Duration;
/// use alm_webhooks::config::Config;
/// use alm_webhooks::endpoint::DEFAULT_MAX_CONCURRENT_REQUESTS;
/// let config = Config::from_vars([("ALM_READ_TIMEOUT_MS", "8000")]).unwrap();
/// assert_eq!(config.guard.read_timeout, Duration::from_secs(8));
/// assert_eq!(config.guard.max_concurrent_requests, DEFAULT_MAX_CONCURRENT_REQUESTS);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GuardConfig {
    /// `ALM_READ_TIMEOUT_MS`: the headers, then the body, within this.
    pub read_timeout: Duration,
    /// `ALM_MAX_CONCURRENT_REQUESTS`: requests in progress before `503`.
    pub max_concurrent_requests: usize,
    /// `ALM_MAX_BUFFERED_BYTES`: body bytes buffered at once, all
    /// requests together, before `503`.
    pub max_buffered_bytes: usize,
    /// `ALM_REFUSAL_SUMMARY_MS`: refused requests are summarised once
    /// per this interval.
    pub summary_every: Duration,
}

impl Default for GuardConfig {
    fn default() -> Self {
        Self {
            read_timeout: DEFAULT_READ_TIMEOUT,
            max_concurrent_requests: DEFAULT_MAX_CONCURRENT_REQUESTS,
            max_buffered_bytes: DEFAULT_MAX_BUFFERED_BYTES,
            summary_every: DEFAULT_SUMMARY_EVERY,
        }
    }
}

impl GuardConfig {
    pub(super) fn read(vars: &Vars) -> Result<Self, ConfigError> {
        Ok(Self {
            read_timeout: vars.millis("ALM_READ_TIMEOUT_MS", DEFAULT_READ_TIMEOUT)?,
            max_concurrent_requests: vars.positive(
                "ALM_MAX_CONCURRENT_REQUESTS",
                DEFAULT_MAX_CONCURRENT_REQUESTS,
                "number of requests",
            )?,
            max_buffered_bytes: vars.positive(
                "ALM_MAX_BUFFERED_BYTES",
                DEFAULT_MAX_BUFFERED_BYTES,
                "number of bytes",
            )?,
            summary_every: vars.millis("ALM_REFUSAL_SUMMARY_MS", DEFAULT_SUMMARY_EVERY)?,
        })
    }

    /// The guard of `receiver` with these bounds.
    #[cfg(any(feature = "axum", feature = "actix"))]
    pub(super) fn guard(&self, receiver: &crate::DeliveryReceiver) -> crate::endpoint::Guard {
        crate::endpoint::Guard::new(receiver)
            .with_read_timeout(self.read_timeout)
            .with_max_concurrent_requests(self.max_concurrent_requests)
            .with_max_buffered_bytes(self.max_buffered_bytes)
            .with_summary_every(self.summary_every)
    }
}
