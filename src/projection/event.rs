//! What the merge reads of one event: the record it is about, its place in
//! the merge order ([`EventKey`]) and the few fields a record takes from it.

use serde::{Deserialize, Serialize};

use crate::event::EnrollmentSource;
use crate::{AccountId, Event, EventData, EventId, EventName, LoInstanceId, UserId};

/// What a learner event does to its record, in the order that breaks ties
/// of equal `timestamp` (an enrollment first, an unenrollment last).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum LearnerEventKind {
    /// An enrollment (`*_ENROLLMENT`, `*_ENROLLMENT_BATCH`): starts an attempt.
    Enrollment,
    /// `LEARNER_PROGRESS`.
    Progress,
    /// A completion (`*_COMPLETED`, `*_COMPLETED_BATCH`).
    Completion,
    /// A completion rollback (`*_COMPLETION_ROLLBACK`, `…_BATCH`): starts
    /// an attempt again.
    Rollback,
    /// An unenrollment (`*_UNENROLLMENT`, `*_UNENROLLMENT_BATCH`).
    Unenrollment,
}

/// Where an event stands in the merge order: by `timestamp` (milliseconds),
/// then by [`LearnerEventKind`], then (two `LEARNER_PROGRESS` only) by the
/// higher percent, then by `eventId` (byte order). Two different events
/// never compare equal; the arrival order never enters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EventKey {
    /// `timestamp` in milliseconds since the Unix epoch (0 when absent).
    pub at: i64,
    /// The event's kind.
    pub kind: LearnerEventKind,
    /// The progress percent as an order-keeping integer (0 for other kinds).
    pub tie: u64,
    /// The event's id.
    pub event_id: EventId,
}

/// The facts of one learner event that its record is merged from; built
/// from a typed [`Event`] with [`LearnerEvent::from_event`].
///
/// ```
/// use alm_webhooks::Envelope;
/// use alm_webhooks::projection::{LearnerEvent, LearnerEventKind};
/// let body = br#"{"accountId":1,"events":[{"eventId":"e1","eventName":"COURSE_COMPLETED",
///   "timestamp":1725524713,"data":{"userId":7,"loId":"course:1","loInstanceId":"course:1_2",
///   "dateCompleted":1725524713,"hasPassed":true}}]}"#;
/// let envelope = Envelope::from_slice(body).unwrap();
/// let fact = LearnerEvent::from_event(envelope.parsed().next().unwrap()).unwrap();
/// assert_eq!(fact.key.kind, LearnerEventKind::Completion);
/// assert_eq!(fact.has_passed, Some(true));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LearnerEvent {
    /// The account.
    pub account_id: AccountId,
    /// The learner.
    pub user_id: UserId,
    /// The instance, in its canonical spelling.
    pub lo_instance_id: LoInstanceId,
    /// The event's place in the merge order.
    pub key: EventKey,
    /// The event's name, as sent.
    pub event_name: EventName,
    /// `dateEnrolled`, `dateCompleted` or `dateStarted` (the one the kind
    /// carries), in milliseconds.
    pub date: Option<i64>,
    /// `progressPercent` of a progress event.
    pub percent: Option<f64>,
    /// `hasPassed` of a completion.
    pub has_passed: Option<bool>,
    /// `enrollmentSource`, when sent.
    pub enrollment_source: Option<EnrollmentSource>,
}

impl LearnerEvent {
    /// The facts of a learner event (enrollment, unenrollment, completion,
    /// rollback, progress), or `None` for any other event.
    pub fn from_event(event: &Event) -> Option<Self> {
        let millis = |t: &Option<crate::Timestamp>| t.as_ref().map(crate::Timestamp::unix_millis);
        let (kind, user_id, instance, date, percent, has_passed, source) = match &event.data {
            EventData::Enrollment(d) | EventData::CompletionRollback(d) => {
                let kind = if matches!(event.data, EventData::Enrollment(_)) {
                    LearnerEventKind::Enrollment
                } else {
                    LearnerEventKind::Rollback
                };
                let date = millis(&d.date_enrolled);
                (
                    kind,
                    d.user_id,
                    &d.lo_instance_id,
                    date,
                    None,
                    None,
                    d.enrollment_source.clone(),
                )
            }
            EventData::Unenrollment(d) => {
                let source = d.enrollment_source.clone();
                (
                    LearnerEventKind::Unenrollment,
                    d.user_id,
                    &d.lo_instance_id,
                    None,
                    None,
                    None,
                    source,
                )
            }
            EventData::Completion(d) => (
                LearnerEventKind::Completion,
                d.user_id,
                &d.lo_instance_id,
                millis(&d.date_completed),
                None,
                d.has_passed,
                d.enrollment_source.clone(),
            ),
            EventData::LearnerProgress(d) => (
                LearnerEventKind::Progress,
                d.user_id,
                &d.lo_instance_id,
                millis(&d.date_started),
                d.progress_percent.map(crate::event::Percent::get),
                None,
                None,
            ),
            _ => return None,
        };
        let key = EventKey {
            at: millis(&event.timestamp).unwrap_or(0),
            kind,
            tie: percent.map_or(0, ordered_bits),
            event_id: event.event_id.clone(),
        };
        Some(Self {
            account_id: event.account_id,
            user_id,
            lo_instance_id: instance.canonical(),
            key,
            event_name: event.event_name.clone(),
            date,
            percent,
            has_passed,
            enrollment_source: source,
        })
    }
}

/// An `f64` as a `u64` in the same order (IEEE 754 total order).
pub(crate) fn ordered_bits(value: f64) -> u64 {
    let bits = value.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

/// A record of the learner table by its key: account, learner, instance.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) type RecordKey = (i64, i64, String);

/// The learner events among `events`, by the record they change, each
/// record's in their order (what a store's projection hook writes per
/// commit).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn by_record<'a>(
    events: impl Iterator<Item = &'a Event>,
) -> std::collections::BTreeMap<RecordKey, Vec<LearnerEvent>> {
    let mut records: std::collections::BTreeMap<RecordKey, Vec<LearnerEvent>> =
        std::collections::BTreeMap::new();
    for fact in events.filter_map(LearnerEvent::from_event) {
        let (a, u) = (fact.account_id.get() as i64, fact.user_id.get() as i64);
        records
            .entry((a, u, fact.lo_instance_id.to_string()))
            .or_default()
            .push(fact);
    }
    records
}
