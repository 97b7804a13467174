//! The clock-offset knob: an inbox whose caller's clock runs `offset` ahead
//! of (or behind) the machine's, as a replica with a drifting clock would.
//! Every `now` the workers pass in (taking, renewing, retrying) is moved by
//! the offset; the backend's own clock is not touched. An inbox whose leases
//! run on the backend's clock (PostgreSQL, Redis) is unaffected by it; one
//! whose leases ran on each process's clock would let a process ahead of
//! the others take deliveries that are still leased.

use std::time::Duration;

use alm_webhooks::AccountId;
use alm_webhooks::inbox::{
    AnyInbox, DeadLetter, DeadLetterId, DeliveryId, Inbox, InboxError, InboxStats, LeaseToken,
    NewDeadLetter, NewDelivery, NewQuarantined, QuarantineId, Quarantined, Taken,
};
use time::OffsetDateTime;

/// [`AnyInbox`] seen through a clock `offset_secs` off the machine's.
#[derive(Debug)]
pub(crate) struct Skewed {
    inner: AnyInbox,
    offset: time::Duration,
}

impl Skewed {
    pub(crate) fn new(inner: AnyInbox, offset_secs: i64) -> Self {
        Self {
            inner,
            offset: time::Duration::seconds(offset_secs),
        }
    }

    fn moved(&self, at: OffsetDateTime) -> OffsetDateTime {
        at + self.offset
    }
}

impl Inbox for Skewed {
    async fn append(&self, delivery: NewDelivery<'_>) -> Result<DeliveryId, InboxError> {
        let received_at = self.moved(delivery.received_at);
        self.inner
            .append(NewDelivery {
                received_at,
                ..delivery
            })
            .await
    }

    async fn take(
        &self,
        lease: Duration,
        now: OffsetDateTime,
    ) -> Result<Option<Taken>, InboxError> {
        self.inner.take(lease, self.moved(now)).await
    }

    async fn renew(
        &self,
        id: DeliveryId,
        token: LeaseToken,
        lease: Duration,
        now: OffsetDateTime,
    ) -> Result<bool, InboxError> {
        self.inner.renew(id, token, lease, self.moved(now)).await
    }

    async fn complete(
        &self,
        id: DeliveryId,
        token: LeaseToken,
        dead_letters: &[NewDeadLetter],
    ) -> Result<bool, InboxError> {
        self.inner.complete(id, token, dead_letters).await
    }

    async fn retry_later(
        &self,
        id: DeliveryId,
        token: LeaseToken,
        not_before: OffsetDateTime,
        error: &str,
    ) -> Result<bool, InboxError> {
        let not_before = self.moved(not_before);
        self.inner.retry_later(id, token, not_before, error).await
    }

    async fn postpone(
        &self,
        id: DeliveryId,
        token: LeaseToken,
        not_before: OffsetDateTime,
        error: &str,
    ) -> Result<bool, InboxError> {
        let not_before = self.moved(not_before);
        self.inner.postpone(id, token, not_before, error).await
    }

    async fn release(&self, id: DeliveryId, token: LeaseToken) -> Result<bool, InboxError> {
        self.inner.release(id, token).await
    }

    async fn quarantine(&self, body: NewQuarantined<'_>) -> Result<QuarantineId, InboxError> {
        self.inner.quarantine(body).await
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, InboxError> {
        self.inner.dead_letters(limit).await
    }

    async fn dead_letter(&self, id: DeadLetterId) -> Result<Option<DeadLetter>, InboxError> {
        self.inner.dead_letter(id).await
    }

    async fn discard_dead_letter(&self, id: DeadLetterId) -> Result<bool, InboxError> {
        self.inner.discard_dead_letter(id).await
    }

    async fn replay_dead_letter(
        &self,
        id: DeadLetterId,
        now: OffsetDateTime,
    ) -> Result<Option<DeliveryId>, InboxError> {
        self.inner.replay_dead_letter(id, self.moved(now)).await
    }

    async fn quarantined(&self, limit: usize) -> Result<Vec<Quarantined>, InboxError> {
        self.inner.quarantined(limit).await
    }

    async fn quarantined_body(&self, id: QuarantineId) -> Result<Option<Quarantined>, InboxError> {
        self.inner.quarantined_body(id).await
    }

    async fn discard_quarantined(&self, id: QuarantineId) -> Result<bool, InboxError> {
        self.inner.discard_quarantined(id).await
    }

    async fn replay_quarantined(
        &self,
        id: QuarantineId,
        account_id: AccountId,
        now: OffsetDateTime,
    ) -> Result<Option<DeliveryId>, InboxError> {
        self.inner
            .replay_quarantined(id, account_id, self.moved(now))
            .await
    }

    async fn stats(&self, now: OffsetDateTime) -> Result<InboxStats, InboxError> {
        self.inner.stats(self.moved(now)).await
    }

    async fn kept_of(
        &self,
        account_id: AccountId,
    ) -> Result<alm_webhooks::inbox::KeptCounts, InboxError> {
        self.inner.kept_of(account_id).await
    }

    async fn most_kept_of_one_account(
        &self,
    ) -> Result<alm_webhooks::inbox::KeptCounts, InboxError> {
        self.inner.most_kept_of_one_account().await
    }

    fn is_durable(&self) -> bool {
        self.inner.is_durable()
    }
}
