//! A delivery through the store chunk by chunk (by default one chunk): one
//! [`Store::claim_many`] for a chunk's events, their decisions in order in
//! memory (handlers included), one [`Store::commit_many`] for the chunk.

use std::future::Future;

use std::time::SystemTime;

use super::Engine;

/// The pauses before the decisions that ran are committed again after a
/// transient store error ([`Engine::process`] gives up after the last).
const RECOMMIT_PAUSES_MS: [u64; 4] = [25, 100, 250, 500];

/// The pause between tries once the last of [`RECOMMIT_PAUSES_MS`] has
/// passed, while a longer window ([`Engine::process_within`]) lasts.
const RECOMMIT_PAUSE_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

use super::batch::{Batch, Final, Item, Prepared, Step, recycle};
use super::counters::counted;
use super::holding::Holding;
use super::report::{DeliveryReport, EventOutcome};
use super::spans::EventSpans;
use crate::Decision;
use crate::store::{ClaimOwner, ClaimRequest, DedupKey, Store, StoreError};
use crate::{AccountId, BoxError, Event, EventError, EventId, EventName};

impl<S: Store> Engine<S> {
    /// [`Engine::process`]: the delivery in chunks. Dropped before it ends
    /// (cancelled), it releases the claims it still holds, best effort.
    pub(super) async fn process_chunks<F, Fut>(
        &self,
        events: Vec<Result<Event, Box<EventError>>>,
        account_id: AccountId,
        owner: ClaimOwner,
        recommit_within: std::time::Duration,
        handler: &mut F,
    ) -> Result<DeliveryReport, StoreError>
    where
        F: FnMut(Event) -> Fut,
        Fut: Future<Output = Result<(), BoxError>>,
    {
        let mut holding = Holding::new(self.clone(), owner);
        holding.parts().0.recommit_within = recommit_within;
        let result = self
            .run_chunks(events, account_id, handler, &mut holding)
            .await;
        holding.finish();
        result
    }

    /// [`Engine::process_chunks`], with the delivery's claims in `holding`.
    async fn run_chunks<F, Fut>(
        &self,
        events: Vec<Result<Event, Box<EventError>>>,
        account_id: AccountId,
        handler: &mut F,
        holding: &mut Holding<S>,
    ) -> Result<DeliveryReport, StoreError>
    where
        F: FnMut(Event) -> Fut,
        Fut: Future<Output = Result<(), BoxError>>,
    {
        let chunk_len = self.inner.commit_batch;
        let mut report = DeliveryReport {
            outcomes: Vec::with_capacity(events.len()),
        };
        let (batch, chunk, spans) = holding.parts();
        let mut items = events.into_iter().enumerate();
        loop {
            let now = self.inner.clock.system_now();
            let now_ms = crate::store::unix_millis(now);
            chunk.clear();
            let tally = &mut batch.tally;
            chunk.extend(items.by_ref().take(chunk_len).map(|(index, item)| {
                let item = self.prepare(index, account_id, item, now_ms);
                if let Item::Event(p) = &item {
                    tally.lag(p.facts.family, p.facts.lag_ms);
                }
                Some(item)
            }));
            if chunk.is_empty() {
                break;
            }
            batch.states.clear();
            if chunk_len > 1 {
                if let Err(error) = self.claim_chunk(chunk, batch, now).await {
                    return Err(Box::pin(self.fail(batch, &mut [], handler, error)).await);
                }
            }
            for at in 0..chunk.len() {
                let item = chunk[at].take().expect("each item is decided once");
                let (index, event_name, step) = match item {
                    Item::Final(index, event_name, done) => {
                        let (id, name) = (done.event_id.as_ref(), event_name.as_ref());
                        spans.open(index, account_id, id, name);
                        (index, event_name, Step::Final(done))
                    }
                    Item::Event(prepared) => {
                        let (index, event_name) =
                            (prepared.index, prepared.event.event_name.clone());
                        let id = Some(&prepared.event.event_id);
                        spans.open(index, account_id, id, Some(&event_name));
                        let rest = &chunk[at + 1..];
                        let decided = self.decide_one(prepared, handler, batch, rest);
                        match spans.within(index, decided).await {
                            Ok(step) => (index, Some(event_name), step),
                            Err(error) => {
                                let rest = &mut chunk[at + 1..];
                                return Err(Box::pin(self.fail(batch, rest, handler, error)).await);
                            }
                        }
                    }
                };
                report.outcomes.push(outcome(index, event_name, step));
                if batch.pending.len() >= chunk_len {
                    if let Err(error) = self.flush(batch, handler).await {
                        let rest = &mut chunk[at + 1..];
                        return Err(Box::pin(self.fail(batch, rest, handler, error)).await);
                    }
                }
                self.settle(batch, &mut report, spans);
            }
            if let Err(error) = self.flush(batch, handler).await {
                return Err(Box::pin(self.fail(batch, &mut [], handler, error)).await);
            }
            self.settle(batch, &mut report, spans);
        }
        Ok(report)
    }

