//! What a handler reads of an event without a `match` on its data: the
//! learner, the learning object, its kind, the entity it is about.

use super::{Event, EventData};
use crate::{EventFamily, LoId, LoInstanceId, LoKind, LoType, UserId};

/// Who or what an event is about: the entity whose state the ordering rules
/// track.
///
/// ```
/// use alm_webhooks::{Envelope, Subject};
/// let body = br#"{"accountId":1,"events":[{"eventId":"s1","eventName":"CI_STATS",
///   "timestamp":1725604552,"data":{"loInstanceId":"course:1_2","seatLimit":20}}]}"#;
/// let envelope = Envelope::from_slice(body).unwrap();
/// let event = envelope.parsed().next().unwrap();
/// let Some(Subject::InstanceStats(instance)) = event.subject() else { panic!() };
/// assert_eq!(instance.as_str(), "course:1_2");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Subject<'a> {
    /// A learner's record: (`userId`, `loInstanceId`) within the account.
    Learner {
        /// The learner.
        user_id: UserId,
        /// The instance.
        lo_instance_id: &'a LoInstanceId,
    },
    /// A learning object (`loId`).
    LearningObject(&'a LoId),
    /// A learning object instance (`loInstanceId`), for instance events.
    LearningObjectInstance(&'a LoInstanceId),
    /// The seat statistics of an instance (`CI_STATS`), tracked apart from
    /// the instance's own events.
    InstanceStats(&'a LoInstanceId),
}

impl EventData {
    /// The learner (`userId`), for the events about a learner: enrollment,
    /// unenrollment, completion, rollback, progress.
    pub fn user_id(&self) -> Option<UserId> {
        match self {
            Self::Enrollment(d) | Self::CompletionRollback(d) => Some(d.user_id),
            Self::Unenrollment(d) => Some(d.user_id),
            Self::Completion(d) => Some(d.user_id),
            Self::LearnerProgress(d) => Some(d.user_id),
            _ => None,
        }
    }

    /// The learning object (`loId`), for every known event but `CI_STATS`
    /// (which names only the instance).
    pub fn lo_id(&self) -> Option<&LoId> {
        match self {
            Self::Enrollment(d) | Self::CompletionRollback(d) => Some(&d.lo_id),
            Self::Unenrollment(d) => Some(&d.lo_id),
            Self::Completion(d) => Some(&d.lo_id),
            Self::LearnerProgress(d) => Some(&d.lo_id),
            Self::LearningObject(d) => Some(&d.lo_id),
            Self::LearningObjectInstance(d) => Some(&d.lo_id),
            Self::InstanceStats(_) | Self::Unknown(_) => None,
        }
    }

    /// The instance (`loInstanceId`), for every known event but the
    /// learning object ones.
    pub fn lo_instance_id(&self) -> Option<&LoInstanceId> {
        match self {
            Self::Enrollment(d) | Self::CompletionRollback(d) => Some(&d.lo_instance_id),
            Self::Unenrollment(d) => Some(&d.lo_instance_id),
            Self::Completion(d) => Some(&d.lo_instance_id),
            Self::LearnerProgress(d) => Some(&d.lo_instance_id),
            Self::LearningObjectInstance(d) => Some(&d.lo_instance_id),
            Self::InstanceStats(d) => Some(&d.lo_instance_id),
            Self::LearningObject(_) | Self::Unknown(_) => None,
        }
    }

    /// The learning object's type as sent (`loType`), when it was.
    pub fn lo_type(&self) -> Option<&LoType> {
        match self {
            Self::Enrollment(d) | Self::CompletionRollback(d) => d.lo_type.as_ref(),
            Self::Unenrollment(d) => d.lo_type.as_ref(),
            Self::Completion(d) => d.lo_type.as_ref(),
            Self::LearnerProgress(d) => d.lo_type.as_ref(),
            Self::LearningObject(d) => d.lo_type.as_ref(),
            Self::LearningObjectInstance(d) => d.lo_type.as_ref(),
            Self::InstanceStats(_) | Self::Unknown(_) => None,
        }
    }
}

impl Event {
    /// The family of the event, from its name.
    pub fn family(&self) -> EventFamily {
        self.event_name.family()
    }

    /// Whether ALM sent the event as a batch (`…_BATCH`), for changes made
    /// in bulk, rather than in real time.
    ///
    /// ```
    /// use alm_webhooks::Envelope;
    /// let body = br#"{"accountId":1,"events":[{"eventId":"b1","eventName":"COURSE_ENROLLMENT_BATCH",
    ///   "timestamp":1725524713,"data":{"userId":7,"loId":"course:1","loInstanceId":"course:1_2"}}]}"#;
    /// let envelope = Envelope::from_slice(body).unwrap();
    /// assert!(envelope.parsed().next().unwrap().is_batch());
    /// ```
    pub fn is_batch(&self) -> bool {
        self.event_name.is_batch()
    }

    /// The learner (`userId`), for the events about a learner; `None` for
    /// learning object, instance, `CI_STATS` and unknown events.
    ///
    /// ```
    /// use alm_webhooks::{Envelope, UserId};
    /// let body = br#"{"accountId":1,"events":[
    ///   {"eventId":"p1","eventName":"LEARNER_PROGRESS","timestamp":1725604552,
    ///    "data":{"userId":7,"loId":"course:1","loInstanceId":"course:1_2","progressPercent":50}},
    ///   {"eventId":"d1","eventName":"LEARNING_OBJECT_DRAFT","timestamp":1725604552,
    ///    "data":{"loId":"course:1","loType":"course"}}]}"#;
    /// let envelope = Envelope::from_slice(body).unwrap();
    /// let events: Vec<_> = envelope.parsed().collect();
    /// assert_eq!(events[0].user_id(), Some(UserId(7)));
    /// assert_eq!(events[1].user_id(), None);
    /// ```
    pub fn user_id(&self) -> Option<UserId> {
        self.data.user_id()
    }

    /// The learning object (`loId`); `None` for `CI_STATS` and unknown
    /// events.
    ///
    /// ```
    /// use alm_webhooks::Envelope;
    /// let body = br#"{"accountId":1,"events":[{"eventId":"d1","eventName":"LEARNING_OBJECT_DRAFT",
    ///   "timestamp":1725604552,"data":{"loId":"course:1","loType":"course"}}]}"#;
    /// let envelope = Envelope::from_slice(body).unwrap();
    /// let event = envelope.parsed().next().unwrap();
    /// assert_eq!(event.lo_id().unwrap().as_str(), "course:1");
    /// assert_eq!(event.lo_instance_id(), None);
    /// ```
    pub fn lo_id(&self) -> Option<&LoId> {
        self.data.lo_id()
    }

    /// The instance (`loInstanceId`); `None` for learning object and unknown
    /// events.
    ///
    /// ```
    /// use alm_webhooks::Envelope;
    /// let body = br#"{"accountId":1,"events":[{"eventId":"s1","eventName":"CI_STATS",
    ///   "timestamp":1725604552,"data":{"loInstanceId":"course:1_2"}}]}"#;
    /// let envelope = Envelope::from_slice(body).unwrap();
    /// let event = envelope.parsed().next().unwrap();
    /// assert_eq!(event.lo_instance_id().unwrap().instance_number(), "2");
    /// assert_eq!(event.lo_id(), None);
    /// ```
    pub fn lo_instance_id(&self) -> Option<&LoInstanceId> {
        self.data.lo_instance_id()
    }

    /// The kind of learning object the event is about: course, learning
    /// program (learning path) or certification. Read from `loType`, else
    /// from the type inside `loId` or `loInstanceId`, else from the event's
    /// name (`LEARNING_PATH_…`); `None` for an event with no learning object
    /// (an unknown event).
    ///
    /// ```
    /// use alm_webhooks::{Envelope, LoKind};
    /// let body = br#"{"accountId":1,"events":[{"eventId":"e1","eventName":"LEARNING_PATH_ENROLLMENT",
    ///   "timestamp":1725604249,"data":{"userId":7,"loId":"learning_program:1",
    ///   "loInstanceId":"learning_program:1_2"}}]}"#;
    /// let envelope = Envelope::from_slice(body).unwrap();
    /// let event = envelope.parsed().next().unwrap();
    /// match event.lo_kind() {
    ///     Some(LoKind::Course) => println!("a course"),
    ///     Some(LoKind::LearningProgram) => println!("a learning path"),
    ///     Some(LoKind::Certification) => println!("a certification"),
    ///     _ => println!("something else"),
    /// }
    /// assert_eq!(event.lo_kind(), Some(LoKind::LearningProgram));
    /// ```
    pub fn lo_kind(&self) -> Option<LoKind> {
        if let Some(lo_type) = self.data.lo_type() {
            return Some(lo_type.kind());
        }
        let from_id = match (self.data.lo_id(), self.data.lo_instance_id()) {
            (Some(lo_id), _) => Some(lo_id.lo_type().kind()),
            (None, Some(instance)) => Some(instance.lo_id().lo_type().kind()),
            (None, None) => None,
        };
        match from_id {
            Some(LoKind::Other) | None => self.event_name.lo_kind().or(from_id),
            known => known,
        }
    }

    /// The entity this event is about; `None` for an event this crate does
    /// not know.
    ///
    /// ```
    /// use alm_webhooks::{Envelope, Subject, UserId};
    /// let body = br#"{"accountId":1,"events":[{"eventId":"p1","eventName":"LEARNER_PROGRESS",
    ///   "timestamp":1725604552,"data":{"userId":7,"loId":"course:1",
    ///   "loInstanceId":"course:1_2","progressPercent":50}}]}"#;
    /// let envelope = Envelope::from_slice(body).unwrap();
    /// let event = envelope.events[0].as_ref().unwrap();
    /// match event.subject() {
    ///     Some(Subject::Learner { user_id, lo_instance_id }) => {
    ///         assert_eq!(user_id, UserId(7));
    ///         assert_eq!(lo_instance_id.as_str(), "course:1_2");
    ///     }
    ///     other => panic!("{other:?}"),
    /// }
    /// ```
    pub fn subject(&self) -> Option<Subject<'_>> {
        Some(match &self.data {
            EventData::Enrollment(d) | EventData::CompletionRollback(d) => Subject::Learner {
                user_id: d.user_id,
                lo_instance_id: &d.lo_instance_id,
            },
            EventData::Unenrollment(d) => Subject::Learner {
                user_id: d.user_id,
                lo_instance_id: &d.lo_instance_id,
            },
            EventData::Completion(d) => Subject::Learner {
                user_id: d.user_id,
                lo_instance_id: &d.lo_instance_id,
            },
            EventData::LearnerProgress(d) => Subject::Learner {
                user_id: d.user_id,
                lo_instance_id: &d.lo_instance_id,
            },
            EventData::LearningObject(d) => Subject::LearningObject(&d.lo_id),
            EventData::LearningObjectInstance(d) => {
                Subject::LearningObjectInstance(&d.lo_instance_id)
            }
            EventData::InstanceStats(d) => Subject::InstanceStats(&d.lo_instance_id),
            EventData::Unknown(_) => return None,
        })
    }
}
