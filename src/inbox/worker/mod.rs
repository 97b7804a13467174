//! Workers: take deliveries from an inbox under a lease and run them
//! through the engine, with retries, dead letters and a bounded shutdown.

mod deliver;
mod stop;

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use deliver::Ended;

use super::{Inbox, InboxError, NewDeadLetter, RetryPolicy, Taken};
use crate::engine::EventOutcome;
use crate::store::Store;
use crate::{AccountId, BoxError, Engine, Event};

/// What the workers report as they go: one call per decision, failed
/// attempt, dead letter and quarantined body, in the order they happen.
#[derive(Debug)]
#[non_exhaustive]
pub enum Progress<'a> {
    /// The engine decided an event. A [`Decision::Failed`](crate::Decision::Failed) (or
    /// [`Decision::InFlight`](crate::Decision::InFlight)) is one failed attempt: the event is tried again,
    /// or dead-lettered after the last attempt. On a retry, events already
    /// decided by an earlier attempt (now duplicates) are not reported again.
    Decided {
        /// The account.
        account_id: AccountId,
        /// The decision, with the event's position in its delivery.
        outcome: &'a EventOutcome,
        /// Which attempt (1-based).
        attempt: u32,
    },
    /// An event was given up on and kept as a dead letter.
    DeadLettered {
        /// What was kept.
        letter: &'a NewDeadLetter,
    },
    /// A delivery whose body is not an envelope (appended by another
    /// front door, or damaged) was quarantined.
    Quarantined {
        /// Its account, when it could be read.
        account_id: Option<AccountId>,
        /// Why it is not an envelope.
        error: &'a str,
    },
    /// The inbox or the store failed; the delivery is tried again later
    /// without counting an attempt.
    Unavailable {
        /// What failed.
        error: &'a (dyn std::error::Error + 'static),
    },
}

