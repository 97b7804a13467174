//! A learner record: one row of the projection.

use time::OffsetDateTime;

use super::event::EventKey;
use super::summary::Summary;
use crate::event::EnrollmentSource;
use crate::{AccountId, EventId, EventName, LoId, LoInstanceId, LoType, UserId};

/// Where a learner stands in a learning object instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LearnerStatus {
    /// Enrolled, no progress in this attempt yet.
    Enrolled,
    /// Progress was made in this attempt (or progress implies an enrollment
    /// whose event is missing).
    InProgress,
    /// Completed (progress is 100).
    Completed,
    /// Unenrolled.
    Unenrolled,
}

impl LearnerStatus {
    /// The status as stored and exported: `enrolled`, `in_progress`,
    /// `completed`, `unenrolled`.
    ///
    /// ```
    /// use alm_webhooks::projection::LearnerStatus;
    /// assert_eq!(LearnerStatus::InProgress.as_str(), "in_progress");
    /// assert_eq!("completed".parse::<LearnerStatus>(), Ok(LearnerStatus::Completed));
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enrolled => "enrolled",
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Unenrolled => "unenrolled",
        }
    }
}

impl std::str::FromStr for LearnerStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "enrolled" => Self::Enrolled,
            "in_progress" => Self::InProgress,
            "completed" => Self::Completed,
            "unenrolled" => Self::Unenrolled,
            _ => return Err(UnknownStatus),
        })
    }
}

/// A status text that is none of the four.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a learner status")]
#[non_exhaustive]
pub struct UnknownStatus;

/// One learner record: (`account_id`, `user_id`, `lo_instance_id`), merged
/// from every learner event of it (see the table in [`crate::projection`]).
/// Times are UTC.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LearnerRecord {
    /// The account.
    pub account_id: AccountId,
    /// The learner.
    pub user_id: UserId,
    /// The learning object (canonical spelling).
    pub lo_id: LoId,
    /// The instance (canonical spelling: `learningProgram:` for both
    /// spellings of a learning path).
    pub lo_instance_id: LoInstanceId,
    /// The learning object's type, from its id (`learningProgram` for both
    /// spellings).
    pub lo_type: LoType,
    /// The status.
    pub status: LearnerStatus,
    /// Progress in the current attempt, 0 to 100; 100 when completed.
    pub progress_percent: f64,
    /// `dateEnrolled` of the newest enrollment (its `timestamp` when absent).
    pub date_enrolled: Option<OffsetDateTime>,
    /// `dateStarted` of the newest progress of the current attempt.
    pub date_started: Option<OffsetDateTime>,
    /// `dateCompleted` of the newest completion of the current attempt.
    pub date_completed: Option<OffsetDateTime>,
    /// `hasPassed` of the newest completion of the current attempt.
    pub has_passed: Option<bool>,
    /// `enrollmentSource` of the newest lifecycle event that carries one.
    pub enrollment_source: Option<EnrollmentSource>,
    /// The newest event merged (by the merge order).
    pub last_event_id: EventId,
    /// Its name, as sent.
    pub last_event_name: EventName,
    /// Its `timestamp`.
    pub last_event_time: OffsetDateTime,
    /// When the row was last written (by the store's clock); not part of
    /// the convergence contract.
    pub updated_at: OffsetDateTime,
    pub(crate) summary: Summary,
}

/// Milliseconds since the epoch as a UTC time (the epoch if out of range,
/// which a parsed `Timestamp` never is).
pub(crate) fn from_millis(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

impl LearnerRecord {
    /// The record its summary describes; `None` for an empty summary.
    pub(crate) fn from_summary(
        account_id: AccountId,
        user_id: UserId,
        lo_instance_id: LoInstanceId,
        summary: Summary,
        updated_at: OffsetDateTime,
    ) -> Option<Self> {
        use super::event::LearnerEventKind as K;
        let last = summary.last.as_ref()?;
        let after = |key: &EventKey, than: Option<&EventKey>| than.is_none_or(|t| key > t);
        let progress_after =
            |than: Option<&EventKey>| summary.progress.as_ref().is_some_and(|p| after(p, than));
        let attempt = summary.attempt.as_ref();
        let lifecycle = summary.lifecycle.as_ref();
        let status = match lifecycle.map(|k| k.kind) {
            Some(K::Completion) => LearnerStatus::Completed,
            Some(K::Unenrollment) if !progress_after(lifecycle) => LearnerStatus::Unenrolled,
            _ if progress_after(lifecycle) => LearnerStatus::InProgress,
            _ => LearnerStatus::Enrolled,
        };
        let progress_percent = match (&summary.percent, status) {
            (_, LearnerStatus::Completed) => 100.0,
            (Some(p), _) if after(&p.key, attempt) => p.value,
            _ => 0.0,
        };
        let completion = summary
            .completion
            .as_ref()
            .filter(|c| after(&c.key, attempt));
        let lo_instance_id = lo_instance_id.canonical();
        let lo_id = lo_instance_id.lo_id();
        Some(Self {
            account_id,
            user_id,
            lo_type: lo_id.lo_type(),
            lo_id,
            lo_instance_id,
            status,
            progress_percent,
            date_enrolled: summary.enrolled.as_ref().map(|w| from_millis(w.value)),
            date_started: summary
                .started
                .as_ref()
                .filter(|s| after(&s.key, attempt))
                .map(|s| from_millis(s.value)),
            date_completed: completion.map(|c| from_millis(c.value.0)),
            has_passed: completion.and_then(|c| c.value.1),
            enrollment_source: summary.source.as_ref().map(|s| s.value.clone()),
            last_event_id: last.key.event_id.clone(),
            last_event_name: last.value.clone(),
            last_event_time: from_millis(last.key.at),
            updated_at,
            summary,
        })
    }
}
