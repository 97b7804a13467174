//! Learning object instance events (modification, deletion).

use super::fields::data_struct;
use crate::{LoId, LoInstanceId, LoType};

data_struct! {
    /// Data of `LEARNING_OBJECT_INSTANCE_MODIFICATION`,
    /// `LEARNING_OBJECT_INSTANCE_DELETION` and
    /// `LEARNING_OBJECT_INSTANCE_MODIFICATION_BATCH`.
    ///
    /// Retiring an instance is reported as a modification, never a deletion.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct InstanceChange {
        /// The instance (`loInstanceId`).
        "loInstanceId" => lo_instance_id: LoInstanceId,
        /// The learning object (`loId`). Kept as sent: ALM's samples show it can
        /// disagree with the object named inside `loInstanceId`.
        "loId" => lo_id: LoId,
        ;
        /// The learning object's type (`loType`).
        "loType" => lo_type: Option<LoType>,
    }
}
