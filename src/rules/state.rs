//! What the rules remember about one entity.

use serde::{Deserialize, Serialize};

/// Where a learner's record stands, from its latest processed lifecycle event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Lifecycle {
    /// Latest: an enrollment.
    Enrolled,
    /// Latest: an unenrollment.
    Unenrolled,
    /// Latest: a completion.
    Completed,
    /// Latest: a completion rollback (the record is open again).
    CompletionRolledBack,
}

/// What the rules remember about one entity (a learner record, a learning
/// object, an instance, or an instance's statistics).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EntityState {
    /// The newest applied event time, in milliseconds since the Unix epoch
    /// (lifecycle events only, for learner records).
    pub newest_millis: Option<i64>,
    /// The record's latest processed lifecycle event.
    pub lifecycle: Option<Lifecycle>,
    /// Whether a `LEARNER_PROGRESS` not older than `newest_millis` was
    /// processed since the record's latest lifecycle event (its
    /// enrollment, unenrollment, completion or rollback): while it is, rule
    /// 1 ignores enrollments. (Stored under its former name,
    /// `progress_since_unenrollment`, too.)
    #[serde(alias = "progress_since_unenrollment")]
    pub progress_since_lifecycle: bool,
    /// The newest time of those `LEARNER_PROGRESS` events, in milliseconds
    /// (`None` in states stored before it was kept: rule 1 then ignores
    /// every enrollment while `progress_since_lifecycle` is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest_progress_millis: Option<i64>,
    /// The newest time of every `LEARNER_PROGRESS` processed for the
    /// record, in milliseconds, kept across lifecycle events: rule 4
    /// ignores a progress older than it. (`None` in states stored before
    /// it was kept, and until the record's first progress.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_progress_millis: Option<i64>,
}

impl EntityState {
    /// A learner record's status as the rules see it: the latest processed
    /// lifecycle event, or [`Lifecycle::Enrolled`] when progress newer than
    /// it was processed on a record with no lifecycle event or an
    /// unenrolled one (progress implies an enrollment, which rule 1 drops).
    pub fn learner_status(&self) -> Option<Lifecycle> {
        match self.lifecycle {
            None | Some(Lifecycle::Unenrolled) if self.progress_since_lifecycle => {
                Some(Lifecycle::Enrolled)
            }
            other => other,
        }
    }
}
