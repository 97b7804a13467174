//! The dedup and ordering engine: decides, for each event of an accepted
//! delivery, whether your handler should process it, and records the
//! outcome.
//!
//! For each event, in delivery order:
//!
//! 1. An event that did not parse is [`Decision::Rejected`], with its
//!    [`EventError`] in the outcome (it has no
//!    trustworthy key, so nothing is recorded).
//! 2. An event whose entity already has an event in this delivery that
//!    failed, is busy or was deferred is [`Decision::Deferred`]: a later
//!    event of a record is never processed before an earlier one. Nothing
//!    is recorded; the redelivery decides both, in order.
//! 3. The event is claimed in the store under its [dedup
//!    key](crate::store::DedupKey::for_event) (`accountId`, `eventId`, and
//!    the name for unknown events). If it was already decided (processed or
//!    ignored) within the dedup window, it is a [`Decision::Duplicate`]. If
//!    another attempt holds it, the engine waits for that attempt to
//!    finish, then reports a duplicate, or [`Decision::Busy`] if it is still
//!    running. The wait is one budget per delivery
//!    ([`EngineBuilder::wait_for_in_flight`]): once it is spent, every
//!    further event held elsewhere is busy at once.
//! 4. The entity's state is read with the claim and [`rules::decide_facts`]
//!    says processed or ignored (a time more than
//!    [`EngineBuilder::future_skew`] ahead counts as now). An ignored event
//!    is recorded as decided, so a redelivery of it is a duplicate; its
//!    entity's state is left as it was.
//! 5. For a processed event the handler runs. Only if it succeeds is the
//!    event recorded and the state advanced, in one atomic commit. If it
//!    fails or panics (in its future or in the closure that makes it), the
//!    claim is released and nothing is recorded ([`Decision::Failed`]); the
//!    delivery is answered with a `5xx` and ALM's redelivery processes the
//!    event. If the process dies mid-handler, the claim's lease expires and
//!    the redelivery processes it.
//!
//! Decided events are remembered for the dedup window (8 days); entity
//! states for [`EngineBuilder::state_retention`] (400 days) after their last
//! change.
//!
//! By default each decision is committed before the next event is decided.
//! [`EngineBuilder::commit_batch`] commits a delivery's decisions in groups
//! instead ([`Store::commit_many`]: one transaction on PostgreSQL), with the
//! same decisions: an event whose entity has a decision pending in the group,
//! or whose `eventId` is in flight, commits the group first. A store error
//! commits the group before it leaves [`Engine::process`].
//!
//! Every commit of a processed event checks the entity state's version. If
//! the state moved while the event was being decided (another delivery for
//! the same record committed in between, which ALM's per-account ordering
//! makes rare), the event is decided again on the new state; if its handler
//! already ran, the handler does not run again and its effect is folded
//! into the new state with [`rules::apply`]. If a handler outlived its
//! lease and its claim is gone, the event is claimed again: already decided
//! elsewhere, it is a duplicate; claimed, the handler's outcome is
//! committed; in flight elsewhere, it is busy.

mod batch;
mod builder;
mod catch;
mod clock;
mod counters;
mod decision;
mod flow;
mod keys;
mod report;
pub mod rules;

use std::collections::HashMap;
use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use builder::EngineBuilder;
pub use clock::{Clock, ManualClock, SystemClock};
pub use counters::CounterSnapshot;
pub use decision::{Decision, IgnoreReason};
pub use report::{DeliveryReport, EventOutcome};
pub use rules::{EntityState, Lifecycle, StateKey};

use crate::store::{DedupKey, MemoryStore, Store, StoreError};
use crate::{AccountId, Envelope, Event, EventError, EventFamily, EventId, EventName};
use batch::{Batch, Final, Step};
use counters::Counters;

