//! The dedup and ordering engine: decides, for each event of an accepted
//! delivery, whether your handler should process it, and records the
//! outcome.
//!
//! For each event, in delivery order:
//!
//! 1. An event that did not parse is [`Decision::Malformed`], with its
//!    [`EventError`](crate::EventError) in the outcome (it has no
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
//!    finish, then reports a duplicate, or [`Decision::InFlight`] if it is still
//!    running. The wait is one budget per delivery
//!    ([`EngineBuilder::in_flight_wait`]): once it is spent, every
//!    further event held elsewhere is busy at once.
//! 4. The entity's state is read with the claim and [`rules::decide_facts`](crate::rules::decide_facts)
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
//! **Store round trips.** A delivery is decided as one chunk
//! ([`EngineBuilder::commit_batch`] sets smaller chunks): the chunk's
//! events are claimed, with their states, in one [`Store::claim_many`],
//! decided in order in memory (handlers included), and committed in one
//! [`Store::commit_many`]. A delivery then costs two store calls whatever
//! its size, duplicates included (a shared store sends a call's slices of
//! [`MANY_CHUNK`](crate::store::MANY_CHUNK) events in one round trip or a
//! few: see `BENCHMARKS.md`). Decisions are the ones made claiming and
//! committing one event at a time (`commit_batch(1)`):
//!
//! - a later event of an entity decided earlier in the chunk is decided on
//!   the state that decision leads to (its commit expects the version one
//!   up, as [`Store::commit_many`] documents). If another delivery
//!   commits to the same record between this chunk's claims and its
//!   commit, the chain's first commit is refused, and so is the rest of
//!   the chain (the store writes a later link only after one the call
//!   wrote): each is decided again on the state found, so nothing is
//!   written over the other delivery's change;
//! - an event held elsewhere (or this delivery's own repeat of an
//!   `eventId`) is claimed again alone, after the chunk's decisions so far
//!   are committed, within the delivery's wait budget: only those cost more
//!   round trips;
//! - a claim taken for an event then deferred (step 2) is released at once.
//!
//! **Crash semantics.** The handlers of a chunk run before the chunk is
//! committed: if the process dies in between, their claims expire with the
//! lease and ALM's redelivery processes those events again (at-least-once,
//! as after a crash between one handler and its commit, for up to a chunk
//! of events). A delivery processed again with [`Engine::process_as`] and
//! the same holder (from an inbox) does not wait for that lease: it takes
//! its own leftover claims over at once. A transient store error commits the decisions whose
//! handlers ran before it leaves [`Engine::process`], and releases the
//! chunk's other claims, so that the redelivery runs again only the event
//! that met the error. A permanent one ([`StoreError::is_transient`] is
//! `false`) about one event is that event's [`Decision::Failed`], with the
//! store's message: a set-based call that meets one is made again event
//! by event, so that only the event it is about fails.
//!
//! **Lease, chunk and slowest handler.** A chunk's claims are taken
//! together, so they are held while all of the chunk's handlers run. Every
//! third of the [lease](EngineBuilder::lease) the claims still held are
//! renewed ([`Store::renew_many`]), before a handler and while a slow one
//! runs, so no claim expires under a handler, however long one handler or
//! a whole chunk takes. What the lease bounds is a crash: the events of a
//! dead process are redelivered once its lease has run out. Choose a lease
//! a few times a store round trip at the least (renewals must land within a
//! third of it), and short enough that a crashed replica's events are not
//! held for long; the default, 60 s, suits handlers of any length. A claim
//! lost anyway (a store restart) shows at its commit, and is claimed again
//! as below.
//!
//! Every commit of a processed event checks the entity state's version. If
//! the state moved while the event was being decided (another delivery for
//! the same record committed in between, which ALM's per-account ordering
//! makes rare), the event is decided again on the new state; if its handler
//! already ran, the handler does not run again and its effect is folded
//! into the new state with [`rules::apply`](crate::rules::apply). If a handler outlived its
//! lease and its claim is gone, the event is claimed again (as a stranger:
//! never taken back from a later attempt of the same delivery): already decided
//! elsewhere, it is a duplicate; claimed, the handler's outcome is
//! committed; in flight elsewhere, it is busy.

mod batch;
mod builder;
mod catch;
mod clock;
mod commit;
mod counters;
mod delivery;
mod failure;
mod flow;
mod holding;
mod pool;
mod renew;
mod report;
mod spans;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use builder::EngineBuilder;
pub(crate) use catch::CatchUnwind;
pub use clock::{Clock, ManualClock, SystemClock};
pub use counters::CounterSnapshot;
pub use failure::EventFailure;
pub(crate) use failure::chain as error_chain;
pub use report::{DeliveryReport, EventOutcome};

