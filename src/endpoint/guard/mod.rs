//! The guard in front of an endpoint on the open internet (feature
//! `axum` or `actix`): see [`Guard`].

#[cfg(feature = "actix")]
mod actix;
mod budget;
mod core;
mod read;
#[cfg(feature = "axum")]
mod serve;
#[cfg(feature = "axum")]
mod service;
mod summary;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::{
    DEFAULT_MAX_BUFFERED_BYTES, DEFAULT_MAX_CONCURRENT_REQUESTS, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_READ_TIMEOUT, DEFAULT_RETRY_AFTER, DEFAULT_SUMMARY_EVERY,
};
use crate::DeliveryReceiver;

#[cfg(feature = "actix")]
pub use actix::{GuardActixService, GuardMiddleware};
#[cfg(feature = "axum")]
pub use service::{GuardLayer, GuardService};
pub use summary::RefusalSummary;

/// The bounds of the front door, built once from the [`DeliveryReceiver`] it
/// guards (its authentication and body limit): for axum, a tower layer
/// ([`Guard::layer`], a whole receiver in [`GuardLayer`]'s example) for
/// the webhook route and a server with a header read timeout
/// ([`Guard::serve`]); for actix-web, a middleware ([`Guard::actix`])
/// and the server settings it names.
///
/// Anyone can reach `POST /webhooks`, with or without credentials. Without
/// the guard, a client that sends a large body slowly holds memory and a
/// connection for as long as it likes. With it:
///
/// | bound | default | answer |
/// |---|---|---|
/// | credentials (Basic), a signature header that is missing or unreadable, a signed timestamp out of tolerance | checked before the body | `401` (Basic: with `WWW-Authenticate`) |
/// | headers received within | [`DEFAULT_READ_TIMEOUT`] (10 s) | connection closed |
/// | body received within (from the end of the headers) | [`DEFAULT_READ_TIMEOUT`] | `408`, connection closed |
/// | requests in progress | [`DEFAULT_MAX_CONCURRENT_REQUESTS`] (256) | `503` + `Retry-After` |
/// | body bytes buffered at once beyond each body's first 64 KiB, all requests together | [`DEFAULT_MAX_BUFFERED_BYTES`] (32 MiB) | `503` + `Retry-After` |
/// | open connections ([`Guard::serve`]; actix-web: `HttpServer::max_connections`, per worker) | [`DEFAULT_MAX_CONNECTIONS`] (1024) | the next waits in the listen backlog |
///
/// ALM waits 5 s for an answer, so the 10 s read timeout never cuts a real
/// delivery short. Each body's first 64 KiB are bounded by the request cap
/// rather than the byte budget (256 × 64 KiB = 16 MiB), so clients that
/// hold large bodies open cannot keep ordinary deliveries out: by default
/// the guard buffers at most 48 MiB of bodies at once.
///
/// ```no_run
/// use alm_webhooks::endpoint::Guard;
/// use alm_webhooks::{Authentication, Endpoint};
///
/// # async fn run() {
/// let auth = alm_webhooks::auth::BasicAuth::new("alm", "s3cret");
/// let endpoint = Endpoint::builder(Authentication::Basic(auth))
///     .handler(|_event| async { Ok(()) })
///     .build()
///     .unwrap();
/// let guard = Guard::new(endpoint.receiver())
///     .with_summary(|summary| eprintln!("{summary}"));
/// // `router()` puts a guard with the defaults on the webhook route;
/// // `routes().guard(…)` puts this one.
/// let app = endpoint.routes().guard(guard.clone()).into_router();
/// let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await.unwrap();
/// guard.serve(listener, app).await;
/// # }
/// ```
///
/// Configured:
///
/// ```
/// use std::time::Duration;
/// use alm_webhooks::endpoint::Guard;
/// use alm_webhooks::{Authentication, DeliveryReceiver};
///
/// let guard = Guard::new(&DeliveryReceiver::new(Authentication::None))
///     .with_read_timeout(Duration::from_secs(8))
///     .with_max_concurrent_requests(64)
///     .with_max_buffered_bytes(16 * 1024 * 1024);
/// assert_eq!(guard.read_timeout(), Duration::from_secs(8));
/// ```
#[derive(Clone)]
pub struct Guard {
    receiver: DeliveryReceiver,
    read_timeout: Duration,
    max_requests: usize,
    max_buffered_bytes: usize,
    max_connections: usize,
    retry_after: Duration,
    summary_every: Duration,
    reporter: Option<summary::Reporter>,
}

impl fmt::Debug for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("receiver", &self.receiver)
            .field("read_timeout", &self.read_timeout)
            .field("max_requests", &self.max_requests)
            .field("max_buffered_bytes", &self.max_buffered_bytes)
            .field("max_connections", &self.max_connections)
            .field("retry_after", &self.retry_after)
            .field("summary_every", &self.summary_every)
            .field("reporter", &self.reporter.is_some())
            .finish()
    }
}

impl Guard {
    /// A guard for `receiver`'s authentication and body limit, with the
    /// default bounds.
    ///
    /// ```
    /// use alm_webhooks::endpoint::{DEFAULT_READ_TIMEOUT, Guard};
    /// use alm_webhooks::{Authentication, DeliveryReceiver};
    /// let guard = Guard::new(&DeliveryReceiver::new(Authentication::None));
    /// assert_eq!(guard.read_timeout(), DEFAULT_READ_TIMEOUT);
    /// ```
    pub fn new(receiver: &DeliveryReceiver) -> Self {
        Self {
            receiver: receiver.clone(),
            read_timeout: DEFAULT_READ_TIMEOUT,
            max_requests: DEFAULT_MAX_CONCURRENT_REQUESTS,
            max_buffered_bytes: DEFAULT_MAX_BUFFERED_BYTES,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            retry_after: DEFAULT_RETRY_AFTER,
            summary_every: DEFAULT_SUMMARY_EVERY,
            reporter: None,
        }
    }

