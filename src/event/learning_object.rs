//! Learning object events (draft, modification, deletion).

use serde::{Deserialize, Serialize};

use crate::{LoId, LoType};

/// Data of `LEARNING_OBJECT_DRAFT`, `LEARNING_OBJECT_MODIFICATION`,
/// `LEARNING_OBJECT_DELETION` and `LEARNING_OBJECT_MODIFICATION_BATCH`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct LearningObjectChange {
    /// The learning object (`loId`).
    pub lo_id: LoId,
    /// Its type (`loType`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lo_type: Option<LoType>,
}
