//! The entity whose rule state an event reads and advances.

use std::fmt;

use serde::Deserialize;

use crate::{AccountId, Event, EventFamily, LoId, LoInstanceId, Subject, UserId};

/// The entity whose state an event reads and advances.
///
/// Identifiers are kept in their [canonical](LoInstanceId::canonical)
/// spelling, so `learningProgram:12345_678` and `learning_program:12345_678`
/// name one record (the events keep the ids as sent).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StateKey {
    /// A learner's record.
    Learner {
        /// The account.
        account_id: AccountId,
        /// The learner.
        user_id: UserId,
        /// The instance.
        lo_instance_id: LoInstanceId,
    },
    /// A learning object.
    LearningObject {
        /// The account.
        account_id: AccountId,
        /// The object.
        lo_id: LoId,
    },
    /// A learning object instance (instance events).
    Instance {
        /// The account.
        account_id: AccountId,
        /// The instance.
        lo_instance_id: LoInstanceId,
    },
    /// An instance's seat statistics (`CI_STATS`).
    InstanceStats {
        /// The account.
        account_id: AccountId,
        /// The instance.
        lo_instance_id: LoInstanceId,
    },
}

impl StateKey {
    /// The key for an event in an account, or `None` for events that have
    /// no state (unknown events).
    ///
    /// ```
    /// use alm_webhooks::{AccountId, Envelope, rules::StateKey};
    /// let body = br#"{"accountId":1,"events":[
    ///   {"eventId":"a","eventName":"LEARNING_PATH_ENROLLMENT","timestamp":1,
    ///    "data":{"userId":7,"loId":"learningProgram:1","loInstanceId":"learningProgram:1_2"}},
    ///   {"eventId":"b","eventName":"LEARNING_PATH_UNENROLLMENT","timestamp":2,
    ///    "data":{"userId":7,"loId":"learning_program:1","loInstanceId":"learning_program:1_2"}}]}"#;
    /// let envelope = Envelope::from_slice(body).unwrap();
    /// let keys: Vec<_> = envelope.parsed().map(|e| StateKey::for_event(AccountId(1), e)).collect();
    /// assert_eq!(keys[0], keys[1]);
    /// assert_eq!(keys[0].as_ref().unwrap().to_string(), "learner/1/7/learningProgram:1_2");
    /// ```
    pub fn for_event(account_id: AccountId, event: &Event) -> Option<Self> {
        Some(match event.subject() {
            Subject::Learner {
                user_id,
                lo_instance_id,
            } => Self::Learner {
                account_id,
                user_id,
                lo_instance_id: lo_instance_id.canonical(),
            },
            Subject::LearningObject(lo_id) => Self::LearningObject {
                account_id,
                lo_id: lo_id.canonical(),
            },
            Subject::LearningObjectInstance(id) => Self::Instance {
                account_id,
                lo_instance_id: id.canonical(),
            },
            Subject::InstanceStats(id) => Self::InstanceStats {
                account_id,
                lo_instance_id: id.canonical(),
            },
            _ => return None,
        })
    }

    /// The key for an event with an unknown name that the engine was told
    /// belongs to `family`, read from its raw `data` (`userId` and
    /// `loInstanceId` for a learner's record, `loId` for a learning object,
    /// `loInstanceId` for an instance). `Ok(None)` for the unknown family.
    ///
    /// # Errors
    ///
    /// The field path inside the event (`data.userId`) and what is wrong
    /// with it, when `data` lacks what the family needs.
    pub(crate) fn for_raw(
        account_id: AccountId,
        family: EventFamily,
        event: &Event,
    ) -> Result<Option<Self>, (String, String)> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Learner {
            user_id: UserId,
            lo_instance_id: LoInstanceId,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Object {
            lo_id: LoId,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Instance {
            lo_instance_id: LoInstanceId,
        }
        fn read<T: for<'de> Deserialize<'de>>(
            event: &Event,
            family: EventFamily,
        ) -> Result<T, (String, String)> {
            let json = match &event.data {
                crate::EventData::Unknown(Some(raw)) => raw.get(),
                _ => "null",
            };
            let mut de = serde_json::Deserializer::from_str(json);
            serde_path_to_error::deserialize(&mut de).map_err(|e| {
                let path = e.path().to_string();
                let field = if path.is_empty() || path == "." {
                    "data".to_owned()
                } else {
                    format!("data.{path}")
                };
                let message = format!(
                    "{} (the engine is configured to treat `{}` as {family:?})",
                    e.into_inner(),
                    event.event_name
                );
                (field, message)
            })
        }
        Ok(Some(match family {
            EventFamily::Enrollment
            | EventFamily::Unenrollment
            | EventFamily::Completion
            | EventFamily::CompletionRollback
            | EventFamily::LearnerProgress => {
                let d: Learner = read(event, family)?;
                Self::Learner {
                    account_id,
                    user_id: d.user_id,
                    lo_instance_id: d.lo_instance_id.canonical(),
                }
            }
            EventFamily::LearningObject => Self::LearningObject {
                account_id,
                lo_id: read::<Object>(event, family)?.lo_id.canonical(),
            },
            EventFamily::LearningObjectInstance => Self::Instance {
                account_id,
                lo_instance_id: read::<Instance>(event, family)?.lo_instance_id.canonical(),
            },
            EventFamily::InstanceStats => Self::InstanceStats {
                account_id,
                lo_instance_id: read::<Instance>(event, family)?.lo_instance_id.canonical(),
            },
            _ => return Ok(None),
        }))
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
