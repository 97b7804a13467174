//! Unenrollment events.

use super::EnrollmentSource;
use super::fields::data_struct;
use crate::{LoId, LoInstanceId, LoType, UserId};

data_struct! {
    /// Data of `COURSE_UNENROLLMENT`, `LEARNING_PATH_UNENROLLMENT`,
    /// `CERTIFICATION_UNENROLLMENT` and their `_BATCH` twins.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Unenrollment {
        /// The learner (`userId`).
        "userId" => user_id: UserId,
        /// The learning object (`loId`).
        "loId" => lo_id: LoId,
        /// The instance the learner left (`loInstanceId`).
        "loInstanceId" => lo_instance_id: LoInstanceId,
        ;
        /// The learning object's type (`loType`).
        "loType" => lo_type: Option<LoType>,
        /// How the learner had been enrolled (`enrollmentSource`).
        "enrollmentSource" => enrollment_source: Option<EnrollmentSource>,
    }
}
