//! The engine itself: its handle, `process`, and what it shares between clones.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::*;
/// The engine. Cheap to clone (shared state); one per application.
///
/// ```
/// use alm_webhooks::{Decision, Envelope, Engine};
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
    pub(super) inner: Arc<Inner<S>>,
}

pub(crate) struct Inner<S> {
    pub(super) store: S,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) dedup_window: Duration,
    pub(super) state_retention: Duration,
    pub(super) lease: Duration,
    pub(super) in_flight_wait: Duration,
    pub(super) commit_batch: usize,
    pub(super) future_skew: Duration,
    /// `future_skew` in milliseconds.
    pub(super) future_skew_ms: i64,
    /// Families given to unknown names.
    pub(super) families: HashMap<Box<str>, EventFamily>,
    pub(super) counters: Counters,
    /// Delivery buffers kept between deliveries.
    pub(super) pool: super::pool::Pool,
    /// Told after each commit the store's hooks saw (an outbox's relay
    /// waits on it: [`OutboxStore::written`](crate::store::OutboxStore::written)).
    pub(crate) written: tokio::sync::Notify,
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

impl<S: Store> Engine<S> {
    /// Starts configuring an engine on `store`.
    pub fn builder(store: S) -> EngineBuilder<S> {
        EngineBuilder {
            store,
            clock: Arc::new(SystemClock),
            dedup_window: DEFAULT_DEDUP_WINDOW,
            state_retention: DEFAULT_STATE_RETENTION,
            lease: DEFAULT_CLAIM_LEASE,
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

    /// Told after each commit the store's hooks saw.
    pub(crate) fn written_signal(&self) -> &tokio::sync::Notify {
        &self.inner.written
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
        self.inner.store.sweep(self.inner.clock.system_now()).await
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
    /// process, in order. See the [engine module](crate::engine).
    ///
    /// The handler gets each event to process by value (`|event| async move
    /// { … }`), so its future can own it and be `Send`, and returns
    /// `Result<(), BoxError>`: `?` converts any error, and the error is kept
    /// (with its `source()` chain) in the event's
    /// [`EventOutcome::error`] with [`Decision::Failed`]. A panic in the
    /// handler is caught and is a failure too.
    ///
    /// ```
    /// use alm_webhooks::{BoxError, Envelope, Event, EventData, Decision, Engine};
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
    /// use alm_webhooks::{Decision, Envelope, Engine, store::ClaimOwner};
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
        handler: F,
    ) -> Result<DeliveryReport, StoreError>
    where
        F: FnMut(Event) -> Fut,
        Fut: Future<Output = Result<(), BoxError>>,
    {
        let within = super::batch::RECOMMIT_WITHIN;
        self.process_within(owner, envelope, within, handler).await
    }

    /// [`Engine::process_as`] for a delivery no sender waits on (an inbox's
    /// worker): after a transient store error, the decisions whose handlers
    /// ran are committed again for up to `recommit_within` (the delivery's
    /// lease) instead of one second, so that a store back within it (a
    /// Redis reloading its append-only file) runs no handler twice.
    pub(crate) async fn process_within<F, Fut>(
        &self,
        owner: ClaimOwner,
        envelope: Envelope,
        recommit_within: std::time::Duration,
        mut handler: F,
    ) -> Result<DeliveryReport, StoreError>
    where
        F: FnMut(Event) -> Fut,
        Fut: Future<Output = Result<(), BoxError>>,
    {
        let (account_id, count) = (envelope.account_id, envelope.events.len());
        let events = envelope.events;
        let delivery =
            self.process_chunks(events, account_id, owner, recommit_within, &mut handler);
        spans::in_delivery(account_id, count, delivery).await
    }

    /// The facts the rules need of `event`, decided at `now_ms` (Unix
    /// milliseconds, read once per chunk).
    ///
    /// # Errors
    ///
    /// The field and message, when an event put in a family by
    /// [`EngineBuilder::event_family`] lacks what the family needs.
    pub(super) fn facts(
        &self,
        account_id: AccountId,
        event: &Event,
        now_ms: i64,
    ) -> Result<Facts, (String, String)> {
        let family = self.family_of(&event.event_name);
        if family == EventFamily::Unknown {
            return Ok(Facts {
                state_key: None,
                family,
                at: 0,
                future: false,
                lag_ms: None,
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
        let future = at > now_ms.saturating_add(self.inner.future_skew_ms);
        Ok(Facts {
            state_key,
            family,
            at: if future { now_ms } else { at },
            future,
            lag_ms: Some(now_ms - at),
        })
    }
}
