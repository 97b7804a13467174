//! ALM's ordering rules as one pure function: (state, event) → (decision,
//! new state). No I/O; stores only load and swap the state this returns.
//!
//! A learner's record is (`accountId`, `userId`, `loInstanceId`), with the
//! learning path's two spellings (`learningProgram:`, `learning_program:`)
//! taken as one. Its *lifecycle* events are the enrollment, unenrollment,
//! completion and completion-rollback families (with their `_BATCH` twins);
//! its progress event is `LEARNER_PROGRESS`. An event's time `t` is its
//! `timestamp`; the engine takes a time more than
//! [`EngineBuilder::future_skew`](crate::engine::EngineBuilder::future_skew) ahead
//! of its clock as "now" before the rules see it.
//!
//! The state remembers `newest` (the newest time of a lifecycle event
//! processed, or of any event for other entities), `lifecycle` (the
//! latest lifecycle event processed), `progress` (the newest time of a
//! `LEARNER_PROGRESS` not older than `newest` processed since the latest
//! lifecycle event, if any) and `last_progress` (the newest time of any
//! `LEARNER_PROGRESS` processed for the record, kept across lifecycle
//! events).
//!
//! | event | ignored when | reason | if processed, the state becomes |
//! |---|---|---|---|
//! | enrollment | `progress` is set and `t <= progress` | rule 1, [`IgnoreReason::EnrollmentAfterProgress`] | if `t >= newest`: `newest = t`, `lifecycle = Enrolled`, `progress` cleared |
//! | enrollment | `t < newest` | rule 3, [`IgnoreReason::Stale`] | |
//! | unenrollment, completion, completion rollback | `t < newest` | rule 3, [`IgnoreReason::Stale`] | if `t >= newest`: `newest = t`, `lifecycle` = the event's, `progress` cleared |
//! | `LEARNER_PROGRESS` | `lifecycle` is `Completed` | rule 2, [`IgnoreReason::ProgressAfterCompletion`] | `last_progress = max(last_progress, t)`; if `t >= newest` (or no `newest`): `progress = max(progress, t)`; never stale |
//! | `LEARNER_PROGRESS` | `t < last_progress` | rule 4, [`IgnoreReason::OlderProgress`] | |
//! | learning object, instance, `CI_STATS` | `t < newest` of that entity | rule 3, [`IgnoreReason::Stale`] | `newest = t` |
//! | unknown | never | | no state: only deduplicated |
//!
//! Rows are checked top to bottom, so an enrollment that breaks both rule 1
//! and rule 3 is reported under rule 1. Equal times are never stale. An
//! ignored event changes nothing: not the state, its version or its
//! expiry.
//!
//! What follows from the table:
//!
//! - **Re-enrollment** (sent since August 2026): a completion, unenrollment
//!   or rollback clears `progress`, so a newer enrollment after it is
//!   processed and reopens the record (`lifecycle = Enrolled`), and the
//!   progress of the new attempt is processed again.
//! - **Rule 1 is about an enrollment overtaken by its own progress**: an
//!   enrollment newer than every progress processed cannot be the one that
//!   progress implies, so it is processed. (It is a re-enrollment whose
//!   unenrollment has not arrived yet: without this, a batch unenrollment
//!   overtaken by progress and by the real-time re-enrollment would leave
//!   the record unenrolled.)
//! - **Progress from before a lifecycle event** (delayed, as ALM allows, up
//!   to 15 minutes) is processed unless the record is completed (rule 3
//!   does not apply to progress), but does not set `progress`: it says
//!   nothing about an enrollment that came after it.
//! - **Progress never goes back** (rule 4): a `LEARNER_PROGRESS` older than
//!   one already processed for the record (a delayed one, or a dead letter
//!   replayed after a newer progress) is ignored, so a handler never sees a
//!   record's progress drop from 60 % to 40 %. Equal times are processed.
//! - **A record's status** ([`EntityState::learner_status`]) is `Enrolled`
//!   when `progress` is set on an unenrolled record or one with no lifecycle
//!   event yet (progress implies an enrollment, which rule 1 drops), and
//!   `lifecycle` otherwise.
//!
//! Learning-object events are keyed by `loId`, instance events by
//! `loInstanceId`, and `CI_STATS` by `loInstanceId` on its own. Events whose
//! names the crate does not know have no state, unless
//! [`EngineBuilder::event_family`](crate::engine::EngineBuilder::event_family) puts
//! them in a family: then they follow that family's row.
//!
//! # Orders that still depend on arrival
//!
//! For every order ALM allows (real-time and non-real-time events
//! overtaking each other, progress delayed up to 15 minutes, redeliveries) a
//! record ends in the same status as in time order (`tests/engine_model.rs`
//! checks it), with one exception: **two lifecycle events with the same
//! time** are both processed, so the one that arrives last decides the
//! status. ALM's top-level `timestamp` carries seconds, so this needs two
//! changes to one record within one second; no rule can order what the
//! timestamps do not.
//!
//! The status converges; which events reach your handler can still depend
//! on arrival, as the documented rules intend: an enrollment that arrives
//! after its own progress is ignored (rule 1), and so is a
//! `LEARNER_PROGRESS` that arrives while the record is completed (rule 2),
//! even one that is newer than a rollback or re-enrollment still on its
//! way.

pub(crate) mod decision;
mod keys;
mod state;

pub(crate) use decision::{Decision, IgnoreReason};
pub use keys::StateKey;
pub use state::{EntityState, Lifecycle};

use crate::{Event, EventFamily};

