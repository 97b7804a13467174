//! How the inbox's workers run, for [`EndpointBuilder::inbox`](super::EndpointBuilder::inbox).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::inbox::{Inbox, Progress, RetryPolicy, Workers};
use crate::store::Store;

type Observer = Arc<dyn Fn(Progress<'_>) + Send + Sync>;

/// How the inbox's workers run: how many, their lease, their retries, how
/// long a handler may run, how often they may panic, and who hears of what
/// they do. Given to [`EndpointBuilder::inbox`](super::EndpointBuilder::inbox).
///
/// ```
/// use std::time::Duration;
/// use alm_webhooks::endpoint::WorkerOptions;
/// use alm_webhooks::inbox::{Progress, RetryPolicy};
///
/// let options = WorkerOptions::new()
///     .with_count(8)
///     .with_lease(Duration::from_secs(120))
///     .with_retry(RetryPolicy { max_attempts: 3, ..RetryPolicy::default() })
///     .with_observer(|progress| {
///         if let Progress::DeadLettered { letter } = progress {
///             eprintln!("dead letter: {}", letter.error);
///         }
///     });
/// # let _ = options;
/// ```
#[derive(Clone, Default)]
pub struct WorkerOptions {
    count: Option<usize>,
    lease: Option<Duration>,
    poll: Option<Duration>,
    retry: Option<RetryPolicy>,
    handler_timeout: Option<Duration>,
    restart_limit: Option<(usize, Duration)>,
    observer: Option<Observer>,
}

impl fmt::Debug for WorkerOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerOptions")
            .field("count", &self.count)
            .field("lease", &self.lease)
            .field("poll", &self.poll)
            .field("retry", &self.retry)
            .field("handler_timeout", &self.handler_timeout)
            .field("restart_limit", &self.restart_limit)
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

impl WorkerOptions {
    /// The defaults of [`Workers`]: 4 workers, a 60 s lease, the default
    /// [`RetryPolicy`], an idle poll every 50 ms, a handler timeout of
    /// [`DEFAULT_HANDLER_TIMEOUT`](crate::inbox::DEFAULT_HANDLER_TIMEOUT)
    /// (30 s), healthy up to 10 restarts within 60 s, no observer.
    ///
    /// ```
    /// let options = alm_webhooks::endpoint::WorkerOptions::new();
    /// # let _ = options;
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// How many deliveries this process works on at once (at least 1); see
    /// [`Workers::with_count`].
    ///
    /// ```
    /// let options = alm_webhooks::endpoint::WorkerOptions::new().with_count(2);
    /// # let _ = options;
    /// ```
    #[must_use]
    pub fn with_count(mut self, workers: usize) -> Self {
        self.count = Some(workers);
        self
    }

    /// A delivery's lease; see [`Workers::with_lease`].
    ///
    /// ```
    /// let options = alm_webhooks::endpoint::WorkerOptions::new()
    ///     .with_lease(std::time::Duration::from_secs(30));
    /// # let _ = options;
    /// ```
    #[must_use]
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = Some(lease);
        self
    }

    /// How often an idle worker looks at the inbox; see
    /// [`Workers::with_poll_interval`].
    ///
    /// ```
    /// let options = alm_webhooks::endpoint::WorkerOptions::new()
    ///     .with_poll_interval(std::time::Duration::from_millis(10));
    /// # let _ = options;
    /// ```
    #[must_use]
    pub fn with_poll_interval(mut self, poll: Duration) -> Self {
        self.poll = Some(poll);
        self
    }

    /// Attempts and backoff of a failing handler; see [`Workers::with_retry`].
    ///
    /// ```
    /// use alm_webhooks::inbox::RetryPolicy;
    /// let options = alm_webhooks::endpoint::WorkerOptions::new().with_retry(RetryPolicy::default());
    /// # let _ = options;
    /// ```
    #[must_use]
    pub fn with_retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// How long a handler may run on one event; see
    /// [`Workers::with_handler_timeout`].
    ///
    /// ```
    /// let options = alm_webhooks::endpoint::WorkerOptions::new()
    ///     .with_handler_timeout(std::time::Duration::from_secs(10));
    /// # let _ = options;
    /// ```
    #[must_use]
    pub fn with_handler_timeout(mut self, limit: Duration) -> Self {
        self.handler_timeout = Some(limit);
        self
    }

    /// How often the workers may panic within `window` while the pool (and
    /// [`Endpoint::ready`](super::Endpoint::ready)) stays healthy; see
    /// [`Workers::with_restart_limit`].
    ///
    /// ```
    /// let options = alm_webhooks::endpoint::WorkerOptions::new()
    ///     .with_restart_limit(5, std::time::Duration::from_secs(60));
    /// # let _ = options;
    /// ```
    #[must_use]
    pub fn with_restart_limit(mut self, restarts: usize, window: Duration) -> Self {
        self.restart_limit = Some((restarts, window));
        self
    }

    /// Called for everything the workers do; see [`Workers::with_observer`].
    ///
    /// ```
    /// let options = alm_webhooks::endpoint::WorkerOptions::new()
    ///     .with_observer(|progress| eprintln!("{progress:?}"));
    /// # let _ = options;
    /// ```
    #[must_use]
    pub fn with_observer(
        mut self,
        observer: impl Fn(Progress<'_>) + Send + Sync + 'static,
    ) -> Self {
        self.observer = Some(Arc::new(observer));
        self
    }

    /// `workers` with these options applied.
    pub(super) fn apply<S: Store, I: Inbox>(self, mut workers: Workers<S, I>) -> Workers<S, I> {
        if let Some(count) = self.count {
            workers = workers.with_count(count);
        }
        if let Some(lease) = self.lease {
            workers = workers.with_lease(lease);
        }
        if let Some(poll) = self.poll {
            workers = workers.with_poll_interval(poll);
        }
        if let Some(retry) = self.retry {
            workers = workers.with_retry(retry);
        }
        if let Some(limit) = self.handler_timeout {
            workers = workers.with_handler_timeout(limit);
        }
        if let Some((restarts, window)) = self.restart_limit {
            workers = workers.with_restart_limit(restarts, window);
        }
        if let Some(observer) = self.observer {
            workers = workers.with_observer(move |progress| observer(progress));
        }
        workers
    }
}
