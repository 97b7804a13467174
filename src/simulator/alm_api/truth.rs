//! The double's ground truth: what the simulator sent (dropped or not), as
//! ALM would know it.

use std::collections::BTreeMap;

use crate::{Envelope, EventData, LoId, LoInstanceId, UserId};

/// One learner record as ALM knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TruthRecord {
    /// The learning object.
    pub lo_id: LoId,
    /// `ENROLLED`, `STARTED` or `COMPLETED`.
    pub state: &'static str,
    /// 0 to 100.
    pub progress_percent: u8,
    /// RFC 3339 or epoch, as the event carried it.
    pub date_enrolled: Option<String>,
    /// When progress was first reported.
    pub date_started: Option<String>,
    /// When it was completed.
    pub date_completed: Option<String>,
}

/// Every learner record, keyed by learner and instance.
#[derive(Debug, Clone, Default)]
pub(crate) struct Truth {
    pub(crate) records: BTreeMap<(UserId, LoInstanceId), TruthRecord>,
    pub(crate) learning_objects: BTreeMap<LoId, Vec<LoInstanceId>>,
}

impl Truth {
    /// Applies an envelope's learner events in order.
    pub(crate) fn apply(&mut self, body: &[u8]) {
        let Ok(envelope) = Envelope::from_slice(body) else {
            return;
        };
        for event in envelope.parsed() {
            let when = event.timestamp.as_ref().map(ToString::to_string);
            if let Some(instance) = event.lo_instance_id() {
                let instances = self.learning_objects.entry(instance.lo_id()).or_default();
                if !instances.contains(instance) {
                    instances.push(instance.clone());
                }
            }
            let (Some(user), Some(instance)) = (event.user_id(), event.lo_instance_id().cloned())
            else {
                continue;
            };
            let key = (user, instance);
            let fresh = |lo_id: LoId| TruthRecord {
                lo_id,
                state: "ENROLLED",
                progress_percent: 0,
                date_enrolled: None,
                date_started: None,
                date_completed: None,
            };
            match &event.data {
                EventData::Enrollment(d) => {
                    let record = self
                        .records
                        .entry(key)
                        .or_insert_with(|| fresh(d.lo_id.clone()));
                    record.date_enrolled =
                        d.date_enrolled.as_ref().map(ToString::to_string).or(when);
                }
                EventData::CompletionRollback(d) => {
                    let record = self
                        .records
                        .entry(key)
                        .or_insert_with(|| fresh(d.lo_id.clone()));
                    record.state = "ENROLLED";
                    record.date_completed = None;
                }
                EventData::LearnerProgress(d) => {
                    let record = self
                        .records
                        .entry(key)
                        .or_insert_with(|| fresh(d.lo_id.clone()));
                    if record.state != "COMPLETED" {
                        record.state = "STARTED";
                        record.progress_percent = d
                            .progress_percent
                            .map_or(0, |p| p.get().clamp(0.0, 100.0) as u8);
                        record.date_started = record.date_started.take().or(when);
                    }
                }
                EventData::Completion(d) => {
                    let record = self
                        .records
                        .entry(key)
                        .or_insert_with(|| fresh(d.lo_id.clone()));
                    record.state = "COMPLETED";
                    record.progress_percent = 100;
                    record.date_completed =
                        d.date_completed.as_ref().map(ToString::to_string).or(when);
                }
                EventData::Unenrollment(_) => {
                    self.records.remove(&key);
                }
                _ => {}
            }
        }
    }

    /// The learner-transcript CSV: one line per record.
    pub(crate) fn csv(&self) -> String {
        let mut out = String::from(
            "userId,loId,loInstanceId,state,progressPercent,dateEnrolled,dateStarted,dateCompleted\n",
        );
        for ((user, instance), r) in &self.records {
            let date = |d: &Option<String>| d.clone().unwrap_or_default();
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{}\n",
                user.0,
                r.lo_id,
                instance,
                r.state,
                r.progress_percent,
                date(&r.date_enrolled),
                date(&r.date_started),
                date(&r.date_completed)
            ));
        }
        out
    }
}
