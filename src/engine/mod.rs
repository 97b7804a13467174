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
    Claim, ClaimToken, Commit, CommitOutcome, DedupKey, MemoryStore, StateUpdate, Store, StoreError,
};
use crate::{Envelope, Event, EventId, EventName};
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
    /// A [`StoreError`] when the store fails; answer `503` (events decided
    /// before the failure stay decided, so ALM's redelivery reports them as
    /// duplicates).
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
        for (index, item) in envelope.events.into_iter().enumerate() {
            let outcome = match item {
                Err(error) => EventOutcome {
                    index,
                    event_id: error.event_id.clone(),
                    event_name: error.event_name.clone(),
                    decision: Decision::Rejected,
                    error: None,
                },
                Ok(event) => {
                    let event_name = event.event_name.clone();
                    let key = DedupKey {
                        account_id,
                        event_id: event.event_id.clone(),
                    };
                    let (decision, error) = self.decide_one(&key, event, &mut handler).await?;
                    EventOutcome {
                        index,
                        event_id: Some(key.event_id),
                        event_name: Some(event_name),
                        decision,
                        error,
                    }
                }
            };
            self.inner.counters.record(outcome.decision);
            #[cfg(feature = "tracing")]
            tracing::debug!(
                account_id = account_id.get(),
                index,
                event_id = outcome.event_id.as_ref().map(EventId::as_str),
                event_name = outcome.event_name.as_ref().map(EventName::as_str),
                decision = %outcome.decision,
                "event decided"
            );
            report.outcomes.push(outcome);
        }
        Ok(report)
    }

    async fn decide_one<F, Fut, E>(
        &self,
        key: &DedupKey,
        event: Event,
        handler: &mut F,
    ) -> Result<(Decision, Option<String>), StoreError>
    where
        F: FnMut(Event) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: Display,
    {
        let inner = &*self.inner;
        let state_key = StateKey::for_event(key.account_id, &event);
        let Some(claimed) = self.claim(key, state_key.as_ref()).await? else {
            return Ok((Decision::Busy, None));
        };
        let (token, mut loaded) = match claimed {
            Claimed::Token(token, loaded) => (token, loaded),
            Claimed::Duplicate => return Ok((Decision::Duplicate, None)),
        };
        let (family, at) = (event.family(), event.timestamp.unix_millis());
        // The event goes to the handler; afterwards only its facts are needed.
        let mut pending = Some(event);
        loop {
            let (decision, next) = match &pending {
                Some(event) => rules::decide(&loaded.state, event),
                None => (
                    Decision::Processed,
                    rules::apply_facts(&loaded.state, family, at),
                ),
            };
            if decision == Decision::Processed {
                if let Some(event) = pending.take() {
                    let future = std::pin::pin!(handler(event));
                    let failure = match CatchUnwind::new(future).await {
                        Ok(Ok(())) => None,
                        Ok(Err(e)) => Some(e.to_string()),
                        Err(()) => Some("the handler panicked".to_owned()),
                    };
                    if let Some(message) = failure {
                        inner.store.release(key, token).await?;
                        return Ok((Decision::Failed, Some(message)));
                    }
                }
            }
            // Ignored events commit their unchanged state too, so that the
            // version check catches a state that moved under the decision.
            let update = state_key.as_ref().map(|k| StateUpdate {
                key: k,
                expected_version: loaded.version,
                state: &next,
            });
            let commit = Commit {
                key,
                token,
                update,
                remember_until: inner.clock.now() + inner.dedup_window,
            };
            match inner.store.commit(commit).await? {
                CommitOutcome::Committed => return Ok((decision, None)),
                // The lease ran out and another attempt took the event over:
                // that attempt decides and records it.
                CommitOutcome::LeaseLost => return Ok((Decision::Duplicate, None)),
                // Decide again on the new state (the handler does not run twice).
                CommitOutcome::StateChanged => {
                    if let Some(k) = &state_key {
                        loaded = inner.store.load(k).await?;
                    }
                }
            }
        }
    }

    /// Claims `key` and loads `state` with it, waiting a bounded time for an
    /// attempt in flight elsewhere. `None`: still in flight after the wait.
    async fn claim(
        &self,
        key: &DedupKey,
        state: Option<&StateKey>,
    ) -> Result<Option<Claimed>, StoreError> {
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

enum Claimed {
    /// The claim, and the state as it was read with it.
    Token(ClaimToken, crate::store::Versioned),
    Duplicate,
}
