//! Learner progress events.

use serde::{Deserialize, Serialize};

use crate::{LoId, LoInstanceId, LoType, Timestamp, UserId};

/// Data of `LEARNER_PROGRESS`: a learner completed a module.
///
/// ALM aggregates these and may send them up to 15 minutes late. A course
/// completed through a learning path produces two of them, one for the course
/// and one for the path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct LearnerProgress {
    /// The learner (`userId`).
    pub user_id: UserId,
    /// The learning object (`loId`).
    pub lo_id: LoId,
    /// The instance (`loInstanceId`).
    pub lo_instance_id: LoInstanceId,
    /// The learning object's type (`loType`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lo_type: Option<LoType>,
    /// When the learner started (`dateStarted`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_started: Option<Timestamp>,
    /// Progress in percent (`progressPercent`), kept as the number that was
    /// sent (an integer in every sample; a fraction would be kept too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_percent: Option<serde_json::Number>,
}

impl LearnerProgress {
    /// Progress in percent as a float, if it was sent.
    pub fn progress_percent_f64(&self) -> Option<f64> {
        self.progress_percent
            .as_ref()
            .and_then(serde_json::Number::as_f64)
    }
}
