//! How one event goes through the store: claim, decide, run the handler,
//! commit (alone or with its batch), and what a commit's answer leads to.

use std::future::Future;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::batch::{Batch, Final, Item, Pending, Prepared, Step};
use super::counters::counted;
use super::failure::EventFailure;
use super::renew::Held;
use super::tally::Tally;
use super::{Engine, Facts};
use crate::rules::{self, Decision, EntityState, StateKey};
use crate::store::{Claim, ClaimOwner, DedupKey, Store, StoreError, Versioned};
use crate::{AccountId, BoxError, Event};

/// How often an in-flight event is looked at again while waiting.
const POLL: Duration = Duration::from_millis(25);

/// The outcome of claiming an event.
enum Claimed {
    /// The claim, and the state as it was read with it.
    Token(ClaimOwner, Versioned),
    Duplicate,
    /// Still in flight elsewhere once the delivery's wait is spent.
    Busy,
}

/// The claims a delivery holds besides the one of the event being decided,
/// when they were taken or last renewed, and the delivery's metrics.
pub(super) struct Others<'a, 'r> {
    pub(super) pending: &'a [Pending],
    pub(super) rest: &'a [Option<Item>],
    pub(super) renewed: &'r mut Instant,
    pub(super) tally: &'r mut Tally,
}

impl<S: Store> Engine<S> {
    /// Decides one event of a chunk on the answer its claim got with the
    /// chunk (or claims it alone: not claimed with the chunk, or in flight)
    /// and, if processed, hands it to the handler. The decision is then
    /// committed with the chunk, or final at once. `rest` is the chunk's
    /// events not decided yet, whose claims the engine keeps while the
    /// handler runs.
    pub(super) async fn decide_one<F, Fut>(
        &self,
        prepared: Prepared,
        handler: &mut F,
        batch: &mut Batch,
        rest: &[Option<Item>],
    ) -> Result<Step, StoreError>
    where
        F: FnMut(Event) -> Fut,
        Fut: Future<Output = Result<(), BoxError>>,
    {
        let Prepared {
            index,
            account_id,
            event,
            facts,
            key,
            sent_id,
            answer,
        } = prepared;
        let event_id = || sent_id.clone().unwrap_or_else(|| key.event_id.clone());
        if facts
            .state_key
            .as_ref()
            .is_some_and(|k| batch.held_back.contains(k))
        {
            if let Some((Claim::Claimed(token), _)) = answer {
                self.release(&key, token).await?;
            }
            return Ok(Step::Final(Final::new(
                Decision::Deferred,
                Some(event_id()),
            )));
        }
        let claimed = match answer {
            Some((Claim::Claimed(token), loaded)) => {
                // A later event of an entity this chunk decided already is
                // decided on the state those decisions lead to.
                let known = facts.state_key.as_ref().and_then(|k| batch.states.get(k));
                Claimed::Token(token, known.cloned().unwrap_or(loaded))
            }
            Some((Claim::AlreadyDecided, _)) => Claimed::Duplicate,
            // Not claimed with the chunk, or in flight: this delivery's own
            // repeat or another attempt's. Claimed alone, on the committed
            // state.
            // Boxed: the largest futures of a decision, kept out of the one
            // every event's decision makes and moves.
            Some((Claim::InFlight, _)) | None => {
                let state = facts.state_key.as_ref();
                match Box::pin(self.claim_alone(&key, state, batch, handler, rest)).await? {
                    Ok(claimed) => claimed,
                    Err(error) if !error.is_transient() => {
                        batch.note(state, Decision::Failed);
                        return Ok(Step::Final(Final {
                            error: Some(EventFailure::from_error(std::sync::Arc::new(error))),
                            ..Final::new(Decision::Failed, Some(event_id()))
                        }));
                    }
                    Err(error) => return Err(error),
                }
            }
        };
        let (token, loaded) = match claimed {
            Claimed::Token(token, loaded) => (token, loaded),
            Claimed::Duplicate => {
                return Ok(Step::Final(Final::new(
                    Decision::Duplicate,
                    Some(event_id()),
                )));
            }
            Claimed::Busy => {
                batch.note(facts.state_key.as_ref(), Decision::InFlight);
                return Ok(Step::Final(Final::new(
                    Decision::InFlight,
                    Some(event_id()),
                )));
            }
        };
        let Facts {
            state_key,
            family,
            at,
            future,
            ..
        } = facts;
        if future {
            self.note_future_time(account_id, &event);
        }
        let mut pending = Pending {
            index,
            key,
            sent_id,
            token,
            state_key,
            loaded,
            // Both set by `decide_pending`, next.
            next: EntityState::default(),
            decision: Decision::Processed,
            family,
            at,
            event: None,
            copy: None,
        };
        if self.inner.store.wants_decided() {
            pending.copy = Some(Box::new(event.clone()));
        }
        let mut event = Some(event);
        let others = Others {
            pending: &batch.pending,
            rest,
            renewed: &mut batch.renewed,
            tally: &mut batch.tally,
        };
        let failure = self
            .decide_pending(&mut pending, &mut event, handler, others)
            .await?;
        if let Some(failure) = failure {
            batch.note(pending.state_key.as_ref(), Decision::Failed);
            return Ok(Step::Final(Final {
                error: Some(failure),
                ..Final::new(Decision::Failed, Some(pending.into_event_id()))
            }));
        }
        // Kept (boxed: rare) only if the handler did not have it.
        pending.event = event.map(Box::new);
        let decision = pending.decision;
        if !rest.is_empty() {
            // Only a later event of the chunk reads it.
            batch.advance(&pending);
        }
        batch.pending.push(pending);
        Ok(Step::Pending(decision))
    }

