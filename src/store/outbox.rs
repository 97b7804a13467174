//! The transactional outbox: one entry per processed event, written in the
//! commit that decides it, read by the relay
//! ([`crate::outbox::Relay`]) that hands it to a broker.
//!
//! A store that keeps an outbox writes an entry for every event the engine
//! [processed](crate::Decision::Processed) (never a duplicate, an ignored
//! or a malformed event) in the same atomic step as the decision: the
//! commit hook path of [`Store::commit_decided`](super::Store::commit_decided).
//! Each entry gets the next number of its account's *decision order*
//! ([`OutboxEntry::seq`]): the order in which the account's commits were
//! made, without gaps.
//!
//! The relay side ([`OutboxStore`]) leases accounts (one relay at a time
//! publishes an account's entries, in order), reads their oldest entries,
//! and deletes them once the broker acknowledged them. A relay that dies
//! between the broker's acknowledgement and the deletion leaves the entries
//! in place: the next lease publishes them again (at-least-once).

use std::future::Future;
use std::time::{Duration, SystemTime};

use time::OffsetDateTime;

use super::{Decided, StoreError};
use crate::{AccountId, EventFamily, EventId, EventName};

/// One processed event waiting to be handed to a broker.
///
/// ```
/// use alm_webhooks::{AccountId, Envelope};
/// use alm_webhooks::store::OutboxEntry;
/// let body = br#"{"accountId":7,"events":[{"eventId":"e1","eventName":"COURSE_ENROLLMENT",
///   "timestamp":1725604147000,"data":{"userId":1,"loId":"course:1","loInstanceId":"course:1_2",
///   "loType":"course","dateEnrolled":1725604147000}}]}"#;
/// let envelope = Envelope::from_slice(body).unwrap();
/// let entry = OutboxEntry::of(envelope.events[0].as_ref().unwrap()).unwrap();
/// assert_eq!(entry.account_id, AccountId(7));
/// assert_eq!(entry.family_token(), "enrollment");
/// assert_eq!(entry.timestamp_rfc3339().as_deref(), Some("2024-09-06T06:29:07.000Z"));
/// // The body is the event's JSON object as ALM sent it.
/// let json: serde_json::Value = serde_json::from_slice(&entry.body).unwrap();
/// assert_eq!(json["eventId"], "e1");
/// assert_eq!(json["timestamp"], 1725604147000u64);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OutboxEntry {
    /// The account that sent the event.
    pub account_id: AccountId,
    /// The event's id.
    pub event_id: EventId,
    /// The event's name.
    pub event_name: EventName,
    /// The event's `timestamp` (to the millisecond), if it had one.
    pub timestamp: Option<OffsetDateTime>,
    /// The event's JSON object, as ALM sent it (the event serialized:
    /// unknown fields included, times in the form they came in).
    pub body: Vec<u8>,
    /// The entry's place in its account's decision order: 1, 2, 3… without
    /// gaps, in the order the account's commits were made. `0` until the
    /// store writes it.
    pub seq: u64,
    /// When the store wrote it (the store's clock).
    pub decided_at: SystemTime,
}

impl OutboxEntry {
    /// The entry for an event (its `seq` is given by the store that writes
    /// it).
    ///
    /// # Errors
    ///
    /// When the event does not serialize (it always does: every event the
    /// crate parses serializes).
    pub fn of(event: &crate::Event) -> Result<Self, serde_json::Error> {
        Ok(Self {
            account_id: event.account_id,
            event_id: event.event_id.clone(),
            event_name: event.event_name.clone(),
            timestamp: event
                .timestamp
                .as_ref()
                .and_then(|t| from_millis(t.unix_millis())),
            body: serde_json::to_vec(event)?,
            seq: 0,
            decided_at: SystemTime::now(),
        })
    }

