//! How the workers run: [`WorkerOptions`].

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use super::pool::RestartLimit;
use super::rate::RateLimits;
use super::{DEFAULT_HANDLER_TIMEOUT, Progress};
use crate::inbox::{DEFAULT_ARCHIVE_RETENTION, RetryPolicy};

pub(super) type Observer = Arc<dyn Fn(Progress<'_>) + Send + Sync>;

/// A delivery's lease by default: 60 s, renewed every third of it while it
/// is worked on.
pub const DEFAULT_DELIVERY_LEASE: Duration = Duration::from_secs(60);

/// How many deliveries a process's workers take at once, by default
/// ([`WorkerOptions::with_count`]): 4.
///
/// ```
/// assert_eq!(alm_webhooks::inbox::DEFAULT_WORKERS, 4);
/// ```
pub const DEFAULT_WORKERS: usize = 4;

/// How many deliveries of one account a worker takes in one step by
/// default ([`WorkerOptions::with_take_batch`]): 4.
///
/// ```
/// assert_eq!(alm_webhooks::inbox::DEFAULT_TAKE_BATCH, 4);
/// ```
pub const DEFAULT_TAKE_BATCH: usize = 4;

/// How the inbox's workers run: how many, their delivery lease, their
/// retries, how long a handler may run, how often they may panic, and who
/// hears of what they do. Given to [`Workers::with_options`](super::Workers::with_options),
/// or to [`EndpointBuilder::inbox`](crate::endpoint::EndpointBuilder::inbox)
/// which starts the workers itself.
///
/// ```
/// use std::time::Duration;
/// use alm_webhooks::inbox::{Progress, RetryPolicy, WorkerOptions};
///
/// let options = WorkerOptions::new()
///     .with_count(8)
///     .with_delivery_lease(Duration::from_secs(120))
///     .with_retry(RetryPolicy { max_attempts: 3, ..RetryPolicy::default() })
///     .with_observer(|progress| {
///         if let Progress::DeadLettered { letter } = progress {
///             eprintln!("dead letter: {}", letter.error);
///         }
///     });
/// # let _ = options;
/// ```
#[derive(Clone)]
pub struct WorkerOptions {
    pub(super) count: usize,
    /// The most deliveries of one account a worker takes in one step.
    pub(super) take_batch: usize,
    pub(super) lease: Duration,
    pub(super) poll: Duration,
    pub(super) retry: RetryPolicy,
    pub(super) handler_timeout: Duration,
    pub(super) restart_limit: RestartLimit,
    pub(super) observer: Option<Observer>,
    /// The rate limits towards the handler, shared by the pool's workers.
    pub(super) rate: Option<Arc<RateLimits>>,
    /// How long completed deliveries stay in the archive; `None`: not
    /// archived.
    pub(super) archive: Option<Duration>,
    /// The replay jobs whose deliveries these workers report.
    pub(super) replays: Option<crate::inbox::ReplayJobs>,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            count: DEFAULT_WORKERS,
            take_batch: DEFAULT_TAKE_BATCH,
            lease: DEFAULT_DELIVERY_LEASE,
            poll: Duration::from_millis(50),
            retry: RetryPolicy::default(),
            handler_timeout: DEFAULT_HANDLER_TIMEOUT,
            restart_limit: RestartLimit::default(),
            observer: None,
            rate: None,
            archive: Some(DEFAULT_ARCHIVE_RETENTION),
            replays: None,
        }
    }
}

impl fmt::Debug for WorkerOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerOptions")
            .field("count", &self.count)
            .field("take_batch", &self.take_batch)
            .field("lease", &self.lease)
            .field("poll", &self.poll)
            .field("retry", &self.retry)
            .field("handler_timeout", &self.handler_timeout)
            .field("restart_limit", &self.restart_limit)
            .field("observer", &self.observer.is_some())
            .field("rate", &self.rate)
            .field("archive", &self.archive)
            .field("replays", &self.replays.is_some())
            .finish()
    }
}

impl WorkerOptions {
    /// The defaults: [`DEFAULT_WORKERS`] (4) workers, a [`DEFAULT_DELIVERY_LEASE`] of 60 s, the
    /// default [`RetryPolicy`], an idle poll every 50 ms, a handler timeout
    /// of [`DEFAULT_HANDLER_TIMEOUT`] (30 s), healthy up to 10 restarts
    /// within 60 s, no observer.
    ///
    /// ```
    /// let options = alm_webhooks::inbox::WorkerOptions::new();
    /// # let _ = options;
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// How many deliveries this process works on at once (at least 1).
    ///
    /// ```
    /// let options = alm_webhooks::inbox::WorkerOptions::new().with_count(2);
    /// # let _ = options;
    /// ```
    #[must_use]
    pub fn with_count(mut self, workers: usize) -> Self {
        self.count = workers.max(1);
        self
    }

