//! Nothing unstorable stalls an account: a delivery whose dead letters the
//! inbox refuses for good is quarantined whole, with the reason, instead
//! of being taken again forever; a dead letter is reported only once the
//! inbox kept it; a refusal that may pass is left to the next attempt.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use alm_webhooks::inbox::{
    DeadLetter, DeadLetterId, DeliveryId, Inbox, InboxError, InboxStats, LeaseToken, MemoryInbox,
    NewDeadLetter, NewDelivery, NewQuarantined, Progress, QuarantineId, Quarantined, Taken,
    Workers,
};
use alm_webhooks::{AccountId, Engine, Event};
use time::OffsetDateTime;

/// A memory inbox that refuses to keep dead letters, for good or not.
struct Refusing {
    inner: MemoryInbox,
    permanent: bool,
}

impl Inbox for Refusing {
    async fn append(&self, d: NewDelivery<'_>) -> Result<DeliveryId, InboxError> {
        self.inner.append(d).await
    }
    async fn take(&self, l: Duration, n: OffsetDateTime) -> Result<Option<Taken>, InboxError> {
        self.inner.take(l, n).await
    }
    async fn renew(
        &self,
        id: DeliveryId,
        t: LeaseToken,
        l: Duration,
        n: OffsetDateTime,
    ) -> Result<bool, InboxError> {
        self.inner.renew(id, t, l, n).await
    }
    async fn complete(
        &self,
        id: DeliveryId,
        t: LeaseToken,
        letters: &[NewDeadLetter],
    ) -> Result<bool, InboxError> {
        if letters.is_empty() {
            return self.inner.complete(id, t, letters).await;
        }
        let refused = InboxError::new("invalid byte sequence for encoding \"UTF8\": 0x00");
        Err(if self.permanent {
            refused.permanent()
        } else {
            refused
        })
    }
    async fn retry_later(
        &self,
        id: DeliveryId,
        t: LeaseToken,
        at: OffsetDateTime,
        e: &str,
    ) -> Result<bool, InboxError> {
        self.inner.retry_later(id, t, at, e).await
    }
    async fn postpone(
        &self,
        id: DeliveryId,
        t: LeaseToken,
        at: OffsetDateTime,
        e: &str,
    ) -> Result<bool, InboxError> {
        self.inner.postpone(id, t, at, e).await
    }
    async fn release(&self, id: DeliveryId, t: LeaseToken) -> Result<bool, InboxError> {
        self.inner.release(id, t).await
    }
    async fn quarantine(&self, b: NewQuarantined<'_>) -> Result<QuarantineId, InboxError> {
        self.inner.quarantine(b).await
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
        n: OffsetDateTime,
    ) -> Result<Option<DeliveryId>, InboxError> {
        self.inner.replay_dead_letter(id, n).await
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
        a: AccountId,
        n: OffsetDateTime,
    ) -> Result<Option<DeliveryId>, InboxError> {
        self.inner.replay_quarantined(id, a, n).await
    }
    async fn stats(&self, n: OffsetDateTime) -> Result<InboxStats, InboxError> {
        self.inner.stats(n).await
    }
}

const BODY: &[u8] = br#"{"accountId":3,"events":[{"eventId":"nul\u0000id","eventName":"COURSE_ENROLLMENT","timestamp":1,"data":{"userId":"x"}}]}"#;

/// Runs one delivery on an inbox that refuses its dead letters; what the
/// observer saw.
async fn run(inbox: &Arc<Refusing>) -> Vec<String> {
    let now = OffsetDateTime::now_utc();
    inbox
        .append(NewDelivery {
            account_id: AccountId(3),
            body: BODY,
            received_at: now,
        })
        .await
        .unwrap();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = Arc::clone(&seen);
    let workers = Workers::new(Engine::in_memory(), Arc::clone(inbox)).with_options(
        alm_webhooks::inbox::WorkerOptions::new()
            .with_delivery_lease(Duration::from_millis(300))
            .with_observer(move |p| {
                let line = match p {
                    Progress::DeadLettered { .. } => "dead_lettered".to_owned(),
                    Progress::Quarantined { error, .. } => format!("quarantined: {error}"),
                    Progress::Unavailable { .. } => "unavailable".to_owned(),
                    _ => return,
                };
                sink.lock().unwrap().push(line);
            }),
    );
    let handler = |_event: Event| async { Ok(()) };
    assert!(workers.run_once(&handler).await.unwrap());
    seen.lock().unwrap().clone()
}

#[tokio::test]
async fn a_delivery_whose_dead_letters_are_refused_for_good_is_quarantined_not_retried() {
    let inbox = Arc::new(Refusing {
        inner: MemoryInbox::new(),
        permanent: true,
    });
    let seen = run(&inbox).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(
        seen[0].starts_with(
            "quarantined: its dead letters cannot be kept: inbox unavailable: invalid byte sequence"
        ),
        "{seen:?}"
    );
    let stats = inbox.stats(OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!(
        (
            stats.pending,
            stats.in_flight,
            stats.retrying,
            stats.quarantined
        ),
        (0, 0, 0, 1),
        "the account goes on: {stats:?}"
    );
    let kept = &inbox.quarantined(10).await.unwrap()[0];
    assert_eq!(kept.body, BODY, "the delivery's exact bytes");
    assert_eq!(kept.account_id, Some(AccountId(3)));
}

#[tokio::test]
async fn a_refusal_that_may_pass_leaves_the_delivery_for_the_next_attempt_and_reports_no_dead_letter()
 {
    let inbox = Arc::new(Refusing {
        inner: MemoryInbox::new(),
        permanent: false,
    });
    let seen = run(&inbox).await;
    assert_eq!(
        seen,
        ["unavailable"],
        "no dead letter reported before the inbox kept it"
    );
    let stats = inbox.stats(OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!((stats.in_flight, stats.quarantined), (1, 0), "{stats:?}");
}
