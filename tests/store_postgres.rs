//! The store conformance suite, and replica and error checks, on a real
//! PostgreSQL (`ALM_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`).
//!
//! Each test gets its own schema (`alm_test_<unix secs>_<pid>_<n>_<random>`),
//! dropped when its store is dropped, even when the test fails. Schemas that
//! a killed run left behind are dropped by the next run once they are an
//! hour old. Without a server the tests are skipped, except under `CI=true`,
//! where they fail.
#![cfg(feature = "postgres")]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alm_webhooks::engine::{Decision, Engine, StateKey};
use alm_webhooks::store::{
    Claim, ClaimToken, Commit, CommitOutcome, DedupKey, PostgresStore, Store, StoreError, Versioned,
};
use time::OffsetDateTime;

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const PREFIX: &str = "alm_test_";

fn url() -> String {
    std::env::var("ALM_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn unique_schema() -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let random = ClaimToken::random().0 as u32;
    format!(
        "{PREFIX}{}_{}_{n}_{random:08x}",
        unix_now(),
        std::process::id()
    )
}

/// A store on its own schema, dropped with the store.
#[derive(Debug)]
struct TestStore {
    inner: PostgresStore,
}

impl Drop for TestStore {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which must not block, and
        // whose pool connections that runtime drives: drop the schema from a
        // thread with its own runtime and its own connection.
        let schema = self.inner.schema().to_owned();
        let done = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the cleanup");
            runtime.block_on(drop_schema(&schema));
        });
        let _ = done.join();
    }
}

async fn drop_schema(schema: &str) {
    let result = async {
        let (client, connection) = tokio_postgres::connect(&url(), tokio_postgres::NoTls).await?;
        let connection = tokio::spawn(connection);
        let dropped = client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .await;
        drop(client);
        let _ = connection.await;
        dropped
    }
    .await;
    if let Err(e) = result {
        eprintln!("could not drop schema {schema}: {e}");
    }
}

impl Store for TestStore {
    fn claim(
        &self,
        key: &DedupKey,
        lease: Duration,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send {
        self.inner.claim(key, lease, now)
    }

    fn load(&self, key: &StateKey) -> impl Future<Output = Result<Versioned, StoreError>> + Send {
        self.inner.load(key)
    }

    fn commit(
        &self,
        commit: Commit<'_>,
    ) -> impl Future<Output = Result<CommitOutcome, StoreError>> + Send {
        self.inner.commit(commit)
    }

    fn release(
        &self,
        key: &DedupKey,
        token: ClaimToken,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.inner.release(key, token)
    }

    fn sweep(&self, now: OffsetDateTime) -> impl Future<Output = Result<u64, StoreError>> + Send {
        self.inner.sweep(now)
    }
}

/// Drops the `alm_test_` schemas of earlier runs that are over an hour old
/// (a run killed before its stores were dropped). Newer ones may belong to a
/// run going on beside this one.
async fn drop_stale_schemas(store: &PostgresStore) {
    static ONCE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    ONCE.get_or_init(|| async {
        let (client, connection) =
            match tokio_postgres::connect(&url(), tokio_postgres::NoTls).await {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("stale schema cleanup skipped: {e}");
                    return;
                }
            };
        tokio::spawn(connection);
        let rows = client
            .query(
                "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'alm\\_test\\_%'",
                &[],
            )
            .await
            .unwrap_or_default();
        let cutoff = unix_now().saturating_sub(3600);
        for row in rows {
            let name: String = row.get(0);
            let created = name[PREFIX.len()..]
                .split('_')
                .next()
                .and_then(|s| s.parse::<u64>().ok());
            if created.is_some_and(|t| t < cutoff) && name != store.schema() {
                let _ = client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
                    .await;
            }
        }
    })
    .await;
}