    /// The entries of the processed events among `decided`, in order.
    #[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
    pub(crate) fn of_processed(decided: &[Decided<'_>]) -> Result<Vec<Self>, serde_json::Error> {
        decided
            .iter()
            .filter(|d| d.is_processed())
            .map(|d| Self::of(d.event))
            .collect()
    }

    /// A stable id of (account, event), the same on every publish of the
    /// entry: `alm-` and 32 hex digits of the SHA-256 of the account id and
    /// the event id. Brokers that deduplicate (JetStream's `Nats-Msg-Id`)
    /// drop a re-publish by it; it is RabbitMQ's `message_id`.
    ///
    /// ```
    /// # use alm_webhooks::Envelope;
    /// # use alm_webhooks::store::OutboxEntry;
    /// # let body = br#"{"accountId":7,"events":[{"eventId":"e1","eventName":"NEW_THING"}]}"#;
    /// # let envelope = Envelope::from_slice(body).unwrap();
    /// let entry = OutboxEntry::of(envelope.events[0].as_ref().unwrap()).unwrap();
    /// assert_eq!(entry.message_id().len(), 36);
    /// assert_eq!(entry.message_id(), entry.clone().message_id());
    /// ```
    pub fn message_id(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut hash = Sha256::new();
        hash.update(self.account_id.get().to_be_bytes());
        hash.update(self.event_id.as_str().as_bytes());
        let digest = hash.finalize();
        format!("alm-{}", base16ct::lower::encode_string(&digest[..16]))
    }

    /// The event's family as a subject or routing-key token:
    /// `enrollment`, `unenrollment`, `completion`, `completion_rollback`,
    /// `learner_progress`, `learning_object`, `learning_object_instance`,
    /// `instance_stats`, or `unknown`.
    pub fn family_token(&self) -> &'static str {
        match self.event_name.family() {
            EventFamily::Enrollment => "enrollment",
            EventFamily::Unenrollment => "unenrollment",
            EventFamily::Completion => "completion",
            EventFamily::CompletionRollback => "completion_rollback",
            EventFamily::LearnerProgress => "learner_progress",
            EventFamily::LearningObject => "learning_object",
            EventFamily::LearningObjectInstance => "learning_object_instance",
            EventFamily::InstanceStats => "instance_stats",
            _ => "unknown",
        }
    }

    /// The event's time in RFC 3339 (UTC, milliseconds), the
    /// `alm-timestamp` header.
    pub fn timestamp_rfc3339(&self) -> Option<String> {
        let format = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        self.timestamp?.format(&format).ok()
    }

    /// The event's time in milliseconds since the epoch.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) fn timestamp_millis(&self) -> Option<i64> {
        self.timestamp
            .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
    }
}

/// A time from milliseconds since the epoch (UTC).
pub(crate) fn from_millis(ms: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

/// How full the outbox is: what the relay reports as
/// `alm_webhooks_outbox_pending` and `alm_webhooks_outbox_oldest_age_seconds`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OutboxStats {
    /// Entries not yet acknowledged by the broker.
    pub pending: u64,
    /// When the oldest of them was written (the store's clock), if any.
    pub oldest: Option<SystemTime>,
}

impl OutboxStats {
    /// Stats of `pending` entries, the oldest written at `oldest`.
    pub fn new(pending: u64, oldest: Option<SystemTime>) -> Self {
        Self { pending, oldest }
    }
}

