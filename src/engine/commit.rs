//! Committing a delivery's decisions: a chunk's commits together, and what
//! a commit's answer leads to (a decision taken again on a moved state, a
//! claim taken again, a permanent store error made the event's failure).

use std::future::Future;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::time::Instant;

use super::Engine;
use super::batch::{Batch, Pending, Settled, recycle};
use super::counters::counted;
use super::failure::EventFailure;
use super::flow::Others;
use super::tally::Tally;
use crate::BoxError;
use crate::Decision;
use crate::Event;
use crate::store::{Claim, ClaimOwner, Commit, CommitOutcome, Store, StoreError};

/// Until when a decision is remembered, and until when its state is kept.
type Expiries = (SystemTime, SystemTime);

/// How many times one event is claimed again after losing its claim before
/// it is answered busy (each time, another attempt took it and gave it up).
const RECLAIMS: usize = 3;

/// A commit's outcome, or the permanent store error it met.
struct Committed {
    outcome: Result<CommitOutcome, StoreError>,
    /// Whether the commit was made alone after its set-based call failed
    /// (a store whose `commit_many` is not one transaction may have
    /// written it then: its claim is gone and the event decided).
    alone: bool,
}

/// The outcomes of a flush's commits, one per pending decision, in order.
enum Outcomes {
    /// The lone commit's.
    One(Option<CommitOutcome>),
    /// The set-based call's.
    Together(std::vec::IntoIter<CommitOutcome>),
    /// Each commit's (or error), made alone after the set-based call failed.
    Each(std::vec::IntoIter<Committed>),
}

impl Iterator for Outcomes {
    type Item = Committed;

    fn next(&mut self) -> Option<Committed> {
        let made = |outcome| Committed {
            outcome: Ok(outcome),
            alone: false,
        };
        match self {
            Self::One(outcome) => outcome.take().map(made),
            Self::Together(outcomes) => outcomes.next().map(made),
            Self::Each(outcomes) => outcomes.next(),
        }
    }
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
    /// Until when a decision committed now is remembered, and its state
    /// kept.
    fn expiries(&self) -> Expiries {
        let inner = &*self.inner;
        let now = inner.clock.system_now();
        (now + inner.dedup_window, now + inner.state_retention)
    }

    /// Commits the batch's decisions; a commit that finds the state moved or
    /// the claim lost is decided again and committed alone.
    pub(super) async fn flush<F, Fut>(
        &self,
        batch: &mut Batch,
        handler: &mut F,
    ) -> Result<(), StoreError>
    where
        F: FnMut(Event) -> Fut,
        Fut: Future<Output = Result<(), BoxError>>,
    {
        if batch.pending.is_empty() {
            return Ok(());
        }
        // Taken out only once committed, so a failed commit can be tried
        // again.
        let outcomes = self
            .commit_pending(&batch.pending, &mut batch.commits)
            .await?;
        if self.inner.store.wants_decided() {
            // The hooks (an outbox's among them) saw this commit: a relay
            // waiting in this process looks at once.
            self.inner.written.notify_one();
        }
        let mut pending = std::mem::take(&mut batch.pending);
        for (pending, outcome) in pending.drain(..).zip(outcomes) {
            if matches!(outcome.outcome, Ok(CommitOutcome::Committed)) {
                // Settled as decided, as `conclude` would, without a
                // future of its own.
                batch.note(pending.state_key.as_ref(), pending.decision);
                batch.settled.push(Settled {
                    index: pending.index,
                    decision: pending.decision,
                    event_id: pending.into_event_id(),
                    error: None,
                });
                continue;
            }
            self.conclude(pending, outcome, batch, handler).await?;
        }
        if batch.pending.is_empty() {
            // The buffer, for the next decisions.
            batch.pending = pending;
        }
        Ok(())
    }

