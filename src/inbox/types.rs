//! The values an inbox stores and hands out.

use std::fmt;
use std::time::Duration;

use time::OffsetDateTime;

use crate::AccountId;

macro_rules! entry_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub u64);

        impl $name {
            /// The number.
            ///
            /// ```
            /// use alm_webhooks::inbox::DeliveryId;
            /// let id: DeliveryId = "42".parse().unwrap();
            /// assert_eq!((id.get(), id.to_string()), (42, "42".to_owned()));
            /// ```
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
///
/// ```
/// use alm_webhooks::inbox::LeaseToken;
/// assert_ne!(LeaseToken::random(), LeaseToken::random());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeaseToken(pub u128);

impl LeaseToken {
    /// A fresh token, unique as [`ClaimToken::random`](crate::store::ClaimToken::random)
    /// draws it (no system call).
    ///
    /// ```
    /// use alm_webhooks::inbox::LeaseToken;
    /// let token = LeaseToken::random();
    /// assert_ne!(token, LeaseToken::random());
    /// ```
    pub fn random() -> Self {
        Self(crate::store::ClaimToken::random().0)
    }
}

/// A delivery to append: what the front door acknowledged.
///
/// ```
/// use alm_webhooks::AccountId;
/// use alm_webhooks::inbox::NewDelivery;
/// let body = br#"{"accountId":7,"events":[]}"#;
/// let delivery = NewDelivery { account_id: AccountId(7), body, received_at: time::OffsetDateTime::now_utc() };
/// assert_eq!(delivery.body.len(), body.len());
/// ```
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
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
/// use alm_webhooks::AccountId;
/// use alm_webhooks::inbox::{Inbox, MemoryInbox, NewDelivery, Taken};
///
/// let inbox = MemoryInbox::new();
/// let now = time::OffsetDateTime::now_utc();
/// let body = br#"{"accountId":7,"events":[]}"#;
/// let id = inbox.append(NewDelivery { account_id: AccountId(7), body, received_at: now }).await.unwrap();
/// let taken: Taken = inbox.take(Duration::from_secs(30), now).await.unwrap().unwrap();
/// // The take counted this attempt: the first is attempt 1.
/// assert_eq!((taken.id, taken.account_id, taken.attempts, taken.abandoned), (id, AccountId(7), 1, 0));
/// // Its Debug shows the body's length, not the body.
/// assert!(format!("{taken:?}").contains(&format!("bytes: {}", body.len())));
/// # }
/// ```
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
    /// This attempt's number, counted by the take (1 the first time):
    /// attempts given back with [`Inbox::retry_later`](super::Inbox::retry_later)
    /// and attempts whose lease ran out count; those given back with
    /// [`Inbox::postpone`](super::Inbox::postpone) or
    /// [`Inbox::release`](super::Inbox::release) do not.
    pub attempts: u32,
    /// How many earlier attempts ended with their lease running out with no
    /// word from their worker (no complete, retry, postpone or release):
    /// the process died (abort, out of memory, `kill -9`) or hung.
    pub abandoned: u32,
    /// The last attempt's error, if one failed; [`LEASE_RAN_OUT`] when the
    /// last attempt was abandoned.
    pub last_error: Option<String>,
}

/// The `last_error` a take records when the previous attempt's lease ran
/// out with no word from its worker.
///
/// ```
/// assert!(alm_webhooks::inbox::LEASE_RAN_OUT.contains("the process died or hung"));
/// ```
pub const LEASE_RAN_OUT: &str =
    "the lease ran out with no word from its worker: the process died or hung";

impl Taken {
    /// A taken delivery, as a backend reads it.
    ///
    /// ```
    /// use alm_webhooks::AccountId;
    /// use alm_webhooks::inbox::{DeliveryId, LeaseToken, Taken};
    /// let now = time::OffsetDateTime::now_utc();
    /// // How a backend of your own hands out a delivery.
    /// let taken = Taken::new(DeliveryId(1), LeaseToken::random(), AccountId(7), b"{}".to_vec(), now, 1, None);
    /// assert_eq!((taken.id, taken.attempts, taken.abandoned), (DeliveryId(1), 1, 0));
    /// ```
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
            abandoned: 0,
            last_error,
        }
    }

    /// The same, with how many earlier attempts were abandoned (their lease
    /// ran out with no word from their worker).
    ///
    /// ```
    /// use alm_webhooks::AccountId;
    /// use alm_webhooks::inbox::{DeliveryId, LEASE_RAN_OUT, LeaseToken, Taken};
    /// let now = time::OffsetDateTime::now_utc();
    /// let taken = Taken::new(DeliveryId(1), LeaseToken::random(), AccountId(7), b"{}".to_vec(), now, 3, Some(LEASE_RAN_OUT.into()))
    ///     .with_abandoned(2);
    /// assert_eq!((taken.attempts, taken.abandoned), (3, 2));
    /// ```
    #[must_use]
    pub fn with_abandoned(mut self, abandoned: u32) -> Self {
        self.abandoned = abandoned;
        self
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
            .field("abandoned", &self.abandoned)
            .field("last_error", &self.last_error)
            .finish_non_exhaustive()
    }
}

