//! Learner progress events.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::fields::data_struct;
use crate::{LoId, LoInstanceId, LoType, Timestamp, UserId};

data_struct! {
    /// Data of `LEARNER_PROGRESS`: a learner completed a module.
    ///
    /// ALM aggregates these and may send them up to 15 minutes late. A course
    /// completed through a learning path produces two of them, one for the course
    /// and one for the path.
    #[derive(Debug, Clone, PartialEq)]
    pub struct LearnerProgress {
        /// The learner (`userId`).
        "userId" => user_id: UserId,
        /// The learning object (`loId`).
        "loId" => lo_id: LoId,
        /// The instance (`loInstanceId`).
        "loInstanceId" => lo_instance_id: LoInstanceId,
        ;
        /// The learning object's type (`loType`).
        "loType" => lo_type: Option<LoType>,
        /// When the learner started (`dateStarted`).
        "dateStarted" => date_started: Option<Timestamp>,
        /// Progress in percent (`progressPercent`).
        "progressPercent" => progress_percent: Option<Percent>,
    }
}

/// A learner's progress in percent (`progressPercent`): a plain number, `0`
/// to `100` as ALM sends it (an integer in every sample; a fraction is kept
/// too). The value is kept as sent, never clamped; an integer is written back
/// as an integer.
///
/// ```
/// use alm_webhooks::event::Percent;
/// let half: Percent = serde_json::from_str("50").unwrap();
/// assert_eq!(half.get(), 50.0);
/// assert_eq!(half, Percent::from(50u8));
/// assert_eq!(serde_json::to_string(&half).unwrap(), "50");
/// assert_eq!(serde_json::to_string(&Percent::new(12.5)).unwrap(), "12.5");
/// assert!(half < Percent::new(100.0));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Percent(f64);

impl Percent {
    /// A progress of `value` percent.
    pub const fn new(value: f64) -> Self {
        Self(value)
    }

    /// The progress in percent.
    pub const fn get(self) -> f64 {
        self.0
    }

    /// Whether the learner is done (100 % or more).
    pub fn is_complete(self) -> bool {
        self.0 >= 100.0
    }
}

impl From<u8> for Percent {
    fn from(value: u8) -> Self {
        Self(f64::from(value))
    }
}

impl From<Percent> for f64 {
    fn from(value: Percent) -> Self {
        value.0
    }
}

impl std::fmt::Display for Percent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} %", self.0)
    }
}

/// The largest integer an `f64` holds exactly.
const EXACT: f64 = 9_007_199_254_740_992.0;

impl Serialize for Percent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        if v.fract() == 0.0 && v.abs() <= EXACT {
            // Exact for every integer up to 2^53, checked just above.
            #[allow(clippy::cast_possible_truncation)]
            serializer.serialize_i64(v as i64)
        } else {
            serializer.serialize_f64(v)
        }
    }
}

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        f64::deserialize(deserializer).map(Self)
    }
}
