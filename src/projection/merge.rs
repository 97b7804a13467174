//! The merge: one event into its record's row, through the row's summary.

use time::OffsetDateTime;

use super::event::LearnerEvent;
use super::record::LearnerRecord;
use super::summary::Summary;
use crate::{AccountId, LoInstanceId, UserId};

/// Merges one event into its record's row (`None` for a record not seen
/// yet) and returns the new row, with `updated_at` = `now`. The result
/// depends on the set of events merged so far, never on their order or on
/// repeats (see the table in [`crate::projection`]).
///
/// `event` must be about the row's record (`account_id`, `user_id`,
/// `lo_instance_id`); the row's key is kept.
///
/// ```
/// use alm_webhooks::Envelope;
/// use alm_webhooks::projection::{self, LearnerEvent, LearnerStatus};
/// let body = br#"{"accountId":1,"events":[
///   {"eventId":"c","eventName":"COURSE_COMPLETED","timestamp":30,
///    "data":{"userId":7,"loId":"course:1","loInstanceId":"course:1_2"}},
///   {"eventId":"p","eventName":"LEARNER_PROGRESS","timestamp":20,
///    "data":{"userId":7,"loId":"course:1","loInstanceId":"course:1_2","progressPercent":50}}]}"#;
/// let envelope = Envelope::from_slice(body).unwrap();
/// let now = time::OffsetDateTime::UNIX_EPOCH;
/// let mut row = None;
/// for event in envelope.parsed() {
///     let fact = LearnerEvent::from_event(event).unwrap();
///     row = Some(projection::merge(row.as_ref(), &fact, now));
/// }
/// let row = row.unwrap();
/// assert_eq!(row.status, LearnerStatus::Completed);
/// assert_eq!(row.progress_percent, 100.0);
/// assert_eq!(row.last_event_id.as_str(), "c");
/// ```
pub fn merge(
    row: Option<&LearnerRecord>,
    event: &LearnerEvent,
    now: OffsetDateTime,
) -> LearnerRecord {
    let mut state = MergeState(row.map(|r| r.summary.clone()).unwrap_or_default());
    state.add(event);
    let (account_id, user_id, lo_instance_id) = match row {
        Some(row) => (row.account_id, row.user_id, &row.lo_instance_id),
        None => (event.account_id, event.user_id, &event.lo_instance_id),
    };
    state
        .record(account_id, user_id, lo_instance_id, now)
        .expect("a summary with an event in it makes a record")
}

/// What a store that merges in Rust keeps of a record between events (the
/// memory store): the summary alone, each event folded into it in place.
/// The record's fields are a function of it and are made on read
/// ([`MergeState::record`]), so a merge writes one summary, not a record.
#[derive(Debug, Clone, Default)]
pub(crate) struct MergeState(Summary);

impl MergeState {
    /// Folds one event in: [`merge`] is this, then [`MergeState::record`].
    pub(crate) fn add(&mut self, event: &LearnerEvent) {
        self.0.add(event);
    }

    /// The record (`None` before any event was added): the one [`merge`]
    /// returns after the same events, keyed by the event's record.
    pub(crate) fn record(
        &self,
        account_id: AccountId,
        user_id: UserId,
        lo_instance_id: &LoInstanceId,
        updated_at: OffsetDateTime,
    ) -> Option<LearnerRecord> {
        LearnerRecord::from_summary(
            account_id,
            user_id,
            lo_instance_id.clone(),
            self.0.clone(),
            updated_at,
        )
    }
}
