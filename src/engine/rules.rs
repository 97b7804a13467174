//! ALM's ordering rules as one pure function: (state, event) → (decision,
//! new state). No I/O; stores only load and swap the state this returns.
//!
//! A learner's record is (`accountId`, `userId`, `loInstanceId`). Its
//! lifecycle events are the enrollment, unenrollment, completion and
//! completion-rollback families (with their `_BATCH` twins); its progress
//! event is `LEARNER_PROGRESS`.
//!
//! 1. An enrollment is ignored if a `LEARNER_PROGRESS` for the record was
//!    processed and no unenrollment was processed since, whatever the
//!    enrollment's timestamp.
//! 2. A `LEARNER_PROGRESS` is ignored if the record's latest processed
//!    lifecycle event is a completion. A later rollback, unenrollment or
//!    (processed) re-enrollment reopens the record.
//! 3. A lifecycle event strictly older than the newest lifecycle event
//!    processed for the record is stale and ignored. Equal times are
//!    processed. `LEARNER_PROGRESS` is exempt.
//!
//! Learning-object events are keyed by `loId`, instance events by
//! `loInstanceId`, and `CI_STATS` by `loInstanceId` on its own; rule 3 applies
//! to each. Unknown events have no state (they are only deduplicated).
//! Rules are checked in the order 1, 2, 3, so an enrollment that breaks both
//! rule 1 and rule 3 is reported under rule 1.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::decision::{Decision, IgnoreReason};
use crate::{AccountId, Event, EventFamily, Subject};

/// Where a learner's record stands, from its latest processed lifecycle event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Lifecycle {
    /// Latest: an enrollment.
    Enrolled,
    /// Latest: an unenrollment.
    Unenrolled,
    /// Latest: a completion.
    Completed,
    /// Latest: a completion rollback (the record is open again).
    CompletionRolledBack,
}

/// What the rules remember about one entity (a learner record, a learning
/// object, an instance, or an instance's statistics).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EntityState {
    /// The newest applied event time, in milliseconds since the Unix epoch
    /// (lifecycle events only, for learner records).
    pub newest_millis: Option<i64>,
    /// The record's latest processed lifecycle event.
    pub lifecycle: Option<Lifecycle>,
    /// Whether a `LEARNER_PROGRESS` was processed since the last unenrollment.
    pub progress_since_unenrollment: bool,
}

impl EntityState {
    /// A learner record's status as the rules see it: the latest processed
    /// lifecycle event, or [`Lifecycle::Enrolled`] when only progress was
    /// processed (progress implies an enrollment, which rule 1 then drops).
    pub fn learner_status(&self) -> Option<Lifecycle> {
        self.lifecycle.or(self
            .progress_since_unenrollment
            .then_some(Lifecycle::Enrolled))
    }
}

/// The entity whose state an event reads and advances.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StateKey {
    /// A learner's record.
    Learner {
        /// The account.
        account_id: AccountId,
        /// The learner.
        user_id: crate::UserId,
        /// The instance.
        lo_instance_id: crate::LoInstanceId,
    },
    /// A learning object.
    LearningObject {
        /// The account.
        account_id: AccountId,
        /// The object.
        lo_id: crate::LoId,
    },
    /// A learning object instance (instance events).
    Instance {
        /// The account.
        account_id: AccountId,
        /// The instance.
        lo_instance_id: crate::LoInstanceId,
    },
    /// An instance's seat statistics (`CI_STATS`).
    InstanceStats {
        /// The account.
        account_id: AccountId,
        /// The instance.
        lo_instance_id: crate::LoInstanceId,
    },
}

