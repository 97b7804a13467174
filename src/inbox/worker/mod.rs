//! Workers: take deliveries from an inbox under a lease and run them
//! through the engine, with retries, dead letters and a bounded shutdown.

mod alone;
mod archiving;
mod deliver;
mod options;
mod pool;
mod rate;
mod rerun;
mod run;
mod supervise;
mod sweep;
mod timeout;

use std::future::Future;
use std::sync::Arc;

use time::OffsetDateTime;

use deliver::Trail;

pub use options::{DEFAULT_DELIVERY_LEASE, DEFAULT_TAKE_BATCH, DEFAULT_WORKERS, WorkerOptions};
pub use pool::{GIVE_BACK_BOUND, PoolWaker, WorkerPool};
pub(crate) use timeout::bounded;
pub use timeout::{DEFAULT_HANDLER_TIMEOUT, HandlerTimedOut};

use super::{DeliveryId, Inbox, InboxError, NewDeadLetter, Taken};
use crate::engine::EventOutcome;
use crate::store::Store;
use crate::{AccountId, BoxError, Engine, Event};

/// What the workers report as they go: one call per decision, failed
/// attempt, dead letter, quarantined body and caught panic, in the order
/// they happen.
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
    /// An event was given up on and kept as a dead letter (reported once
    /// the inbox recorded it, so once per event).
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
    /// The inbox or the store failed; the delivery is
    /// [postponed](Inbox::postpone): tried again later without counting
    /// an attempt.
    Unavailable {
        /// What failed.
        error: &'a (dyn std::error::Error + 'static),
    },
    /// A worker panicked (in the handler's closure, the observer, the
    /// store or the inbox) and went on: the delivery in hand, if any, is a
    /// failed attempt (dead-lettered after the last one). The panic's
    /// message is not kept here (it may hold anything); Rust's panic hook
    /// has printed it.
    Panicked {
        /// The account of the delivery in hand, if there was one.
        account_id: Option<AccountId>,
        /// The delivery in hand, if there was one.
        delivery: Option<DeliveryId>,
    },
}

/// Configures and starts workers. See the [module docs](super).
///
/// Nothing a delivery does stops its account for good: a handler that does
/// not return within the [handler timeout](WorkerOptions::with_handler_timeout)
/// (30 s) is a failed attempt, and a panic anywhere in a worker (the
/// handler, the observer, a custom [`Store`] or [`Inbox`]) is caught, reported
/// ([`Progress::Panicked`]) and a failed attempt too, the worker going on
/// ([`WorkerPool`]). After the last attempt the delivery's undecided events
/// are dead letters that say why.
///
/// A process that dies (an abort, a `kill -9`, out of memory) takes down
/// every delivery its workers hold, and each of them counts an abandoned
/// attempt. So a delivery taken after an abandoned attempt ([`Taken::abandoned`])
/// is a *suspect* and runs alone in its process: the pool's other workers
/// finish the delivery in hand and take no other until it is done (a second
/// suspect taken meanwhile is given back untouched). A death while a
/// suspect runs is its own: a delivery that happened to be beside an
/// aborting one is charged that one crash at most, never runs out its
/// attempts on deaths it did not cause. Inside a suspect, events run one
/// at a time, each committed before the next, so the one the process dies
/// on is the one given up after the last attempt.
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
    options: WorkerOptions,
    /// The per-account caps the gauges compare the fullest account with
    /// (the endpoint's; none for workers on their own).
    kept_caps: Option<super::KeptCounts>,
}

