//! The merge: a record's [`Summary`] keeps, for each field, the event that
//! wins it so far (a maximum in [`EventKey`] order), so that merging is a
//! join: commutative, associative and idempotent.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::event::{EventKey, LearnerEvent, LearnerEventKind};
use super::record::LearnerRecord;
use crate::EventName;
use crate::event::EnrollmentSource;

/// An event that wins a field, with the value it gives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Won<V> {
    pub(crate) key: EventKey,
    pub(crate) value: V,
}

/// For each field, the winning event so far; the record is a function of
/// it (see the table in [`crate::projection`]).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub(crate) struct Summary {
    /// The newest event of any kind: `last_event_*`.
    pub(crate) last: Option<Won<EventName>>,
    /// The newest enrollment, unenrollment, completion or rollback.
    pub(crate) lifecycle: Option<EventKey>,
    /// The newest enrollment or rollback: where the current attempt begins.
    pub(crate) attempt: Option<EventKey>,
    /// The newest progress.
    pub(crate) progress: Option<EventKey>,
    /// The newest progress that carries `progressPercent`.
    pub(crate) percent: Option<Won<f64>>,
    /// The newest progress that carries `dateStarted`.
    pub(crate) started: Option<Won<i64>>,
    /// The newest completion: `dateCompleted` (or its time) and `hasPassed`.
    pub(crate) completion: Option<Won<(i64, Option<bool>)>>,
    /// The newest enrollment (its `dateEnrolled` or time), or rollback
    /// carrying `dateEnrolled`.
    pub(crate) enrolled: Option<Won<i64>>,
    /// The newest lifecycle event carrying `enrollmentSource`.
    pub(crate) source: Option<Won<EnrollmentSource>>,
}

/// Keeps the newer of `slot` and `(key, value)`.
fn keep<V>(slot: &mut Option<Won<V>>, key: &EventKey, value: impl FnOnce() -> V) {
    if slot.as_ref().is_none_or(|won| *key > won.key) {
        *slot = Some(Won {
            key: key.clone(),
            value: value(),
        });
    }
}

fn keep_key(slot: &mut Option<EventKey>, key: &EventKey) {
    if slot.as_ref().is_none_or(|won| key > won) {
        *slot = Some(key.clone());
    }
}

impl Summary {
    /// Folds one event in.
    pub(crate) fn add(&mut self, event: &LearnerEvent) {
        use LearnerEventKind as K;
        let key = &event.key;
        keep(&mut self.last, key, || event.event_name.clone());
        match key.kind {
            K::Progress => {
                keep_key(&mut self.progress, key);
                if let Some(percent) = event.percent {
                    keep(&mut self.percent, key, || percent);
                }
                if let Some(date) = event.date {
                    keep(&mut self.started, key, || date);
                }
                return;
            }
            K::Enrollment => {
                keep(&mut self.enrolled, key, || event.date.unwrap_or(key.at));
                keep_key(&mut self.attempt, key);
            }
            K::Rollback => {
                if let Some(date) = event.date {
                    keep(&mut self.enrolled, key, || date);
                }
                keep_key(&mut self.attempt, key);
            }
            K::Completion => {
                let date = event.date.unwrap_or(key.at);
                keep(&mut self.completion, key, || (date, event.has_passed));
            }
            K::Unenrollment => {}
        }
        keep_key(&mut self.lifecycle, key);
        if let Some(source) = &event.enrollment_source {
            keep(&mut self.source, key, || source.clone());
        }
    }
}

/// Merges one event into its record's row (`None` for a record not seen
/// yet) and returns the new row, with `updated_at` = `now`. The result
/// depends on the set of events merged so far, never on their order or on
/// repeats (see the table in [`crate::projection`]).
///
/// `event` must be about the row's record (`account_id`, `user_id`,
/// `lo_instance_id`); the row's key is kept.
///
/// ```
/// use alm_webhooks::Envelope;
/// use alm_webhooks::projection::{self, LearnerEvent, LearnerStatus};
/// let body = br#"{"accountId":1,"events":[
///   {"eventId":"c","eventName":"COURSE_COMPLETED","timestamp":30,
///    "data":{"userId":7,"loId":"course:1","loInstanceId":"course:1_2"}},
///   {"eventId":"p","eventName":"LEARNER_PROGRESS","timestamp":20,
///    "data":{"userId":7,"loId":"course:1","loInstanceId":"course:1_2","progressPercent":50}}]}"#;
/// let envelope = Envelope::from_slice(body).unwrap();
/// let now = time::OffsetDateTime::UNIX_EPOCH;
/// let mut row = None;
/// for event in envelope.parsed() {
///     let fact = LearnerEvent::from_event(event).unwrap();
///     row = Some(projection::merge(row.as_ref(), &fact, now));
/// }
/// let row = row.unwrap();
/// assert_eq!(row.status, LearnerStatus::Completed);
/// assert_eq!(row.progress_percent, 100.0);
/// assert_eq!(row.last_event_id.as_str(), "c");
/// ```
pub fn merge(
    row: Option<&LearnerRecord>,
    event: &LearnerEvent,
    now: OffsetDateTime,
) -> LearnerRecord {
    let mut summary = row.map(|r| r.summary.clone()).unwrap_or_default();
    summary.add(event);
    match row {
        Some(row) => LearnerRecord::from_summary(
            row.account_id,
            row.user_id,
            row.lo_instance_id.clone(),
            summary,
            now,
        ),
        None => LearnerRecord::from_summary(
            event.account_id,
            event.user_id,
            event.lo_instance_id.clone(),
            summary,
            now,
        ),
    }
    .expect("a summary with an event in it makes a record")
}
