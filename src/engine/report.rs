//! What [`Engine::process`](super::Engine::process) answers: one outcome per
//! event, and the status for ALM.

use http::StatusCode;

use super::failure::EventFailure;
use crate::Decision;
use crate::{EventError, EventId, EventName};

/// What happened to one event of a delivery.
///
/// ```
/// use alm_webhooks::{Envelope, Decision, Engine};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let body = br#"{"accountId":1,"events":[
///   {"eventId":"a","eventName":"LEARNING_OBJECT_DRAFT","timestamp":1725519188,
///    "data":{"loId":"course:1"}},
///   {"eventId":"b","eventName":"COURSE_ENROLLMENT","timestamp":1725519188,
///    "data":{"userId":"not a number"}}]}"#;
/// let envelope = Envelope::from_slice(body).unwrap();
/// let report = Engine::in_memory()
///     .process(envelope, |_event| async { Err("CRM down".into()) })
///     .await
///     .unwrap();
/// for outcome in &report.outcomes {
///     match outcome.decision {
///         Decision::Failed => assert_eq!(outcome.error_message(), Some("CRM down")),
///         Decision::Malformed => {
///             let error = outcome.event_error.as_ref().unwrap();
///             assert_eq!(error.path(), "events[1].data.userId");
///         }
///         other => panic!("{other}"),
///     }
/// }
/// # }
/// ```
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
    /// For [`Decision::Failed`], why: the handler's error (its message with
    /// the whole `source()` chain, and the error itself), a panic, or a
    /// permanent store error.
    pub error: Option<EventFailure>,
    /// For [`Decision::Malformed`], why: the event's index, field path,
    /// position and raw JSON, so the caller can keep the event (and replay it
    /// once the cause is fixed).
    pub event_error: Option<Box<EventError>>,
}

impl EventOutcome {
    /// The failure's message, with the error's whole `source()` chain, for
    /// [`Decision::Failed`]; see [`EventFailure::message`].
    pub fn error_message(&self) -> Option<&str> {
        self.error.as_ref().map(EventFailure::message)
    }
}

/// The decisions for a whole delivery: one [`EventOutcome`] per event, and
/// the status to answer ALM with.
///
/// ```
/// use alm_webhooks::{Envelope, Decision, Engine};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let body = br#"{"accountId":1,"events":[
///   {"eventId":"a","eventName":"LEARNING_OBJECT_DRAFT","timestamp":1725519188,
///    "data":{"loId":"course:1"}},
///   {"eventId":"b","eventName":"LEARNING_OBJECT_DRAFT","timestamp":1725519189,
///    "data":{"loId":"course:2"}}]}"#;
/// let engine = Engine::in_memory();
/// let envelope = Envelope::from_slice(body).unwrap();
/// let report = engine
///     .process(envelope.clone(), |event| async move {
///         if event.event_id.as_str() == "b" {
///             return Err("CRM down".into());
///         }
///         Ok(())
///     })
///     .await
///     .unwrap();
/// // One failure: answer 500, so ALM delivers again.
/// assert!(!report.is_acknowledged());
/// assert_eq!(report.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
///
/// // The redelivery: `a` is a duplicate, `b` runs again and succeeds.
/// let again = engine.process(envelope, |_event| async { Ok(()) }).await.unwrap();
/// let decisions: Vec<_> = again.outcomes.iter().map(|o| o.decision).collect();
/// assert_eq!(decisions, [Decision::Duplicate, Decision::Processed]);
/// assert_eq!(again.status(), http::StatusCode::ACCEPTED);
/// # }
/// ```
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
    pub fn malformed(&self) -> impl Iterator<Item = &EventError> {
        self.outcomes
            .iter()
            .filter_map(|o| o.event_error.as_deref())
    }
}
