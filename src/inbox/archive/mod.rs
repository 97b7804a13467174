//! The archive: every completed delivery's exact bytes, with the time it
//! was received and what was decided for each of its events, kept for a
//! retention and swept in bounded steps; searched by event, learner,
//! instance and time ([`Inbox::search_archive`](super::Inbox::search_archive)),
//! and read back in order for a replay ([`Inbox::archived`](super::Inbox::archived)).

mod filter;

use std::time::Duration;

use time::OffsetDateTime;

use crate::{AccountId, EventId, EventName, LoInstanceId, UserId};

use super::DeliveryId;

pub use filter::{ArchiveCursor, ArchiveFilter};

/// How long the archive keeps a delivery by default: 30 days
/// ([`WorkerOptions::with_archive`](super::WorkerOptions::with_archive),
/// `ALM_ARCHIVE_DAYS`).
///
/// ```
/// assert_eq!(alm_webhooks::inbox::DEFAULT_ARCHIVE_RETENTION.as_secs(), 30 * 86_400);
/// ```
pub const DEFAULT_ARCHIVE_RETENTION: Duration = Duration::from_secs(30 * 86_400);

/// How many archived deliveries one step of the sweep removes at most:
/// the pool's sweep takes a step a minute, and the next step at once while
/// a step finds this many.
///
/// ```
/// assert_eq!(alm_webhooks::inbox::ARCHIVE_SWEEP_STEP, 500);
/// ```
pub const ARCHIVE_SWEEP_STEP: usize = 500;

/// One event of an archived delivery, and what was decided for it on the
/// attempt that completed the delivery.
///
/// ```
/// use alm_webhooks::inbox::ArchivedEvent;
/// let event = ArchivedEvent::new(0, "processed")
///     .with_event_id("e1".parse().unwrap())
///     .with_user_id(alm_webhooks::UserId(42));
/// assert_eq!((event.decision.as_str(), event.attempts, event.user_id.unwrap().get()), ("processed", 1, 42));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ArchivedEvent {
    /// Its position in the delivery's `events`.
    pub index: u32,
    /// Its `eventId`, when it could be read.
    pub event_id: Option<EventId>,
    /// Its `eventName`, when it could be read.
    pub event_name: Option<EventName>,
    /// The learner (`userId`), for the events about one.
    pub user_id: Option<UserId>,
    /// The instance (`loInstanceId`), in its canonical spelling
    /// ([`LoInstanceId::canonical`]).
    pub lo_instance_id: Option<LoInstanceId>,
    /// When it happened (its `timestamp`), to the millisecond.
    pub timestamp: Option<OffsetDateTime>,
    /// The engine's decision, as [`Decision::as_str`](crate::Decision::as_str)
    /// prints it (`processed`, `duplicate`, `ignored`, `rejected`, `failed`,
    /// `busy`, `deferred`).
    pub decision: String,
    /// Why: the ignoring rule's [code](crate::rules::IgnoreReason::code),
    /// `dead_lettered` for an event kept as a dead letter.
    pub reason: Option<String>,
    /// The attempt that decided it (1 the first time).
    pub attempts: u32,
    /// The handler's or the parser's error, for a failed or rejected event.
    pub error: Option<String>,
}

impl ArchivedEvent {
    /// The event at `index` with `decision`, decided on the first attempt,
    /// nothing else known.
    ///
    /// ```
    /// let event = alm_webhooks::inbox::ArchivedEvent::new(3, "duplicate");
    /// assert_eq!((event.index, event.event_id), (3, None));
    /// ```
    pub fn new(index: u32, decision: impl Into<String>) -> Self {
        Self {
            index,
            event_id: None,
            event_name: None,
            user_id: None,
            lo_instance_id: None,
            timestamp: None,
            decision: decision.into(),
            reason: None,
            attempts: 1,
            error: None,
        }
    }

    /// With its `eventId`.
    ///
    /// ```
    /// let event = alm_webhooks::inbox::ArchivedEvent::new(0, "processed").with_event_id("e1".parse().unwrap());
    /// assert_eq!(event.event_id.unwrap().as_str(), "e1");
    /// ```
    #[must_use]
    pub fn with_event_id(mut self, event_id: EventId) -> Self {
        self.event_id = Some(event_id);
        self
    }

    /// With its `eventName`.
    ///
    /// ```
    /// use alm_webhooks::EventName;
    /// let event = alm_webhooks::inbox::ArchivedEvent::new(0, "processed").with_event_name(EventName::from("COURSE_ENROLLMENT_BATCH"));
    /// assert_eq!(event.event_name.unwrap().as_str(), "COURSE_ENROLLMENT_BATCH");
    /// ```
    #[must_use]
    pub fn with_event_name(mut self, event_name: EventName) -> Self {
        self.event_name = Some(event_name);
        self
    }

    /// With its learner.
    ///
    /// ```
    /// let event = alm_webhooks::inbox::ArchivedEvent::new(0, "processed").with_user_id(alm_webhooks::UserId(7));
    /// assert_eq!(event.user_id.unwrap().get(), 7);
    /// ```
    #[must_use]
    pub fn with_user_id(mut self, user_id: UserId) -> Self {
        self.user_id = Some(user_id);
        self
    }