    /// An event's facts and keys, or its final decision when it did not
    /// parse or lacks what its family needs.
    fn prepare(
        &self,
        index: usize,
        account_id: AccountId,
        item: Result<Event, Box<EventError>>,
        now_ms: i64,
    ) -> Item {
        let event = match item {
            Ok(event) => event,
            Err(error) => {
                let (event_name, event_id) = (error.event_name.clone(), error.event_id.clone());
                let rejected = Final {
                    event_error: Some(error),
                    ..Final::new(Decision::Malformed, event_id)
                };
                return Item::Final(index, event_name, rejected);
            }
        };
        match self.facts(account_id, &event, now_ms) {
            Ok(facts) => {
                let (key, sent_id) = Self::dedup_key(account_id, &event);
                Item::Event(Prepared {
                    index,
                    account_id,
                    event,
                    facts,
                    key,
                    sent_id,
                    answer: None,
                })
            }
            Err((field, message)) => {
                let error = EventError::after_parsing(index, &event, &field, message);
                let rejected = Final {
                    event_error: Some(Box::new(error)),
                    ..Final::new(Decision::Malformed, Some(event.event_id.clone()))
                };
                Item::Final(index, Some(event.event_name), rejected)
            }
        }
    }

    /// Claims the chunk's events (those whose entity is not held back) in
    /// one [`Store::claim_many`], and keeps each answer with its event. A
    /// permanent error leaves every event to be claimed alone, so that it
    /// becomes the failure of the one event it is about.
    async fn claim_chunk(
        &self,
        chunk: &mut [Option<Item>],
        batch: &mut Batch,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        let held_back = &batch.held_back;
        let wanted = |p: &Prepared| {
            p.facts
                .state_key
                .as_ref()
                .is_none_or(|k| !held_back.contains(k))
        };
        let answers = {
            let mut requests = recycle(std::mem::take(&mut batch.requests));
            requests.extend(chunk.iter().filter_map(|item| match item {
                Some(Item::Event(p)) if wanted(p) => Some(ClaimRequest {
                    key: &p.key,
                    state: p.facts.state_key.as_ref(),
                }),
                _ => None,
            }));
            let claimed = match requests[..] {
                [] => None,
                _ => {
                    let inner = &*self.inner;
                    let store = &inner.store;
                    Some(
                        store
                            .claim_many(&requests, batch.owner, inner.lease, now)
                            .await,
                    )
                }
            };
            batch.requests = recycle(requests);
            let Some(claimed) = claimed else {
                return Ok(());
            };
            match counted("claim_many", claimed) {
                Ok(answers) => answers,
                Err(error) if !error.is_transient() => return Ok(()),
                Err(error) => return Err(error),
            }
        };
        let mut answers = answers.into_iter();
        for item in chunk.iter_mut() {
            if let Some(Item::Event(p)) = item {
                if wanted(p) {
                    p.answer = answers.next();
                }
            }
        }
        Ok(())
    }

