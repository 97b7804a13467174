//! The dedup and ordering engine: decides, for each event of an accepted
//! delivery, whether your handler should process it, and records the
//! outcome.
//!
//! For each event, in delivery order:
//!
//! 1. An event that did not parse is [`Decision::Rejected`] (it has no
//!    trustworthy key, so nothing is recorded).
//! 2. The event is claimed in the store under (`accountId`, `eventId`). If it
//!    was already decided (processed or ignored) within the dedup window, it
//!    is a [`Decision::Duplicate`]. If another attempt holds it, the engine
//!    waits up to [`EngineBuilder::wait_for_in_flight`] for that attempt to
//!    finish, then reports a duplicate, or [`Decision::Busy`] if it is still
//!    running.
//! 3. The entity's state is loaded and [`rules::decide`] says processed or
//!    ignored. An ignored event is recorded as decided, so a redelivery of
//!    it is a duplicate.
//! 4. For a processed event the handler runs. Only if it succeeds is the
//!    event recorded and the state advanced, in one atomic commit. If it
//!    fails or panics, the claim is released and nothing is recorded
//!    ([`Decision::Failed`]); the delivery is answered with a `5xx` and ALM's
//!    redelivery processes the event. If the process dies mid-handler, the
//!    claim's lease expires and the redelivery processes it.
//!
//! By default each decision is committed before the next event is decided.
//! [`EngineBuilder::commit_batch`] commits a delivery's decisions in groups
//! instead ([`Store::commit_many`]: one transaction on PostgreSQL), with the
//! same decisions: an event whose entity has a decision pending in the group,
//! or whose `eventId` is in flight, commits the group first.
//!
//! Every commit checks the entity state's version. If the state moved while
//! an event was being decided (another delivery for the same record
//! committed in between, which ALM's per-account ordering makes rare), the
//! event is decided again on the new state; if its handler already ran, the
//! handler does not run again and its effect is folded into the new state
//! with [`rules::apply`].

mod catch;
mod clock;
mod counters;
mod decision;
pub mod rules;

use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;

pub use clock::{Clock, ManualClock, SystemClock};
pub use counters::CounterSnapshot;
pub use decision::{Decision, IgnoreReason};
pub use rules::{EntityState, Lifecycle, StateKey};

use crate::store::{
    Claim, ClaimToken, Commit, CommitOutcome, DedupKey, MemoryStore, StateUpdate, Store,
    StoreError, Versioned,
};
use crate::{AccountId, Envelope, Event, EventId, EventName};
use catch::CatchUnwind;
use counters::Counters;

/// Remembered this long by default: 8 days (ALM retries for 7).
pub const DEFAULT_DEDUP_WINDOW: Duration = Duration::from_secs(8 * 24 * 3600);
/// A claim's default lease: 60 s.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);
/// The default wait for an event in flight elsewhere: 2 s, well inside ALM's
/// 5 s read timeout.
pub const DEFAULT_IN_FLIGHT_WAIT: Duration = Duration::from_secs(2);

/// How often an in-flight event is looked at again while waiting.
const POLL: Duration = Duration::from_millis(25);

/// The engine. Cheap to clone (shared state); one per application.
///
/// ```
/// use alm_webhooks::{Envelope, engine::{Decision, Engine}};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let engine = Engine::in_memory();
/// let body = br#"{"accountId":1,"events":[{"eventId":"e1","eventName":"LEARNING_OBJECT_DRAFT",
///   "timestamp":1725519188,"data":{"loId":"course:1","loType":"course"}}]}"#;
/// let envelope = Envelope::from_slice(body).unwrap();
///
/// let report = engine.process(envelope.clone(), |event| async move {
///     println!("store {} in the CRM", event.event_id);
///     Ok::<(), std::io::Error>(())
/// }).await.unwrap();
/// assert_eq!(report.outcomes[0].decision, Decision::Processed);
/// assert_eq!(report.status(), http::StatusCode::ACCEPTED);
///
/// // ALM delivers at least once: the same delivery again is a duplicate.
/// let again = engine.process(envelope, |_| async { Ok::<(), std::io::Error>(()) }).await.unwrap();
/// assert_eq!(again.outcomes[0].decision, Decision::Duplicate);
/// # }
/// ```
pub struct Engine<S = MemoryStore> {
    inner: Arc<Inner<S>>,
}

struct Inner<S> {
    store: S,
    clock: Arc<dyn Clock>,
    dedup_window: Duration,
    lease: Duration,
    in_flight_wait: Duration,
    commit_batch: usize,
    counters: Counters,
}