async fn connect(schema: &str) -> Option<PostgresStore> {
    let url = url();
    match PostgresStore::connect_with_schema(&url, schema).await {
        Ok(store) => Some(store),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("PostgreSQL not reachable at {url} (CI=true, so this fails): {e:?}")
        }
        Err(e) => {
            eprintln!("skipped: PostgreSQL not reachable at {url}: {e}");
            None
        }
    }
}

async fn factory() -> Option<TestStore> {
    let inner = connect(&unique_schema()).await?;
    drop_stale_schemas(&inner).await;
    Some(TestStore { inner })
}

store_conformance!(factory());

/// Two replicas (two pools on one schema), each with its own engine, get
/// the same 1,000-event delivery at the same time, twice each: every
/// handler runs exactly once in total.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_run_each_handler_once() {
    let Some(first) = factory().await else { return };
    let Some(second) = connect(first.inner.schema()).await else {
        return;
    };
    let events: Vec<String> = (0..1000u64)
        .map(|n| {
            if n % 2 == 0 {
                support::learner(&format!("e{n}"), "COURSE_ENROLLMENT", 1, n, "course:1_2")
            } else {
                support::unknown(&format!("e{n}"), 1)
            }
        })
        .collect();
    let envelope = Arc::new(support::envelope(1, &events));
    let runs = Arc::new(AtomicUsize::new(0));
    let engines = [
        Engine::builder(first.inner.clone())
            .wait_for_in_flight(Duration::from_secs(30))
            .build(),
        Engine::builder(second)
            .wait_for_in_flight(Duration::from_secs(30))
            .build(),
    ];
    let tasks: Vec<_> = engines
        .iter()
        .chain(engines.iter())
        .map(|engine| {
            let (engine, envelope, runs) =
                (engine.clone(), Arc::clone(&envelope), Arc::clone(&runs));
            tokio::spawn(async move {
                engine
                    .process((*envelope).clone(), |_| {
                        let runs = Arc::clone(&runs);
                        async move {
                            runs.fetch_add(1, Ordering::SeqCst);
                            Ok::<(), String>(())
                        }
                    })
                    .await
                    .expect("the store answers")
            })
        })
        .collect();
    let mut processed = 0;
    for task in tasks {
        let report = task.await.unwrap();
        assert!(report.is_acknowledged(), "{:?}", report.status());
        processed += report
            .outcomes
            .iter()
            .filter(|o| o.decision == Decision::Processed)
            .count();
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1000);
    assert_eq!(processed, 1000);
}

/// Replicas starting at once all create the tables without error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_startup_creates_the_tables_once() {
    let Some(_first) = factory().await else {
        return;
    };
    let schema = unique_schema();
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let (url, schema) = (url(), schema.clone());
            tokio::spawn(async move { PostgresStore::connect_with_schema(&url, &schema).await })
        })
        .collect();
    let mut stores = Vec::new();
    for task in tasks {
        stores.push(task.await.unwrap().expect("every replica starts"));
    }
    let guard = TestStore {
        inner: stores.pop().unwrap(),
    };
    assert_eq!(guard.load(&state_key()).await.unwrap().version, 0);
}

fn state_key() -> StateKey {
    let e = support::envelope(
        1,
        &[support::learner(
            "k",
            "COURSE_ENROLLMENT",
            1,
            1,
            "course:1_2",
        )],
    );
    StateKey::for_event(alm_webhooks::AccountId(1), e.parsed().next().unwrap()).unwrap()
}

/// Account ids above `i64::MAX` are stored bit-cast, and stay distinct.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_account_ids_round_trip() {
    let Some(store) = factory().await else { return };
    let now = OffsetDateTime::from_unix_timestamp(1_750_000_000).unwrap();
    let lease = Duration::from_secs(30);
    for account in [u64::MAX, u64::MAX - 1, 1 << 63, i64::MAX as u64] {
        let key = DedupKey {
            account_id: alm_webhooks::AccountId(account),
            event_id: "x".parse().unwrap(),
        };
        let Claim::Claimed(token) = store.claim(&key, lease, now).await.unwrap() else {
            panic!("account {account} collided with another");
        };
        let commit = Commit {
            key: &key,
            token,
            update: None,
            remember_until: now + time::Duration::hours(1),
            state_until: now + time::Duration::hours(1),
        };
        assert_eq!(
            store.commit(commit).await.unwrap(),
            CommitOutcome::Committed
        );
        assert_eq!(
            store.claim(&key, lease, now).await.unwrap(),
            Claim::AlreadyDecided
        );
    }
}