impl StateKey {
    /// The key for an event in an account, or `None` for events that have
    /// no state (unknown events).
    pub fn for_event(account_id: AccountId, event: &Event) -> Option<Self> {
        Some(match event.subject() {
            Subject::Learner {
                user_id,
                lo_instance_id,
            } => Self::Learner {
                account_id,
                user_id,
                lo_instance_id: lo_instance_id.clone(),
            },
            Subject::LearningObject(lo_id) => Self::LearningObject {
                account_id,
                lo_id: lo_id.clone(),
            },
            Subject::LearningObjectInstance(id) => Self::Instance {
                account_id,
                lo_instance_id: id.clone(),
            },
            Subject::InstanceStats(id) => Self::InstanceStats {
                account_id,
                lo_instance_id: id.clone(),
            },
            _ => return None,
        })
    }

    /// The account the entity belongs to.
    pub fn account_id(&self) -> AccountId {
        match self {
            Self::Learner { account_id, .. }
            | Self::LearningObject { account_id, .. }
            | Self::Instance { account_id, .. }
            | Self::InstanceStats { account_id, .. } => *account_id,
        }
    }
}

/// A stable text form, used by stores as the key: `learner/1234/7/course:1_2`,
/// `lo/1234/course:1`, `instance/1234/course:1_2`, `stats/1234/course:1_2`.
impl fmt::Display for StateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Learner {
                account_id,
                user_id,
                lo_instance_id,
            } => write!(f, "learner/{account_id}/{user_id}/{lo_instance_id}"),
            Self::LearningObject { account_id, lo_id } => write!(f, "lo/{account_id}/{lo_id}"),
            Self::Instance {
                account_id,
                lo_instance_id,
            } => write!(f, "instance/{account_id}/{lo_instance_id}"),
            Self::InstanceStats {
                account_id,
                lo_instance_id,
            } => write!(f, "stats/{account_id}/{lo_instance_id}"),
        }
    }
}

/// Decides an event against its entity's state. Returns the decision
/// ([`Decision::Processed`] or [`Decision::Ignored`]) and the state to store
/// if the event is processed (for an ignored event it is the input state).
///
/// ```
/// use alm_webhooks::Envelope;
/// use alm_webhooks::engine::{Decision, EntityState, IgnoreReason, rules};
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
    let family = event.family();
    let newer_exists = state
        .newest_millis
        .is_some_and(|newest| event.timestamp.unix_millis() < newest);
    let reason = match family {
        EventFamily::LearnerProgress if state.lifecycle == Some(Lifecycle::Completed) => {
            Some(IgnoreReason::ProgressAfterCompletion)
        }
        EventFamily::Enrollment if state.progress_since_unenrollment => {
            Some(IgnoreReason::EnrollmentAfterProgress)
        }
        EventFamily::LearnerProgress | EventFamily::Unknown => None,
        _ if newer_exists => Some(IgnoreReason::Stale),
        _ => None,
    };
    match reason {
        Some(reason) => (Decision::Ignored(reason), state.clone()),
        None => (Decision::Processed, apply(state, event)),
    }
}

/// The state after processing `event`, without the ignore rules: what
/// [`decide`] stores for a processed event. Also used when an event's
/// handler already ran and the state moved meanwhile: its effect is folded
/// into the newer state (a lifecycle event older than the newest one then
/// changes nothing but is still recorded as processed).
pub fn apply(state: &EntityState, event: &Event) -> EntityState {
    apply_facts(state, event.family(), event.timestamp.unix_millis())
}

/// [`apply`] on the two facts it reads: the event's family and its time in
/// milliseconds.
pub(crate) fn apply_facts(state: &EntityState, family: EventFamily, at: i64) -> EntityState {
    let not_older = state.newest_millis.is_none_or(|newest| at >= newest);
    let mut next = state.clone();
    match family {
        EventFamily::LearnerProgress => next.progress_since_unenrollment = true,
        EventFamily::Enrollment
        | EventFamily::Unenrollment
        | EventFamily::Completion
        | EventFamily::CompletionRollback
            if not_older =>
        {
            next.newest_millis = Some(at);
            next.lifecycle = Some(match family {
                EventFamily::Enrollment => Lifecycle::Enrolled,
                EventFamily::Unenrollment => {
                    next.progress_since_unenrollment = false;
                    Lifecycle::Unenrolled
                }
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
