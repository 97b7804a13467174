//! Workers that keep an account moving whatever a delivery does: a panic
//! anywhere in a worker, and the last attempt of a record's events.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alm_webhooks::inbox::{
    DeadLetter, DeadLetterId, DeliveryId, GIVE_BACK_BOUND, Inbox, InboxError, InboxStats,
    LeaseToken, MemoryInbox, NewDeadLetter, NewDelivery, NewQuarantined, Progress, QuarantineId,
    Quarantined, RetryPolicy, Taken, Workers,
};
use alm_webhooks::{AccountId, BoxError, Engine, Event};
use time::OffsetDateTime;

const T0: i64 = 1725600000;

fn learner(event_id: &str, name: &str, timestamp: i64, user: u64) -> String {
    format!(
        r#"{{"eventId":"{event_id}","eventName":"{name}","timestamp":{timestamp},"data":{{"userId":{user},"loId":"course:1","loInstanceId":"course:1_2"}}}}"#
    )
}

fn body(account: u64, events: &[String]) -> Vec<u8> {
    format!(
        r#"{{"accountId":{account},"events":[{}]}}"#,
        events.join(",")
    )
    .into_bytes()
}

async fn append(inbox: &MemoryInbox, account: u64, events: &[String]) {
    inbox
        .append(NewDelivery {
            account_id: AccountId(account),
            body: &body(account, events),
            received_at: OffsetDateTime::now_utc(),
        })
        .await
        .unwrap();
}

fn quick_retries(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base: Duration::from_millis(10),
        max: Duration::from_millis(10),
    }
}

/// Polls `done` every 10 ms for at most `within`.
async fn eventually(within: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    done()
}

/// The handler's calls, by event id.
#[derive(Clone, Default)]
struct Calls(Arc<Mutex<Vec<String>>>);

impl Calls {
    fn push(&self, id: &str) {
        self.0.lock().unwrap().push(id.to_owned());
    }
    fn count(&self, id: &str) -> usize {
        self.0.lock().unwrap().iter().filter(|c| *c == id).count()
    }
    fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// An observer that panics on one event: the worker survives it, the
/// delivery is a failed attempt (dead-lettered after the last), the other
/// accounts are processed, and shutdown keeps its bound and says a worker
/// panicked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_observer_does_not_stop_the_other_accounts() {
    let inbox = Arc::new(MemoryInbox::new());
    append(&inbox, 1, &[learner("boom", "COURSE_ENROLLMENT", T0, 7)]).await;
    let calls = Calls::default();
    let handler = {
        let calls = calls.clone();
        move |event: Event| {
            let calls = calls.clone();
            async move {
                calls.push(event.event_id.as_str());
                if event.event_id.as_str() == "boom" {
                    return Err(BoxError::from("boom fails"));
                }
                Ok(())
            }
        }
    };
    let panics = Arc::new(AtomicUsize::new(0));
    let letters: Arc<Mutex<Vec<String>>> = Arc::default();
    let observer = {
        let (panics, letters) = (Arc::clone(&panics), Arc::clone(&letters));
        move |progress: Progress<'_>| match progress {
            Progress::Decided { outcome, .. }
                if outcome.event_id.as_ref().map(|id| id.as_str()) == Some("boom") =>
            {
                panic!("the observer cannot take boom")
            }
            Progress::Panicked { .. } => {
                panics.fetch_add(1, Ordering::SeqCst);
            }
            Progress::DeadLettered { letter } => letters.lock().unwrap().push(letter.error.clone()),
            _ => {}
        }
    };
    let pool = Workers::new(Engine::in_memory(), Arc::clone(&inbox))
        .with_options(
            alm_webhooks::inbox::WorkerOptions::new()
                .with_count(2)
                .with_delivery_lease(Duration::from_millis(300))
                .with_poll_interval(Duration::from_millis(5))
                .with_retry(quick_retries(3))
                .with_observer(observer),
        )
        .start(handler);
    // Both workers meet boom before the other accounts arrive.
    assert!(eventually(Duration::from_secs(5), || calls.count("boom") >= 2).await);
    for account in 2..=5 {
        let id = format!("ok{account}");
        append(&inbox, account, &[learner(&id, "COURSE_ENROLLMENT", T0, 7)]).await;
    }
    pool.wake();
    let processed = eventually(Duration::from_secs(10), || {
        (2..=5).all(|a| calls.count(&format!("ok{a}")) == 1)
    })
    .await;
    assert!(
        processed,
        "the other accounts were processed: {:?}",
        calls.all()
    );
    assert!(
        eventually(Duration::from_secs(5), || !letters
            .lock()
            .unwrap()
            .is_empty())
        .await,
        "boom was dead-lettered after its last attempt"
    );
    assert_eq!(calls.count("boom"), 3, "one call per attempt");
    let letters = letters.lock().unwrap().clone();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert!(letters[0].contains("panicked"), "{letters:?}");
    assert_eq!(
        panics.load(Ordering::SeqCst),
        3,
        "each attempt's panic reported"
    );
    assert!(pool.healthy(), "3 panics are within the restart limit");

    let started = Instant::now();
    let clean = pool.shutdown(Duration::from_millis(500)).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(!clean, "shutdown says that workers panicked");
    let stats = inbox.stats(OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!((stats.pending, stats.dead_letters), (0, 1));
}

