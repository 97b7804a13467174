//! Completion events.

use super::EnrollmentSource;
use super::fields::data_struct;
use crate::{LoId, LoInstanceId, LoType, Timestamp, UserId};

data_struct! {
    /// Data of `COURSE_COMPLETED`, `LEARNING_PATH_COMPLETED`,
    /// `CERTIFICATION_COMPLETED` and their `_BATCH` twins.
    ///
    /// `hasPassed` is absent from ALM's certification samples, so it is optional.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Completion {
        /// The learner (`userId`).
        "userId" => user_id: UserId,
        /// The learning object (`loId`).
        "loId" => lo_id: LoId,
        /// The instance the learner completed (`loInstanceId`).
        "loInstanceId" => lo_instance_id: LoInstanceId,
        ;
        /// The learning object's type (`loType`).
        "loType" => lo_type: Option<LoType>,
        /// How the learner had been enrolled (`enrollmentSource`).
        "enrollmentSource" => enrollment_source: Option<EnrollmentSource>,
        /// When the learner completed (`dateCompleted`).
        "dateCompleted" => date_completed: Option<Timestamp>,
        /// Whether the learner passed (`hasPassed`).
        "hasPassed" => has_passed: Option<bool>,
    }
}