    /// How many deliveries of one account a worker takes in one step, at
    /// most (default [`DEFAULT_TAKE_BATCH`], 4; at least 1): the account's
    /// next delivery and those behind it, in one round trip
    /// ([`Inbox::take_many`](crate::inbox::Inbox::take_many)), then worked
    /// on one after another, in order, each under its own lease (the ones
    /// waiting renewed too). The rest is given back untouched (the attempt
    /// not counted) when one is not completed, at shutdown, or before a
    /// delivery that must run alone. `1` takes one delivery at a time. A
    /// worker still works on one delivery at a time: the number of
    /// deliveries in progress is [`with_count`](Self::with_count)'s.
    ///
    /// ```
    /// let options = alm_webhooks::inbox::WorkerOptions::new().with_take_batch(1);
    /// # let _ = options;
    /// ```
    #[must_use]
    pub fn with_take_batch(mut self, deliveries: usize) -> Self {
        self.take_batch = deliveries.max(1);
        self
    }

    /// A delivery's lease (default [`DEFAULT_DELIVERY_LEASE`]; at least
    /// 30 ms), renewed every third of it while it is worked on: how long a
    /// delivery whose worker died waits before another takes it. Not the
    /// engine's claim lease on an event
    /// ([`EngineBuilder::claim_lease`](crate::engine::EngineBuilder::claim_lease)).
    ///
    /// ```
    /// let options = alm_webhooks::inbox::WorkerOptions::new()
    ///     .with_delivery_lease(std::time::Duration::from_secs(30));
    /// # let _ = options;
    /// ```
    #[must_use]
    pub fn with_delivery_lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_millis(30));
        self
    }

    /// How often an idle worker looks at the inbox again, at first (default
    /// 50 ms; it backs off to 16 times that, at most 1 s, while the inbox
    /// stays empty, and is woken at once by
    /// [`WorkerPool::wake`](super::WorkerPool::wake)). Work appended by
    /// another process, and a retry coming due, is seen within that time.
    ///
    /// ```
    /// let options = alm_webhooks::inbox::WorkerOptions::new()
    ///     .with_poll_interval(std::time::Duration::from_millis(10));
    /// # let _ = options;
    /// ```
    #[must_use]
    pub fn with_poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// Attempts and backoff of a failing handler.
    ///
    /// ```
    /// use alm_webhooks::inbox::{RetryPolicy, WorkerOptions};
    /// let options = WorkerOptions::new().with_retry(RetryPolicy::default());
    /// # let _ = options;
    /// ```
    #[must_use]
    pub fn with_retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// How long a handler may run on one event (default
    /// [`DEFAULT_HANDLER_TIMEOUT`], 30 s; at least 1 ms). One that does not
    /// return within it is cancelled and the attempt fails with
    /// [`HandlerTimedOut`](super::HandlerTimedOut) ("handler timed out
    /// after 30 s"): the event is tried again, and dead-lettered with that
    /// error after the last attempt, so a hung handler never holds its
    /// account for good. The delivery's lease is renewed only while its
    /// handlers are within their time.
    ///
    /// ```
    /// let options = alm_webhooks::inbox::WorkerOptions::new()
    ///     .with_handler_timeout(std::time::Duration::from_secs(10));
    /// # let _ = options;
    /// ```
    #[must_use]
    pub fn with_handler_timeout(mut self, limit: Duration) -> Self {
        self.handler_timeout = limit.max(Duration::from_millis(1));
        self
    }

    /// How often the workers may panic (and be restarted) within `window`
    /// while the pool stays [healthy](super::WorkerPool::healthy) (default
    /// 10 within 60 s; `restarts` at least 1).
    ///
    /// ```
    /// let options = alm_webhooks::inbox::WorkerOptions::new()
    ///     .with_restart_limit(5, std::time::Duration::from_secs(60));
    /// # let _ = options;
    /// ```
    #[must_use]
    pub fn with_restart_limit(mut self, restarts: usize, window: Duration) -> Self {
        self.restart_limit = RestartLimit {
            restarts: restarts.max(1),
            window,
        };
        self
    }

    /// Called for everything the workers do ([`Progress`]), from the worker
    /// tasks: keep it quick.
    ///
    /// ```
    /// let options = alm_webhooks::inbox::WorkerOptions::new()
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

    /// At most `per_second` events a second reach the handler, all
    /// accounts together (default: no limit): a token bucket (governor's
    /// GCRA) with a burst of a tenth of a second's worth. A bulk delivery
    /// is acknowledged at once and drains at this rate; its lease is
    /// renewed while its events wait, and the wait is not counted in the
    /// handler timeout nor in `alm_webhooks_handler_seconds` (it has its
    /// own histogram, `alm_webhooks_rate_limit_wait_seconds`, and the
    /// events still to pass show in `alm_webhooks_rate_limit_backlog`).
    /// The options' clones share the bucket (one pool, one limit).
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// let options = alm_webhooks::inbox::WorkerOptions::new()
    ///     .with_rate_limit(NonZeroU32::new(500).unwrap());
    /// assert_eq!(options.rate_limit(), NonZeroU32::new(500));
    /// ```
    #[must_use]
    pub fn with_rate_limit(mut self, per_second: NonZeroU32) -> Self {
        let account = self.account_rate_limit();
        self.rate = Some(Arc::new(RateLimits::new(Some(per_second), account)));
        self
    }

    /// At most `per_second` events a second of each account reach the
    /// handler (default: no limit), as [`with_rate_limit`](Self::with_rate_limit)
    /// for each account on its own; with both, an event waits for both.
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// let options = alm_webhooks::inbox::WorkerOptions::new()
    ///     .with_account_rate_limit(NonZeroU32::new(50).unwrap());
    /// assert_eq!((options.rate_limit(), options.account_rate_limit()), (None, NonZeroU32::new(50)));
    /// ```
    #[must_use]
    pub fn with_account_rate_limit(mut self, per_second: NonZeroU32) -> Self {
        let receiver = self.rate_limit();
        self.rate = Some(Arc::new(RateLimits::new(receiver, Some(per_second))));
        self
    }

    /// The events a second the handler gets at most, all accounts
    /// together; `None` without a limit.
    ///
    /// ```
    /// assert_eq!(alm_webhooks::inbox::WorkerOptions::new().rate_limit(), None);
    /// ```
    pub fn rate_limit(&self) -> Option<NonZeroU32> {
        self.rate.as_ref().and_then(|r| r.per_second())
    }

    /// The events a second the handler gets at most of one account;
    /// `None` without a limit.
    ///
    /// ```
    /// assert_eq!(alm_webhooks::inbox::WorkerOptions::new().account_rate_limit(), None);
    /// ```
    pub fn account_rate_limit(&self) -> Option<NonZeroU32> {
        self.rate.as_ref().and_then(|r| r.per_account_per_second())
    }

    /// How long the archive keeps a completed delivery (default
    /// [`DEFAULT_ARCHIVE_RETENTION`], 30 days; zero turns the archive off):
    /// its exact bytes, its time received and its events' decisions, kept
    /// in the write that completes it ([`Inbox::complete_archived`](crate::inbox::Inbox::complete_archived)).
    /// The pool sweeps what is older, [`ARCHIVE_SWEEP_STEP`](crate::inbox::ARCHIVE_SWEEP_STEP)
    /// deliveries at a time.
    ///
    /// ```
    /// use std::time::Duration;
    /// use alm_webhooks::inbox::WorkerOptions;
    /// let options = WorkerOptions::new().with_archive(Duration::from_secs(7 * 86_400));
    /// assert_eq!(options.archive(), Some(Duration::from_secs(7 * 86_400)));
    /// assert_eq!(WorkerOptions::new().with_archive(Duration::ZERO).archive(), None);
    /// ```
    #[must_use]
    pub fn with_archive(mut self, retention: Duration) -> Self {
        self.archive = (!retention.is_zero()).then_some(retention);
        self
    }

    /// How long the archive keeps a completed delivery; `None` when it is
    /// off.
    ///
    /// ```
    /// use alm_webhooks::inbox::{DEFAULT_ARCHIVE_RETENTION, WorkerOptions};
    /// assert_eq!(WorkerOptions::new().archive(), Some(DEFAULT_ARCHIVE_RETENTION));
    /// ```
    pub fn archive(&self) -> Option<Duration> {
        self.archive
    }

    /// The workers report to `jobs` the deliveries its replay jobs queued
    /// (each job's `done`, and the end of its step), and complete those of
    /// a cancelled job without processing them. An
    /// [`Endpoint`](crate::Endpoint) gives its workers its own jobs.
    ///
    /// ```
    /// use alm_webhooks::inbox::{ReplayJobs, WorkerOptions};
    /// let jobs = ReplayJobs::new();
    /// let options = WorkerOptions::new().with_replays(jobs.clone());
    /// assert!(options.replays().is_some());
    /// ```
    #[must_use]
    pub fn with_replays(mut self, jobs: crate::inbox::ReplayJobs) -> Self {
        self.replays = Some(jobs);
        self
    }

    /// The replay jobs the workers report to, if given.
    ///
    /// ```
    /// assert!(alm_webhooks::inbox::WorkerOptions::new().replays().is_none());
    /// ```
    pub fn replays(&self) -> Option<&crate::inbox::ReplayJobs> {
        self.replays.as_ref()
    }
}