impl<S: Store + std::fmt::Debug, I: Inbox + std::fmt::Debug> std::fmt::Debug for Workers<S, I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workers")
            .field("inbox", &self.inbox)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl<S: Store, I: Inbox> Workers<S, I> {
    /// Workers for `engine` on `inbox`, with the default
    /// [`WorkerOptions`]: 4 of them, a 60 s delivery lease, the default
    /// [`RetryPolicy`](super::RetryPolicy), an idle poll every 50 ms, a handler timeout of
    /// [`DEFAULT_HANDLER_TIMEOUT`] (30 s), healthy up to 10 restarts within
    /// 60 s.
    pub fn new(engine: Engine<S>, inbox: Arc<I>) -> Self {
        Self {
            engine,
            inbox,
            options: WorkerOptions::default(),
            kept_caps: None,
        }
    }

    /// The per-account caps the `alm_webhooks_kept_fullest_account_ratio`
    /// gauge is a share of (the endpoint's [`KeptLimits`](crate::endpoint::KeptLimits)).
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn with_kept_caps(mut self, caps: super::KeptCounts) -> Self {
        self.kept_caps = Some(caps);
        self
    }

    /// The workers with these options.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use alm_webhooks::{Engine, inbox::{MemoryInbox, WorkerOptions, Workers}};
    /// let workers = Workers::new(Engine::in_memory(), Arc::new(MemoryInbox::new()))
    ///     .with_options(WorkerOptions::new().with_count(2).with_handler_timeout(Duration::from_secs(10)));
    /// # let _ = workers;
    /// ```
    #[must_use]
    pub fn with_options(mut self, options: WorkerOptions) -> Self {
        self.options = options;
        self
    }

    /// Completes `taken`, keeping `letters`, and archiving it with
    /// `events` unless the archive is off.
    async fn complete_keeping(
        &self,
        taken: &Taken,
        letters: &[NewDeadLetter],
        events: &[super::ArchivedEvent],
    ) -> Result<bool, InboxError> {
        let (id, token) = (taken.id, taken.token);
        match self.options.archive {
            Some(_) => {
                self.inbox
                    .complete_archived(id, token, letters, events)
                    .await
            }
            None => self.inbox.complete(id, token, letters).await,
        }
    }

    fn report(&self, progress: Progress<'_>) {
        if let Some(observer) = &self.options.observer {
            observer(progress);
        }
    }

    /// Takes one delivery, if one may be processed now, and processes it to
    /// its end (completed, or given back for a retry). `false` when there
    /// was none. For tests, benchmarks and callers that drive their own loop:
    /// the handler timeout applies, but a panic outside the handler reaches
    /// the caller (the workers of [`Workers::start`] catch theirs).
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
            .take(self.options.lease, OffsetDateTime::now_utc())
            .await?
        {
            Some(taken) => {
                self.finish(&taken, handler, &Trail::default()).await;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Processes a taken delivery and tells the inbox how it ended;
    /// whether it was completed.
    async fn finish<H, Fut>(&self, taken: &Taken, handler: &H, trail: &Trail) -> bool
    where
        H: Fn(Event) -> Fut + Send + Sync,
        Fut: Future<Output = Result<(), BoxError>> + Send,
    {
        let jobs = self.options.replays.as_ref();
        if jobs.is_some_and(|jobs| jobs.is_cancelled(taken.id)) {
            // A cancelled replay's delivery: dropped unprocessed.
            return match self.inbox.complete(taken.id, taken.token, &[]).await {
                Ok(completed) => {
                    jobs.into_iter().for_each(|jobs| jobs.completed(taken.id));
                    completed
                }
                Err(e) => {
                    self.report(Progress::Unavailable { error: &e });
                    false
                }
            };
        }
        let concluded = match super::strip_rerun(&taken.body) {
            Some(envelope) => self.rerun(taken, envelope, handler).await,
            None => {
                let processed = self.attempt(taken, handler, trail).await;
                let complete = matches!(processed, Ok(deliver::Ended::Complete(..)));
                self.conclude(taken, processed)
                    .await
                    .map(|held| held && complete)
            }
        };
        match concluded {
            Ok(true) => {
                if let Some(jobs) = jobs {
                    jobs.completed(taken.id);
                }
                true
            }
            Ok(false) => false,
            // The lease runs out and the delivery is taken again; the
            // engine's dedup keeps what was decided.
            Err(e) => {
                self.report(Progress::Unavailable { error: &e });
                false
            }
        }
    }
}

/// How often a running pool refreshes the inbox gauges (feature `metrics`).
#[cfg(feature = "metrics")]
const GAUGE_REFRESH: std::time::Duration = std::time::Duration::from_secs(5);

/// Sets the inbox gauges from the inbox's counts every [`GAUGE_REFRESH`]
/// until the pool stops (a dropped pool leaves it running, like the
/// workers); a failed count leaves them as they were.
#[cfg(feature = "metrics")]
async fn gauges<I: Inbox>(
    inbox: Arc<I>,
    kept_caps: Option<super::KeptCounts>,
    mut phase: tokio::sync::watch::Receiver<pool::Phase>,
) {
    let mut every = tokio::time::interval(GAUGE_REFRESH);
    let mut watching = true;
    loop {
        tokio::select! {
            _ = every.tick() => {}
            changed = phase.changed(), if watching => watching = changed.is_ok(),
        }
        if *phase.borrow() != pool::Phase::Running {
            return;
        }
        if let Ok(stats) = inbox.stats(OffsetDateTime::now_utc()).await {
            stats.set_gauges();
            if let Some(caps) = kept_caps {
                if let Ok(most) = inbox.most_kept_of_one_account().await {
                    most.set_fullest_account_gauge(caps);
                }
            }
        }
    }
}
