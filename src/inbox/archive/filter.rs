//! What a search or a replay asks of the archive.

use time::OffsetDateTime;

use super::{ArchivedEvent, to_millis};
use crate::inbox::DeliveryId;
use crate::{AccountId, EventId, EventName, LoInstanceId, UserId};

/// Which archived events (for a search) or deliveries (for a replay: those
/// with at least one such event) to read: received in `[from, to)`, of an
/// account, with some event names, an `eventId`, a learner, an instance.
/// Every condition set must hold; an empty filter matches everything.
///
/// ```
/// use alm_webhooks::{AccountId, UserId};
/// use alm_webhooks::inbox::ArchiveFilter;
/// let from = time::macros::datetime!(2026-12-01 00:00 UTC);
/// let filter = ArchiveFilter::new().with_user_id(UserId(42)).with_account_id(AccountId(7)).received_from(from);
/// assert_eq!(filter.user_id, Some(UserId(42)));
/// assert!(filter.has_event_condition());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ArchiveFilter {
    /// Received at or after (to the millisecond).
    pub from: Option<OffsetDateTime>,
    /// Received before (to the millisecond).
    pub to: Option<OffsetDateTime>,
    /// Of this account.
    pub account_id: Option<AccountId>,
    /// With one of these `eventName`s (none: any).
    pub event_names: Vec<EventName>,
    /// With this `eventId`.
    pub event_id: Option<EventId>,
    /// About this learner.
    pub user_id: Option<UserId>,
    /// About this instance (matched in its canonical spelling).
    pub lo_instance_id: Option<LoInstanceId>,
}

impl ArchiveFilter {
    /// Everything.
    ///
    /// ```
    /// assert!(!alm_webhooks::inbox::ArchiveFilter::new().has_event_condition());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Received at or after `from`.
    ///
    /// ```
    /// let from = time::macros::datetime!(2026-12-01 00:00 UTC);
    /// assert_eq!(alm_webhooks::inbox::ArchiveFilter::new().received_from(from).from, Some(from));
    /// ```
    #[must_use]
    pub fn received_from(mut self, from: OffsetDateTime) -> Self {
        self.from = Some(to_millis(from));
        self
    }

    /// Received before `to`.
    ///
    /// ```
    /// let to = time::macros::datetime!(2026-12-02 00:00 UTC);
    /// assert_eq!(alm_webhooks::inbox::ArchiveFilter::new().received_before(to).to, Some(to));
    /// ```
    #[must_use]
    pub fn received_before(mut self, to: OffsetDateTime) -> Self {
        self.to = Some(to_millis(to));
        self
    }

    /// Of `account_id`.
    ///
    /// ```
    /// use alm_webhooks::AccountId;
    /// let filter = alm_webhooks::inbox::ArchiveFilter::new().with_account_id(AccountId(7));
    /// assert_eq!(filter.account_id, Some(AccountId(7)));
    /// ```
    #[must_use]
    pub fn with_account_id(mut self, account_id: AccountId) -> Self {
        self.account_id = Some(account_id);
        self
    }

    /// With one of `names`.
    ///
    /// ```
    /// use alm_webhooks::EventName;
    /// let filter = alm_webhooks::inbox::ArchiveFilter::new().with_event_names([EventName::from("COURSE_COMPLETION")]);
    /// assert_eq!(filter.event_names.len(), 1);
    /// ```
    #[must_use]
    pub fn with_event_names(mut self, names: impl IntoIterator<Item = EventName>) -> Self {
        self.event_names = names.into_iter().collect();
        self
    }

    /// With `event_id`.
    ///
    /// ```
    /// let filter = alm_webhooks::inbox::ArchiveFilter::new().with_event_id("e1".parse().unwrap());
    /// assert_eq!(filter.event_id.unwrap().as_str(), "e1");
    /// ```
    #[must_use]
    pub fn with_event_id(mut self, event_id: EventId) -> Self {
        self.event_id = Some(event_id);
        self
    }

    /// About `user_id`.
    ///
    /// ```
    /// use alm_webhooks::UserId;
    /// assert_eq!(alm_webhooks::inbox::ArchiveFilter::new().with_user_id(UserId(3)).user_id, Some(UserId(3)));
    /// ```
    #[must_use]
    pub fn with_user_id(mut self, user_id: UserId) -> Self {
        self.user_id = Some(user_id);
        self
    }

    /// About `lo_instance_id` (in any spelling).
    ///
    /// ```
    /// let filter = alm_webhooks::inbox::ArchiveFilter::new()
    ///     .with_lo_instance_id("learning_program:12_34".parse().unwrap());
    /// assert_eq!(filter.lo_instance_id.unwrap().as_str(), "learningProgram:12_34");
    /// ```
    #[must_use]
    pub fn with_lo_instance_id(mut self, lo_instance_id: LoInstanceId) -> Self {
        self.lo_instance_id = Some(lo_instance_id.canonical());
        self
    }

    /// Whether a condition is about the events (names, `eventId`,
    /// learner, instance) rather than the delivery (time, account).
    ///
    /// ```
    /// use alm_webhooks::AccountId;
    /// assert!(!alm_webhooks::inbox::ArchiveFilter::new().with_account_id(AccountId(7)).has_event_condition());
    /// ```
    pub fn has_event_condition(&self) -> bool {
        !self.event_names.is_empty()
            || self.event_id.is_some()
            || self.user_id.is_some()
            || self.lo_instance_id.is_some()
    }

    /// Whether a delivery of `account_id` received at `received_at` is in
    /// the filter's time range and account.
    pub(crate) fn delivery_matches(
        &self,
        account_id: AccountId,
        received_at: OffsetDateTime,
    ) -> bool {
        let at = to_millis(received_at);
        self.from.is_none_or(|from| at >= from)
            && self.to.is_none_or(|to| at < to)
            && self.account_id.is_none_or(|a| a == account_id)
    }

    /// Whether `event` meets the filter's conditions on events.
    pub(crate) fn event_matches(&self, event: &ArchivedEvent) -> bool {
        (self.event_names.is_empty()
            || event
                .event_name
                .as_ref()
                .is_some_and(|n| self.event_names.contains(n)))
            && self
                .event_id
                .as_ref()
                .is_none_or(|id| event.event_id.as_ref() == Some(id))
            && self.user_id.is_none_or(|u| event.user_id == Some(u))
            && self
                .lo_instance_id
                .as_ref()
                .is_none_or(|i| event.lo_instance_id.as_ref() == Some(i))
    }
}

/// Where a page of [`Inbox::archived`](crate::inbox::Inbox::archived)
/// starts: after the delivery received at `received_at` with `id`
/// (deliveries come by time received, then by id).
///
/// ```
/// use alm_webhooks::inbox::{ArchiveCursor, DeliveryId};
/// let cursor = ArchiveCursor { received_at: time::OffsetDateTime::UNIX_EPOCH, id: DeliveryId(9) };
/// assert_eq!(cursor.id, DeliveryId(9));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ArchiveCursor {
    /// The last delivery's time received.
    pub received_at: OffsetDateTime,
    /// The last delivery's id.
    pub id: DeliveryId,
}
