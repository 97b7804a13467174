//! The key an event is deduplicated under.

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

    /// Whether the key holds the event's name besides its id (an unknown
    /// event's key, see [`DedupKey::for_event`]).
    pub(crate) fn is_named(&self) -> bool {
        self.event_id.as_str().starts_with(NAMED)
    }
}