/// Remembered this long by default: 8 days (ALM retries for 7).
pub const DEFAULT_DEDUP_WINDOW: Duration = Duration::from_secs(8 * 24 * 3600);
/// Entity states are kept this long after their last change by default:
/// 400 days (a year, and more).
pub const DEFAULT_STATE_RETENTION: Duration = Duration::from_secs(400 * 24 * 3600);
/// A claim's default lease: 60 s.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);
/// The default wait, per delivery, for events in flight elsewhere: 2 s, well
/// inside ALM's 5 s read timeout.
pub const DEFAULT_IN_FLIGHT_WAIT: Duration = Duration::from_secs(2);
/// How far ahead of the clock a `timestamp` may be by default: 1 day.
pub const DEFAULT_FUTURE_SKEW: Duration = Duration::from_secs(24 * 3600);

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
    state_retention: Duration,
    lease: Duration,
    in_flight_wait: Duration,
    commit_batch: usize,
    future_skew: Duration,
    /// `future_skew` in milliseconds.
    future_skew_ms: i64,
    /// Families given to unknown names.
    families: HashMap<Box<str>, EventFamily>,
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
            .field("state_retention", &self.inner.state_retention)
            .field("lease", &self.inner.lease)
            .field("in_flight_wait", &self.inner.in_flight_wait)
            .field("commit_batch", &self.inner.commit_batch)
            .field("future_skew", &self.inner.future_skew)
            .field("families", &self.inner.families)
            .finish_non_exhaustive()
    }
}

impl Engine<MemoryStore> {
    /// An engine on a fresh [`MemoryStore`] with the defaults.
    pub fn in_memory() -> Self {
        Self::builder(MemoryStore::new()).build()
    }
}

/// What the rules need of one event: its entity, family and time.
pub(crate) struct Facts {
    pub(crate) state_key: Option<StateKey>,
    pub(crate) family: EventFamily,
    /// Milliseconds since the epoch, at most now + the skew.
    pub(crate) at: i64,
    /// Whether the event's own time was too far ahead (`at` is now).
    pub(crate) future: bool,
}

impl<S: Store> Engine<S> {
    /// Starts configuring an engine on `store`.
    pub fn builder(store: S) -> EngineBuilder<S> {
        EngineBuilder {
            store,
            clock: Arc::new(SystemClock),
            dedup_window: DEFAULT_DEDUP_WINDOW,
            state_retention: DEFAULT_STATE_RETENTION,
            lease: DEFAULT_LEASE,
            in_flight_wait: DEFAULT_IN_FLIGHT_WAIT,
            commit_batch: 1,
            future_skew: DEFAULT_FUTURE_SKEW,
            families: HashMap::new(),
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

    /// The family the engine gives an event: its name's, or the one
    /// configured for an unknown name.
    pub fn family_of(&self, name: &EventName) -> EventFamily {
        match name {
            EventName::Unknown(text) => self
                .inner
                .families
                .get(text)
                .copied()
                .unwrap_or(EventFamily::Unknown),
            known => known.family(),
        }
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
    /// A [`StoreError`] when the store fails; answer `503`. The decisions
    /// whose handlers already ran are committed first (when the store lets
    /// them be), so ALM's redelivery reports them as duplicates and runs
    /// again only the event that met the error.
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
                Err(error) => {
                    let (event_name, event_id) = (error.event_name.clone(), error.event_id.clone());
                    let rejected = Final {
                        event_error: Some(error),
                        ..Final::new(Decision::Rejected, event_id)
                    };
                    (event_name, Step::Final(rejected))
                }
                Ok(event) => {
                    let event_name = event.event_name.clone();
                    let step = match self
                        .decide_one(index, account_id, event, &mut handler, &mut batch)
                        .await
                    {
                        Ok(step) => step,
                        Err(error) => return Err(self.fail(&mut batch, &mut handler, error).await),
                    };
                    (Some(event_name), step)
                }
            };
            let outcome = match step {
                Step::Final(done) => EventOutcome {
                    index,
                    event_id: done.event_id,
                    event_name,
                    decision: done.decision,
                    error: done.error,
                    event_error: done.event_error,
                },
                // Provisional until its commit; settled (with its id) below.
                Step::Pending(decision) => EventOutcome {
                    index,
                    event_id: None,
                    event_name,
                    decision,
                    error: None,
                    event_error: None,
                },
            };
            report.outcomes.push(outcome);
            if batch.pending.len() >= self.inner.commit_batch {
                if let Err(error) = self.flush(&mut batch, &mut handler).await {
                    return Err(self.fail(&mut batch, &mut handler, error).await);
                }
            }
            self.settle(&mut batch, &mut report, account_id);
        }
        if let Err(error) = self.flush(&mut batch, &mut handler).await {
            return Err(self.fail(&mut batch, &mut handler, error).await);
        }
        self.settle(&mut batch, &mut report, account_id);
        Ok(report)
    }

