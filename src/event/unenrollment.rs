//! Unenrollment events.

use serde::{Deserialize, Serialize};

use super::EnrollmentSource;
use crate::{LoId, LoInstanceId, LoType, UserId};

/// Data of `COURSE_UNENROLLMENT`, `LEARNING_PATH_UNENROLLMENT`,
/// `CERTIFICATION_UNENROLLMENT` and their `_BATCH` twins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Unenrollment {
    /// The learner (`userId`).
    pub user_id: UserId,
    /// The learning object (`loId`).
    pub lo_id: LoId,
    /// The instance the learner left (`loInstanceId`).
    pub lo_instance_id: LoInstanceId,
    /// The learning object's type (`loType`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lo_type: Option<LoType>,
    /// How the learner had been enrolled (`enrollmentSource`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrollment_source: Option<EnrollmentSource>,
}
