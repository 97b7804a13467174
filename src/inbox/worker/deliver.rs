//! One delivery's run through the engine: the chunks that keep a record's
//! later events behind a failed one, and what the run ends in.

use std::collections::HashSet;
use std::future::Future;

use serde::Deserialize;
use serde_json::value::RawValue;
use time::OffsetDateTime;

use super::super::{Inbox, NewDeadLetter, NewQuarantined, Taken};
use super::{Progress, Workers};
use crate::rules::{Decision, StateKey};
use crate::store::{Store, StoreError};
use crate::{AccountId, BoxError, Envelope, Event, EventError};

impl<S: Store, I: Inbox> Workers<S, I> {
    /// Runs a delivery's events through the engine. Before the last attempt,
    /// an event whose handler failed holds back the later events of the same
    /// record (they are decided on the next attempt); on the last attempt it
    /// is dead-lettered and the record goes on.
    pub(super) async fn process<H, Fut>(
        &self,
        taken: &Taken,
        attempt: u32,
        handler: &H,
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
        let last = self.retry.is_last(attempt);
        let now = OffsetDateTime::now_utc();
        let mut items: Vec<Item> = Vec::with_capacity(envelope.events.len());
        let mut rejected = Vec::new();
        for (index, event) in envelope.events.into_iter().enumerate() {
            if let Err(error) = &event {
                rejected.push(rejected_letter(account_id, error, attempt, now));
            }
            let key = event
                .as_ref()
                .ok()
                .and_then(|e| StateKey::for_event(account_id, e));
            items.push(Item { index, key, event });
        }
        let mut failed: Vec<(usize, Option<String>, Option<String>, String)> = Vec::new();
        let mut blocked: HashSet<StateKey> = HashSet::new();
        let mut rest = items.into_iter().peekable();
        while rest.peek().is_some() {
            // A chunk holds at most one event per record, so a failure can
            // hold back the record's later events before they are decided.
            let mut chunk = Vec::new();
            let mut keys = HashSet::new();
            while let Some(item) = rest.peek() {
                match &item.key {
                    Some(key) if blocked.contains(key) => {
                        rest.next();
                        continue;
                    }
                    Some(key) if !last && !keys.insert(key.clone()) => break,
                    _ => chunk.push(rest.next().expect("peeked")),
                }
            }
            let positions: Vec<(usize, Option<StateKey>)> =
                chunk.iter().map(|i| (i.index, i.key.clone())).collect();
            let envelope = Envelope {
                account_id,
                events: chunk.into_iter().map(|i| i.event).collect(),
            };
            let owner = crate::store::ClaimOwner::for_delivery(taken.id.get(), taken.token.0);
            let report = self.engine.process_as(owner, envelope, handler).await?;
            for mut outcome in report.outcomes {
                let (index, key) = positions[outcome.index].clone();
                outcome.index = index;
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
                return Ok(Ended::Retry(format!("event {id}: {error}")));
            }
        }
        let mut letters = rejected;
        if !failed.is_empty() {
            let raw = raw_events(&taken.body);
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
        Ok(Ended::Complete(letters))
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
            Ok(_) => Ok(Ended::Complete(Vec::new())),
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
    /// Done; keep these dead letters.
    Complete(Vec<NewDeadLetter>),
    /// An event failed before the last attempt: try again later.
    Retry(String),
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

/// Each event's JSON exactly as sent (empty if the body does not parse).
fn raw_events(body: &[u8]) -> Vec<Box<RawValue>> {
    #[derive(Deserialize)]
    struct Raw {
        events: Vec<Box<RawValue>>,
    }
    serde_json::from_slice::<Raw>(body).map_or_else(|_| Vec::new(), |raw| raw.events)
}