    /// Before a store error leaves [`Engine::process`]: commits the
    /// decisions whose handlers ran (a failed batch commit is tried again
    /// at once, then after 25, 100, 250 and 500 ms and every second after
    /// that while the store's error is transient, no new try whose pause
    /// would end past the delivery's window: [`RECOMMIT_WITHIN`](super::batch::RECOMMIT_WITHIN) while a sender
    /// waits, the delivery's lease in an inbox's worker. A pool whose
    /// connections were all cut at once, by `pg_terminate_backend` or a
    /// failover, hands out fresh ones within a second; a Redis restarted
    /// from its append-only file may take longer. The handlers that ran
    /// are not run again), so that the
    /// redelivery runs again only the event that met the error, and
    /// releases the claims of the chunk's events not decided yet (and of
    /// the decisions that could not be committed), so that the redelivery
    /// finds them free. Returns the error.
    ///
    /// Boxed where it is awaited: an error path, kept out of the
    /// delivery's future (which every await moves).
    async fn fail<F, Fut>(
        &self,
        batch: &mut Batch,
        rest: &mut [Option<Item>],
        handler: &mut F,
        error: StoreError,
    ) -> StoreError
    where
        F: FnMut(Event) -> Fut,
        Fut: Future<Output = Result<(), BoxError>>,
    {
        let started = tokio::time::Instant::now();
        let within = batch.recommit_within;
        let mut pauses = RECOMMIT_PAUSES_MS
            .into_iter()
            .map(std::time::Duration::from_millis)
            .chain(std::iter::repeat(RECOMMIT_PAUSE_AFTER));
        let mut flushed = self.flush(batch, handler).await;
        while let Err(again) = &flushed {
            let pause = pauses.next().expect("endless");
            if !again.is_transient() || started.elapsed() + pause > within {
                break;
            }
            tokio::time::sleep(pause).await;
            flushed = self.flush(batch, handler).await;
        }
        if let Err(_again) = flushed {
            #[cfg(feature = "tracing")]
            tracing::warn!(
                error = %_again,
                pending = batch.pending.len(),
                "decisions not committed before a store error: ALM's redelivery runs their handlers again"
            );
            // Their claims go too, so that any attempt finds them free (a
            // later attempt of the same holder would take them over anyway).
            for pending in std::mem::take(&mut batch.pending) {
                let _ = counted(
                    "release",
                    self.inner.store.release(&pending.key, pending.token).await,
                );
            }
        }
        for (key, token) in rest.iter().flatten().filter_map(Item::held) {
            // Best effort: a claim not released ends with its lease.
            let _ = counted("release", self.inner.store.release(key, token).await);
        }
        error
    }

    /// Writes the decisions the last flush made final into `report`, and
    /// counts and traces every outcome that is final now.
    fn settle(&self, batch: &mut Batch, report: &mut DeliveryReport, spans: &mut EventSpans) {
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
            batch
                .tally
                .event(outcome.decision, outcome.event_name.as_ref());
            spans.decided(outcome.index, outcome.event_id.as_ref(), outcome.decision);
            #[cfg(feature = "tracing")]
            tracing::debug!(
                index = outcome.index,
                event_id = outcome.event_id.as_ref().map(EventId::as_str),
                event_name = outcome.event_name.as_ref().map(EventName::as_str),
                decision = %outcome.decision,
                "event decided"
            );
            batch.reported += 1;
        }
    }

    /// The dedup key of `event`, and its id as sent when the key differs.
    fn dedup_key(account_id: AccountId, event: &Event) -> (DedupKey, Option<EventId>) {
        let key = DedupKey::for_event(account_id, event);
        let sent = key.is_named().then(|| event.event_id.clone());
        (key, sent)
    }
}

/// An event's outcome from its step: provisional until its commit when the
/// step is pending (settled, with its id, by [`Engine::settle`]).
fn outcome(index: usize, event_name: Option<EventName>, step: Step) -> EventOutcome {
    match step {
        Step::Final(done) => EventOutcome {
            index,
            event_id: done.event_id,
            event_name,
            decision: done.decision,
            error: done.error,
            event_error: done.event_error,
        },
        Step::Pending(decision) => EventOutcome {
            index,
            event_id: None,
            event_name,
            decision,
            error: None,
            event_error: None,
        },
    }
}
