//! The key an event is deduplicated under.

use std::borrow::Cow;

use crate::{AccountId, Event, EventId, EventName};

/// The deduplication key: (`accountId`, `eventId`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DedupKey {
    /// The account.
    pub account_id: AccountId,
    /// The event.
    pub event_id: EventId,
}

/// The first character of a dedup key that holds an event's name: the ASCII
/// unit separator, which no id ALM generates contains.
const NAMED: char = '\u{1f}';

impl DedupKey {
    /// The key under which `event` is deduplicated in `account_id`.
    ///
    /// For an event this crate knows, (`accountId`, `eventId`). For an event
    /// whose name it does not know, the name is part of the key: the results
    /// of asynchronous API calls (`RESPONSE:ASYNCAPI_USERGROUP_USER_ADDED`)
    /// carry the **caller's** id, and two different results may reuse one.
    /// The stored `event_id` is then `"\u{1f}<length of the name>:<name><eventId>"`,
    /// which is unambiguous.
    ///
    /// ```
    /// use alm_webhooks::{AccountId, Envelope, store::DedupKey};
    /// let body = br#"{"accountId":1,"events":[
    ///   {"eventId":"sync-1","eventName":"RESPONSE:ASYNCAPI_USERGROUP_USER_ADDED","data":{}},
    ///   {"eventId":"sync-1","eventName":"RESPONSE:ASYNCAPI_USERGROUP_USER_REMOVED","data":{}}]}"#;
    /// let envelope = Envelope::from_slice(body).unwrap();
    /// let keys: Vec<_> = envelope.parsed().map(|e| DedupKey::for_event(AccountId(1), e)).collect();
    /// assert_ne!(keys[0], keys[1]);
    /// assert_eq!(keys[0].event_id.as_str(), "\u{1f}38:RESPONSE:ASYNCAPI_USERGROUP_USER_ADDEDsync-1");
    /// ```
    pub fn for_event(account_id: AccountId, event: &Event) -> Self {
        let event_id = match &event.event_name {
            EventName::Unknown(name) => {
                let id = format!("{NAMED}{}:{name}{}", name.len(), event.event_id);
                id.parse::<EventId>()
                    .unwrap_or_else(|_| event.event_id.clone())
            }
            _ => event.event_id.clone(),
        };
        Self {
            account_id,
            event_id,
        }
    }

    /// The stable form a store keys a decided event on: the account's
    /// number and the event id (as [`DedupKey::for_event`] builds it)
    /// through [`storage_key`](crate::store::storage_key), so an id over
    /// [`MAX_PLAIN_KEY_BYTES`](crate::store::MAX_PLAIN_KEY_BYTES) bytes or
    /// with a NUL byte is stored under its digest. PostgreSQL and SQLite
    /// store the pair in two columns; Redis keys on
    /// `{prefix}ev:{account}:{hex of the id}`. The form never changes.
    ///
    /// ```
    /// use alm_webhooks::{AccountId, store::DedupKey};
    /// let key = DedupKey {
    ///     account_id: AccountId(1234),
    ///     event_id: "2c1e6f0a-7c5b".parse().unwrap(),
    /// };
    /// let (account, event_id) = key.storage_key();
    /// assert_eq!((account, event_id.as_ref()), (1234, "2c1e6f0a-7c5b"));
    /// ```
    pub fn storage_key(&self) -> (u64, Cow<'_, str>) {
        (
            self.account_id.get(),
            crate::key_text::storage_key(self.event_id.as_str()),
        )
    }

    /// Whether the key holds the event's name besides its id (an unknown
    /// event's key, see [`DedupKey::for_event`]).
    pub(crate) fn is_named(&self) -> bool {
        self.event_id.as_str().starts_with(NAMED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stored form is pinned: changing it would make every decision
    /// stored before unreachable.
    #[test]
    fn storage_key_keeps_its_format() {
        let key = |id: &str| DedupKey {
            account_id: AccountId(42),
            event_id: id.parse().unwrap(),
        };
        assert_eq!(key("e-1").storage_key(), (42, Cow::Borrowed("e-1")));
        let long = "x".repeat(300);
        assert_eq!(
            key(&long).storage_key().1,
            format!(
                "{}…sha256:{}",
                "x".repeat(64),
                "0d4e2ca9e9cbced7a7a5380eb29e1a3783b9b6d0db72de36a1051038e1c1fbc7"
            )
        );
    }
}