/// On the last attempt, a record's later events are decided against what
/// was processed, not dead-lettered for being behind the failed one.
#[tokio::test]
async fn the_last_attempt_lets_the_records_later_events_go_on() {
    let inbox = Arc::new(MemoryInbox::new());
    append(
        &inbox,
        1,
        &[
            learner("doomed", "COURSE_ENROLLMENT", T0, 7),
            learner("later", "LEARNER_PROGRESS", T0 + 10, 7),
            learner("last", "COURSE_COMPLETED", T0 + 20, 7),
        ],
    )
    .await;
    let calls = Calls::default();
    let handler = {
        let calls = calls.clone();
        move |event: Event| {
            let calls = calls.clone();
            async move {
                calls.push(event.event_id.as_str());
                if event.event_id.as_str() == "doomed" {
                    return Err(BoxError::from("the CRM refuses doomed"));
                }
                Ok(())
            }
        }
    };
    let workers = Workers::new(Engine::in_memory(), Arc::clone(&inbox)).with_options(
        alm_webhooks::inbox::WorkerOptions::new().with_retry(RetryPolicy {
            max_attempts: 2,
            base: Duration::ZERO,
            max: Duration::ZERO,
        }),
    );
    while workers.run_once(&handler).await.unwrap() {}
    assert_eq!(calls.count("doomed"), 2, "{:?}", calls.all());
    assert_eq!(calls.count("later"), 1, "{:?}", calls.all());
    assert_eq!(calls.count("last"), 1, "{:?}", calls.all());
    let letters = inbox.dead_letters(10).await.unwrap();
    let kept: Vec<_> = letters
        .iter()
        .map(|l| (l.letter.event_id.clone().unwrap(), l.letter.error.clone()))
        .collect();
    assert_eq!(
        kept,
        [("doomed".to_owned(), "the CRM refuses doomed".to_owned())]
    );
}

/// A handler that never returns: the attempt times out, the event is
/// dead-lettered "timed out" after the last attempt, and the account's
/// later delivery is processed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_handler_times_out_and_the_account_goes_on() {
    let inbox = Arc::new(MemoryInbox::new());
    append(&inbox, 1, &[learner("hang", "COURSE_ENROLLMENT", T0, 7)]).await;
    append(
        &inbox,
        1,
        &[learner("after", "COURSE_COMPLETED", T0 + 10, 7)],
    )
    .await;
    let calls = Calls::default();
    let handler = {
        let calls = calls.clone();
        move |event: Event| {
            let calls = calls.clone();
            async move {
                calls.push(event.event_id.as_str());
                if event.event_id.as_str() == "hang" {
                    std::future::pending::<()>().await;
                }
                Ok(())
            }
        }
    };
    let pool = Workers::new(Engine::in_memory(), Arc::clone(&inbox))
        .with_options(
            alm_webhooks::inbox::WorkerOptions::new()
                .with_count(2)
                .with_delivery_lease(Duration::from_secs(1))
                .with_poll_interval(Duration::from_millis(5))
                .with_retry(quick_retries(2))
                .with_handler_timeout(Duration::from_millis(200)),
        )
        .start(handler);
    assert!(
        eventually(Duration::from_secs(10), || calls.count("after") == 1).await,
        "the account's later delivery was processed: {:?}",
        calls.all()
    );
    assert_eq!(calls.count("hang"), 2, "one call per attempt");
    let letters = inbox.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].letter.event_id.as_deref(), Some("hang"));
    assert_eq!(letters[0].letter.error, "handler timed out after 200 ms");
    assert_eq!(letters[0].letter.attempts, 2);
    assert!(pool.shutdown(Duration::from_secs(1)).await);
}

/// An inbox whose `take` can be made to hang or panic.
#[derive(Debug, Default)]
struct Faulty {
    inner: MemoryInbox,
    /// 0: works; 1: `take` never answers; 2: `take` panics.
    take: std::sync::atomic::AtomicU8,
}

