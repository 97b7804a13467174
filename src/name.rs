//! Event names (`eventName`) and the families they belong to.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::LoKind;

/// What an event is about; decides the shape of its `data` and the ordering
/// rules that apply to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum EventFamily {
    /// A learner was enrolled (`*_ENROLLMENT`, `*_ENROLLMENT_BATCH`).
    Enrollment,
    /// A learner was unenrolled (`*_UNENROLLMENT`, `*_UNENROLLMENT_BATCH`).
    Unenrollment,
    /// A learner completed (`*_COMPLETED`, `*_COMPLETED_BATCH`).
    Completion,
    /// A learner's completion was withdrawn (`*_COMPLETION_ROLLBACK`).
    CompletionRollback,
    /// A learner made progress (`LEARNER_PROGRESS`).
    LearnerProgress,
    /// A learning object was drafted, modified or deleted.
    LearningObject,
    /// A learning object instance was modified or deleted.
    LearningObjectInstance,
    /// Seat and waitlist figures of an instance changed (`CI_STATS`).
    InstanceStats,
    /// An event name this crate does not know.
    Unknown,
}

impl EventFamily {
    /// Whether events of this family change a learner's record (enrollment,
    /// unenrollment, completion, completion rollback).
    pub fn is_lifecycle(self) -> bool {
        matches!(
            self,
            Self::Enrollment | Self::Unenrollment | Self::Completion | Self::CompletionRollback
        )
    }
}