/// A store's outbox, as the relay reads it. Implemented by
/// [`MemoryStore`](super::MemoryStore), `SqliteStore`, `PostgresStore` and
/// [`AnyStore`](super::AnyStore) `RedisStore` (each once its outbox is on: see their `with_outbox`).
///
/// What a relay relies on:
///
/// - **One relay per account at a time**: [`OutboxStore::lease_outbox`]
///   leases an account to one relay (by its `relay` name) until the lease
///   ends or the relay [releases](OutboxStore::mark_sent) it; another relay
///   skips it meanwhile. A lease runs on the store's clock where the store
///   is shared.
/// - **In order**: the entries of an account come in `seq` order, the
///   oldest first.
/// - **Deleted only when acknowledged**: an entry stays until
///   [`OutboxStore::mark_sent`] names it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
/// use alm_webhooks::store::{MemoryStore, OutboxStore};
/// let store = MemoryStore::new().with_outbox();
/// let leased = store.lease_outbox("relay-1", 100, Duration::from_secs(30)).await.unwrap();
/// assert!(leased.is_empty());
/// assert_eq!(store.outbox_stats().await.unwrap().pending, 0);
/// # }
/// ```
pub trait OutboxStore: Send + Sync + 'static {
    /// Whether this store writes outbox entries.
    fn keeps_outbox(&self) -> bool;

    /// Leases accounts with pending entries that no other relay holds (or
    /// whose lease ended) to `relay`, for `lease`, and returns up to `max`
    /// of their oldest entries, by account then `seq`. A relay that holds
    /// a lease renews it by leasing again.
    fn lease_outbox(
        &self,
        relay: &str,
        max: usize,
        lease: Duration,
    ) -> impl Future<Output = Result<Vec<OutboxEntry>, StoreError>> + Send;

    /// Deletes the entries the broker acknowledged (for each account named,
    /// every entry up to the highest `seq` of `sent`) and ends `relay`'s
    /// leases on those accounts.
    fn mark_sent(
        &self,
        relay: &str,
        sent: &[OutboxEntry],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// How many entries are pending, and since when.
    fn outbox_stats(&self) -> impl Future<Output = Result<OutboxStats, StoreError>> + Send;

    /// Resolves when this process may have written entries since it last
    /// resolved, so that an idle [`Relay`](crate::outbox::Relay) looks at
    /// once rather than at its next poll. The default never resolves (the
    /// relay polls); an [`Engine`](crate::Engine) resolves it after each
    /// commit its store's hooks saw. Entries written by other processes
    /// are found by the poll.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::time::Duration;
    /// use alm_webhooks::{Engine, Envelope};
    /// use alm_webhooks::store::{MemoryStore, OutboxStore};
    ///
    /// let engine = Engine::builder(MemoryStore::new().with_outbox()).build();
    /// let body = br#"{"accountId":1,"events":[{"eventId":"e1","eventName":"NEW_THING"}]}"#;
    /// engine.process(Envelope::from_slice(body).unwrap(), |_| async { Ok(()) }).await.unwrap();
    /// // The commit is remembered until someone waits.
    /// tokio::time::timeout(Duration::from_secs(1), engine.written()).await.unwrap();
    /// # }
    /// ```
    fn written(&self) -> impl Future<Output = ()> + Send {
        std::future::pending()
    }
}

/// For each account of `sent`, the highest `seq` sent (in account order).
pub(crate) fn highest_sent(sent: &[OutboxEntry]) -> Vec<(AccountId, u64)> {
    let mut out: std::collections::BTreeMap<u64, u64> = Default::default();
    for e in sent {
        let at = out.entry(e.account_id.get()).or_default();
        *at = (*at).max(e.seq);
    }
    out.into_iter().map(|(a, s)| (AccountId(a), s)).collect()
}

impl<S: OutboxStore> OutboxStore for std::sync::Arc<S> {
    fn keeps_outbox(&self) -> bool {
        S::keeps_outbox(self)
    }

    async fn lease_outbox(
        &self,
        relay: &str,
        max: usize,
        lease: Duration,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        S::lease_outbox(self, relay, max, lease).await
    }

    async fn mark_sent(&self, relay: &str, sent: &[OutboxEntry]) -> Result<(), StoreError> {
        S::mark_sent(self, relay, sent).await
    }

    async fn outbox_stats(&self) -> Result<OutboxStats, StoreError> {
        S::outbox_stats(self).await
    }

    async fn written(&self) {
        S::written(self).await;
    }
}