impl Inbox for Faulty {
    async fn append(&self, d: NewDelivery<'_>) -> Result<DeliveryId, InboxError> {
        self.inner.append(d).await
    }
    async fn take(
        &self,
        lease: Duration,
        now: OffsetDateTime,
    ) -> Result<Option<Taken>, InboxError> {
        match self.take.load(Ordering::SeqCst) {
            1 => std::future::pending().await,
            2 => panic!("a custom inbox panics in take"),
            _ => self.inner.take(lease, now).await,
        }
    }
    async fn renew(
        &self,
        id: DeliveryId,
        token: LeaseToken,
        lease: Duration,
        now: OffsetDateTime,
    ) -> Result<bool, InboxError> {
        self.inner.renew(id, token, lease, now).await
    }
    async fn complete(
        &self,
        id: DeliveryId,
        token: LeaseToken,
        letters: &[NewDeadLetter],
    ) -> Result<bool, InboxError> {
        self.inner.complete(id, token, letters).await
    }
    async fn retry_later(
        &self,
        id: DeliveryId,
        token: LeaseToken,
        not_before: OffsetDateTime,
        error: &str,
    ) -> Result<bool, InboxError> {
        self.inner.retry_later(id, token, not_before, error).await
    }
    async fn postpone(
        &self,
        id: DeliveryId,
        token: LeaseToken,
        not_before: OffsetDateTime,
        error: &str,
    ) -> Result<bool, InboxError> {
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
        self.inner.replay_dead_letter(id, now).await
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
        self.inner.replay_quarantined(id, account_id, now).await
    }
    async fn stats(&self, now: OffsetDateTime) -> Result<InboxStats, InboxError> {
        self.inner.stats(now).await
    }
}

/// A `take` that never answers does not hold shutdown past its bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_abandons_a_take_that_never_answers() {
    let inbox = Arc::new(Faulty::default());
    inbox.take.store(1, Ordering::SeqCst);
    let pool = Workers::new(Engine::in_memory(), Arc::clone(&inbox))
        .with_options(alm_webhooks::inbox::WorkerOptions::new().with_count(3))
        .start(|_event: Event| async { Ok(()) });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    let clean = pool.shutdown(Duration::from_millis(300)).await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(300) + GIVE_BACK_BOUND,
        "returned within its bound: {took:?}"
    );
    assert!(!clean, "the takes did not finish within the grace");
}

/// A custom inbox whose `take` panics: the workers are restarted, each
/// restart reported, and the pool is unhealthy past its restart limit;
/// once `take` works again, deliveries are processed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_that_keeps_panicking_is_unhealthy() {
    let inbox = Arc::new(Faulty::default());
    inbox.take.store(2, Ordering::SeqCst);
    let reported = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&reported);
    let calls = Calls::default();
    let handler = {
        let calls = calls.clone();
        move |event: Event| {
            let calls = calls.clone();
            async move {
                calls.push(event.event_id.as_str());
                Ok(())
            }
        }
    };
    let pool = Workers::new(Engine::in_memory(), Arc::clone(&inbox))
        .with_options(
            alm_webhooks::inbox::WorkerOptions::new()
                .with_count(2)
                .with_poll_interval(Duration::from_millis(5))
                .with_restart_limit(3, Duration::from_secs(60))
                .with_observer(move |progress| {
                    if let Progress::Panicked {
                        account_id,
                        delivery,
                    } = progress
                    {
                        assert_eq!((account_id, delivery), (None, None), "no delivery in hand");
                        seen.fetch_add(1, Ordering::SeqCst);
                    }
                }),
        )
        .start(handler);
    assert!(pool.healthy());
    assert!(
        eventually(Duration::from_secs(5), || !pool.healthy()).await,
        "more than 3 restarts in the window"
    );
    assert!(pool.restarts() > 3);
    assert!(reported.load(Ordering::SeqCst) > 3);
    inbox.take.store(0, Ordering::SeqCst);
    append(
        &inbox.inner,
        9,
        &[learner("fine", "COURSE_ENROLLMENT", T0, 7)],
    )
    .await;
    assert!(
        eventually(Duration::from_secs(5), || calls.count("fine") == 1).await,
        "the restarted workers take work again"
    );
    assert!(
        !pool.shutdown(Duration::from_secs(1)).await,
        "workers panicked"
    );
}

/// An observer that panics on everything it hears still cannot keep a
/// delivery from its end: after the last attempt it is a dead letter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observer_that_always_panics_cannot_loop_a_delivery() {
    let inbox = Arc::new(MemoryInbox::new());
    append(&inbox, 1, &[learner("e1", "COURSE_ENROLLMENT", T0, 7)]).await;
    let pool = Workers::new(Engine::in_memory(), Arc::clone(&inbox))
        .with_options(
            alm_webhooks::inbox::WorkerOptions::new()
                .with_count(1)
                .with_poll_interval(Duration::from_millis(5))
                .with_retry(quick_retries(2))
                .with_observer(|progress| panic!("the observer panics on {progress:?}")),
        )
        .start(|_event: Event| async { Err(BoxError::from("fails")) });
    let mut letters = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while letters.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
        letters = inbox.dead_letters(10).await.unwrap();
    }
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].letter.attempts, 2);
    let stats = inbox.stats(OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!((stats.pending, stats.in_flight, stats.retrying), (0, 0, 0));
    assert_eq!(pool.restarts(), 2, "one per attempt");
    assert!(!pool.shutdown(Duration::from_secs(1)).await);
}