macro_rules! event_names {
    ($( $(#[$doc:meta])* $variant:ident = $text:literal, $family:ident, $batch:literal, $twin:ident; )*) => {
        /// The name of an event (`eventName`).
        ///
        /// All 27 documented names, the newer completion rollbacks, and
        /// [`EventName::Unknown`] for anything else, kept as sent.
        ///
        /// ```
        /// use alm_webhooks::{EventFamily, EventName};
        /// let name: EventName = "COURSE_ENROLLMENT_BATCH".parse().unwrap();
        /// assert_eq!(name, EventName::CourseEnrollmentBatch);
        /// assert!(name.is_batch());
        /// assert_eq!(name.real_time_twin(), Some(EventName::CourseEnrollment));
        /// assert_eq!(name.family(), EventFamily::Enrollment);
        /// assert_eq!(name.as_str(), "COURSE_ENROLLMENT_BATCH");
        ///
        /// let other: EventName = "ASYNC_JOB_RESULT".parse().unwrap();
        /// assert_eq!(other.family(), EventFamily::Unknown);
        /// assert_eq!(other.as_str(), "ASYNC_JOB_RESULT");
        /// ```
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum EventName {
            $( $(#[$doc])* $variant, )*
            /// A name this crate does not know, kept as sent.
            Unknown(Box<str>),
        }

        impl EventName {
            /// Every name this crate knows, in documentation order.
            pub const KNOWN: &'static [EventName] = &[$(EventName::$variant),*];

            /// The name as it appears on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $text, )*
                    Self::Unknown(s) => s,
                }
            }

            /// The family this event belongs to.
            pub fn family(&self) -> EventFamily {
                match self {
                    $( Self::$variant => EventFamily::$family, )*
                    Self::Unknown(_) => EventFamily::Unknown,
                }
            }

            /// Whether this is a non-real-time `_BATCH` event, sent for an
            /// admin, manager or platform action.
            ///
            /// `LEARNER_PROGRESS` is sent in batches too but is not the twin of
            /// a real-time event, so this is `false` for it; see
            /// [`EventName::is_real_time`].
            pub fn is_batch(&self) -> bool {
                match self {
                    $( Self::$variant => $batch, )*
                    Self::Unknown(s) => s.ends_with("_BATCH"),
                }
            }

            /// Whether ALM sends this event in real time (neither a `_BATCH`
            /// event nor `LEARNER_PROGRESS`). Unknown names count as real time
            /// unless they end in `_BATCH`.
            pub fn is_real_time(&self) -> bool {
                !self.is_batch() && *self != Self::LearnerProgress
            }

            /// For a `_BATCH` name, the real-time event it mirrors
            /// (`COURSE_ENROLLMENT_BATCH` → `COURSE_ENROLLMENT`); `None` for
            /// every other name.
            pub fn real_time_twin(&self) -> Option<EventName> {
                match self {
                    $( Self::$variant if $batch => Some(Self::$twin), )*
                    _ => None,
                }
            }
        }

        impl FromStr for EventName {
            type Err = std::convert::Infallible;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Ok(match s {
                    $( $text => Self::$variant, )*
                    other => Self::Unknown(other.into()),
                })
            }
        }
    };
}

event_names! {
    /// `CI_STATS`: seat or waitlist availability of a course instance changed.
    CiStats = "CI_STATS", InstanceStats, false, CiStats;
    /// `COURSE_ENROLLMENT`: a learner enrolled in a course.
    CourseEnrollment = "COURSE_ENROLLMENT", Enrollment, false, CourseEnrollment;
    /// `COURSE_COMPLETED`: a learner completed a course.
    CourseCompleted = "COURSE_COMPLETED", Completion, false, CourseCompleted;
    /// `LEARNING_PATH_ENROLLMENT`: a learner enrolled in a learning path.
    LearningPathEnrollment = "LEARNING_PATH_ENROLLMENT", Enrollment, false, LearningPathEnrollment;
    /// `LEARNING_PATH_COMPLETED`: a learner completed a learning path.
    LearningPathCompleted = "LEARNING_PATH_COMPLETED", Completion, false, LearningPathCompleted;
    /// `CERTIFICATION_ENROLLMENT`: a learner enrolled in a certification.
    CertificationEnrollment = "CERTIFICATION_ENROLLMENT", Enrollment, false, CertificationEnrollment;
    /// `CERTIFICATION_COMPLETED`: a learner completed a certification.
    CertificationCompleted = "CERTIFICATION_COMPLETED", Completion, false, CertificationCompleted;
    /// `COURSE_UNENROLLMENT`: a learner left a course.
    CourseUnenrollment = "COURSE_UNENROLLMENT", Unenrollment, false, CourseUnenrollment;
    /// `LEARNING_PATH_UNENROLLMENT`: a learner left a learning path.
    LearningPathUnenrollment = "LEARNING_PATH_UNENROLLMENT", Unenrollment, false, LearningPathUnenrollment;
    /// `CERTIFICATION_UNENROLLMENT`: a learner left a certification.
    CertificationUnenrollment = "CERTIFICATION_UNENROLLMENT", Unenrollment, false, CertificationUnenrollment;
    /// `LEARNING_OBJECT_DRAFT`: a learning object was created as a draft.
    LearningObjectDraft = "LEARNING_OBJECT_DRAFT", LearningObject, false, LearningObjectDraft;
    /// `LEARNING_OBJECT_DELETION`: a learning object was deleted.
    LearningObjectDeletion = "LEARNING_OBJECT_DELETION", LearningObject, false, LearningObjectDeletion;
    /// `LEARNING_OBJECT_MODIFICATION`: a learning object was modified.
    LearningObjectModification = "LEARNING_OBJECT_MODIFICATION", LearningObject, false, LearningObjectModification;
    /// `LEARNING_OBJECT_INSTANCE_MODIFICATION`: an instance was created or modified.
    LearningObjectInstanceModification = "LEARNING_OBJECT_INSTANCE_MODIFICATION", LearningObjectInstance, false, LearningObjectInstanceModification;
    /// `LEARNING_OBJECT_INSTANCE_DELETION`: an instance was deleted.
    LearningObjectInstanceDeletion = "LEARNING_OBJECT_INSTANCE_DELETION", LearningObjectInstance, false, LearningObjectInstanceDeletion;
    /// `COURSE_ENROLLMENT_BATCH`: learners were enrolled in a course by an admin, manager or the platform.
    CourseEnrollmentBatch = "COURSE_ENROLLMENT_BATCH", Enrollment, true, CourseEnrollment;
    /// `COURSE_COMPLETED_BATCH`: a course was marked complete by an admin, manager or the platform.
    CourseCompletedBatch = "COURSE_COMPLETED_BATCH", Completion, true, CourseCompleted;
    /// `LEARNING_PATH_ENROLLMENT_BATCH`: learners were enrolled in a learning path in bulk.
    LearningPathEnrollmentBatch = "LEARNING_PATH_ENROLLMENT_BATCH", Enrollment, true, LearningPathEnrollment;
    /// `LEARNING_PATH_COMPLETED_BATCH`: a learning path was marked complete in bulk.
    LearningPathCompletedBatch = "LEARNING_PATH_COMPLETED_BATCH", Completion, true, LearningPathCompleted;
    /// `CERTIFICATION_ENROLLMENT_BATCH`: learners were enrolled in a certification in bulk.
    CertificationEnrollmentBatch = "CERTIFICATION_ENROLLMENT_BATCH", Enrollment, true, CertificationEnrollment;
    /// `CERTIFICATION_COMPLETED_BATCH`: a certification was marked complete in bulk.
    CertificationCompletedBatch = "CERTIFICATION_COMPLETED_BATCH", Completion, true, CertificationCompleted;
    /// `LEARNER_PROGRESS`: a learner completed a module (aggregated, may be delayed up to 15 minutes).
    LearnerProgress = "LEARNER_PROGRESS", LearnerProgress, false, LearnerProgress;
    /// `COURSE_UNENROLLMENT_BATCH`: learners were unenrolled from a course in bulk.
    CourseUnenrollmentBatch = "COURSE_UNENROLLMENT_BATCH", Unenrollment, true, CourseUnenrollment;
    /// `LEARNING_PATH_UNENROLLMENT_BATCH`: learners were unenrolled from a learning path in bulk.
    LearningPathUnenrollmentBatch = "LEARNING_PATH_UNENROLLMENT_BATCH", Unenrollment, true, LearningPathUnenrollment;
    /// `CERTIFICATION_UNENROLLMENT_BATCH`: learners were unenrolled from a certification in bulk.
    CertificationUnenrollmentBatch = "CERTIFICATION_UNENROLLMENT_BATCH", Unenrollment, true, CertificationUnenrollment;
    /// `LEARNING_OBJECT_MODIFICATION_BATCH`: a learning object was modified by a migration.
    LearningObjectModificationBatch = "LEARNING_OBJECT_MODIFICATION_BATCH", LearningObject, true, LearningObjectModification;
    /// `LEARNING_OBJECT_INSTANCE_MODIFICATION_BATCH`: an instance was created or modified by a migration.
    LearningObjectInstanceModificationBatch = "LEARNING_OBJECT_INSTANCE_MODIFICATION_BATCH", LearningObjectInstance, true, LearningObjectInstanceModification;
    /// `LEARNING_PATH_COMPLETION_ROLLBACK`: a learner refreshed their own learning-path completion (newer release).
    LearningPathCompletionRollback = "LEARNING_PATH_COMPLETION_ROLLBACK", CompletionRollback, false, LearningPathCompletionRollback;
    /// `LEARNING_PATH_COMPLETION_ROLLBACK_BATCH`: an admin withdrew learners' learning-path completions (newer release).
    LearningPathCompletionRollbackBatch = "LEARNING_PATH_COMPLETION_ROLLBACK_BATCH", CompletionRollback, true, LearningPathCompletionRollback;
}

impl From<&str> for EventName {
    fn from(s: &str) -> Self {
        match s.parse() {
            Ok(name) => name,
            Err(never) => match never {},
        }
    }
}

impl EventName {
    /// The kind of learning object the name is about, for the names that
    /// say it (`COURSE_…`, `LEARNING_PATH_…`, `CERTIFICATION_…`); `None` for
    /// the others (`LEARNING_OBJECT_…` names cover every kind).
    ///
    /// ```
    /// use alm_webhooks::{EventName, LoKind};
    /// assert_eq!(EventName::LearningPathCompleted.lo_kind(), Some(LoKind::LearningProgram));
    /// assert_eq!(EventName::LearningObjectDraft.lo_kind(), None);
    /// ```
    pub fn lo_kind(&self) -> Option<LoKind> {
        if self.family() == EventFamily::Unknown {
            return None;
        }
        let name = self.as_str();
        if name.starts_with("COURSE_") {
            Some(LoKind::Course)
        } else if name.starts_with("LEARNING_PATH_") {
            Some(LoKind::LearningProgram)
        } else if name.starts_with("CERTIFICATION_") {
            Some(LoKind::Certification)
        } else {
            None
        }
    }
}

impl fmt::Display for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for EventName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl serde::de::Visitor<'_> for NameVisitor {
            type Value = EventName;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an event name string")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<EventName, E> {
                Ok(EventName::from(s))
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twenty_nine_known_names_round_trip() {
        assert_eq!(EventName::KNOWN.len(), 29);
        for name in EventName::KNOWN {
            assert_eq!(&EventName::from(name.as_str()), name);
            assert_ne!(name.family(), EventFamily::Unknown);
        }
    }

    #[test]
    fn batch_twins() {
        let batches: Vec<_> = EventName::KNOWN.iter().filter(|n| n.is_batch()).collect();
        assert_eq!(batches.len(), 12);
        for name in batches {
            let twin = name.real_time_twin().unwrap();
            assert_eq!(format!("{twin}_BATCH"), name.as_str());
            assert_eq!(twin.family(), name.family());
            assert!(twin.is_real_time());
        }
        assert_eq!(EventName::LearnerProgress.real_time_twin(), None);
        assert!(!EventName::LearnerProgress.is_real_time());
    }

    #[test]
    fn unknown_names_keep_their_text() {
        let name = EventName::from("NEW_THING_BATCH");
        assert_eq!(name.as_str(), "NEW_THING_BATCH");
        assert!(name.is_batch());
        assert_eq!(name.real_time_twin(), None);
        assert_eq!(EventName::from(""), EventName::Unknown("".into()));
    }
}
