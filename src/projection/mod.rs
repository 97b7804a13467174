//! The learner table ALM tells subscribers to build: one row per learner
//! record (`account_id`, `user_id`, `lo_instance_id`), merged from every
//! well-formed learner event the engine decided (processed or ignored:
//! the rules decide what a handler sees, and some of them depend on
//! arrival; the table does not).
//!
//! **Convergence is the contract**: a row is a function of the *set* of
//! events merged into it, never of their order or of repeats. [`merge`] is
//! a join: each field is taken from the event that is greatest, in the
//! merge order below, among the events that carry that field, and the row
//! keeps that event's key beside it (a small summary) so that a later
//! arrival of an older event changes nothing.
//!
//! # The merge order
//!
//! Events are ordered by their top-level `timestamp` (milliseconds), then,
//! for equal times, by kind: enrollment < `LEARNER_PROGRESS` < completion
//! < completion rollback < unenrollment, then (two progress events) by the
//! higher `progressPercent`, then by `eventId` (byte order). Arrival never
//! enters. "Newest" below means greatest in this order. An *attempt*
//! begins at the newest enrollment or rollback; "of the attempt" means
//! newer than it (everything, if there is none).
//!
//! # Which event wins each field
//!
//! | field | taken from |
//! |---|---|
//! | `account_id`, `user_id`, `lo_instance_id` | the record's key (instance in canonical spelling: `learningProgram:` for both spellings) |
//! | `lo_id`, `lo_type` | the instance id (`course:1_2` → `course:1`, `course`); a learning path is `learningProgram` whatever the spelling |
//! | `status` | the newest lifecycle event (enrollment, unenrollment, completion, rollback): completion → `completed`; enrollment or rollback → `enrolled`, or `in_progress` if a progress is newer; unenrollment → `unenrolled`, or `in_progress` if a progress is newer (progress implies a re-enrollment whose event is missing); only progress → `in_progress` |
//! | `progress_percent` | 100 when `completed`; else `progressPercent` of the newest progress of the attempt that carries one; else 0 |
//! | `date_enrolled` | the newest enrollment (its `dateEnrolled`, else its `timestamp`) or rollback carrying `dateEnrolled` |
//! | `date_started` | `dateStarted` of the newest progress of the attempt that carries one |
//! | `date_completed`, `has_passed` | the newest completion, if it is of the attempt (a rollback or re-enrollment clears them); `dateCompleted`, else its `timestamp` |
//! | `enrollment_source` | the newest lifecycle event that carries `enrollmentSource` |
//! | `last_event_id`, `last_event_name`, `last_event_time` | the newest event of any kind |
//! | `updated_at` | the store's clock when the row was last written (outside the contract) |
//!
//! What follows: a progress delayed past a completion changes nothing
//! (the completion is newer); a rollback or revocation newer than the
//! completion moves the record back to `enrolled` (or `in_progress` with
//! the progress made after it) whatever the arrival order; an enrollment
//! newer than a completion or unenrollment makes the record `enrolled`
//! again; a course inside a learning path is a record of its own (its own
//! `loInstanceId`). Two copies of one `eventId` are one event (the engine
//! decides an id once).
//!
//! The merge takes each `eventId` once, as the engine decides it once: if
//! two different events share an id (ALM's samples show real-time and
//! `_BATCH` twins doing so), the one decided first is merged and the other
//! is a duplicate.
//!
//! Rows are never swept: a record stays after its events' dedup window.
//!
//! Events whose names this crate does not know (including those put in a
//! family with
//! [`EngineBuilder::event_family`](crate::engine::EngineBuilder::event_family))
//! carry no typed `data` and are not merged.

mod event;
mod merge;
mod packed;
mod record;
#[cfg(feature = "redis")]
mod slots;
mod stored;
mod summary;
#[cfg(test)]
mod tests;

#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) use event::by_record;
pub use event::{EventKey, LearnerEvent, LearnerEventKind};
pub(crate) use merge::MergeState;
pub use merge::merge;
#[cfg(feature = "redis")]
pub(crate) use record::from_millis;
pub use record::{LearnerRecord, LearnerStatus, UnknownStatus};
#[cfg(feature = "redis")]
pub(crate) use slots::{record_from_slots, slots_of, sort_key};
#[cfg(feature = "sqlite")]
pub(crate) use stored::parse_utc;
#[cfg(feature = "postgres")]
pub(crate) use stored::utc_millis;
pub(crate) use stored::utc_text;
pub use stored::{CSV_HEADER, LearnerChanges, TranscriptCsv};
