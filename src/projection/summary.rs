//! A record's [`Summary`]: for each field, the event that wins it so far
//! (a maximum in [`EventKey`] order), so that merging is a join:
//! commutative, associative and idempotent.

use serde::{Deserialize, Serialize};

use super::event::{EventKey, LearnerEvent, LearnerEventKind};
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
