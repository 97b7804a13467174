//! Enrollment events and completion rollbacks, which share their shape.

use super::EnrollmentSource;
use super::fields::data_struct;
use crate::{LoId, LoInstanceId, LoType, Timestamp, UserId};

data_struct! {
    /// Data of `COURSE_ENROLLMENT`, `LEARNING_PATH_ENROLLMENT`,
    /// `CERTIFICATION_ENROLLMENT` and their `_BATCH` twins.
    ///
    /// ```
    /// use alm_webhooks::{Envelope, EventData};
    /// let body = br#"{"accountId":1234,"events":[{"eventId":"e1","eventName":"COURSE_ENROLLMENT",
    ///   "timestamp":1725524713,"data":{"userId":1234567,"loId":"course:1234567",
    ///   "loInstanceId":"course:1234567_1234567","loType":"course",
    ///   "enrollmentSource":"SELF_ENROLL","dateEnrolled":1725524713}}]}"#;
    /// let envelope = Envelope::from_slice(body).unwrap();
    /// let event = envelope.events[0].as_ref().unwrap();
    /// let EventData::Enrollment(enrollment) = &event.data else { panic!() };
    /// assert_eq!(enrollment.user_id.get(), 1234567);
    /// assert_eq!(enrollment.date_enrolled.as_ref().unwrap().instant().unix_timestamp(), 1725524713);
    /// ```
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Enrollment {
        /// The learner (`userId`).
        "userId" => user_id: UserId,
        /// The learning object (`loId`).
        "loId" => lo_id: LoId,
        /// The instance the learner is enrolled in (`loInstanceId`).
        "loInstanceId" => lo_instance_id: LoInstanceId,
        ;
        /// The learning object's type (`loType`).
        "loType" => lo_type: Option<LoType>,
        /// Who enrolled the learner (`enrollmentSource`).
        "enrollmentSource" => enrollment_source: Option<EnrollmentSource>,
        /// When the learner was enrolled (`dateEnrolled`).
        "dateEnrolled" => date_enrolled: Option<Timestamp>,
    }
}

/// Data of `LEARNING_PATH_COMPLETION_ROLLBACK` and its `_BATCH` twin: the same
/// fields as an enrollment. The learner's completion is withdrawn, so the
/// record is open again.
pub type CompletionRollback = Enrollment;