    /// With its instance (kept in its canonical spelling).
    ///
    /// ```
    /// let event = alm_webhooks::inbox::ArchivedEvent::new(0, "processed")
    ///     .with_lo_instance_id("learning_program:12_34".parse().unwrap());
    /// assert_eq!(event.lo_instance_id.unwrap().as_str(), "learningProgram:12_34");
    /// ```
    #[must_use]
    pub fn with_lo_instance_id(mut self, lo_instance_id: LoInstanceId) -> Self {
        self.lo_instance_id = Some(lo_instance_id.canonical());
        self
    }

    /// With the time it happened (kept to the millisecond).
    ///
    /// ```
    /// let at = time::macros::datetime!(2026-12-06 10:00:00.123456 UTC);
    /// let event = alm_webhooks::inbox::ArchivedEvent::new(0, "processed").with_timestamp(at);
    /// assert_eq!(event.timestamp, Some(time::macros::datetime!(2026-12-06 10:00:00.123 UTC)));
    /// ```
    #[must_use]
    pub fn with_timestamp(mut self, timestamp: OffsetDateTime) -> Self {
        self.timestamp = Some(to_millis(timestamp));
        self
    }

    /// With why it was decided so (`reason`), on which attempt, and the
    /// error.
    ///
    /// ```
    /// let event = alm_webhooks::inbox::ArchivedEvent::new(0, "failed")
    ///     .with_outcome(Some("dead_lettered"), 5, Some("CRM timed out"));
    /// assert_eq!((event.reason.as_deref(), event.attempts, event.error.as_deref()),
    ///     (Some("dead_lettered"), 5, Some("CRM timed out")));
    /// ```
    #[must_use]
    pub fn with_outcome(
        mut self,
        reason: Option<&str>,
        attempts: u32,
        error: Option<&str>,
    ) -> Self {
        self.reason = reason.map(str::to_owned);
        self.attempts = attempts;
        self.error = error.map(str::to_owned);
        self
    }
}

/// An event found in the archive ([`Inbox::search_archive`](super::Inbox::search_archive)):
/// its delivery's account, place and time received, and the event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FoundEvent {
    /// The delivery it came in.
    pub delivery: DeliveryId,
    /// The delivery's account.
    pub account_id: AccountId,
    /// When the delivery was received, to the millisecond.
    pub received_at: OffsetDateTime,
    /// The event and its decision.
    pub event: ArchivedEvent,
}

impl FoundEvent {
    /// An event found, as a backend reads it.
    ///
    /// ```
    /// use alm_webhooks::AccountId;
    /// use alm_webhooks::inbox::{ArchivedEvent, DeliveryId, FoundEvent};
    /// let now = time::OffsetDateTime::UNIX_EPOCH;
    /// let found = FoundEvent::new(DeliveryId(1), AccountId(7), now, ArchivedEvent::new(0, "processed"));
    /// assert_eq!(found.account_id, AccountId(7));
    /// ```
    pub fn new(
        delivery: DeliveryId,
        account_id: AccountId,
        received_at: OffsetDateTime,
        event: ArchivedEvent,
    ) -> Self {
        Self {
            delivery,
            account_id,
            received_at,
            event,
        }
    }
}

/// A delivery read back from the archive ([`Inbox::archived`](super::Inbox::archived)):
/// its exact bytes, its account, when it was received, and its events'
/// decisions.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ArchivedDelivery {
    /// Its place in the inbox when it was appended.
    pub id: DeliveryId,
    /// Its account.
    pub account_id: AccountId,
    /// The body, exactly as received.
    pub body: Vec<u8>,
    /// When it was received, to the millisecond.
    pub received_at: OffsetDateTime,
    /// Its events' decisions, by position (an event the worker could not
    /// read has none).
    pub events: Vec<ArchivedEvent>,
}

impl ArchivedDelivery {
    /// A delivery read back, as a backend reads it.
    ///
    /// ```
    /// use alm_webhooks::AccountId;
    /// use alm_webhooks::inbox::{ArchivedDelivery, DeliveryId};
    /// let now = time::OffsetDateTime::UNIX_EPOCH;
    /// let archived = ArchivedDelivery::new(DeliveryId(1), AccountId(7), b"{}".to_vec(), now, Vec::new());
    /// assert_eq!(archived.cursor().id, DeliveryId(1));
    /// ```
    pub fn new(
        id: DeliveryId,
        account_id: AccountId,
        body: Vec<u8>,
        received_at: OffsetDateTime,
        events: Vec<ArchivedEvent>,
    ) -> Self {
        Self {
            id,
            account_id,
            body,
            received_at: to_millis(received_at),
            events,
        }
    }

    /// Where the next page of [`Inbox::archived`](super::Inbox::archived)
    /// starts: after this delivery.
    ///
    /// ```
    /// use alm_webhooks::AccountId;
    /// use alm_webhooks::inbox::{ArchivedDelivery, DeliveryId};
    /// let now = time::OffsetDateTime::UNIX_EPOCH;
    /// let archived = ArchivedDelivery::new(DeliveryId(4), AccountId(7), Vec::new(), now, Vec::new());
    /// assert_eq!((archived.cursor().received_at, archived.cursor().id), (now, DeliveryId(4)));
    /// ```
    pub fn cursor(&self) -> ArchiveCursor {
        ArchiveCursor {
            received_at: self.received_at,
            id: self.id,
        }
    }
}

/// `t` to the millisecond (what every backend keeps).
pub(crate) fn to_millis(t: OffsetDateTime) -> OffsetDateTime {
    super::types::from_millis(super::types::unix_millis(t))
}
