//! One delivery's run through the engine: the chunks that keep a record's
//! later events behind a failed one, what the run ends in, and how the
//! inbox is told.

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Mutex, PoisonError};

use serde::Deserialize;
use serde_json::value::RawValue;
use time::OffsetDateTime;

use std::sync::atomic::{AtomicBool, Ordering};

use super::super::{
    ArchivedEvent, Inbox, InboxError, LEASE_RAN_OUT, NewDeadLetter, NewQuarantined, Taken,
};
use super::archiving::Decisions;
use super::rate::Backlog;
use super::timeout::{HandlerTimedOut, bounded};
use super::{Progress, Workers};
use crate::rules::{Decision, StateKey};
use crate::store::{Store, StoreError};
use crate::{AccountId, BoxError, Envelope, Event, EventError};

impl<S: Store, I: Inbox> Workers<S, I> {
    /// Runs a taken delivery through `handler`.
    ///
    /// After a crash (an earlier attempt was abandoned: the process died or
    /// hung while handling it), one event at a time: each decision is
    /// committed before the next handler runs, so the event the process
    /// dies on is the first one left undecided and the others are not run
    /// again. When the attempts are spent (past the last one because
    /// attempts were abandoned) and the attempt before also died running
    /// one event at a time, that first undecided event is dead-lettered
    /// with the reason ("the process died or hung N times while handling
    /// it") and the rest of the delivery goes on with `handler`, as on a
    /// last attempt.
    pub(super) async fn attempt<H, Fut>(
        &self,
        taken: &Taken,
        handler: &H,
        trail: &Trail,
    ) -> Result<Ended, StoreError>
    where
        H: Fn(Event) -> Fut + Send + Sync,
        Fut: Future<Output = Result<(), BoxError>> + Send,
    {
        let attempt = taken.attempts.max(1);
        let max = self.options.retry.max_attempts.max(1);
        let isolate = taken.abandoned > 0;
        if attempt <= max {
            return self.process(taken, attempt, handler, trail, isolate).await;
        }
        let died_isolated =
            taken.abandoned >= 2 && taken.last_error.as_deref() == Some(LEASE_RAN_OUT);
        if !died_isolated {
            // The only crash was the last attempt's, running a whole chunk:
            // find the event it dies on, one at a time.
            return self.process(taken, max, handler, trail, true).await;
        }
        let reason = given_up(taken);
        let first = AtomicBool::new(true);
        let first = &first;
        let guarded = move |event: Event| {
            let fail = first.swap(false, Ordering::Relaxed);
            let reason = reason.clone();
            async move {
                if fail {
                    return Err::<(), BoxError>(reason.into());
                }
                handler(event).await
            }
        };
        self.process(taken, max, &guarded, trail, true).await
    }

    /// Tells the inbox how a delivery's run ended: completed (its dead
    /// letters reported once kept), given back for a counted retry, or
    /// postponed without counting the attempt (the store or the inbox
    /// failed, or events are in flight under another owner).
    pub(super) async fn conclude(
        &self,
        taken: &Taken,
        processed: Result<Ended, StoreError>,
    ) -> Result<bool, InboxError> {
        let (id, token) = (taken.id, taken.token);
        let now = OffsetDateTime::now_utc();
        match processed {
            Ok(Ended::Complete(letters, events)) => self.complete(taken, &letters, &events).await,
            Ok(Ended::Retry(error)) => {
                let not_before = now + self.options.retry.backoff(taken.attempts.max(1));
                self.inbox.retry_later(id, token, not_before, &error).await
            }
            Ok(Ended::Postpone(error)) => {
                let not_before = now + self.options.retry.backoff(1);
                self.inbox.postpone(id, token, not_before, &error).await
            }
            Err(e) => {
                self.report(Progress::Unavailable { error: &e });
                let not_before = now + self.options.retry.backoff(1);
                self.inbox
                    .postpone(id, token, not_before, &e.to_string())
                    .await
            }
        }
    }