fn assert_no_password(e: &StoreError) {
    let (display, debug) = (e.to_string(), format!("{e:?}"));
    let mut chain = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        chain.push_str(&format!("{s} / {s:?}; "));
        source = s.source();
    }
    for text in [&display, &debug, &chain] {
        assert!(!text.contains("supersecret"), "password leaked: {text}");
    }
    assert!(display.contains("postgres"), "{display}");
}

#[tokio::test]
async fn errors_never_show_the_password() {
    for url in [
        "postgres://alm:supersecret@127.0.0.1:notaport/test",
        "postgres://alm:supersecret@127.0.0.1:5432/test?sslmode=bogus",
        "host=127.0.0.1 port=nope user=alm password=supersecret",
        "postgres://alm:supersecret@127.0.0.1:1/test",
    ] {
        let e = PostgresStore::connect(url)
            .await
            .expect_err("cannot connect");
        eprintln!("{url} -> {e} / {e:?}");
        assert_no_password(&e);
        assert_eq!(e.status(), http::StatusCode::SERVICE_UNAVAILABLE);
    }
    let e = PostgresStore::connect_with_schema(DEFAULT_URL, "Bad-Name")
        .await
        .expect_err("bad schema");
    assert!(e.to_string().contains("schema"), "{e}");
}

/// `Debug` shows where the store is, never who or with what password.
#[tokio::test]
async fn debug_shows_host_and_database_only() {
    let Some(store) = factory().await else { return };
    let text = format!("{:?}", store.inner);
    assert!(
        text.contains("127.0.0.1") || text.contains("localhost"),
        "{text}"
    );
    assert!(text.contains(store.inner.schema()), "{text}");
    assert!(!text.contains("postgres@"), "{text}");
}

/// A claim whose future is dropped mid-flight (a timeout, a cancelled
/// request) never leaves its pooled connection inside a transaction: the
/// store keeps answering, and no connection of the store sits idle in one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_claims_leave_no_open_transaction() {
    if factory().await.is_none() {
        return;
    }
    // Its own application name, so that other tests' transactions running
    // at the same time are not counted.
    const APP: &str = "alm_dropped_claims_test";
    let base = url();
    let separator = if base.contains('?') { '&' } else { '?' };
    let inner = PostgresStore::connect_with_schema(
        &format!("{base}{separator}application_name={APP}"),
        &unique_schema(),
    )
    .await
    .unwrap();
    let store = TestStore { inner };
    let now = OffsetDateTime::now_utc();
    for n in 0..200 {
        let key = DedupKey {
            account_id: alm_webhooks::AccountId(1),
            event_id: format!("dropped-{n}").parse().unwrap(),
        };
        // Cancel at every stage: before, during and after the round trip.
        let wait = Duration::from_micros(n * 10);
        let _ = tokio::time::timeout(wait, store.claim(&key, Duration::from_secs(30), now)).await;
    }
    for n in 0..20 {
        let key = DedupKey {
            account_id: alm_webhooks::AccountId(2),
            event_id: format!("after-{n}").parse().unwrap(),
        };
        let claim = store
            .claim(&key, Duration::from_secs(30), now)
            .await
            .unwrap();
        assert!(matches!(claim, Claim::Claimed(_)), "{claim:?}");
    }
    let (client, connection) = tokio_postgres::connect(&url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    // Give requests already sent time to finish on the server.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stuck: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE application_name = $1 AND state LIKE 'idle in transaction%'",
            &[&APP],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stuck, 0);
}
