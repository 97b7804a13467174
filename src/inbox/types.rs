//! The values an inbox stores and hands out.

use std::fmt;
use std::time::Duration;

use http::StatusCode;
use time::OffsetDateTime;

use crate::AccountId;

macro_rules! entry_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub u64);

        impl $name {
            /// The number.
            pub fn get(self) -> u64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::num::ParseIntError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map(Self)
            }
        }
    };
}

entry_id!(
    /// A delivery's place in the inbox: increasing in the order of
    /// acknowledgement.
    DeliveryId
);
entry_id!(
    /// A dead letter's number.
    DeadLetterId
);
entry_id!(
    /// A quarantined body's number.
    QuarantineId
);

/// Proof of a lease on a delivery; required to complete, retry, renew or
/// release it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeaseToken(pub u128);

impl LeaseToken {
    /// A fresh random token.
    pub fn random() -> Self {
        Self(crate::store::ClaimToken::random().0)
    }
}

/// A delivery to append: what the front door acknowledged.
#[derive(Debug, Clone, Copy)]
pub struct NewDelivery<'a> {
    /// Its account (`accountId`).
    pub account_id: AccountId,
    /// The body, exactly as received.
    pub body: &'a [u8],
    /// When it was received.
    pub received_at: OffsetDateTime,
}

/// A delivery handed out by [`Inbox::take`](super::Inbox::take).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Taken {
    /// Its place in the inbox.
    pub id: DeliveryId,
    /// The lease's proof.
    pub token: LeaseToken,
    /// Its account.
    pub account_id: AccountId,
    /// The body, exactly as received.
    pub body: Vec<u8>,
    /// When it was received.
    pub received_at: OffsetDateTime,
    /// Attempts already made and given up (0 the first time).
    pub attempts: u32,
    /// The last attempt's error, if one failed.
    pub last_error: Option<String>,
}

impl Taken {
    /// A taken delivery, as a backend reads it.
    pub fn new(
        id: DeliveryId,
        token: LeaseToken,
        account_id: AccountId,
        body: Vec<u8>,
        received_at: OffsetDateTime,
        attempts: u32,
        last_error: Option<String>,
    ) -> Self {
        Self {
            id,
            token,
            account_id,
            body,
            received_at,
            attempts,
            last_error,
        }
    }
}

impl fmt::Debug for Taken {
    /// The body's length, not its content (it may hold personal data).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Taken")
            .field("id", &self.id)
            .field("account_id", &self.account_id)
            .field("bytes", &self.body.len())
            .field("received_at", &self.received_at)
            .field("attempts", &self.attempts)
            .field("last_error", &self.last_error)
            .finish_non_exhaustive()
    }
}

/// An event to keep as a dead letter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDeadLetter {
    /// Its account.
    pub account_id: AccountId,
    /// Its `eventId`, when it had a valid one.
    pub event_id: Option<String>,
    /// Its `eventName`, when it had a valid one.
    pub event_name: Option<String>,
    /// The event's JSON, exactly as it was sent.
    pub event: String,
    /// The last error (the handler's, or why the event did not parse).
    pub error: String,
    /// How many attempts were made.
    pub attempts: u32,
    /// When it was given up.
    pub at: OffsetDateTime,
}

/// An event given up on, kept for a person to replay or discard.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeadLetter {
    /// Its number.
    pub id: DeadLetterId,
    /// What was kept.
    pub letter: NewDeadLetter,
}

impl DeadLetter {
    /// A dead letter, as a backend reads it.
    pub fn new(id: DeadLetterId, letter: NewDeadLetter) -> Self {
        Self { id, letter }
    }
}

/// A body to quarantine: it passed authentication but is not an envelope.
#[derive(Debug, Clone, Copy)]
pub struct NewQuarantined<'a> {
    /// Its `accountId`, when it could be read.
    pub account_id: Option<AccountId>,
    /// The body, exactly as received.
    pub body: &'a [u8],
    /// Why it is not an envelope.
    pub error: &'a str,
    /// When it was received.
    pub received_at: OffsetDateTime,
}

/// A quarantined body.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Quarantined {
    /// Its number.
    pub id: QuarantineId,
    /// Its `accountId`, when it could be read.
    pub account_id: Option<AccountId>,
    /// The body, exactly as received.
    pub body: Vec<u8>,
    /// Why it is not an envelope.
    pub error: String,
    /// When it was received.
    pub received_at: OffsetDateTime,
}