/// Decides an event against its entity's state, with the event's own
/// family and `timestamp` (an event without a time is decided as at the
/// epoch; only unknown events may lack one, and they have no rules).
/// Returns the decision ([`Decision::Processed`] or [`Decision::Ignored`])
/// and the state to store if the event is processed (for an ignored event
/// it is the input state).
///
/// ```
/// use alm_webhooks::Envelope;
/// use alm_webhooks::rules::{self, EntityState};
/// use alm_webhooks::{Decision, IgnoreReason};
///
/// let body = br#"{"accountId":1,"events":[
///   {"eventId":"p","eventName":"LEARNER_PROGRESS","timestamp":20,
///    "data":{"userId":7,"loId":"course:1","loInstanceId":"course:1_2","progressPercent":50}},
///   {"eventId":"e","eventName":"COURSE_ENROLLMENT_BATCH","timestamp":10,
///    "data":{"userId":7,"loId":"course:1","loInstanceId":"course:1_2"}}]}"#;
/// let envelope = Envelope::from_slice(body).unwrap();
/// let mut events = envelope.parsed();
/// let (decision, state) = rules::decide(&EntityState::default(), events.next().unwrap());
/// assert_eq!(decision, Decision::Processed);
/// let (decision, _) = rules::decide(&state, events.next().unwrap());
/// assert_eq!(decision, Decision::Ignored(IgnoreReason::EnrollmentAfterProgress));
/// ```
pub fn decide(state: &EntityState, event: &Event) -> (Decision, EntityState) {
    decide_facts(state, event.family(), millis(event))
}

/// [`decide`] on the two facts it reads: the event's family and its time in
/// milliseconds since the Unix epoch.
///
/// ```
/// use alm_webhooks::EventFamily;
/// use alm_webhooks::rules::{self, EntityState};
/// use alm_webhooks::{Decision, IgnoreReason};
/// let (_, completed) = rules::decide_facts(&EntityState::default(), EventFamily::Completion, 2_000);
/// let (decision, _) = rules::decide_facts(&completed, EventFamily::LearnerProgress, 3_000);
/// assert_eq!(decision, Decision::Ignored(IgnoreReason::ProgressAfterCompletion));
/// // A newer enrollment reopens the record.
/// let (decision, enrolled) = rules::decide_facts(&completed, EventFamily::Enrollment, 9_000);
/// assert_eq!(decision, Decision::Processed);
/// let (_, at_60) = rules::decide_facts(&enrolled, EventFamily::LearnerProgress, 9_500);
/// // Progress never goes back: an older one is ignored.
/// let (decision, _) = rules::decide_facts(&at_60, EventFamily::LearnerProgress, 9_200);
/// assert_eq!(decision, Decision::Ignored(IgnoreReason::OlderProgress));
/// ```
pub fn decide_facts(state: &EntityState, family: EventFamily, at: i64) -> (Decision, EntityState) {
    let stale = state.newest_millis.is_some_and(|newest| at < newest);
    let reason = match family {
        EventFamily::LearnerProgress if state.lifecycle == Some(Lifecycle::Completed) => {
            Some(IgnoreReason::ProgressAfterCompletion)
        }
        EventFamily::LearnerProgress if state.last_progress_millis.is_some_and(|p| at < p) => {
            Some(IgnoreReason::OlderProgress)
        }
        EventFamily::Enrollment
            if state.progress_since_lifecycle
                && state.newest_progress_millis.is_none_or(|p| at <= p) =>
        {
            Some(IgnoreReason::EnrollmentAfterProgress)
        }
        EventFamily::LearnerProgress | EventFamily::Unknown => None,
        _ if stale => Some(IgnoreReason::Stale),
        _ => None,
    };
    match reason {
        Some(reason) => (Decision::Ignored(reason), state.clone()),
        None => (Decision::Processed, apply_facts(state, family, at)),
    }
}

/// The event's time in milliseconds (the epoch when it has none).
fn millis(event: &Event) -> i64 {
    event
        .timestamp
        .as_ref()
        .map_or(0, crate::Timestamp::unix_millis)
}

/// The state after processing `event`, without the ignore rules: what
/// [`decide`] stores for a processed event. Also used when an event's
/// handler already ran and the state moved meanwhile: its effect is folded
/// into the newer state (a lifecycle event older than the newest one then
/// changes nothing but is still recorded as processed).
pub fn apply(state: &EntityState, event: &Event) -> EntityState {
    apply_facts(state, event.family(), millis(event))
}

/// [`apply`] on the two facts it reads: the event's family and its time in
/// milliseconds.
pub(crate) fn apply_facts(state: &EntityState, family: EventFamily, at: i64) -> EntityState {
    let not_older = state.newest_millis.is_none_or(|newest| at >= newest);
    let mut next = state.clone();
    if family == EventFamily::LearnerProgress {
        next.last_progress_millis = Some(state.last_progress_millis.map_or(at, |p| p.max(at)));
    }
    match family {
        EventFamily::LearnerProgress if not_older => {
            next.progress_since_lifecycle = true;
            next.newest_progress_millis =
                Some(state.newest_progress_millis.map_or(at, |p| p.max(at)));
        }
        EventFamily::Enrollment
        | EventFamily::Unenrollment
        | EventFamily::Completion
        | EventFamily::CompletionRollback
            if not_older =>
        {
            next.newest_millis = Some(at);
            next.progress_since_lifecycle = false;
            next.newest_progress_millis = None;
            next.lifecycle = Some(match family {
                EventFamily::Enrollment => Lifecycle::Enrolled,
                EventFamily::Unenrollment => Lifecycle::Unenrolled,
                EventFamily::Completion => Lifecycle::Completed,
                _ => Lifecycle::CompletionRolledBack,
            });
        }
        EventFamily::LearningObject
        | EventFamily::LearningObjectInstance
        | EventFamily::InstanceStats
            if not_older =>
        {
            next.newest_millis = Some(at);
        }
        _ => {}
    }
    next
}