#[cfg(doc)]
use crate::rules::Decision;
use crate::rules::StateKey;
use crate::store::{ClaimOwner, MemoryStore, Store, StoreError};
use crate::{AccountId, BoxError, Envelope, Event, EventFamily, EventName};
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
/// use alm_webhooks::{Decision, Envelope, engine::Engine};
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
///     Ok(())
/// }).await.unwrap();
/// assert_eq!(report.outcomes[0].decision, Decision::Processed);
/// assert_eq!(report.status(), http::StatusCode::ACCEPTED);
///
/// // ALM delivers at least once: the same delivery again is a duplicate.
/// let again = engine.process(envelope, |_| async { Ok(()) }).await.unwrap();
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
    /// Delivery buffers kept between deliveries.
    pool: pool::Pool,
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
            commit_batch: usize::MAX,
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
        self.inner.store.sweep(self.inner.clock.now().into()).await
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
    /// { … }`), so its future can own it and be `Send`, and returns
    /// `Result<(), BoxError>`: `?` converts any error, and the error is kept
    /// (with its `source()` chain) in the event's
    /// [`EventOutcome::error`] with [`Decision::Failed`]. A panic in the
    /// handler is caught and is a failure too.
    ///
    /// ```
    /// use alm_webhooks::{BoxError, Envelope, Event, EventData, Decision, engine::Engine};
    ///
    /// async fn handle(event: Event) -> Result<(), BoxError> {
    ///     match &event.data {
    ///         EventData::Completion(c) => {
    ///             let score: u32 = "90".parse()?; // any error converts with `?`
    ///             println!("account {}: {} completed {} ({score})",
    ///                 event.account_id, c.user_id, c.lo_id);
    ///         }
    ///         _ => {}
    ///     }
    ///     Ok(())
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let body = br#"{"accountId":1,"events":[{"eventId":"c1","eventName":"COURSE_COMPLETED",
    ///   "timestamp":1725519188,"data":{"userId":7,"loId":"course:1","loInstanceId":"course:1_2"}}]}"#;
    /// let engine = Engine::in_memory();
    /// let report = engine.process(Envelope::from_slice(body).unwrap(), handle).await.unwrap();
    /// assert_eq!(report.outcomes[0].decision, Decision::Processed);
    ///
    /// // A closure needs no type annotations either.
    /// let body = br#"{"accountId":1,"events":[{"eventId":"c2","eventName":"COURSE_COMPLETED",
    ///   "timestamp":1725519189,"data":{"userId":8,"loId":"course:1","loInstanceId":"course:1_2"}}]}"#;
    /// let report = engine
    ///     .process(Envelope::from_slice(body).unwrap(), |event| async move {
    ///         if event.user_id().is_some() {
    ///             return Err("CRM down".into());
    ///         }
    ///         Ok(())
    ///     })
    ///     .await
    ///     .unwrap();
    /// assert_eq!(report.outcomes[0].error_message(), Some("CRM down"));
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// A transient [`StoreError`] when the store fails; answer `503`. The
    /// decisions whose handlers already ran are committed first (when the
    /// store lets them be), so ALM's redelivery reports them as duplicates
    /// and runs again only the event that met the error. A permanent store
    /// error about one event is not an error here: it is that event's
    /// [`Decision::Failed`].
    pub async fn process<F, Fut>(
        &self,
        envelope: Envelope,
        handler: F,
    ) -> Result<DeliveryReport, StoreError>
    where
        F: FnMut(Event) -> Fut,
        Fut: Future<Output = Result<(), BoxError>>,
    {
        self.process_as(ClaimOwner::random(), envelope, handler)
            .await
    }

    /// [`Engine::process`], with the delivery's claims held by `owner`: a
    /// delivery taken again (from an inbox, after a failed commit, a crash
    /// or a shutdown) passes the same [`holder`](ClaimOwner::holder) on
    /// every attempt and a fresh [`lease`](ClaimOwner::lease) on each, so
    /// that an attempt takes the claims an earlier one left behind over at
    /// once (instead of finding its own events in flight) and the earlier
    /// attempt can no longer commit. The inbox's workers pass
    /// [`ClaimOwner::for_delivery`] (a stable hash of the delivery's id as
    /// holder, the take's lease token as lease).
    ///
    /// ```
    /// use alm_webhooks::{Decision, Envelope, engine::Engine, store::ClaimOwner};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let engine = Engine::in_memory();
    /// let body = br#"{"accountId":1,"events":[{"eventId":"e1","eventName":"LEARNING_OBJECT_DRAFT",
    ///   "timestamp":1725519188,"data":{"loId":"course:1","loType":"course"}}]}"#;
    /// let delivery = 42; // the queue's id of this delivery
    /// let owner = ClaimOwner::for_delivery(delivery, ClaimOwner::random().lease);
    /// let envelope = Envelope::from_slice(body).unwrap();
    /// let report = engine.process_as(owner, envelope, |_| async { Ok(()) }).await.unwrap();
    /// assert_eq!(report.outcomes[0].decision, Decision::Processed);
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Engine::process`].
    pub async fn process_as<F, Fut>(
        &self,
        owner: ClaimOwner,
        envelope: Envelope,
        mut handler: F,
    ) -> Result<DeliveryReport, StoreError>
    where
        F: FnMut(Event) -> Fut,
        Fut: Future<Output = Result<(), BoxError>>,
    {
        let (account_id, count) = (envelope.account_id, envelope.events.len());
        let delivery = self.process_chunks(envelope.events, account_id, owner, &mut handler);
        spans::in_delivery(account_id, count, delivery).await
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
}
