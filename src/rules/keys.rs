//! The entity whose rule state an event reads and advances.

use std::borrow::Cow;
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
        Some(match event.subject()? {
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

    /// The stable form a store keys this entity's state on:
    /// `learner/{accountId}/{userId}/{loInstanceId}`, `lo/{accountId}/{loId}`,
    /// `instance/{accountId}/{loInstanceId}` or
    /// `stats/{accountId}/{loInstanceId}` (canonical ids), through
    /// [`store::storage_key`](crate::store::storage_key), so a text over
    /// [`MAX_PLAIN_KEY_BYTES`](crate::store::MAX_PLAIN_KEY_BYTES) bytes is
    /// stored under its digest. Every store of this crate that keys on text
    /// uses it (PostgreSQL's `state_key`, SQLite's, Redis's `st:` keys);
    /// it never changes, so states stored by an earlier version stay
    /// reachable. [`Display`](fmt::Display) is for people and may change.
    ///
    /// ```
    /// use alm_webhooks::{AccountId, LoInstanceId, UserId, rules::StateKey};
    /// let key = StateKey::Learner {
    ///     account_id: AccountId(1234),
    ///     user_id: UserId(7),
    ///     lo_instance_id: "course:1_2".parse::<LoInstanceId>().unwrap(),
    /// };
    /// assert_eq!(key.storage_key(), "learner/1234/7/course:1_2");
    /// ```
    pub fn storage_key(&self) -> String {
        let text = match self {
            Self::Learner {
                account_id,
                user_id,
                lo_instance_id,
            } => format!(
                "learner/{}/{}/{}",
                account_id.get(),
                user_id.get(),
                lo_instance_id.as_str()
            ),
            Self::LearningObject { account_id, lo_id } => {
                format!("lo/{}/{}", account_id.get(), lo_id.as_str())
            }
            Self::Instance {
                account_id,
                lo_instance_id,
            } => format!("instance/{}/{}", account_id.get(), lo_instance_id.as_str()),
            Self::InstanceStats {
                account_id,
                lo_instance_id,
            } => format!("stats/{}/{}", account_id.get(), lo_instance_id.as_str()),
        };
        match crate::key_text::storage_key(&text) {
            Cow::Borrowed(_) => text,
            Cow::Owned(digested) => digested,
        }
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

/// A text form for people (logs, messages): `learner/1234/7/course:1_2`,
/// `lo/1234/course:1`, `instance/1234/course:1_2`, `stats/1234/course:1_2`.
/// Stores key on [`StateKey::storage_key`] instead.
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The stored forms are pinned: changing one would make every state
    /// stored before unreachable.
    #[test]
    fn storage_keys_keep_their_format() {
        let instance: LoInstanceId = "learningProgram:12_34".parse().unwrap();
        let learner = StateKey::Learner {
            account_id: AccountId(1234),
            user_id: UserId(7),
            lo_instance_id: instance.canonical(),
        };
        assert_eq!(
            learner.storage_key(),
            "learner/1234/7/learningProgram:12_34"
        );
        let lo = StateKey::LearningObject {
            account_id: AccountId(1),
            lo_id: "course:9".parse().unwrap(),
        };
        assert_eq!(lo.storage_key(), "lo/1/course:9");
        let stats = StateKey::InstanceStats {
            account_id: AccountId(u64::MAX),
            lo_instance_id: "course:1_2".parse().unwrap(),
        };
        assert_eq!(stats.storage_key(), "stats/18446744073709551615/course:1_2");
        let long = StateKey::Instance {
            account_id: AccountId(5),
            lo_instance_id: format!("course:1_{}", "9".repeat(300)).parse().unwrap(),
        };
        assert_eq!(
            long.storage_key(),
            format!(
                "instance/5/course:1_{}…sha256:534b6a4bf6d5f1364861bd9d193e3c413369cafa9545f08fc9c74a9c0f313d6f",
                "9".repeat(44)
            )
        );
    }
}
