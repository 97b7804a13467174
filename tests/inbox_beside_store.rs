//! The inbox on the store's own connections: SQLite (one file, one
//! connection), Redis (one connection manager), through `AnyInbox::from_store`
//! as the example receivers open it; a delivery goes from the endpoint
//! through the workers into the store.
#![cfg(all(feature = "sqlite", feature = "redis"))]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use alm_webhooks::inbox::WorkerOptions;
use alm_webhooks::inbox::{AnyInbox, Inbox};
use alm_webhooks::store::{AnyStore, ClaimToken};
use alm_webhooks::{Authentication, Endpoint, Engine};
use http::{HeaderMap, StatusCode};
use time::OffsetDateTime;

/// Appends `n` deliveries through an endpoint whose inbox is beside its
/// store, and waits for the workers to process them all.
async fn through_the_workers(store: AnyStore, n: usize) -> Engine<AnyStore> {
    let inbox = Arc::new(
        AnyInbox::from_store(&store)
            .await
            .expect("beside the store"),
    );
    let engine = Engine::builder(store).build();
    let endpoint = Endpoint::builder(Authentication::None)
        .engine(engine.clone())
        .inbox(Arc::clone(&inbox), WorkerOptions::new().with_count(2))
        .handler(|_event| async { Ok(()) })
        .build()
        .unwrap();
    let run = ClaimToken::random().0 as u32;
    for i in 0..n {
        let body = format!(
            r#"{{"accountId":{},"events":[{}]}}"#,
            i % 3,
            support::unknown(&format!("beside-{run:08x}-{i}"), 1)
        );
        let answer = endpoint.handle(&HeaderMap::new(), body.as_bytes()).await;
        assert_eq!(answer.status(), StatusCode::ACCEPTED, "{answer}");
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while engine.counters().processed < n as u64 {
        assert!(
            Instant::now() < deadline,
            "the workers process every delivery"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stats = inbox.stats(OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!(stats.dead_letters, 0);
    assert!(endpoint.shutdown(Duration::from_secs(5)).await);
    engine
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_and_inbox_share_one_connection() {
    let store = AnyStore::from_url("sqlite::memory:").await.unwrap();
    // In memory, a second connection would be a second, empty database:
    // only a shared connection lets both see one.
    through_the_workers(store, 12).await;

    let path = std::env::temp_dir().join(format!(
        "alm-beside-{:08x}.db",
        ClaimToken::random().0 as u32
    ));
    let store = AnyStore::from_url(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    through_the_workers(store, 12).await;
    // One file holds both: the store's tables and the inbox's.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'alm_%' ORDER BY name")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        tables,
        [
            "alm_archive",
            "alm_archive_events",
            "alm_dead_letters",
            "alm_events",
            "alm_inbox",
            "alm_inbox_paused",
            "alm_quarantine",
            "alm_states"
        ]
    );
    drop(conn);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_store_and_inbox_share_one_connection_manager() {
    let redis =
        std::env::var("ALM_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
    if !support::services::reachable(&redis, 6379) {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "Redis is required under CI=true"
        );
        eprintln!("skipped: Redis is not reachable at {redis}");
        return;
    }
    let prefix = format!("alm-beside-{:08x}:", ClaimToken::random().0 as u32);
    let url = format!("{redis}?prefix={prefix}");
    let _purge = support::services::Purge(url.clone());
    let store = AnyStore::from_url(&url).await.unwrap();
    let inbox = AnyInbox::from_store(&store).await.unwrap();
    let AnyInbox::Redis(redis_inbox) = &inbox else {
        panic!("a Redis inbox beside a Redis store, not {inbox:?}");
    };
    assert_eq!(redis_inbox.prefix(), format!("{prefix}inbox:"));
    through_the_workers(store, 12).await;
}
