//! The outbox of each store (memory, SQLite, PostgreSQL): an entry per
//! processed event only (never a duplicate, an ignored or a malformed
//! one), in each account's decision order, with the event's JSON; the
//! relay's leases (one relay per account), and what it leaves after a
//! failed publish. PostgreSQL runs in a schema of its own, dropped at the
//! end; without a server it is skipped, except under `CI=true`.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use alm_webhooks::outbox::{Relay, Sink, SinkError};
use alm_webhooks::store::{MemoryStore, OutboxEntry, OutboxStore, Store};
use alm_webhooks::{AccountId, Decision, Engine};
use support::{envelope, learner, unknown};

/// Keeps what it is given; fails while `down` is set.
#[derive(Debug, Default)]
struct Recording {
    got: Mutex<Vec<OutboxEntry>>,
    down: std::sync::atomic::AtomicBool,
}

impl Sink for Recording {
    async fn publish(&self, entries: &[OutboxEntry]) -> Result<(), SinkError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(SinkError::new("broker down"));
        }
        self.got.lock().unwrap().extend_from_slice(entries);
        Ok(())
    }
}

/// Delivers processed, duplicate, ignored and malformed events to two
/// accounts, and checks what the outbox holds and what a relay hands over.
async fn scenario<S: Store + OutboxStore>(store: S) {
    assert!(store.keeps_outbox());
    let engine = Engine::builder(Arc::new(store)).build();
    let first = envelope(
        1,
        &[
            learner("e1", "COURSE_ENROLLMENT", 1_725_600_000, 7, "course:1_2"),
            learner("e2", "COURSE_COMPLETED", 1_725_600_200, 7, "course:1_2"),
            unknown("e3", 1_725_600_300),
        ],
    );
    let decided = support::decisions(&engine, &first).await;
    assert_eq!(decided, vec![Decision::Processed; 3]);
    // A repeat (duplicate), a progress older than the completion (ignored)
    // and a known event without its data (malformed), beside a new one.
    let second = envelope(
        1,
        &[
            learner("e1", "COURSE_ENROLLMENT", 1_725_600_000, 7, "course:1_2"),
            learner("e4", "LEARNER_PROGRESS", 1_725_600_100, 7, "course:1_2"),
            r#"{"eventId":"e5","eventName":"COURSE_COMPLETED","timestamp":1725600400}"#.to_owned(),
            unknown("e6", 1_725_600_500),
        ],
    );
    let decided = support::decisions(&engine, &second).await;
    assert_eq!(decided[0], Decision::Duplicate);
    assert!(matches!(decided[1], Decision::Ignored(_)), "{decided:?}");
    assert_eq!(decided[2], Decision::Malformed);
    assert_eq!(decided[3], Decision::Processed);
    let other = envelope(2, &[unknown("f1", 1_725_600_000)]);
    assert_eq!(
        support::decisions(&engine, &other).await,
        vec![Decision::Processed]
    );

    let store = engine.store();
    assert_eq!(store.outbox_stats().await.unwrap().pending, 5);
    assert!(store.outbox_stats().await.unwrap().oldest.is_some());

    // A relay whose batch ends inside the first account leaves the second
    // to another relay at once.
    let short = Duration::from_millis(300);
    let first = store.lease_outbox("c", 1, short).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].account_id, AccountId(1));
    let second = store.lease_outbox("d", 100, short).await.unwrap();
    let accounts: Vec<u64> = second.iter().map(|e| e.account_id.get()).collect();
    assert_eq!(accounts, vec![2], "account 2 was not held by relay c");
    tokio::time::sleep(Duration::from_millis(400)).await;

    // A relay leases both accounts; another finds nothing to take.
    let leased = store
        .lease_outbox("a", 100, Duration::from_millis(300))
        .await
        .unwrap();
    let ids: Vec<(u64, &str, u64)> = leased
        .iter()
        .map(|e| (e.account_id.get(), e.event_id.as_str(), e.seq))
        .collect();
    assert_eq!(
        ids,
        vec![
            (1, "e1", 1),
            (1, "e2", 2),
            (1, "e3", 3),
            (1, "e6", 4),
            (2, "f1", 1)
        ]
    );
    assert!(
        store
            .lease_outbox("b", 100, Duration::from_secs(30))
            .await
            .unwrap()
            .is_empty()
    );
    // The body is the event's JSON as sent (times in the form they came).
    let body: serde_json::Value = serde_json::from_slice(&leased[1].body).unwrap();
    assert_eq!(body["eventId"], "e2");
    assert_eq!(body["timestamp"], 1_725_600_200);
    assert_eq!(body["data"]["userId"], 7);
    assert_eq!(leased[1].event_name.as_str(), "COURSE_COMPLETED");
    assert_eq!(
        leased[1].timestamp_rfc3339().as_deref(),
        Some("2024-09-06T05:23:20.000Z")
    );
    assert_eq!(leased[2].event_name.as_str(), "SOMETHING_NEW");

    // Once "a"'s lease ends, a relay takes over; its publish fails:
    // everything stays.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let sink = Arc::new(Recording::default());
    sink.down.store(true, std::sync::atomic::Ordering::SeqCst);
    let relay = Relay::new(Arc::clone(store), Arc::clone(&sink));
    assert!(relay.relay_once().await.is_err());
    assert_eq!(store.outbox_stats().await.unwrap().pending, 5);
    // Once the broker is back, each account's entries arrive in order.
    sink.down.store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(relay.relay_once().await.unwrap(), 5);
    let got: Vec<(AccountId, String)> = sink
        .got
        .lock()
        .unwrap()
        .iter()
        .map(|e| (e.account_id, e.event_id.to_string()))
        .collect();
    let names = |a: u64, ids: &[&str]| {
        ids.iter()
            .map(|i| (AccountId(a), (*i).to_owned()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        got,
        [names(1, &["e1", "e2", "e3", "e6"]), names(2, &["f1"])].concat()
    );
    assert_eq!(store.outbox_stats().await.unwrap().pending, 0);
    assert_eq!(relay.relay_once().await.unwrap(), 0);

    // Numbers go on after the sent ones: the decision order has no gaps.
    let later = envelope(1, &[unknown("e7", 1_725_600_600)]);
    support::decisions(&engine, &later).await;
    let leased = store
        .lease_outbox("b", 10, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(leased.len(), 1);
    assert_eq!(leased[0].seq, 5);
}

#[tokio::test]
async fn memory_outbox() {
    scenario(MemoryStore::new().with_outbox()).await;
}

#[tokio::test]
async fn memory_without_outbox_keeps_nothing() {
    let engine = Engine::builder(Arc::new(MemoryStore::new())).build();
    support::decisions(&engine, &envelope(1, &[unknown("e1", 1)])).await;
    assert!(!engine.store().keeps_outbox());
    assert_eq!(engine.store().outbox_stats().await.unwrap().pending, 0);
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_outbox() {
    use alm_webhooks::store::SqliteStore;
    let store = SqliteStore::open_in_memory()
        .unwrap()
        .with_learner_projection()
        .await
        .unwrap();
    scenario(store.with_outbox().await.unwrap()).await;
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_outbox() {
    use alm_webhooks::store::{ClaimToken, PostgresStore};
    let url = std::env::var("ALM_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let schema = format!(
        "alm_outbox_{}_{:08x}",
        std::process::id(),
        ClaimToken::random().0 as u32
    );
    let store = match PostgresStore::migrate(&url, &schema).await {
        Ok(()) => PostgresStore::connect_with_schema(&url, &schema)
            .await
            .unwrap(),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => panic!("PostgreSQL: {e}"),
        Err(e) => return eprintln!("skipped: PostgreSQL not reachable at {url}: {e}"),
    };
    let keep = store.clone();
    let store = store.with_learner_projection().await.unwrap();
    scenario(store.with_outbox().await.unwrap()).await;
    keep.drop_schema().await.unwrap();
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_outbox() {
    use alm_webhooks::store::{ClaimToken, RedisStore};
    let url =
        std::env::var("ALM_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
    let prefix = format!(
        "alm-test-outbox-{}-{:08x}:",
        std::process::id(),
        ClaimToken::random().0 as u32
    );
    let store = match RedisStore::connect_with_prefix(&url, &prefix).await {
        Ok(store) => store,
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => panic!("Redis: {e}"),
        Err(e) => return eprintln!("skipped: Redis not reachable at {url}: {e}"),
    };
    scenario(store.with_outbox()).await;
    support::redis_keys::purge(&url, &prefix);
}

/// Redis with the learner projection too: one commit script merges the
/// records and appends the outbox's entries, so both hold what was
/// processed (the outbox only the processed events, in order, as alone).
#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_outbox_beside_the_learner_projection() {
    use alm_webhooks::UserId;
    use alm_webhooks::store::{ClaimToken, RedisStore};
    let url =
        std::env::var("ALM_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
    let prefix = format!(
        "alm-test-outbox-lr-{}-{:08x}:",
        std::process::id(),
        ClaimToken::random().0 as u32
    );
    let store = match RedisStore::connect_with_prefix(&url, &prefix).await {
        Ok(store) => store,
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => panic!("Redis: {e}"),
        Err(e) => return eprintln!("skipped: Redis not reachable at {url}: {e}"),
    };
    let store = store.with_learner_projection().with_outbox();
    scenario(store.clone()).await;
    let rows = store
        .learner_records_of_user(AccountId(1), UserId(7))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].status.as_str(), "completed", "{rows:?}");
    support::redis_keys::purge(&url, &prefix);
}