    /// Commits pending decisions, building the commits in `spare`'s
    /// allocation (kept there for the next flush).
    async fn commit_pending(
        &self,
        pending: &[Pending],
        spare: &mut Vec<Commit<'static>>,
    ) -> Result<Outcomes, StoreError> {
        let (remember_until, state_until) = self.expiries();
        let mut commits = recycle(std::mem::take(spare));
        commits.extend(
            pending
                .iter()
                .map(|p| p.commit(remember_until, state_until)),
        );
        let outcomes = self.commit_all(pending, &commits).await;
        *spare = recycle(commits);
        outcomes
    }

    /// Makes `commits` (one per pending decision): one [`Store::commit`],
    /// or one [`Store::commit_many`]. After a permanent error, each alone,
    /// so that the error becomes the failure of the decision it is about.
    /// A transient error leaves them all to be tried again.
    async fn commit_all(
        &self,
        pending: &[Pending],
        commits: &[Commit<'_>],
    ) -> Result<Outcomes, StoreError> {
        let store = &self.inner.store;
        let together = match commits {
            _ if store.wants_decided() => {
                let decided: Vec<_> = pending.iter().map(Pending::decided).collect();
                counted("commit_many", store.commit_decided(commits, &decided).await)
                    .map(|o| Outcomes::Together(o.into_iter()))
            }
            [one] => counted("commit", store.commit(*one).await).map(|o| Outcomes::One(Some(o))),
            _ => counted("commit_many", store.commit_many(commits).await)
                .map(|o| Outcomes::Together(o.into_iter())),
        };
        let committed = |outcome, alone| Committed { outcome, alone };
        match together {
            Ok(outcomes) => Ok(outcomes),
            Err(error) if error.is_transient() => Err(error),
            Err(error) if commits.len() == 1 => Ok(Outcomes::Each(
                vec![committed(Err(error), false)].into_iter(),
            )),
            Err(_) => {
                let mut each = Vec::with_capacity(commits.len());
                for (commit, pending) in commits.iter().zip(pending) {
                    match counted("commit", self.commit_one(pending, *commit).await) {
                        Err(error) if error.is_transient() => return Err(error),
                        outcome => each.push(committed(outcome, true)),
                    }
                }
                Ok(Outcomes::Each(each.into_iter()))
            }
        }
    }

    /// Commits one event, with its copy for the store's commit hooks.
    async fn commit_one(
        &self,
        pending: &Pending,
        commit: Commit<'_>,
    ) -> Result<CommitOutcome, StoreError> {
        let store = &self.inner.store;
        if !store.wants_decided() {
            return store.commit(commit).await;
        }
        let mut outcomes = store
            .commit_decided(&[commit], &[pending.decided()])
            .await?;
        outcomes
            .pop()
            .ok_or_else(|| StoreError::new("a commit went unanswered"))
    }

    /// Settles a pending decision from its commit's outcome. A permanent
    /// store error is the event's failure. (A decision taken again is
    /// boxed: it is rare, and its future, inline, would make every
    /// delivery's future, moved at each await, larger.)
    async fn conclude<F, Fut>(
        &self,
        pending: Pending,
        outcome: Committed,
        batch: &mut Batch,
        handler: &mut F,
    ) -> Result<(), StoreError>
    where
        F: FnMut(Event) -> Fut,
        Fut: Future<Output = Result<(), BoxError>>,
    {
        let index = pending.index;
        let moved = !matches!(outcome.outcome, Ok(CommitOutcome::Committed));
        let (decision, error, mut pending) = match outcome.outcome {
            Ok(CommitOutcome::Committed) => (pending.decision, None, pending),
            Ok(CommitOutcome::StateChanged) => {
                Box::pin(self.commit_alone(pending, Again::State, handler, &mut batch.tally))
                    .await?
            }
            Ok(CommitOutcome::LeaseLost) => {
                let decided = pending.decision;
                let tally = &mut batch.tally;
                match Box::pin(self.commit_alone(pending, Again::Claim, handler, tally)).await? {
                    // Written by the failed set-based call.
                    (Decision::Duplicate, error, p) if outcome.alone => (decided, error, p),
                    other => other,
                }
            }
            Err(error) => {
                self.release(&pending.key, pending.token).await?;
                (
                    Decision::Failed,
                    Some(EventFailure::from_error(Arc::new(error))),
                    pending,
                )
            }
        };
        if moved {
            pending.decision = decision;
            batch.advance(&pending);
        }
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
    /// commit holds. A permanent store error is the event's failure.
    async fn commit_alone<F, Fut>(
        &self,
        mut pending: Pending,
        mut again: Again,
        handler: &mut F,
        tally: &mut Tally,
    ) -> Result<(Decision, Option<EventFailure>, Pending), StoreError>
    where
        F: FnMut(Event) -> Fut,
        Fut: Future<Output = Result<(), BoxError>>,
    {
        let mut event = pending.event.take().map(|event| *event);
        let mut reclaims = 0;
        loop {
            if matches!(again, Again::Claim) {
                reclaims += 1;
            }
            match self
                .attempt(&mut pending, &mut event, again, handler, reclaims, tally)
                .await
            {
                Ok(Ok((decision, error))) => return Ok((decision, error, pending)),
                Ok(Err(next)) => again = next,
                Err(error) if !error.is_transient() => {
                    return Ok((
                        Decision::Failed,
                        Some(EventFailure::from_error(Arc::new(error))),
                        pending,
                    ));
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// One attempt of [`Engine::commit_alone`]: the decision, or what to do
    /// before the next attempt.
    async fn attempt<F, Fut>(
        &self,
        pending: &mut Pending,
        event: &mut Option<Event>,
        again: Again,
        handler: &mut F,
        reclaims: usize,
        tally: &mut Tally,
    ) -> Result<Result<(Decision, Option<EventFailure>), Again>, StoreError>
    where
        F: FnMut(Event) -> Fut,
        Fut: Future<Output = Result<(), BoxError>>,
    {
        let inner = &*self.inner;
        match again {
            Again::State => {
                if let Some(k) = &pending.state_key {
                    pending.loaded = counted("load", inner.store.load(k).await)?;
                }
            }
            Again::Claim => {
                let (key, state, now) = (
                    &pending.key,
                    pending.state_key.as_ref(),
                    inner.clock.system_now(),
                );
                // As a stranger (a holder of its own): a claim lost to a
                // later attempt of the same delivery is never taken back
                // from it, only claimed again once free.
                let owner = ClaimOwner::random();
                let claimed = inner
                    .store
                    .claim_and_load(key, state, owner, inner.lease, now);
                let (claim, loaded) = counted("claim", claimed.await)?;
                match claim {
                    Claim::Claimed(token) => (pending.token, pending.loaded) = (token, loaded),
                    Claim::AlreadyDecided => return Ok(Ok((Decision::Duplicate, None))),
                    Claim::InFlight => return Ok(Ok((Decision::InFlight, None))),
                }
            }
        }
        let mut renewed = Instant::now();
        let others = Others {
            pending: &[],
            rest: &[],
            renewed: &mut renewed,
            tally,
        };
        if let Some(message) = self.decide_pending(pending, event, handler, others).await? {
            return Ok(Ok((Decision::Failed, Some(message))));
        }
        let (remember_until, state_until) = self.expiries();
        let commit = pending.commit(remember_until, state_until);
        Ok(
            match counted("commit", self.commit_one(pending, commit).await)? {
                CommitOutcome::Committed => Ok((pending.decision, None)),
                CommitOutcome::StateChanged => Err(Again::State),
                CommitOutcome::LeaseLost if reclaims < RECLAIMS => Err(Again::Claim),
                CommitOutcome::LeaseLost => Ok((Decision::InFlight, None)),
            },
        )
    }
}
