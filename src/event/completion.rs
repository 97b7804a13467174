//! Completion events.

use serde::{Deserialize, Serialize};

use super::EnrollmentSource;
use crate::{LoId, LoInstanceId, LoType, Timestamp, UserId};

/// Data of `COURSE_COMPLETED`, `LEARNING_PATH_COMPLETED`,
/// `CERTIFICATION_COMPLETED` and their `_BATCH` twins.
///
/// `hasPassed` is absent from ALM's certification samples, so it is optional.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Completion {
    /// The learner (`userId`).
    pub user_id: UserId,
    /// The learning object (`loId`).
    pub lo_id: LoId,
    /// The instance the learner completed (`loInstanceId`).
    pub lo_instance_id: LoInstanceId,
    /// The learning object's type (`loType`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lo_type: Option<LoType>,
    /// How the learner had been enrolled (`enrollmentSource`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrollment_source: Option<EnrollmentSource>,
    /// When the learner completed (`dateCompleted`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_completed: Option<Timestamp>,
    /// Whether the learner passed (`hasPassed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub has_passed: Option<bool>,
}
