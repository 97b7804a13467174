//! A double of ALM's admin API, for tests and demos: the endpoints the
//! [`alm_api`](crate::alm_api) client calls, with the document shapes of
//! ALM's API reference (see `src/alm_api/model.rs` for the pages), OAuth's
//! refresh-token flow, ALM's limit of 500 requests an hour on `/users` and
//! `/learningObjects` answered with `429` and `Retry-After`, and report
//! jobs that take a while and then give a CSV of the double's ground
//! truth: every learner event the simulator sent to it with
//! [`AlmApiDouble::record_sent`], whether or not the webhook delivery was
//! dropped on the way.
//!
//! It speaks plain HTTP/1.1 on a local port, one request per connection.

mod http;
mod routes;
mod truth;

pub use truth::TruthRecord;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;

use truth::Truth;

/// How the double behaves.
///
/// ```
/// use std::time::Duration;
/// use alm_webhooks::simulator::alm_api::DoubleOptions;
/// let options = DoubleOptions { limit: 20, window: Duration::from_secs(2), ..DoubleOptions::default() };
/// assert_eq!(DoubleOptions::default().limit, 500);
/// # let _ = options;
/// ```
#[derive(Debug, Clone)]
pub struct DoubleOptions {
    /// Requests allowed per `window` on `/users` and `/learningObjects`
    /// (ALM: 500).
    pub limit: u32,
    /// The window of the limit (ALM: one hour).
    pub window: Duration,
    /// How long an access token lives (ALM: 7 days).
    pub token_lifetime: Duration,
    /// How long a report job runs before it completes.
    pub job_delay: Duration,
    /// The client id the token endpoint accepts.
    pub client_id: String,
    /// The client secret it accepts.
    pub client_secret: String,
    /// The refresh token it accepts.
    pub refresh_token: String,
}

impl Default for DoubleOptions {
    fn default() -> Self {
        Self {
            limit: 500,
            window: Duration::from_secs(3600),
            token_lifetime: Duration::from_secs(7 * 24 * 3600),
            job_delay: Duration::from_millis(200),
            client_id: "double-client".into(),
            client_secret: "double-secret".into(),
            refresh_token: "double-refresh".into(),
        }
    }
}

/// What the double saw, for assertions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DoubleCounts {
    /// Requests to the rate-limited endpoints (answered or not).
    pub limited_requests: usize,
    /// The most of them that arrived within any one window.
    pub max_in_window: usize,
    /// `429` answers given (over the limit or injected).
    pub answered_429: usize,
    /// Requests that arrived while an announced `Retry-After` was running,
    /// on a connection opened more than 50 ms after it was announced (one
    /// already on its way then is not counted; the double closes every
    /// connection, so each request opens its own).
    pub ignored_retry_after: usize,
    /// Token refreshes answered.
    pub token_refreshes: usize,
    /// API calls refused for a missing, unknown or expired token.
    pub unauthorized: usize,
    /// Report jobs created.
    pub jobs_created: usize,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) truth: Truth,
    pub(crate) arrivals: Vec<Instant>,
    pub(crate) counts: DoubleCounts,
    pub(crate) inject_429: Vec<u64>,
    pub(crate) hold_since: Option<Instant>,
    pub(crate) hold_until: Option<Instant>,
    pub(crate) tokens: Vec<(String, Instant)>,
    pub(crate) jobs: Vec<routes::JobState>,
    pub(crate) lookups: Vec<String>,
}

/// The running double. Stops when dropped.
#[derive(Debug)]
pub struct AlmApiDouble {
    addr: SocketAddr,
    pub(crate) options: DoubleOptions,
    pub(crate) state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for AlmApiDouble {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl AlmApiDouble {
    /// Starts the double on a free local port.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use alm_webhooks::simulator::alm_api::{AlmApiDouble, DoubleOptions};
    /// let double = AlmApiDouble::start(DoubleOptions::default()).await.unwrap();
    /// assert!(double.base().starts_with("http://127.0.0.1:"));
    /// assert_eq!(double.counts().limited_requests, 0);
    /// # }
    /// ```
    pub async fn start(options: DoubleOptions) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let shared = (
            Arc::clone(&state),
            options.clone(),
            format!("http://{addr}"),
        );
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (state, options, base) = shared.clone();
                tokio::spawn(http::serve(socket, move |request| {
                    let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
                    routes::answer(&mut state, &options, &base, request)
                }));
            }
        });
        Ok(Self {
            addr,
            options,
            state,
            task,
        })
    }

    /// The base URL to give the client (`ApiConfig::base`).
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The options it runs with (the credentials it accepts).
    pub fn options(&self) -> &DoubleOptions {
        &self.options
    }

    /// Records an envelope the simulator sent (or meant to send and
    /// dropped): ALM knows it either way.
    pub fn record_sent(&self, envelope: &[u8]) {
        self.lock().truth.apply(envelope);
    }

    /// The ground truth's record of a learner in an instance.
    pub fn truth(
        &self,
        user: crate::UserId,
        instance: &crate::LoInstanceId,
    ) -> Option<TruthRecord> {
        self.lock()
            .truth
            .records
            .get(&(user, instance.clone()))
            .cloned()
    }

    /// The next `count` requests to the rate-limited endpoints are answered
    /// `429` with `Retry-After: retry_after_secs`, whatever the limit.
    pub fn inject_429(&self, count: usize, retry_after_secs: u64) {
        self.lock()
            .inject_429
            .extend(std::iter::repeat_n(retry_after_secs, count));
    }

    /// What the double saw so far.
    pub fn counts(&self) -> DoubleCounts {
        self.lock().counts.clone()
    }

    /// The paths of the lookups answered `200`, in order (for checking
    /// that merged lookups reached the double once).
    pub fn lookups(&self) -> Vec<String> {
        self.lock().lookups.clone()
    }

    /// Forgets every access token it gave (as if they had expired).
    pub fn expire_tokens(&self) {
        self.lock().tokens.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}
