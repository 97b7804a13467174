//! Learning object instance events (modification, deletion).

use serde::{Deserialize, Serialize};

use crate::{LoId, LoInstanceId, LoType};

/// Data of `LEARNING_OBJECT_INSTANCE_MODIFICATION`,
/// `LEARNING_OBJECT_INSTANCE_DELETION` and
/// `LEARNING_OBJECT_INSTANCE_MODIFICATION_BATCH`.
///
/// Retiring an instance is reported as a modification, never a deletion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct InstanceChange {
    /// The instance (`loInstanceId`).
    pub lo_instance_id: LoInstanceId,
    /// The learning object (`loId`). Kept as sent: ALM's samples show it can
    /// disagree with the object named inside `loInstanceId`.
    pub lo_id: LoId,
    /// The learning object's type (`loType`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lo_type: Option<LoType>,
}
