//! What the workers archive of a delivery: each event's ids, read before
//! the engine takes it, and the decision the engine came to.

use crate::engine::EventOutcome;
use crate::inbox::ArchivedEvent;
use crate::rules::Decision;
use crate::{Event, EventError};

/// The archive's record of a delivery's events, filled in as the engine
/// decides them.
#[derive(Debug, Default)]
pub(super) struct Decisions(Vec<Option<ArchivedEvent>>);

impl Decisions {
    /// Notes the event at `index` (parsed or not) before it is decided.
    pub(super) fn read(&mut self, index: usize, event: &Result<Event, Box<EventError>>) {
        let position = u32::try_from(index).unwrap_or(u32::MAX);
        let mut archived = ArchivedEvent::new(position, "");
        match event {
            Ok(event) => {
                archived = archived
                    .with_event_id(event.event_id.clone())
                    .with_event_name(event.event_name.clone());
                if let Some(user) = event.user_id() {
                    archived = archived.with_user_id(user);
                }
                if let Some(instance) = event.lo_instance_id() {
                    archived = archived.with_lo_instance_id(instance.clone());
                }
                if let Some(at) = &event.timestamp {
                    archived = archived.with_timestamp(at.instant());
                }
            }
            Err(error) => {
                archived.event_id = error.event_id.clone();
                archived.event_name = error.event_name.clone();
                archived.error = Some(error.to_string());
            }
        }
        if self.0.len() <= index {
            self.0.resize(index + 1, None);
        }
        self.0[index] = Some(archived);
    }

    /// Records the engine's decision on the event at `index`, on
    /// `attempt`; `last` says a failure is given up (dead-lettered).
    pub(super) fn decided(
        &mut self,
        index: usize,
        outcome: &EventOutcome,
        attempt: u32,
        last: bool,
    ) {
        let Some(Some(archived)) = self.0.get_mut(index) else {
            return;
        };
        archived.decision = outcome.decision.as_str().to_owned();
        archived.attempts = attempt;
        archived.reason = match outcome.decision {
            Decision::Ignored(reason) => Some(reason.code().to_owned()),
            // On a retry, the event may have been decided by an earlier
            // attempt of this very delivery.
            Decision::Duplicate if attempt > 1 => Some("earlier_attempt_or_delivery".to_owned()),
            d if !d.is_final() && last => Some("dead_lettered".to_owned()),
            _ => None,
        };
        if let Some(error) = outcome.error_message() {
            archived.error = Some(error.to_owned());
        } else if let Some(error) = &outcome.event_error {
            archived.error = Some(error.to_string());
        }
    }

    /// The decided events, by position.
    pub(super) fn into_events(self) -> Vec<ArchivedEvent> {
        self.0
            .into_iter()
            .flatten()
            .filter(|e| !e.decision.is_empty())
            .collect()
    }
}
