//! What [`Engine::process`](super::Engine::process) answers: one outcome per
//! event, and the status for ALM.

use http::StatusCode;

use crate::rules::Decision;
use crate::{EventError, EventId, EventName};

/// What happened to one event of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventOutcome {
    /// The event's position in the envelope.
    pub index: usize,
    /// Its `eventId` as sent, when known.
    pub event_id: Option<EventId>,
    /// Its `eventName`, when known.
    pub event_name: Option<EventName>,
    /// The decision.
    pub decision: Decision,
    /// The handler's error message, for [`Decision::Failed`].
    pub error: Option<String>,
    /// For [`Decision::Rejected`], why: the event's index, field path,
    /// position and raw JSON, so the caller can keep the event (and replay it
    /// once the cause is fixed).
    pub event_error: Option<Box<EventError>>,
}

/// The decisions for a whole delivery.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeliveryReport {
    /// One outcome per event, in envelope order.
    pub outcomes: Vec<EventOutcome>,
}

impl DeliveryReport {
    /// Whether every event got a final decision, so the delivery can be
    /// acknowledged.
    pub fn is_acknowledged(&self) -> bool {
        self.outcomes.iter().all(|o| o.decision.is_final())
    }

    /// The status to answer ALM with: `202 Accepted` when every event got a
    /// final decision (whatever it was); `500` when a handler failed, and
    /// `503` when an event is still in flight elsewhere (or deferred behind
    /// one), so ALM redelivers.
    pub fn status(&self) -> StatusCode {
        if self.outcomes.iter().any(|o| o.decision == Decision::Failed) {
            StatusCode::INTERNAL_SERVER_ERROR
        } else if self.outcomes.iter().any(|o| !o.decision.is_final()) {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::ACCEPTED
        }
    }

    /// The events that did not parse (or lacked what their configured family
    /// needs), with their errors: keep them for a person to look at.
    pub fn rejected(&self) -> impl Iterator<Item = &EventError> {
        self.outcomes
            .iter()
            .filter_map(|o| o.event_error.as_deref())
    }
}