    /// Completes a delivery, keeping its dead letters, and reports them
    /// once kept. If the inbox refuses them for good, the delivery is
    /// quarantined whole, with the reason, and completed without them.
    async fn complete(
        &self,
        taken: &Taken,
        letters: &[NewDeadLetter],
        events: &[ArchivedEvent],
    ) -> Result<bool, InboxError> {
        match self.complete_keeping(taken, letters, events).await {
            Ok(true) => {
                for letter in letters {
                    self.report(Progress::DeadLettered { letter });
                }
                Ok(true)
            }
            Err(e) if e.is_permanent() => {
                let reason = format!(
                    "its dead letters cannot be kept: {}",
                    crate::engine::error_chain(&e)
                );
                self.quarantine(taken, &reason)
                    .await
                    .map_err(|e| InboxError::with_source("cannot quarantine the delivery", e))?;
                self.inbox.complete(taken.id, taken.token, &[]).await
            }
            other => other,
        }
    }

    /// Runs a delivery's events through the engine, one event per record
    /// in each chunk. Before the last attempt, an event whose handler failed
    /// holds back the later events of the same record (they are decided on
    /// the next attempt); on the last attempt it is dead-lettered and the
    /// record's later events go on, decided in later chunks against what
    /// was processed. What is decided for good goes on `trail` as it is.
    /// With `isolate`, each chunk is one event (committed before the next
    /// handler runs).
    pub(super) async fn process<H, Fut>(
        &self,
        taken: &Taken,
        attempt: u32,
        handler: &H,
        trail: &Trail,
        isolate: bool,
    ) -> Result<Ended, StoreError>
    where
        H: Fn(Event) -> Fut + Send + Sync,
        Fut: Future<Output = Result<(), BoxError>> + Send,
    {
        let envelope = match Envelope::from_slice(&taken.body) {
            Ok(envelope) => envelope,
            Err(e) => return self.quarantine(taken, &e.to_string()).await,
        };
        let account_id = envelope.account_id;
        let last = self.options.retry.is_last(attempt);
        let now = OffsetDateTime::now_utc();
        let mut items: Vec<Item> = Vec::with_capacity(envelope.events.len());
        let mut rejected = Vec::new();
        let mut decisions = Decisions::default();
        for (index, event) in envelope.events.into_iter().enumerate() {
            decisions.read(index, &event);
            if let Err(error) = &event {
                rejected.push(rejected_letter(account_id, error, attempt, now));
            }
            let key = event
                .as_ref()
                .ok()
                .and_then(|e| StateKey::for_event(account_id, e));
            items.push(Item { index, key, event });
        }
        let limits = self.options.rate.as_deref();
        let backlog = limits.map(|limits| Backlog::new(limits, items.len()));
        let mut failed: Vec<(usize, Option<String>, Option<String>, String)> = Vec::new();
        let mut blocked: HashSet<StateKey> = HashSet::new();
        let mut handler_failed = false;
        let mut rest = items.into_iter().peekable();
        while rest.peek().is_some() {
            // A chunk holds at most one event per record, so a failure can
            // hold back the record's later events before they are decided
            // (and, on the last attempt, so they are decided after it, not
            // deferred behind it by the engine).
            let mut chunk = Vec::new();
            let mut keys = HashSet::new();
            while let Some(item) = rest.peek() {
                if isolate && !chunk.is_empty() {
                    break;
                }
                match &item.key {
                    Some(key) if blocked.contains(key) => {
                        rest.next();
                        continue;
                    }
                    Some(key) if !keys.insert(key.clone()) => break,
                    _ => chunk.push(rest.next().expect("peeked")),
                }
            }
            let positions: Vec<(usize, Option<StateKey>)> =
                chunk.iter().map(|i| (i.index, i.key.clone())).collect();
            let envelope = Envelope {
                account_id,
                events: chunk.into_iter().map(|i| i.event).collect(),
            };
            let limit = self.options.handler_timeout;
            let backlog = backlog.as_ref();
            let bounded = |event| async move {
                // The rate limit first, outside the handler's time.
                if let Some(backlog) = backlog {
                    backlog.pass(account_id).await;
                }
                bounded(handler(event), limit, HandlerTimedOut::after(limit)).await
            };
            let owner = crate::store::ClaimOwner::for_delivery(taken.id.get(), taken.token.0);
            let within = self.options.lease;
            let waited = std::cell::Cell::new(std::time::Duration::ZERO);
            let chunk = self.engine.process_within(owner, envelope, within, bounded);
            let report = crate::engine::RATE_WAITED.scope(waited, chunk).await?;
            for mut outcome in report.outcomes {
                let (index, key) = positions[outcome.index].clone();
                outcome.index = index;
                decisions.decided(index, &outcome, attempt, last);
                if outcome.decision.is_final() && outcome.decision != Decision::Malformed {
                    trail.decided_at(index);
                }
                let again = attempt > 1
                    && matches!(outcome.decision, Decision::Duplicate | Decision::Malformed);
                if !again {
                    self.report(Progress::Decided {
                        account_id,
                        outcome: &outcome,
                        attempt,
                    });
                }
                if !outcome.decision.is_final() {
                    handler_failed |= !matches!(outcome.decision, Decision::InFlight);
                    if let Some(key) = key.filter(|_| !last) {
                        blocked.insert(key);
                    }
                    let error = outcome
                        .error
                        .map(|e| e.message().to_owned())
                        .unwrap_or_else(|| {
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
                let error = format!("event {id}: {error}");
                // Only events in flight under another owner: not the
                // handler's fault, the attempt is not counted.
                return Ok(if handler_failed {
                    Ended::Retry(error)
                } else {
                    Ended::Postpone(error)
                });
            }
        }
        let mut letters = rejected;
        if !failed.is_empty() {
            let raw = raw_events(&taken.body).unwrap_or_default();
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
        Ok(Ended::Complete(letters, decisions.into_events()))
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
            Ok(_) => Ok(Ended::Complete(Vec::new(), Vec::new())),
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
pub(super) enum Ended {
    /// Done; keep these dead letters, and archive these decisions.
    Complete(Vec<NewDeadLetter>, Vec<ArchivedEvent>),
    /// An event failed before the last attempt: try again later.
    Retry(String),
    /// Only events in flight under another owner held it back: try again
    /// later without counting the attempt.
    Postpone(String),
}

/// Why a delivery taken after its last attempt is given up.
fn given_up(taken: &Taken) -> String {
    let made = taken.attempts.saturating_sub(1);
    match taken.abandoned {
        0 => format!(
            "given up after {made} attempts: {}",
            taken.last_error.as_deref().unwrap_or("no error recorded")
        ),
        1 => format!(
            "the process died or hung once while handling it (its lease ran out \
             with no word from its worker); given up after {made} attempts"
        ),
        n => format!(
            "the process died or hung {n} times while handling it (its lease ran out \
             with no word from its worker); given up after {made} attempts"
        ),
    }
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

/// Each event's JSON exactly as sent (`None` if the body does not parse).
pub(super) fn raw_events(body: &[u8]) -> Option<Vec<Box<RawValue>>> {
    #[derive(Deserialize)]
    struct Raw {
        events: Vec<Box<RawValue>>,
    }
    serde_json::from_slice::<Raw>(body)
        .ok()
        .map(|raw| raw.events)
}

/// Which events of a delivery (by position) were decided for good so far:
/// what a panic in the middle of it leaves behind.
#[derive(Debug, Default)]
pub(super) struct Trail(Mutex<Vec<usize>>);

impl Trail {
    fn decided_at(&self, index: usize) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(index);
    }

    /// The positions decided for good.
    pub(super) fn decided(&self) -> Vec<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
