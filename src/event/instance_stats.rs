//! Instance seat and waitlist statistics (`CI_STATS`).

use serde::{Deserialize, Serialize};

use crate::LoInstanceId;

/// Data of `CI_STATS`: seat or waitlist availability of an instance changed.
///
/// Fields beyond the documented ones (ALM may add availability figures) are
/// kept in [`InstanceStats::other`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct InstanceStats {
    /// The instance (`loInstanceId`).
    pub lo_instance_id: LoInstanceId,
    /// Learners on the waitlist (`waitlistCount`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waitlist_count: Option<u64>,
    /// Learners enrolled (`enrollmentCount`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrollment_count: Option<u64>,
    /// Seats in the instance (`seatLimit`); absent when unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seat_limit: Option<u64>,
    /// Any other fields, as sent.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}
