//! How one event goes through the store: claim, decide, run the handler,
//! commit (alone or with its batch), and what a commit's answer leads to.

use std::fmt::Display;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use time::OffsetDateTime;

use super::batch::{Batch, Final, Pending, Settled, Step};
use super::catch::CatchUnwind;
use super::decision::Decision;
use super::rules::{self, EntityState, StateKey};
use super::{Engine, Facts};
use crate::store::{
    Claim, ClaimToken, Commit, CommitOutcome, DedupKey, Store, StoreError, Versioned,
};
use crate::{AccountId, Event};

/// Until when a decision is remembered, and until when its state is kept.
type Expiries = (OffsetDateTime, OffsetDateTime);

/// How often an in-flight event is looked at again while waiting.
const POLL: Duration = Duration::from_millis(25);

/// How many times one event is claimed again after losing its claim before
/// it is answered busy (each time, another attempt took it and gave it up).
const RECLAIMS: usize = 3;

/// The outcome of claiming an event.
enum Claimed {
    /// The claim, and the state as it was read with it.
    Token(ClaimToken, Versioned),
    Duplicate,
    /// Still in flight elsewhere once the delivery's wait is spent.
    Busy,
}

/// What to do before deciding a pending event again.
#[derive(Clone, Copy)]
enum Again {
    /// Read the entity's state again (it moved).
    State,
    /// Claim the event again (the claim was lost).
    Claim,
}

impl<S: Store> Engine<S> {
    /// Claims, decides and (if processed) hands one event to the handler.
    /// The decision is then committed with the batch, or final at once.
    pub(super) async fn decide_one<F, Fut, E>(
        &self,
        index: usize,
        account_id: AccountId,
        event: Event,
        handler: &mut F,
        batch: &mut Batch,
    ) -> Result<Step, StoreError>
    where
        F: FnMut(Event) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: Display,
    {
        let now = self.inner.clock.now();
        let facts = match self.facts(account_id, &event, now) {
            Ok(facts) => facts,
            Err(fault) => return Ok(Self::rejected(index, &event, fault)),
        };
        let (key, sent_id) = Self::dedup_key(account_id, &event);
        let event_id = || sent_id.clone().unwrap_or_else(|| key.event_id.clone());
        if let Some(k) = &facts.state_key {
            // One pending decision per entity: a batch's commits then never
            // depend on each other, and this event is decided on a
            // committed state.
            if batch.touches(k) {
                self.flush(batch, handler).await?;
            }
            if batch.held_back.contains(k) {
                return Ok(Step::Final(Final::new(
                    Decision::Deferred,
                    Some(event_id()),
                )));
            }
        }
        let claimed = self
            .claim(&key, facts.state_key.as_ref(), now, batch, handler)
            .await?;
        let (token, loaded) = match claimed {
            Claimed::Token(token, loaded) => (token, loaded),
            Claimed::Duplicate => {
                return Ok(Step::Final(Final::new(
                    Decision::Duplicate,
                    Some(event_id()),
                )));
            }
            Claimed::Busy => {
                batch.note(facts.state_key.as_ref(), Decision::Busy);
                return Ok(Step::Final(Final::new(Decision::Busy, Some(event_id()))));
            }
        };
        let Facts {
            state_key,
            family,
            at,
            future,
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
        };
        let mut event = Some(event);
        if let Some(message) = self
            .decide_pending(&mut pending, &mut event, handler)
            .await?
        {
            batch.note(pending.state_key.as_ref(), Decision::Failed);
            return Ok(Step::Final(Final {
                error: Some(message),
                ..Final::new(Decision::Failed, Some(pending.into_event_id()))
            }));
        }
        // Kept (boxed: rare) only if the handler did not have it.
        pending.event = event.map(Box::new);
        let decision = pending.decision;
        batch.pending.push(pending);
        Ok(Step::Pending(decision))
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
            Some(_) => rules::decide_facts(&pending.loaded.state, pending.family, pending.at),
            // The handler already ran: fold its effect into the state.
            None => (
                Decision::Processed,
                rules::apply_facts(&pending.loaded.state, pending.family, pending.at),
            ),
        };
        if pending.decision == Decision::Processed {
            if let Some(event) = event.take() {
                if let Some(message) = run(handler, event).await {
                    counted(
                        "release",
                        self.inner.store.release(&pending.key, pending.token).await,
                    )?;
                    return Ok(Some(message));
                }
            }
        }
        Ok(None)
    }

    /// Until when a decision committed now is remembered, and its state
    /// kept.
    fn expiries(&self) -> Expiries {
        let inner = &*self.inner;
        let now = inner.clock.now();
        (now + inner.dedup_window, now + inner.state_retention)
    }

    /// Commits the batch's decisions; a commit that finds the state moved or
    /// the claim lost is decided again and committed alone.
    pub(super) async fn flush<F, Fut, E>(
        &self,
        batch: &mut Batch,
        handler: &mut F,
    ) -> Result<(), StoreError>
    where
        F: FnMut(Event) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: Display,
    {
        let store = &self.inner.store;
        if batch.pending.is_empty() {
            return Ok(());
        }
        let (remember_until, state_until) = self.expiries();
        match batch.pending.len() {
            // The common case (one commit per event): no batch to build.
            1 => {
                // Taken out only once committed, so a failed commit can be
                // tried again.
                let commit = batch.pending[0].commit(remember_until, state_until);
                let outcome = counted("commit", store.commit(commit).await)?;
                let pending = batch.pending.pop().expect("one pending decision");
                self.conclude(pending, outcome, batch, handler).await?;
            }
            _ => {
                let outcomes = {
                    let commits: Vec<Commit<'_>> = batch
                        .pending
                        .iter()
                        .map(|p| p.commit(remember_until, state_until))
                        .collect();
                    counted("commit_many", store.commit_many(&commits).await)?
                };
                for (pending, outcome) in
                    std::mem::take(&mut batch.pending).into_iter().zip(outcomes)
                {
                    self.conclude(pending, outcome, batch, handler).await?;
                }
            }
        }
        Ok(())
    }

    /// Settles a pending decision from its commit's outcome.
    async fn conclude<F, Fut, E>(
        &self,
        pending: Pending,
        outcome: CommitOutcome,
        batch: &mut Batch,
        handler: &mut F,
    ) -> Result<(), StoreError>
    where
        F: FnMut(Event) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: Display,
    {
        let index = pending.index;
        let (decision, error, pending) = match outcome {
            CommitOutcome::Committed => (pending.decision, None, pending),
            CommitOutcome::StateChanged => {
                self.commit_alone(pending, Again::State, handler).await?
            }
            CommitOutcome::LeaseLost => self.commit_alone(pending, Again::Claim, handler).await?,
        };
        batch.note(pending.state_key.as_ref(), decision);
        batch.settled.push(Settled {
            index,
            event_id: pending.into_event_id(),
            decision,
            error,
        });
        Ok(())
    }

    /// Decides a pending event again, after its commit found the state moved
    /// (`Again::State`: on the entity's current state) or its claim lost
    /// (`Again::Claim`: the event is claimed again; decided elsewhere by
    /// now, it is a duplicate; in flight elsewhere, busy), and commits it
    /// alone. The handler runs only if it has not run yet. Loops until the
    /// commit holds.
    async fn commit_alone<F, Fut, E>(
        &self,
        mut pending: Pending,
        mut again: Again,
        handler: &mut F,
    ) -> Result<(Decision, Option<String>, Pending), StoreError>
    where
        F: FnMut(Event) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: Display,
    {
        let inner = &*self.inner;
        let mut event = pending.event.take().map(|event| *event);
        let mut reclaims = 0;
        loop {
            match again {
                Again::State => {
                    if let Some(k) = &pending.state_key {
                        pending.loaded = counted("load", inner.store.load(k).await)?;
                    }
                }
                Again::Claim => {
                    reclaims += 1;
                    let (claim, loaded) = counted(
                        "claim",
                        inner
                            .store
                            .claim_and_load(
                                &pending.key,
                                pending.state_key.as_ref(),
                                inner.lease,
                                inner.clock.now(),
                            )
                            .await,
                    )?;
                    match claim {
                        Claim::Claimed(token) => (pending.token, pending.loaded) = (token, loaded),
                        Claim::AlreadyDecided => return Ok((Decision::Duplicate, None, pending)),
                        Claim::InFlight => return Ok((Decision::Busy, None, pending)),
                    }
                }
            }
            if let Some(message) = self
                .decide_pending(&mut pending, &mut event, handler)
                .await?
            {
                return Ok((Decision::Failed, Some(message), pending));
            }
            let (remember_until, state_until) = self.expiries();
            let commit = pending.commit(remember_until, state_until);
            match counted("commit", inner.store.commit(commit).await)? {
                CommitOutcome::Committed => return Ok((pending.decision, None, pending)),
                CommitOutcome::StateChanged => again = Again::State,
                CommitOutcome::LeaseLost if reclaims < RECLAIMS => again = Again::Claim,
                CommitOutcome::LeaseLost => return Ok((Decision::Busy, None, pending)),
            }
        }
    }

    /// Claims `key` and loads `state` with it, waiting for an attempt in
    /// flight elsewhere until the delivery's wait budget is spent. An event
    /// in flight may be this delivery's own (the same `eventId` twice): the
    /// batch is committed first, so that it is not waited for.
    async fn claim<F, Fut, E>(
        &self,
        key: &DedupKey,
        state: Option<&StateKey>,
        mut now: OffsetDateTime,
        batch: &mut Batch,
        handler: &mut F,
    ) -> Result<Claimed, StoreError>
    where
        F: FnMut(Event) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: Display,
    {
        let inner = &*self.inner;
        loop {
            let (claim, loaded) = counted(
                "claim",
                inner
                    .store
                    .claim_and_load(key, state, inner.lease, now)
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
            now = inner.clock.now();
        }
    }
}