impl<S> Clone for Engine<S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S: std::fmt::Debug> std::fmt::Debug for Engine<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("store", &self.inner.store)
            .field("dedup_window", &self.inner.dedup_window)
            .field("lease", &self.inner.lease)
            .field("in_flight_wait", &self.inner.in_flight_wait)
            .field("commit_batch", &self.inner.commit_batch)
            .finish_non_exhaustive()
    }
}

/// Configures an [`Engine`].
#[derive(Debug)]
pub struct EngineBuilder<S> {
    store: S,
    clock: Arc<dyn Clock>,
    dedup_window: Duration,
    lease: Duration,
    in_flight_wait: Duration,
    commit_batch: usize,
}

impl<S: Store> EngineBuilder<S> {
    /// How long decided events are remembered (default 8 days).
    #[must_use]
    pub fn dedup_window(mut self, window: Duration) -> Self {
        self.dedup_window = window;
        self
    }

    /// How long a claim holds before another attempt may take the event over
    /// (default 60 s). Make it longer than your slowest handler.
    #[must_use]
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// How long to wait for an event in flight elsewhere before answering
    /// [`Decision::Busy`] (default 2 s).
    #[must_use]
    pub fn wait_for_in_flight(mut self, wait: Duration) -> Self {
        self.in_flight_wait = wait;
        self
    }

    /// Commits up to `events` decisions of a delivery together, with
    /// [`Store::commit_many`] (default 1: each decision is committed before
    /// the next event is decided; 0 counts as 1).
    ///
    /// Worth it on a store whose commits wait for a disk flush: on
    /// PostgreSQL a batch is one transaction and one flush, so a bulk
    /// delivery of thousands of events is decided many times faster (see
    /// `BENCHMARKS.md`). The rules see the same states as without batching:
    /// an event about an entity that has a decision pending in the batch
    /// commits the batch first. The price: handlers run before their batch is
    /// committed, so if the process or the store fails before the commit,
    /// those events are processed again when ALM redelivers them (as after a
    /// crash between a handler and its commit, only for more events). The
    /// claims of a batch are held until it is committed.
    ///
    /// ```
    /// use alm_webhooks::{Engine, store::MemoryStore};
    /// let engine = Engine::builder(MemoryStore::new()).commit_batch(500).build();
    /// # let _ = engine;
    /// ```
    #[must_use]
    pub fn commit_batch(mut self, events: usize) -> Self {
        self.commit_batch = events.max(1);
        self
    }

    /// Where "now" comes from (default: the system clock).
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Builds the engine.
    pub fn build(self) -> Engine<S> {
        Engine {
            inner: Arc::new(Inner {
                store: self.store,
                clock: self.clock,
                dedup_window: self.dedup_window,
                lease: self.lease,
                in_flight_wait: self.in_flight_wait,
                commit_batch: self.commit_batch,
                counters: Counters::default(),
            }),
        }
    }
}

impl Engine<MemoryStore> {
    /// An engine on a fresh [`MemoryStore`] with the defaults.
    pub fn in_memory() -> Self {
        Self::builder(MemoryStore::new()).build()
    }
}

/// What happened to one event of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventOutcome {
    /// The event's position in the envelope.
    pub index: usize,
    /// Its `eventId`, when known.
    pub event_id: Option<EventId>,
    /// Its `eventName`, when known.
    pub event_name: Option<EventName>,
    /// The decision.
    pub decision: Decision,
    /// The handler's error message, for [`Decision::Failed`].
    pub error: Option<String>,
}

/// The decisions for a whole delivery.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeliveryReport {
    /// One outcome per event, in envelope order.
    pub outcomes: Vec<EventOutcome>,
}

impl DeliveryReport {
    /// Whether every event got a final decision, so the delivery can be
    /// acknowledged.
    pub fn is_acknowledged(&self) -> bool {
        self.outcomes.iter().all(|o| o.decision.is_final())
    }

    /// The status to answer ALM with: `202 Accepted` when every event got a
    /// final decision (whatever it was); `500` when a handler failed and
    /// `503` when an event is still in flight elsewhere, so ALM redelivers.
    pub fn status(&self) -> StatusCode {
        if self.outcomes.iter().any(|o| o.decision == Decision::Failed) {
            StatusCode::INTERNAL_SERVER_ERROR
        } else if self.outcomes.iter().any(|o| o.decision == Decision::Busy) {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::ACCEPTED
        }
    }
}

