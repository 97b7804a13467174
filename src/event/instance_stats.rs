//! Instance seat and waitlist statistics (`CI_STATS`).

use super::fields::data_struct;
use crate::LoInstanceId;

data_struct! {
    /// Data of `CI_STATS`: seat or waitlist availability of an instance changed.
    ///
    /// Fields beyond the documented ones (ALM may add availability figures) are
    /// kept in [`InstanceStats::other`].
    #[derive(Debug, Clone, PartialEq)]
    pub struct InstanceStats {
        /// The instance (`loInstanceId`).
        "loInstanceId" => lo_instance_id: LoInstanceId,
        ;
        /// Learners on the waitlist (`waitlistCount`).
        "waitlistCount" => waitlist_count: Option<u64>,
        /// Learners enrolled (`enrollmentCount`).
        "enrollmentCount" => enrollment_count: Option<u64>,
        /// Seats in the instance (`seatLimit`); absent when unlimited.
        "seatLimit" => seat_limit: Option<u64>,
    }
}