impl Quarantined {
    /// A quarantined body, as a backend reads it.
    pub fn new(
        id: QuarantineId,
        account_id: Option<AccountId>,
        body: Vec<u8>,
        error: String,
        received_at: OffsetDateTime,
    ) -> Self {
        Self {
            id,
            account_id,
            body,
            error,
            received_at,
        }
    }
}

impl fmt::Debug for Quarantined {
    /// The body's length, not its content.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Quarantined")
            .field("id", &self.id)
            .field("account_id", &self.account_id)
            .field("bytes", &self.body.len())
            .field("error", &self.error)
            .field("received_at", &self.received_at)
            .finish()
    }
}

/// What an inbox holds at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct InboxStats {
    /// Deliveries waiting to be taken (including those whose retry is due
    /// and those whose lease ran out).
    pub pending: u64,
    /// Deliveries under a live lease.
    pub in_flight: u64,
    /// Deliveries waiting for a retry time still to come.
    pub retrying: u64,
    /// Dead letters kept.
    pub dead_letters: u64,
    /// Quarantined bodies kept.
    pub quarantined: u64,
    /// How long the oldest delivery still in the inbox (pending, in flight
    /// or retrying) has waited; `None` when the inbox is empty.
    pub oldest_pending_age: Option<Duration>,
}

/// The figures the metrics gauges show (feature `metrics`).
#[cfg(feature = "metrics")]
impl From<&InboxStats> for crate::metrics::InboxFigures {
    fn from(stats: &InboxStats) -> Self {
        crate::metrics::InboxFigures {
            pending: stats.pending,
            in_flight: stats.in_flight,
            retrying: stats.retrying,
            dead_letters: stats.dead_letters,
            quarantined: stats.quarantined,
            oldest_pending_age: stats.oldest_pending_age.unwrap_or_default(),
        }
    }
}

impl InboxStats {
    /// Stats from their parts, as a backend counts them.
    pub fn new(
        pending: u64,
        in_flight: u64,
        retrying: u64,
        dead_letters: u64,
        quarantined: u64,
        oldest_pending_age: Option<Duration>,
    ) -> Self {
        Self {
            pending,
            in_flight,
            retrying,
            dead_letters,
            quarantined,
            oldest_pending_age,
        }
    }
}

/// The inbox could not be reached or answered wrongly. The front door then
/// answers `503`, so ALM redelivers; nothing is lost.
#[derive(Debug, thiserror::Error)]
#[error("inbox unavailable: {message}")]
pub struct InboxError {
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl InboxError {
    /// An error with a message (never a password or a body).
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// An error caused by another.
    pub fn with_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }

    /// The HTTP status this means: `503 Service Unavailable`.
    pub fn status(&self) -> StatusCode {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

impl From<crate::store::StoreError> for InboxError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::with_source("the store failed", e)
    }
}

/// The body a replayed dead letter is appended with: a one-event envelope
/// of its account.
///
/// ```
/// use alm_webhooks::AccountId;
/// use alm_webhooks::inbox::replay_body;
/// assert_eq!(replay_body(AccountId(7), r#"{"eventId":"e"}"#), br#"{"accountId":7,"events":[{"eventId":"e"}]}"#);
/// ```
pub fn replay_body(account_id: AccountId, event: &str) -> Vec<u8> {
    format!(r#"{{"accountId":{account_id},"events":[{event}]}}"#).into_bytes()
}

/// Unix milliseconds of a time (saturating).
#[cfg_attr(not(any(feature = "sqlite", feature = "redis")), allow(dead_code))]
pub(crate) fn unix_millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// The time of Unix milliseconds (the epoch if out of range).
#[cfg_attr(not(any(feature = "sqlite", feature = "redis")), allow(dead_code))]
pub(crate) fn from_millis(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// A duration in whole milliseconds (saturating).
#[cfg_attr(not(any(feature = "sqlite", feature = "redis")), allow(dead_code))]
pub(crate) fn duration_millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The age of something received at `then`, seen at `now` (zero if later).
pub(crate) fn age(now: OffsetDateTime, then: OffsetDateTime) -> Duration {
    Duration::try_from(now - then).unwrap_or(Duration::ZERO)
}