    /// How long a client may take to send the headers, and then the body.
    ///
    /// ```
    /// # use alm_webhooks::{Authentication, DeliveryReceiver};
    /// let guard = alm_webhooks::endpoint::Guard::new(&DeliveryReceiver::new(Authentication::None))
    ///     .with_read_timeout(std::time::Duration::from_secs(5));
    /// # let _ = guard;
    /// ```
    #[must_use]
    pub fn with_read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// The read timeout in force.
    ///
    /// ```
    /// # use alm_webhooks::{Authentication, DeliveryReceiver};
    /// let guard = alm_webhooks::endpoint::Guard::new(&DeliveryReceiver::new(Authentication::None));
    /// assert_eq!(guard.read_timeout().as_secs(), 10);
    /// ```
    pub fn read_timeout(&self) -> Duration {
        self.read_timeout
    }

    /// Requests in progress at once (at least 1); one more is answered
    /// `503` with `Retry-After`.
    ///
    /// ```
    /// # use alm_webhooks::{Authentication, DeliveryReceiver};
    /// let guard = alm_webhooks::endpoint::Guard::new(&DeliveryReceiver::new(Authentication::None))
    ///     .with_max_concurrent_requests(32);
    /// # let _ = guard;
    /// ```
    #[must_use]
    pub fn with_max_concurrent_requests(mut self, requests: usize) -> Self {
        self.max_requests = requests.max(1);
        self
    }

    /// Body bytes buffered at once by all requests together, beyond each
    /// body's first 64 KiB (which the request cap bounds); a request that
    /// would go over is answered `503` with `Retry-After`. Keep it at
    /// least the receiver's body limit, or the largest bodies never fit.
    ///
    /// ```
    /// # use alm_webhooks::{Authentication, DeliveryReceiver};
    /// let guard = alm_webhooks::endpoint::Guard::new(&DeliveryReceiver::new(Authentication::None))
    ///     .with_max_buffered_bytes(64 * 1024 * 1024);
    /// # let _ = guard;
    /// ```
    #[must_use]
    pub fn with_max_buffered_bytes(mut self, bytes: usize) -> Self {
        self.max_buffered_bytes = bytes;
        self
    }

    /// The connection cap: the open connections [`Guard::serve`] holds at
    /// once (at least 1); for actix-web, give it to
    /// `HttpServer::max_connections`.
    ///
    /// ```
    /// # use alm_webhooks::{Authentication, DeliveryReceiver};
    /// let guard = alm_webhooks::endpoint::Guard::new(&DeliveryReceiver::new(Authentication::None));
    /// assert_eq!(guard.max_connections(), alm_webhooks::endpoint::DEFAULT_MAX_CONNECTIONS);
    /// ```
    pub fn max_connections(&self) -> usize {
        self.max_connections
    }

    /// Open connections [`Guard::serve`] holds at once (at least 1).
    ///
    /// ```
    /// # use alm_webhooks::{Authentication, DeliveryReceiver};
    /// let guard = alm_webhooks::endpoint::Guard::new(&DeliveryReceiver::new(Authentication::None))
    ///     .with_max_connections(512);
    /// # let _ = guard;
    /// ```
    #[must_use]
    pub fn with_max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections.max(1);
        self
    }

    /// The `Retry-After` of a `503` (whole seconds, at least 1).
    ///
    /// ```
    /// # use alm_webhooks::{Authentication, DeliveryReceiver};
    /// let guard = alm_webhooks::endpoint::Guard::new(&DeliveryReceiver::new(Authentication::None))
    ///     .with_retry_after(std::time::Duration::from_secs(10));
    /// # let _ = guard;
    /// ```
    #[must_use]
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = after;
        self
    }

    /// Who hears, at most once per [`Guard::with_summary_every`], how many
    /// requests were refused and why. Without it the summary is a
    /// `tracing` warning (feature `tracing`) or nothing. Never one line
    /// per refused request: a flood of them must not flood the logs.
    ///
    /// ```
    /// # use alm_webhooks::{Authentication, DeliveryReceiver};
    /// let guard = alm_webhooks::endpoint::Guard::new(&DeliveryReceiver::new(Authentication::None))
    ///     .with_summary(|summary| eprintln!("{summary}"));
    /// # let _ = guard;
    /// ```
    #[must_use]
    pub fn with_summary(
        mut self,
        reporter: impl Fn(&RefusalSummary) + Send + Sync + 'static,
    ) -> Self {
        self.reporter = Some(Arc::new(reporter));
        self
    }

    /// The interval of the refusal summary.
    ///
    /// ```
    /// # use alm_webhooks::{Authentication, DeliveryReceiver};
    /// let guard = alm_webhooks::endpoint::Guard::new(&DeliveryReceiver::new(Authentication::None))
    ///     .with_summary_every(std::time::Duration::from_secs(10));
    /// # let _ = guard;
    /// ```
    #[must_use]
    pub fn with_summary_every(mut self, every: Duration) -> Self {
        self.summary_every = every;
        self
    }
}