impl<S: Store> Engine<S> {
    /// Starts configuring an engine on `store`.
    pub fn builder(store: S) -> EngineBuilder<S> {
        EngineBuilder {
            store,
            clock: Arc::new(SystemClock),
            dedup_window: DEFAULT_DEDUP_WINDOW,
            lease: DEFAULT_LEASE,
            in_flight_wait: DEFAULT_IN_FLIGHT_WAIT,
            commit_batch: 1,
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.inner.store
    }

    /// The counters so far.
    pub fn counters(&self) -> CounterSnapshot {
        self.inner.counters.snapshot()
    }

    /// Removes expired entries from the store (call it now and then, e.g.
    /// hourly, from a background task).
    ///
    /// # Errors
    ///
    /// The store's error.
    pub async fn sweep(&self) -> Result<u64, StoreError> {
        self.inner.store.sweep(self.inner.clock.now()).await
    }

    /// Decides every event of `envelope`, running `handler` for those to
    /// process, in order. See the [module docs](self).
    ///
    /// The handler gets each event to process by value (`|event| async move
    /// { … }`), so its future can own it and be `Send`; its error message is
    /// reported with [`Decision::Failed`].
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the store fails; answer `503` (events whose
    /// decisions were committed before the failure stay decided, so ALM's
    /// redelivery reports them as duplicates).
    pub async fn process<F, Fut, E>(
        &self,
        envelope: Envelope,
        mut handler: F,
    ) -> Result<DeliveryReport, StoreError>
    where
        F: FnMut(Event) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: Display,
    {
        let account_id = envelope.account_id;
        let mut report = DeliveryReport {
            outcomes: Vec::with_capacity(envelope.events.len()),
        };
        let mut batch = Batch::default();
        for (index, item) in envelope.events.into_iter().enumerate() {
            let (event_name, step) = match item {
                Err(error) => (
                    error.event_name.clone(),
                    Step::Final(Decision::Rejected, None, error.event_id.clone()),
                ),
                Ok(event) => {
                    let event_name = event.event_name.clone();
                    let key = DedupKey {
                        account_id,
                        event_id: event.event_id.clone(),
                    };
                    let step = self
                        .decide_one(index, key, event, &mut handler, &mut batch)
                        .await?;
                    (Some(event_name), step)
                }
            };
            let (event_id, decision, error) = match step {
                Step::Final(decision, error, event_id) => (event_id, decision, error),
                // Provisional until its commit; settled (with its id) below.
                Step::Pending(decision) => (None, decision, None),
            };
            report.outcomes.push(EventOutcome {
                index,
                event_id,
                event_name,
                decision,
                error,
            });
            if batch.pending.len() >= self.inner.commit_batch {
                self.flush(&mut batch, &mut handler).await?;
            }
            self.settle(&mut batch, &mut report, account_id);
        }
        self.flush(&mut batch, &mut handler).await?;
        self.settle(&mut batch, &mut report, account_id);
        Ok(report)
    }

    /// Writes the decisions the last flush made final into `report`, and
    /// counts and traces every outcome that is final now.
    fn settle(&self, batch: &mut Batch, report: &mut DeliveryReport, account_id: AccountId) {
        for settled in batch.settled.drain(..) {
            let outcome = &mut report.outcomes[settled.index];
            outcome.event_id = Some(settled.event_id);
            outcome.decision = settled.decision;
            outcome.error = settled.error;
        }
        let unsettled = batch.pending.first().map_or(usize::MAX, |p| p.index);
        while batch.reported < report.outcomes.len() && batch.reported < unsettled {
            let outcome = &report.outcomes[batch.reported];
            self.inner.counters.record(outcome.decision);
            #[cfg(feature = "tracing")]
            tracing::debug!(
                account_id = account_id.get(),
                index = outcome.index,
                event_id = outcome.event_id.as_ref().map(EventId::as_str),
                event_name = outcome.event_name.as_ref().map(EventName::as_str),
                decision = %outcome.decision,
                "event decided"
            );
            batch.reported += 1;
        }
        #[cfg(not(feature = "tracing"))]
        let _ = account_id;
    }

    /// Claims, decides and (if processed) hands one event to the handler.
    /// The decision is then committed with the batch, or final at once.
    async fn decide_one<F, Fut, E>(
        &self,
        index: usize,
        key: DedupKey,
        event: Event,
        handler: &mut F,
        batch: &mut Batch,
    ) -> Result<Step, StoreError>
    where
        F: FnMut(Event) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: Display,
    {
        let state_key = StateKey::for_event(key.account_id, &event);
        // One pending decision per entity: a batch's commits then never
        // depend on each other, and this event is decided on a committed
        // state.
        if state_key.as_ref().is_some_and(|k| batch.touches(k)) {
            self.flush(batch, handler).await?;
        }
        let Some(claimed) = self.claim(&key, state_key.as_ref(), batch, handler).await? else {
            return Ok(Step::Final(Decision::Busy, None, Some(key.event_id)));
        };
        let (token, loaded) = match claimed {
            Claimed::Token(token, loaded) => (token, loaded),
            Claimed::Duplicate => {
                return Ok(Step::Final(Decision::Duplicate, None, Some(key.event_id)));
            }
        };
        let mut pending = Pending {
            index,
            key,
            token,
            state_key,
            loaded,
            // Both set by `decide_pending`, next.
            next: EntityState::default(),
            decision: Decision::Processed,
            family: event.family(),
            at: event.timestamp.unix_millis(),
            event: None,
        };
        let mut event = Some(event);
        if let Some(message) = self
            .decide_pending(&mut pending, &mut event, handler)
            .await?
        {
            return Ok(Step::Final(
                Decision::Failed,
                Some(message),
                Some(pending.key.event_id),
            ));
        }
        // Kept (boxed: rare) only if the handler did not have it.
        pending.event = event.map(Box::new);
        let decision = pending.decision;
        batch.pending.push(pending);
        Ok(Step::Pending(decision))
    }

    /// Decides `pending` on its loaded state and, when it is processed and
    /// the handler has not had the `event` yet (`Some`), runs the handler.
    /// The failure message if the handler fails (the claim is then
    /// released).
    async fn decide_pending<F, Fut, E>(
        &self,
        pending: &mut Pending,
        event: &mut Option<Event>,
        handler: &mut F,
    ) -> Result<Option<String>, StoreError>
    where
        F: FnMut(Event) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: Display,
    {
        (pending.decision, pending.next) = match event {
            Some(event) => rules::decide(&pending.loaded.state, event),
            // The handler already ran: fold its effect into the state.
            None => (
                Decision::Processed,
                rules::apply_facts(&pending.loaded.state, pending.family, pending.at),
            ),
        };
        if pending.decision == Decision::Processed {
            if let Some(event) = event.take() {
                if let Some(message) = run(handler, event).await {
                    self.inner
                        .store
                        .release(&pending.key, pending.token)
                        .await?;
                    return Ok(Some(message));
                }
            }
        }
        Ok(None)
    }

    /// Commits the batch's decisions; a commit that finds the state moved is
    /// decided again on the new state and committed alone.
    async fn flush<F, Fut, E>(&self, batch: &mut Batch, handler: &mut F) -> Result<(), StoreError>
    where
        F: FnMut(Event) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: Display,
    {
        if batch.pending.is_empty() {
            return Ok(());
        }
        let inner = &*self.inner;
        let remember_until = inner.clock.now() + inner.dedup_window;
        match batch.pending.len() {
            // The common case (one commit per event): no batch to build.
            1 => {
                let pending = batch.pending.pop().expect("one pending decision");
                let outcome = inner.store.commit(pending.commit(remember_until)).await?;
                let settled = self.conclude(pending, outcome, handler).await?;
                batch.settled.push(settled);
            }
            _ => {
                let outcomes = {
                    let commits: Vec<Commit<'_>> = batch
                        .pending
                        .iter()
                        .map(|p| p.commit(remember_until))
                        .collect();
                    inner.store.commit_many(&commits).await?
                };
                for (pending, outcome) in
                    std::mem::take(&mut batch.pending).into_iter().zip(outcomes)
                {
                    let settled = self.conclude(pending, outcome, handler).await?;
                    batch.settled.push(settled);
                }
            }
        }
        Ok(())
    }

    /// The final decision for a pending one, from its commit's outcome.
    async fn conclude<F, Fut, E>(
        &self,
        pending: Pending,
        outcome: CommitOutcome,
        handler: &mut F,
    ) -> Result<Settled, StoreError>
    where
        F: FnMut(Event) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: Display,
    {
        let index = pending.index;
        let (decision, error, key) = match outcome {
            CommitOutcome::Committed => (pending.decision, None, pending.key),
            // The lease ran out and another attempt took the event over:
            // that attempt decides and records it.
            CommitOutcome::LeaseLost => (Decision::Duplicate, None, pending.key),
            CommitOutcome::StateChanged => self.decide_again(pending, handler).await?,
        };
        Ok(Settled {
            index,
            event_id: key.event_id,
            decision,
            error,
        })
    }

    /// Decides a pending event again on its entity's current state, after
    /// its commit found that the state moved, and commits it alone; the
    /// handler runs only if it has not run yet. Loops until the commit holds.
    async fn decide_again<F, Fut, E>(
        &self,
        mut pending: Pending,
        handler: &mut F,
    ) -> Result<(Decision, Option<String>, DedupKey), StoreError>
    where
        F: FnMut(Event) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: Display,
    {
        let inner = &*self.inner;
        let mut event = pending.event.take().map(|event| *event);
        loop {
            if let Some(k) = &pending.state_key {
                pending.loaded = inner.store.load(k).await?;
            }
            if let Some(message) = self
                .decide_pending(&mut pending, &mut event, handler)
                .await?
            {
                return Ok((Decision::Failed, Some(message), pending.key));
            }
            let commit = pending.commit(inner.clock.now() + inner.dedup_window);
            match inner.store.commit(commit).await? {
                CommitOutcome::Committed => return Ok((pending.decision, None, pending.key)),
                CommitOutcome::LeaseLost => return Ok((Decision::Duplicate, None, pending.key)),
                CommitOutcome::StateChanged => {}
            }
        }
    }

    /// Claims `key` and loads `state` with it, waiting a bounded time for an
    /// attempt in flight elsewhere. `None`: still in flight after the wait.
    /// An event in flight may be this delivery's own (the same `eventId`
    /// twice): the batch is committed first, so that it is not waited for.
    async fn claim<F, Fut, E>(
        &self,
        key: &DedupKey,
        state: Option<&StateKey>,
        batch: &mut Batch,
        handler: &mut F,
    ) -> Result<Option<Claimed>, StoreError>
    where
        F: FnMut(Event) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: Display,
    {
        let inner = &*self.inner;
        let mut deadline = None;
        loop {
            let (claim, loaded) = inner
                .store
                .claim_and_load(key, state, inner.lease, inner.clock.now())
                .await?;
            match claim {
                Claim::Claimed(token) => return Ok(Some(Claimed::Token(token, loaded))),
                Claim::AlreadyDecided => return Ok(Some(Claimed::Duplicate)),
                Claim::InFlight if !batch.pending.is_empty() => {
                    self.flush(batch, handler).await?;
                }
                Claim::InFlight => {
                    let now = tokio::time::Instant::now();
                    if now >= *deadline.get_or_insert(now + inner.in_flight_wait) {
                        return Ok(None);
                    }
                    tokio::time::sleep(POLL).await;
                }
            }
        }
    }
}

/// Runs the handler on one event; the failure message if it fails or panics.
async fn run<F, Fut, E>(handler: &mut F, event: Event) -> Option<String>
where
    F: FnMut(Event) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    let future = std::pin::pin!(handler(event));
    match CatchUnwind::new(future).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(()) => Some("the handler panicked".to_owned()),
    }
}