    /// Before a store error leaves [`Engine::process`]: commits the
    /// decisions whose handlers ran (a failed batch commit is tried once
    /// more), so that the redelivery runs again only the event that met the
    /// error. Returns the error.
    async fn fail<F, Fut, E>(
        &self,
        batch: &mut Batch,
        handler: &mut F,
        error: StoreError,
    ) -> StoreError
    where
        F: FnMut(Event) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: Display,
    {
        if let Err(_again) = self.flush(batch, handler).await {
            #[cfg(feature = "tracing")]
            tracing::warn!(
                error = %_again,
                pending = batch.pending.len(),
                "decisions not committed before a store error: ALM's redelivery runs their handlers again"
            );
        }
        error
    }

    /// The facts the rules need of `event`, decided at `now`.
    ///
    /// # Errors
    ///
    /// The field and message, when an event put in a family by
    /// [`EngineBuilder::event_family`] lacks what the family needs.
    fn facts(
        &self,
        account_id: AccountId,
        event: &Event,
        now: time::OffsetDateTime,
    ) -> Result<Facts, (String, String)> {
        let family = self.family_of(&event.event_name);
        if family == EventFamily::Unknown {
            return Ok(Facts {
                state_key: None,
                family,
                at: 0,
                future: false,
            });
        }
        let state_key = if event.data.is_unknown() {
            StateKey::for_raw(account_id, family, event)?
        } else {
            StateKey::for_event(account_id, event)
        };
        let Some(timestamp) = &event.timestamp else {
            let message = format!(
                "missing field `timestamp` (the engine is configured to treat `{}` as {family:?})",
                event.event_name
            );
            return Err(("timestamp".to_owned(), message));
        };
        let at = timestamp.unix_millis();
        let now_ms = now.unix_timestamp() * 1000 + i64::from(now.millisecond());
        #[cfg(feature = "metrics")]
        #[allow(clippy::cast_precision_loss)] // lags far below 2^52 ms
        crate::metrics::record_event_lag(family, (now_ms - at) as f64 / 1000.0);
        let future = at > now_ms.saturating_add(self.inner.future_skew_ms);
        Ok(Facts {
            state_key,
            family,
            at: if future { now_ms } else { at },
            future,
        })
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
            #[cfg(feature = "metrics")]
            crate::metrics::record_event(outcome.decision, outcome.event_name.as_ref());
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

    /// The dedup key of `event`, and its id as sent when the key differs.
    fn dedup_key(account_id: AccountId, event: &Event) -> (DedupKey, Option<EventId>) {
        let key = DedupKey::for_event(account_id, event);
        let sent = key.is_named().then(|| event.event_id.clone());
        (key, sent)
    }

    /// A rejected event's outcome for an event that parsed but lacks what
    /// its configured family needs.
    fn rejected(index: usize, event: &Event, (field, message): (String, String)) -> Step {
        let error = EventError::after_parsing(index, event, &field, message);
        Step::Final(Final {
            event_error: Some(Box::new(error)),
            ..Final::new(Decision::Rejected, Some(event.event_id.clone()))
        })
    }
}