/// An event to keep as a dead letter.
///
/// ```
/// use alm_webhooks::AccountId;
/// use alm_webhooks::inbox::{DeadLetter, DeadLetterId, NewDeadLetter};
/// let letter = NewDeadLetter {
///     account_id: AccountId(7),
///     event_id: Some("e1".into()),
///     event_name: Some("COURSE_ENROLLMENT".into()),
///     event: r#"{"eventId":"e1","eventName":"COURSE_ENROLLMENT"}"#.into(),
///     error: "the CRM answered 500".into(),
///     attempts: 10,
///     at: time::OffsetDateTime::now_utc(),
/// };
/// let kept = DeadLetter::new(DeadLetterId(1), letter);
/// assert_eq!(kept.letter.attempts, 10);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDeadLetter {
    /// Its account.
    pub account_id: AccountId,
    /// Its `eventId`, when it had one (any text, NUL included: every
    /// backend keeps the exact text).
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
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use alm_webhooks::AccountId;
/// use alm_webhooks::inbox::{Inbox, MemoryInbox, NewDeadLetter, NewDelivery};
/// use std::time::Duration;
///
/// let inbox = MemoryInbox::new();
/// let now = time::OffsetDateTime::now_utc();
/// let body = br#"{"accountId":7,"events":[{"eventId":"e1","eventName":"X"}]}"#;
/// inbox.append(NewDelivery { account_id: AccountId(7), body, received_at: now }).await.unwrap();
/// let taken = inbox.take(Duration::from_secs(30), now).await.unwrap().unwrap();
/// let letter = NewDeadLetter {
///     account_id: AccountId(7), event_id: Some("e1".into()), event_name: Some("X".into()),
///     event: r#"{"eventId":"e1","eventName":"X"}"#.into(), error: "boom".into(), attempts: 10, at: now,
/// };
/// inbox.complete(taken.id, taken.token, &[letter]).await.unwrap();
/// let dead = &inbox.dead_letters(10).await.unwrap()[0];
/// assert_eq!(dead.letter.error, "boom");
/// assert!(inbox.discard_dead_letter(dead.id).await.unwrap());
/// # }
/// ```
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
    ///
    /// ```
    /// use alm_webhooks::AccountId;
    /// use alm_webhooks::inbox::{DeadLetter, DeadLetterId, NewDeadLetter};
    /// let now = time::OffsetDateTime::now_utc();
    /// let letter = NewDeadLetter {
    ///     account_id: AccountId(7), event_id: None, event_name: None,
    ///     event: "{}".into(), error: "no eventId".into(), attempts: 1, at: now,
    /// };
    /// assert_eq!(DeadLetter::new(DeadLetterId(3), letter).id.get(), 3);
    /// ```
    pub fn new(id: DeadLetterId, letter: NewDeadLetter) -> Self {
        Self { id, letter }
    }
}

/// A body to quarantine: it passed authentication but is not an envelope.
///
/// ```
/// use alm_webhooks::inbox::NewQuarantined;
/// let body = br#"{"accountId":7}"#;
/// let kept = NewQuarantined {
///     account_id: None,
///     body,
///     error: "missing field `events`",
///     received_at: time::OffsetDateTime::now_utc(),
/// };
/// assert_eq!(kept.body, body);
/// ```
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
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use alm_webhooks::inbox::{Inbox, MemoryInbox, NewQuarantined};
///
/// let inbox = MemoryInbox::new();
/// let now = time::OffsetDateTime::now_utc();
/// let body = br#"{"accountId":7}"#;
/// let id = inbox.quarantine(NewQuarantined { account_id: None, body, error: "no events", received_at: now }).await.unwrap();
/// let kept = inbox.quarantined_body(id).await.unwrap().unwrap();
/// assert_eq!((kept.body.as_slice(), kept.error.as_str()), (&body[..], "no events"));
/// // Its Debug shows the body's length only.
/// assert!(!format!("{kept:?}").contains("accountId"));
/// # }
/// ```
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
    ///
    /// ```
    /// use alm_webhooks::AccountId;
    /// use alm_webhooks::inbox::{QuarantineId, Quarantined};
    /// let now = time::OffsetDateTime::now_utc();
    /// let kept = Quarantined::new(QuarantineId(1), Some(AccountId(7)), b"{}".to_vec(), "no events".into(), now);
    /// assert_eq!(kept.id, QuarantineId(1));
    /// ```
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

/// A lease in whole milliseconds, at most about 95 years (so a server's
/// clock plus it never overflows).
#[cfg_attr(not(any(feature = "postgres", feature = "redis")), allow(dead_code))]
pub(crate) fn lease_millis(d: Duration) -> i64 {
    duration_millis(d).min(3_000_000_000_000)
}

/// The age of something received at `then`, seen at `now` (zero if later).
pub(crate) fn age(now: OffsetDateTime, then: OffsetDateTime) -> Duration {
    Duration::try_from(now - then).unwrap_or(Duration::ZERO)
}