/// What one event's first pass came to.
enum Step {
    /// Decided: nothing more to commit (with the event's id, when known).
    Final(Decision, Option<String>, Option<EventId>),
    /// Decided, to be committed with the batch.
    Pending(Decision),
}

/// A decision made and not committed yet.
struct Pending {
    index: usize,
    key: DedupKey,
    token: ClaimToken,
    state_key: Option<StateKey>,
    /// The state the decision was made on.
    loaded: Versioned,
    /// The state it leads to.
    next: EntityState,
    /// Processed or ignored.
    decision: Decision,
    family: crate::EventFamily,
    at: i64,
    /// The event, while the handler has not had it (ignored events, which
    /// are decided again if their commit finds the state moved). Boxed, to
    /// keep `Pending` small as it moves through the batch.
    event: Option<Box<Event>>,
}

impl Pending {
    fn commit(&self, remember_until: time::OffsetDateTime) -> Commit<'_> {
        Commit {
            key: &self.key,
            token: self.token,
            // Ignored events commit their unchanged state too, so that the
            // version check catches a state that moved under the decision.
            update: self.state_key.as_ref().map(|k| StateUpdate {
                key: k,
                expected_version: self.loaded.version,
                state: &self.next,
            }),
            remember_until,
        }
    }
}

/// A pending decision made final by its commit.
struct Settled {
    index: usize,
    event_id: EventId,
    decision: Decision,
    error: Option<String>,
}

/// A delivery's decisions awaiting their commit.
#[derive(Default)]
struct Batch {
    pending: Vec<Pending>,
    /// Decisions made final by the last flush.
    settled: Vec<Settled>,
    /// How many outcomes, from the first, are counted and traced.
    reported: usize,
}

impl Batch {
    /// Whether a pending decision is about the entity `key`.
    fn touches(&self, key: &StateKey) -> bool {
        self.pending
            .iter()
            .any(|p| p.state_key.as_ref() == Some(key))
    }
}

enum Claimed {
    /// The claim, and the state as it was read with it.
    Token(ClaimToken, Versioned),
    Duplicate,
}