    /// Claims an event that was not claimed with its chunk, or was in
    /// flight then, alone and on the committed state (the batch committed
    /// first). A duplicate found so with events of the chunk still to
    /// decide reloads its entity's state for them. The claim's own answer
    /// is inside: the outer error is the flush's or the reload's.
    async fn claim_alone<F, Fut>(
        &self,
        key: &DedupKey,
        state: Option<&StateKey>,
        batch: &mut Batch,
        handler: &mut F,
        rest: &[Option<Item>],
    ) -> Result<Result<Claimed, StoreError>, StoreError>
    where
        F: FnMut(Event) -> Fut,
        Fut: Future<Output = Result<(), BoxError>>,
    {
        self.flush(batch, handler).await?;
        let claimed = self
            .claim(key, state, self.inner.clock.system_now(), batch, handler)
            .await;
        if matches!(claimed, Ok(Claimed::Duplicate)) && !rest.is_empty() {
            // Decided elsewhere meanwhile: the chunk's later events of its
            // entity read the state it left.
            self.reload(state, batch).await?;
        }
        Ok(claimed)
    }

    /// Reads the state of `key` again for the chunk's later events, unless
    /// the chunk's own decisions already say what it is.
    async fn reload(&self, key: Option<&StateKey>, batch: &mut Batch) -> Result<(), StoreError> {
        if let Some(key) = key.filter(|k| !batch.states.contains_key(*k)) {
            let fresh = counted("load", self.inner.store.load(key).await)?;
            batch.states.insert(key.clone(), fresh);
        }
        Ok(())
    }

    /// Releases a claim; a permanent error is left to the lease.
    pub(super) async fn release(
        &self,
        key: &DedupKey,
        token: ClaimOwner,
    ) -> Result<(), StoreError> {
        match counted("release", self.inner.store.release(key, token).await) {
            Err(error) if error.is_transient() => Err(error),
            _ => Ok(()),
        }
    }

    /// Counts and traces an event whose time was taken as now.
    fn note_future_time(&self, account_id: AccountId, event: &Event) {
        self.inner.counters.record_future_time();
        #[cfg(feature = "tracing")]
        tracing::warn!(
            account_id = account_id.get(),
            event_id = event.event_id.as_str(),
            event_name = event.event_name.as_str(),
            "event time too far ahead of the clock: ordered as now"
        );
        #[cfg(not(feature = "tracing"))]
        let _ = (account_id, event);
    }

    /// Decides `pending` on its loaded state and, when it is processed and
    /// the handler has not had the `event` yet (`Some`), runs the handler,
    /// keeping the claims `others` holds (the delivery's other held claims)
    /// alive while it runs. The failure message if the handler fails (the
    /// claim is then released).
    pub(super) async fn decide_pending<F, Fut>(
        &self,
        pending: &mut Pending,
        event: &mut Option<Event>,
        handler: &mut F,
        others: Others<'_, '_>,
    ) -> Result<Option<EventFailure>, StoreError>
    where
        F: FnMut(Event) -> Fut,
        Fut: Future<Output = Result<(), BoxError>>,
    {
        (pending.decision, pending.next) = match event {
            Some(_) => rules::decide_facts(&pending.loaded.state, pending.family, pending.at),
            // The handler already ran: fold its effect into the state.
            None => (
                Decision::Processed,
                rules::apply_facts(&pending.loaded.state, pending.family, pending.at),
            ),
        };
        if pending.decision == Decision::Processed && event.is_some() {
            let held = Held {
                pending: others.pending,
                current: (&pending.key, pending.token),
                rest: others.rest,
            };
            if let Some(message) = self
                .run_holding(handler, event, &held, others.renewed, others.tally)
                .await
            {
                self.release(&pending.key, pending.token).await?;
                return Ok(Some(message));
            }
        }
        Ok(None)
    }

    /// Claims `key` and loads `state` with it, waiting for an attempt in
    /// flight elsewhere until the delivery's wait budget is spent. An event
    /// in flight may be this delivery's own (the same `eventId` twice): the
    /// batch is committed first, so that it is not waited for.
    async fn claim<F, Fut>(
        &self,
        key: &DedupKey,
        state: Option<&StateKey>,
        mut now: SystemTime,
        batch: &mut Batch,
        handler: &mut F,
    ) -> Result<Claimed, StoreError>
    where
        F: FnMut(Event) -> Fut,
        Fut: Future<Output = Result<(), BoxError>>,
    {
        let inner = &*self.inner;
        loop {
            let (claim, loaded) = counted(
                "claim",
                inner
                    .store
                    .claim_and_load(key, state, batch.owner, inner.lease, now)
                    .await,
            )?;
            match claim {
                Claim::Claimed(token) => return Ok(Claimed::Token(token, loaded)),
                Claim::AlreadyDecided => return Ok(Claimed::Duplicate),
                Claim::InFlight if !batch.pending.is_empty() => {
                    self.flush(batch, handler).await?;
                }
                Claim::InFlight => {
                    let at = tokio::time::Instant::now();
                    let until = *batch.wait_until.get_or_insert(at + inner.in_flight_wait);
                    if at >= until {
                        return Ok(Claimed::Busy);
                    }
                    tokio::time::sleep(POLL.min(until - at)).await;
                }
            }
            now = inner.clock.system_now();
        }
    }
}
