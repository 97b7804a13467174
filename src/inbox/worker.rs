//! Workers: take deliveries from an inbox under a lease and run them
//! through the engine, with retries, dead letters and a bounded shutdown.

use std::collections::HashSet;
use std::fmt::Display;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Deserialize;
use serde_json::value::RawValue;
use time::OffsetDateTime;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use super::{Inbox, InboxError, NewDeadLetter, NewQuarantined, RetryPolicy, Taken};
use crate::engine::{Decision, EventOutcome, StateKey};
use crate::store::{Store, StoreError};
use crate::{AccountId, Engine, Envelope, Event, EventError};

/// What the workers report as they go: one call per decision, failed
/// attempt, dead letter and quarantined body, in the order they happen.
#[derive(Debug)]
#[non_exhaustive]
pub enum Progress<'a> {
    /// The engine decided an event. A [`Decision::Failed`] (or
    /// [`Decision::Busy`]) is one failed attempt: the event is tried again,
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
///     Ok::<(), std::io::Error>(())
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
    pub fn count(mut self, workers: usize) -> Self {
        self.count = workers.max(1);
        self
    }

    /// A delivery's lease, renewed every third of it while it is worked on:
    /// how long a delivery whose worker died waits before another takes it.
    #[must_use]
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_millis(30));
        self
    }

    /// How often an idle worker looks at the inbox again (it is woken at
    /// once by [`WorkerPool::wake`]).
    #[must_use]
    pub fn poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// Attempts and backoff.
    #[must_use]
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Called for everything the workers do ([`Progress`]), from the worker
    /// tasks: keep it quick.
    #[must_use]
    pub fn observe(mut self, observer: impl Fn(Progress<'_>) + Send + Sync + 'static) -> Self {
        self.observer = Some(Arc::new(observer));
        self
    }

    fn report(&self, progress: Progress<'_>) {
        if let Some(observer) = &self.observer {
            observer(progress);
        }
    }

    /// Starts the workers on the current tokio runtime, each running
    /// `handler` for the events to process.
    pub fn start<H, Fut, E>(self, handler: H) -> WorkerPool
    where
        H: Fn(Event) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Display + 'static,
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
            .collect();
        WorkerPool {
            phase,
            wake,
            tasks: Mutex::new(tasks),
        }
    }

    async fn work<H, Fut, E>(&self, handler: &H, mut phase: watch::Receiver<Phase>, wake: &Notify)
    where
        H: Fn(Event) -> Fut + Send + Sync,
        Fut: Future<Output = Result<(), E>> + Send,
        E: Display,
    {
        while *phase.borrow() == Phase::Running {
            match self.inbox.take(self.lease, OffsetDateTime::now_utc()).await {
                Ok(Some(taken)) => self.hold(taken, handler, &mut phase).await,
                Ok(None) => {
                    tokio::select! {
                        () = tokio::time::sleep(self.poll) => {}
                        () = wake.notified() => {}
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
    async fn hold<H, Fut, E>(&self, taken: Taken, handler: &H, phase: &mut watch::Receiver<Phase>)
    where
        H: Fn(Event) -> Fut + Send + Sync,
        Fut: Future<Output = Result<(), E>> + Send,
        E: Display,
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
    pub async fn run_once<H, Fut, E>(&self, handler: &H) -> Result<bool, InboxError>
    where
        H: Fn(Event) -> Fut + Send + Sync,
        Fut: Future<Output = Result<(), E>> + Send,
        E: Display,
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
    async fn finish<H, Fut, E>(&self, taken: Taken, handler: &H)
    where
        H: Fn(Event) -> Fut + Send + Sync,
        Fut: Future<Output = Result<(), E>> + Send,
        E: Display,
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

    /// Runs a delivery's events through the engine. Before the last attempt,
    /// an event whose handler failed holds back the later events of the same
    /// record (they are decided on the next attempt); on the last attempt it
    /// is dead-lettered and the record goes on.
    async fn process<H, Fut, E>(
        &self,
        taken: &Taken,
        attempt: u32,
        handler: &H,
    ) -> Result<Ended, StoreError>
    where
        H: Fn(Event) -> Fut + Send + Sync,
        Fut: Future<Output = Result<(), E>> + Send,
        E: Display,
    {
        let envelope = match Envelope::from_slice(&taken.body) {
            Ok(envelope) => envelope,
            Err(e) => return self.quarantine(taken, &e.to_string()).await,
        };
        let account_id = envelope.account_id;
        let last = self.retry.is_last(attempt);
        let now = OffsetDateTime::now_utc();
        let mut items: Vec<Item> = Vec::with_capacity(envelope.events.len());
        let mut rejected = Vec::new();
        for (index, event) in envelope.events.into_iter().enumerate() {
            if let Err(error) = &event {
                rejected.push(rejected_letter(account_id, error, attempt, now));
            }
            let key = event
                .as_ref()
                .ok()
                .and_then(|e| StateKey::for_event(account_id, e));
            items.push(Item { index, key, event });
        }
        let mut failed: Vec<(usize, Option<String>, Option<String>, String)> = Vec::new();
        let mut blocked: HashSet<StateKey> = HashSet::new();
        let mut rest = items.into_iter().peekable();
        while rest.peek().is_some() {
            // A chunk holds at most one event per record, so a failure can
            // hold back the record's later events before they are decided.
            let mut chunk = Vec::new();
            let mut keys = HashSet::new();
            while let Some(item) = rest.peek() {
                match &item.key {
                    Some(key) if blocked.contains(key) => {
                        rest.next();
                        continue;
                    }
                    Some(key) if !last && !keys.insert(key.clone()) => break,
                    _ => chunk.push(rest.next().expect("peeked")),
                }
            }
            let positions: Vec<(usize, Option<StateKey>)> =
                chunk.iter().map(|i| (i.index, i.key.clone())).collect();
            let envelope = Envelope {
                account_id,
                events: chunk.into_iter().map(|i| i.event).collect(),
            };
            let report = self.engine.process(envelope, handler).await?;
            for mut outcome in report.outcomes {
                let (index, key) = positions[outcome.index].clone();
                outcome.index = index;
                let again = attempt > 1
                    && matches!(outcome.decision, Decision::Duplicate | Decision::Rejected);
                if !again {
                    self.report(Progress::Decided {
                        account_id,
                        outcome: &outcome,
                        attempt,
                    });
                }
                if !outcome.decision.is_final() {
                    if let Some(key) = key.filter(|_| !last) {
                        blocked.insert(key);
                    }
                    let error = outcome.error.clone().unwrap_or_else(|| {
                        "still in flight in another attempt after the wait".to_owned()
                    });
                    failed.push((
                        index,
                        outcome.event_id.map(|id| id.as_str().to_owned()),
                        outcome.event_name.map(|n| n.as_str().to_owned()),
                        error,
                    ));
                }
            }
        }
        if !last {
            if let Some((_, id, _, error)) = failed.first() {
                let id = id.as_deref().unwrap_or("?");
                return Ok(Ended::Retry(format!("event {id}: {error}")));
            }
        }
        let mut letters = rejected;
        if !failed.is_empty() {
            let raw = raw_events(&taken.body);
            for (index, event_id, event_name, error) in failed {
                letters.push(NewDeadLetter {
                    account_id,
                    event_id,
                    event_name,
                    event: raw
                        .get(index)
                        .map_or_else(String::new, |r| r.get().to_owned()),
                    error,
                    attempts: attempt,
                    at: now,
                });
            }
        }
        Ok(Ended::Complete(letters))
    }

    /// A taken body that is not an envelope: kept in quarantine, and the
    /// delivery completed.
    async fn quarantine(&self, taken: &Taken, error: &str) -> Result<Ended, StoreError> {
        self.report(Progress::Quarantined {
            account_id: Some(taken.account_id),
            error,
        });
        let kept = self
            .inbox
            .quarantine(NewQuarantined {
                account_id: Some(taken.account_id),
                body: &taken.body,
                error,
                received_at: taken.received_at,
            })
            .await;
        match kept {
            Ok(_) => Ok(Ended::Complete(Vec::new())),
            Err(e) => Err(StoreError::with_source("cannot quarantine the body", e)),
        }
    }
}

/// One event of a delivery, with its position and the record it is about.
struct Item {
    index: usize,
    key: Option<StateKey>,
    event: Result<Event, Box<EventError>>,
}

/// How a delivery's processing ended.
enum Ended {
    /// Done; keep these dead letters.
    Complete(Vec<NewDeadLetter>),
    /// An event failed before the last attempt: try again later.
    Retry(String),
}

fn rejected_letter(
    account_id: AccountId,
    error: &EventError,
    attempt: u32,
    now: OffsetDateTime,
) -> NewDeadLetter {
    NewDeadLetter {
        account_id,
        event_id: error.event_id.as_ref().map(|id| id.as_str().to_owned()),
        event_name: error.event_name.as_ref().map(|n| n.as_str().to_owned()),
        event: error.raw.get().to_owned(),
        error: error.to_string(),
        attempts: attempt,
        at: now,
    }
}

/// Each event's JSON exactly as sent (empty if the body does not parse).
fn raw_events(body: &[u8]) -> Vec<Box<RawValue>> {
    #[derive(Deserialize)]
    struct Raw {
        events: Vec<Box<RawValue>>,
    }
    serde_json::from_slice::<Raw>(body).map_or_else(|_| Vec::new(), |raw| raw.events)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    /// Take no more work; finish what is in hand.
    Stopping,
    /// Give back what is in hand.
    Abandon,
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

    /// Stops the workers: none takes new work; deliveries in hand are
    /// finished within `grace`, and those still unfinished then are given
    /// back to the inbox untouched (their handlers are cancelled; the
    /// engine's claims on their events run out with the engine's lease).
    /// Returns `true` if everything in hand finished within `grace`.
    pub async fn shutdown(&self, grace: Duration) -> bool {
        let _ = self.phase.send(Phase::Stopping);
        let tasks: Vec<_> =
            std::mem::take(&mut *self.tasks.lock().unwrap_or_else(PoisonError::into_inner));
        let mut tasks = tasks;
        let finished = tokio::time::timeout(grace, async {
            for task in &mut tasks {
                let _ = task.await;
            }
        })
        .await
        .is_ok();
        if !finished {
            let _ = self.phase.send(Phase::Abandon);
            for task in tasks {
                let _ = task.await;
            }
        }
        finished
    }
}