/// Counts a store call and whether it failed (feature `metrics`), and
/// passes its result on.
fn counted<T>(op: &'static str, result: Result<T, StoreError>) -> Result<T, StoreError> {
    #[cfg(feature = "metrics")]
    crate::metrics::record_store_call(op, result.is_err());
    #[cfg(not(feature = "metrics"))]
    let _ = op;
    result
}

/// Runs the handler on one event; the failure message if it fails or
/// panics, in its future or in the closure that makes the future. With the
/// `metrics` feature, how long it ran is recorded per event name.
async fn run<F, Fut, E>(handler: &mut F, event: Event) -> Option<String>
where
    F: FnMut(Event) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    #[cfg(feature = "metrics")]
    let (name, started) = (event.event_name.clone(), std::time::Instant::now());
    let failure = run_caught(handler, event).await;
    #[cfg(feature = "metrics")]
    crate::metrics::record_handler(&name, started.elapsed());
    failure
}

/// [`run`] without the timing.
async fn run_caught<F, Fut, E>(handler: &mut F, event: Event) -> Option<String>
where
    F: FnMut(Event) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    const PANICKED: &str = "the handler panicked";
    let Ok(future) = catch_unwind(AssertUnwindSafe(|| handler(event))) else {
        return Some(PANICKED.to_owned());
    };
    let future = std::pin::pin!(future);
    match CatchUnwind::new(future).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(()) => Some(PANICKED.to_owned()),
    }
}
