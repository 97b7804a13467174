//! Learning object events (draft, modification, deletion).

use super::fields::data_struct;
use crate::{LoId, LoType};

data_struct! {
    /// Data of `LEARNING_OBJECT_DRAFT`, `LEARNING_OBJECT_MODIFICATION`,
    /// `LEARNING_OBJECT_DELETION` and `LEARNING_OBJECT_MODIFICATION_BATCH`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct LearningObjectChange {
        /// The learning object (`loId`).
        "loId" => lo_id: LoId,
        ;
        /// Its type (`loType`).
        "loType" => lo_type: Option<LoType>,
    }
}