type Observer = Arc<dyn Fn(Progress<'_>) + Send + Sync>;

/// Configures and starts workers. See the [module docs](super).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::sync::Arc;
/// use std::time::Duration;
/// use alm_webhooks::{AccountId, Engine};
/// use alm_webhooks::inbox::{Inbox, MemoryInbox, NewDelivery, Workers};
///
/// let inbox = Arc::new(MemoryInbox::new());
/// let body = br#"{"accountId":7,"events":[{"eventId":"e1","eventName":"LEARNING_OBJECT_DRAFT",
///   "timestamp":1725519188,"data":{"loId":"course:1","loType":"course"}}]}"#;
/// let now = time::OffsetDateTime::now_utc();
/// inbox.append(NewDelivery { account_id: AccountId(7), body, received_at: now }).await.unwrap();
///
/// let workers = Workers::new(Engine::in_memory(), Arc::clone(&inbox));
/// let handler = |event: alm_webhooks::Event| async move {
///     println!("{} {}", event.event_name, event.event_id);
///     Ok(())
/// };
/// // One delivery, here and now (a pool would run `workers.start(handler)`).
/// assert!(workers.run_once(&handler).await.unwrap());
/// assert_eq!(inbox.stats(now).await.unwrap().pending, 0);
/// # }
/// ```
pub struct Workers<S: Store, I: Inbox> {
    engine: Engine<S>,
    inbox: Arc<I>,
    count: usize,
    lease: Duration,
    poll: Duration,
    retry: RetryPolicy,
    observer: Option<Observer>,
}

impl<S: Store + std::fmt::Debug, I: Inbox + std::fmt::Debug> std::fmt::Debug for Workers<S, I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workers")
            .field("inbox", &self.inbox)
            .field("count", &self.count)
            .field("lease", &self.lease)
            .field("poll", &self.poll)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl<S: Store, I: Inbox> Workers<S, I> {
    /// Workers for `engine` on `inbox`: 4 of them, a 60 s lease, the
    /// default [`RetryPolicy`], an idle poll every 50 ms.
    pub fn new(engine: Engine<S>, inbox: Arc<I>) -> Self {
        Self {
            engine,
            inbox,
            count: 4,
            lease: crate::engine::DEFAULT_LEASE,
            poll: Duration::from_millis(50),
            retry: RetryPolicy::default(),
            observer: None,
        }
    }

    /// How many deliveries this process works on at once (at least 1).
    #[must_use]
    pub fn with_count(mut self, workers: usize) -> Self {
        self.count = workers.max(1);
        self
    }

    /// A delivery's lease, renewed every third of it while it is worked on:
    /// how long a delivery whose worker died waits before another takes it.
    #[must_use]
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_millis(30));
        self
    }

    /// How often an idle worker looks at the inbox again, at first (default
    /// 50 ms; it backs off to 16 times that, at most 1 s, while the inbox
    /// stays empty, and is woken at once by [`WorkerPool::wake`]). Work
    /// appended by another process, and a retry coming due, is seen within
    /// that time.
    #[must_use]
    pub fn with_poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// Attempts and backoff.
    #[must_use]
    pub fn with_retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Called for everything the workers do ([`Progress`]), from the worker
    /// tasks: keep it quick.
    #[must_use]
    pub fn with_observer(
        mut self,
        observer: impl Fn(Progress<'_>) + Send + Sync + 'static,
    ) -> Self {
        self.observer = Some(Arc::new(observer));
        self
    }

    fn report(&self, progress: Progress<'_>) {
        if let Some(observer) = &self.observer {
            observer(progress);
        }
    }

    /// Starts the workers on the current tokio runtime, each running
    /// `handler` for the events to process. With the `metrics` feature the
    /// pool also sets the inbox gauges (`alm_webhooks_inbox_pending`, …)
    /// from the inbox's counts every 5 s while it runs.
    pub fn start<H, Fut>(self, handler: H) -> WorkerPool
    where
        H: Fn(Event) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        let (phase, watcher) = watch::channel(Phase::Running);
        let wake = Arc::new(Notify::new());
        let count = self.count;
        let shared = Arc::new((self, handler));
        let tasks = (0..count)
            .map(|_| {
                let (shared, watcher, wake) =
                    (Arc::clone(&shared), watcher.clone(), Arc::clone(&wake));
                tokio::spawn(async move {
                    let (workers, handler) = &*shared;
                    workers.work(handler, watcher, &wake).await;
                })
            })
            .collect::<Vec<_>>();
        #[cfg(feature = "metrics")]
        let tasks = {
            let mut tasks = tasks;
            tasks.push(tokio::spawn(gauges(Arc::clone(&shared.0.inbox), watcher)));
            tasks
        };
        WorkerPool {
            phase,
            wake,
            tasks: Mutex::new(tasks),
        }
    }

    async fn work<H, Fut>(&self, handler: &H, mut phase: watch::Receiver<Phase>, wake: &Notify)
    where
        H: Fn(Event) -> Fut + Send + Sync,
        Fut: Future<Output = Result<(), BoxError>> + Send,
    {
        // An idle worker looks again after `poll`, then less and less often
        // (up to 16 × `poll`, at most 1 s unless `poll` is longer), so idle
        // receivers do not keep a shared database busy; a wake, or work,
        // brings it back to `poll`.
        let longest = self.poll.max((self.poll * 16).min(Duration::from_secs(1)));
        let mut idle = self.poll;
        while *phase.borrow() == Phase::Running {
            match self.inbox.take(self.lease, OffsetDateTime::now_utc()).await {
                Ok(Some(taken)) => {
                    idle = self.poll;
                    self.hold(taken, handler, &mut phase).await;
                }
                Ok(None) => {
                    tokio::select! {
                        () = tokio::time::sleep(idle) => idle = (idle * 2).min(longest),
                        () = wake.notified() => idle = self.poll,
                        _ = phase.changed() => {}
                    }
                }
                Err(e) => {
                    self.report(Progress::Unavailable { error: &e });
                    tokio::select! {
                        () = tokio::time::sleep(self.poll.max(Duration::from_millis(200))) => {}
                        _ = phase.changed() => {}
                    }
                }
            }
        }
    }

    /// Works on a taken delivery while renewing its lease; gives it back
    /// untouched if the pool is told to abandon its work.
    async fn hold<H, Fut>(&self, taken: Taken, handler: &H, phase: &mut watch::Receiver<Phase>)
    where
        H: Fn(Event) -> Fut + Send + Sync,
        Fut: Future<Output = Result<(), BoxError>> + Send,
    {
        let (id, token) = (taken.id, taken.token);
        let heartbeat = async {
            loop {
                tokio::time::sleep(self.lease / 3).await;
                let _ = self
                    .inbox
                    .renew(id, token, self.lease, OffsetDateTime::now_utc())
                    .await;
            }
        };
        let abandon = async {
            let _ = phase.wait_for(|p| *p == Phase::Abandon).await.map(drop);
        };
        tokio::select! {
            () = self.finish(taken, handler) => {}
            () = heartbeat => {}
            () = abandon => {
                if let Err(e) = self.inbox.release(id, token).await {
                    self.report(Progress::Unavailable { error: &e });
                }
            }
        }
    }

    /// Takes one delivery, if one may be processed now, and processes it to
    /// its end (completed, or given back for a retry). `false` when there
    /// was none. For tests, benchmarks and callers that drive their own loop.
    ///
    /// # Errors
    ///
    /// The inbox's error when it could not be asked.
    pub async fn run_once<H, Fut>(&self, handler: &H) -> Result<bool, InboxError>
    where
        H: Fn(Event) -> Fut + Send + Sync,
        Fut: Future<Output = Result<(), BoxError>> + Send,
    {
        match self
            .inbox
            .take(self.lease, OffsetDateTime::now_utc())
            .await?
        {
            Some(taken) => {
                self.finish(taken, handler).await;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Processes a taken delivery and tells the inbox how it ended.
    async fn finish<H, Fut>(&self, taken: Taken, handler: &H)
    where
        H: Fn(Event) -> Fut + Send + Sync,
        Fut: Future<Output = Result<(), BoxError>> + Send,
    {
        let attempt = taken.attempts.saturating_add(1);
        let ended = match self.process(&taken, attempt, handler).await {
            Ok(Ended::Complete(letters)) => {
                for letter in &letters {
                    self.report(Progress::DeadLettered { letter });
                }
                self.inbox.complete(taken.id, taken.token, &letters).await
            }
            Ok(Ended::Retry(error)) => {
                let not_before = OffsetDateTime::now_utc() + self.retry.backoff(attempt);
                self.inbox
                    .retry_later(taken.id, taken.token, not_before, attempt, &error)
                    .await
            }
            Err(e) => {
                // Not the handler's fault: try again after the first
                // backoff, without counting an attempt.
                self.report(Progress::Unavailable { error: &e });
                let not_before = OffsetDateTime::now_utc() + self.retry.backoff(1);
                let error = e.to_string();
                self.inbox
                    .retry_later(taken.id, taken.token, not_before, taken.attempts, &error)
                    .await
            }
        };
        if let Err(e) = ended {
            // The lease runs out and the delivery is taken again; the
            // engine's dedup keeps what was decided.
            self.report(Progress::Unavailable { error: &e });
        }
    }
}

/// How often a running pool refreshes the inbox gauges (feature `metrics`).
#[cfg(feature = "metrics")]
const GAUGE_REFRESH: Duration = Duration::from_secs(5);

/// Sets the inbox gauges from the inbox's counts every [`GAUGE_REFRESH`]
/// until the pool stops (a dropped pool leaves it running, like the
/// workers); a failed count leaves them as they were.
#[cfg(feature = "metrics")]
async fn gauges<I: Inbox>(inbox: Arc<I>, mut phase: watch::Receiver<Phase>) {
    let mut every = tokio::time::interval(GAUGE_REFRESH);
    let mut watching = true;
    loop {
        tokio::select! {
            _ = every.tick() => {}
            changed = phase.changed(), if watching => watching = changed.is_ok(),
        }
        if *phase.borrow() != Phase::Running {
            return;
        }
        if let Ok(stats) = inbox.stats(OffsetDateTime::now_utc()).await {
            crate::metrics::set_inbox(&(&stats).into());
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    /// Take no more work; finish what is in hand.
    Stopping,
    /// Give back what is in hand.
    Abandon,
}

/// Wakes an idle worker of a [`WorkerPool`]: see [`WorkerPool::waker`].
#[derive(Debug, Clone)]
pub struct PoolWaker(Arc<Notify>);

impl PoolWaker {
    /// Wakes an idle worker, so that a delivery just appended is taken at
    /// once rather than at the next poll.
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

/// Running workers. Dropping the pool leaves them running; call
/// [`WorkerPool::shutdown`] to stop them.
#[derive(Debug)]
pub struct WorkerPool {
    phase: watch::Sender<Phase>,
    wake: Arc<Notify>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl WorkerPool {
    /// Wakes an idle worker: call it after appending a delivery, so it is
    /// taken at once rather than at the next poll.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// A handle that wakes an idle worker as [`WorkerPool::wake`] does, for
    /// code that appends deliveries without holding the pool (such as the
    /// [admin API](crate::admin::AdminApi::waking)).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::sync::Arc;
    /// use alm_webhooks::{Engine, inbox::{MemoryInbox, Workers}};
    ///
    /// let inbox = Arc::new(MemoryInbox::new());
    /// let pool = Workers::new(Engine::in_memory(), inbox)
    ///     .start(|_event| async { Ok(()) });
    /// let waker = pool.waker();
    /// waker.wake();
    /// # }
    /// ```
    pub fn waker(&self) -> PoolWaker {
        PoolWaker(Arc::clone(&self.wake))
    }

    /// Stops the workers: none takes new work; deliveries in hand are
    /// finished within `grace`, and those still unfinished then are given
    /// back to the inbox untouched (their handlers are cancelled; the
    /// engine's claims on their events run out with the engine's lease).
    /// Giving back takes at most 1 s more: a worker still waiting on the
    /// inbox then (an inbox that stopped answering) is stopped where it
    /// is, and its delivery is taken again once its lease runs out. So it
    /// returns within `grace` + 1 s. Returns `true` if everything in hand
    /// finished within `grace`.
    pub async fn shutdown(&self, grace: Duration) -> bool {
        let _ = self.phase.send(Phase::Stopping);
        let mut tasks: Vec<_> =
            std::mem::take(&mut *self.tasks.lock().unwrap_or_else(PoisonError::into_inner));
        let finished = stop::join_within(&mut tasks, grace).await;
        if !finished {
            let _ = self.phase.send(Phase::Abandon);
            stop::give_back(tasks).await;
        }
        finished
    }
}
