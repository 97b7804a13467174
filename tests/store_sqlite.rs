//! The store conformance suite on SQLite (a fresh file per check, and an
//! in-memory database), restarts, and two connections sharing one file.
//!
//! Every database file lives in the system temp directory under a unique
//! name and is deleted (with its `-wal` and `-shm` files) when the test's
//! store is dropped, also when the test panics.
#![cfg(feature = "sqlite")]

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alm_webhooks::Engine;
use alm_webhooks::engine::ManualClock;
use alm_webhooks::rules::StateKey;
use alm_webhooks::store::{
    AnyStore, Claim, ClaimOwner, ClaimRequest, Commit, CommitOutcome, DedupKey, SqliteStore, Store,
    StoreError, Versioned,
};
use alm_webhooks::{AccountId, Envelope, EventId};
use alm_webhooks::{Decision, IgnoreReason};
use std::time::SystemTime;

/// A database path no other test, run or process uses; the files are
/// deleted when this is dropped.
struct TempDb(PathBuf);

impl TempDb {
    fn new() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let random = ClaimOwner::random().lease as u64;
        let name = format!("alm-test-{}-{n}-{random:016x}.db", std::process::id());
        Self(std::env::temp_dir().join(name))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut path = self.0.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The store under test: a [`SqliteStore`] on its own file, deleted when the
/// check is over. Every call goes straight to the `SqliteStore`.
struct TestStore {
    inner: SqliteStore,
    _db: TempDb,
}

impl Store for TestStore {
    async fn claim(
        &self,
        key: &DedupKey,
        owner: ClaimOwner,
        lease: Duration,
        now: SystemTime,
    ) -> Result<Claim, StoreError> {
        self.inner.claim(key, owner, lease, now).await
    }
    async fn load(&self, key: &StateKey) -> Result<Versioned, StoreError> {
        self.inner.load(key).await
    }
    async fn claim_and_load(
        &self,
        key: &DedupKey,
        state: Option<&StateKey>,
        owner: ClaimOwner,
        lease: Duration,
        now: SystemTime,
    ) -> Result<(Claim, Versioned), StoreError> {
        self.inner
            .claim_and_load(key, state, owner, lease, now)
            .await
    }
    async fn claim_many(
        &self,
        requests: &[ClaimRequest<'_>],
        owner: ClaimOwner,
        lease: Duration,
        now: SystemTime,
    ) -> Result<Vec<(Claim, Versioned)>, StoreError> {
        self.inner.claim_many(requests, owner, lease, now).await
    }
    async fn commit(&self, commit: Commit<'_>) -> Result<CommitOutcome, StoreError> {
        self.inner.commit(commit).await
    }
    async fn commit_many(&self, commits: &[Commit<'_>]) -> Result<Vec<CommitOutcome>, StoreError> {
        self.inner.commit_many(commits).await
    }
    async fn renew(
        &self,
        key: &DedupKey,
        token: ClaimOwner,
        lease: Duration,
        now: SystemTime,
    ) -> Result<bool, StoreError> {
        self.inner.renew(key, token, lease, now).await
    }
    async fn release(&self, key: &DedupKey, token: ClaimOwner) -> Result<(), StoreError> {
        self.inner.release(key, token).await
    }
    async fn sweep(&self, now: SystemTime) -> Result<u64, StoreError> {
        self.inner.sweep(now).await
    }
}

async fn file_store() -> Option<TestStore> {
    let db = TempDb::new();
    let inner = SqliteStore::open(db.path()).unwrap();
    Some(TestStore { inner, _db: db })
}

async fn memory_store() -> Option<SqliteStore> {
    Some(SqliteStore::open_in_memory().unwrap())
}

mod file {
    crate::store_conformance!(super::file_store());
}

mod in_memory {
    crate::store_conformance!(super::memory_store());
}

const T0: i64 = 1_750_000_000;

fn key(account: u64, id: &str) -> DedupKey {
    DedupKey {
        account_id: AccountId(account),
        event_id: id.parse::<EventId>().unwrap(),
    }
}

async fn decisions<S: Store>(engine: &Engine<S>, e: &Envelope) -> Vec<Decision> {
    let report = engine
        .process(e.clone(), |_| async { Ok(()) })
        .await
        .unwrap();
    report.outcomes.iter().map(|o| o.decision).collect()
}

/// Decisions survive closing and reopening the file: the same events are
/// duplicates, and the rule state is still there (an enrollment older than
/// the completion is stale).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_and_states_survive_a_restart() {
    let db = TempDb::new();
    let clock = ManualClock::at_unix(T0);
    let i = "course:1_2";
    let first = support::envelope(
        1,
        &[
            support::learner("e", "COURSE_ENROLLMENT", 200, 1, i),
            support::learner("c", "COURSE_COMPLETED", 300, 1, i),
            support::unknown("x", 1),
        ],
    );
    {
        let engine = Engine::builder(SqliteStore::open(db.path()).unwrap())
            .clock(clock.clone())
            .build();
        assert_eq!(
            decisions(&engine, &first).await,
            [Decision::Processed; 3],
            "first delivery"
        );
    }
    clock.advance(Duration::from_secs(60));
    let engine = Engine::builder(SqliteStore::open(db.path()).unwrap())
        .clock(clock.clone())
        .build();
    assert_eq!(
        decisions(&engine, &first).await,
        [Decision::Duplicate; 3],
        "after the restart"
    );
    let older = support::envelope(1, &[support::learner("e0", "COURSE_ENROLLMENT", 100, 1, i)]);
    assert_eq!(
        decisions(&engine, &older).await,
        [Decision::Ignored(IgnoreReason::Stale)]
    );
}

/// Two stores on one file (two connections, as two processes would have)
/// drive two engines over the same 500-event delivery at once: every handler
/// runs exactly once in total.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_connections_on_one_file_run_each_handler_exactly_once() {
    let db = TempDb::new();
    let (a, b) = (
        SqliteStore::open(db.path()).unwrap(),
        SqliteStore::open(db.path()).unwrap(),
    );
    let events: Vec<String> = (0..500u64)
        .map(|n| {
            if n % 2 == 0 {
                support::unknown(&format!("u{n}"), 1)
            } else {
                support::learner(
                    &format!("l{n}"),
                    "COURSE_ENROLLMENT_BATCH",
                    1,
                    n,
                    "course:1_2",
                )
            }
        })
        .collect();
    let envelope = support::envelope(1, &events);
    let runs: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let receiver = |store: SqliteStore| {
        let engine = Engine::builder(store)
            .in_flight_wait(Duration::from_secs(10))
            .build();
        let (envelope, runs) = (envelope.clone(), Arc::clone(&runs));
        tokio::spawn(async move {
            engine
                .process(envelope, |event| {
                    let runs = Arc::clone(&runs);
                    async move {
                        *runs
                            .lock()
                            .unwrap()
                            .entry(event.event_id.as_str().to_owned())
                            .or_default() += 1;
                        tokio::task::yield_now().await;
                        Ok(())
                    }
                })
                .await
                .unwrap()
        })
    };
    let (ra, rb) = (receiver(a), receiver(b));
    let (ra, rb) = (ra.await.unwrap(), rb.await.unwrap());
    assert!(ra.is_acknowledged(), "{ra:?}");
    assert!(rb.is_acknowledged(), "{rb:?}");
    let processed = |r: &alm_webhooks::DeliveryReport| {
        r.outcomes
            .iter()
            .filter(|o| o.decision == Decision::Processed)
            .count()
    };
    assert_eq!(processed(&ra) + processed(&rb), 500);
    let runs = runs.lock().unwrap();
    assert_eq!(runs.len(), 500);
    assert!(runs.values().all(|&n| n == 1), "some handler ran twice");
}

/// Account ids above `i64::MAX` are stored bit-cast and stay apart from
/// their neighbours; odd event ids are plain text.
#[tokio::test]
async fn large_account_ids_and_odd_event_ids_stay_apart() {
    let store = SqliteStore::open_in_memory().unwrap();
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(T0).unwrap());
    let lease = Duration::from_secs(30);
    for account in [0, 1, i64::MAX as u64, i64::MAX as u64 + 1, u64::MAX] {
        for id in ["a", "'; DROP TABLE alm_events; --", "a\0b", "ü"] {
            let k = key(account, id);
            assert!(
                matches!(
                    store
                        .claim(&k, ClaimOwner::random(), lease, t0)
                        .await
                        .unwrap(),
                    Claim::Claimed(_)
                ),
                "{account}/{id:?}"
            );
        }
    }
    assert_eq!(
        store
            .claim(&key(u64::MAX, "a"), ClaimOwner::random(), lease, t0)
            .await
            .unwrap(),
        Claim::InFlight
    );
    assert_eq!(store.sweep(t0 + lease).await.unwrap(), 20);
}

/// `AnyStore` opens `sqlite:` URLs: a file (with or without `//`) and
/// `sqlite::memory:`.
#[tokio::test]
async fn any_store_opens_sqlite_urls() {
    let db = TempDb::new();
    let path = db.path().display().to_string();
    for url in [format!("sqlite:{path}"), format!("sqlite://{path}")] {
        let store = AnyStore::from_url(&url).await.unwrap();
        assert!(matches!(store, AnyStore::Sqlite(_)), "{url}");
    }
    assert!(db.path().exists());
    assert!(matches!(
        AnyStore::from_url("sqlite::memory:").await.unwrap(),
        AnyStore::Sqlite(_)
    ));
    assert!(AnyStore::from_url("sqlite:").await.is_err());
    let e = AnyStore::from_url("ftp://nowhere").await.unwrap_err();
    assert!(e.to_string().contains("sqlite:"), "{e}");
}

/// A file that is not a database, and a stored state that is not JSON, give
/// `StoreError`s (answered 503), never panics.
#[tokio::test]
async fn sqlite_errors_become_store_errors() {
    let db = TempDb::new();
    std::fs::write(db.path(), vec![0x42; 4096]).unwrap();
    let e = SqliteStore::open(db.path()).unwrap_err();
    assert!(e.to_string().contains("sqlite:"), "{e}");
    assert_eq!(e.status(), http::StatusCode::SERVICE_UNAVAILABLE);

    let db = TempDb::new();
    let store = SqliteStore::open(db.path()).unwrap();
    let e = support::envelope(
        1,
        &[support::learner(
            "k",
            "COURSE_ENROLLMENT",
            1,
            7,
            "course:1_2",
        )],
    );
    let sk = StateKey::for_event(AccountId(1), e.parsed().next().unwrap()).unwrap();
    // Spoil the state through a raw connection (the store's own dependency).
    rusqlite::Connection::open(db.path())
        .unwrap()
        .execute(
            "INSERT INTO alm_states VALUES (?1, 3, 'garbage', 0)",
            [sk.to_string()],
        )
        .unwrap();
    let e = store.load(&sk).await.unwrap_err();
    assert!(e.to_string().contains("malformed"), "{e}");
    assert!(!e.is_transient(), "{e:?}");
    assert_eq!(e.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
    // A file that cannot be opened may be fixed by an operator: transient.
    let e = SqliteStore::open("/nonexistent-dir/alm.db").unwrap_err();
    assert!(e.is_transient(), "{e:?}");
}

/// Another connection holding the write lock makes an operation wait (the
/// busy timeout), not fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_write_lock_is_waited_for() {
    let db = TempDb::new();
    let store = SqliteStore::open(db.path()).unwrap();
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(T0).unwrap());
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let path = db.path().to_owned();
    let holder = std::thread::spawn(move || {
        let mut raw = rusqlite::Connection::open(path).unwrap();
        let tx = raw
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .unwrap();
        locked_tx.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        tx.commit().unwrap();
    });
    locked_rx.recv().unwrap();
    let started = std::time::Instant::now();
    let claim = store
        .claim(
            &key(1, "a"),
            ClaimOwner::random(),
            Duration::from_secs(30),
            t0,
        )
        .await
        .unwrap();
    assert!(matches!(claim, Claim::Claimed(_)), "{claim:?}");
    assert!(started.elapsed() >= Duration::from_millis(200));
    holder.join().unwrap();
}

/// Outside a tokio runtime the store still works (operations run inline).
#[test]
fn works_without_a_tokio_runtime() {
    let store = SqliteStore::open_in_memory().unwrap();
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(T0).unwrap());
    let claim = block_on_inline(store.claim(
        &key(1, "a"),
        ClaimOwner::random(),
        Duration::from_secs(30),
        t0,
    ));
    assert!(matches!(claim.unwrap(), Claim::Claimed(_)));
}

/// A minimal executor for one future that completes without waking.
fn block_on_inline<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(out) => out,
        std::task::Poll::Pending => panic!("the store's future did not complete inline"),
    }
}

/// The expiry columns are indexed, and a sweep of more rows than one step
/// (1,000) removes them all, in steps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_goes_through_the_expiry_indexes_in_steps() {
    let db = TempDb::new();
    let store = SqliteStore::open(db.path()).unwrap();
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(1_750_000_000).unwrap());
    let keys: Vec<DedupKey> = (0..2_500).map(|n| key(1, &format!("e{n}"))).collect();
    let requests: Vec<ClaimRequest<'_>> = keys
        .iter()
        .map(|key| ClaimRequest { key, state: None })
        .collect();
    let answers = store
        .claim_many(&requests, ClaimOwner::random(), Duration::from_secs(30), t0)
        .await
        .unwrap();
    // Half decided (window ends at t0 + 10 s), half left as claims (lease
    // ends at t0 + 30 s).
    let commits: Vec<Commit<'_>> = answers
        .iter()
        .zip(&keys)
        .step_by(2)
        .map(|((claim, _), key)| {
            let Claim::Claimed(token) = claim else {
                panic!("new events are claimed")
            };
            Commit {
                key,
                token: *token,
                update: None,
                remember_until: t0 + Duration::from_secs(10),
                state_until: t0 + Duration::from_secs(10),
            }
        })
        .collect();
    store.commit_many(&commits).await.unwrap();
    let removed = store.sweep(t0 + Duration::from_secs(60)).await.unwrap();
    assert_eq!(removed, 2_500);
    let conn = rusqlite::Connection::open(db.path()).unwrap();
    let left: i64 = conn
        .query_row("SELECT count(*) FROM alm_events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0);
    for (table, column) in [
        ("alm_events", "remember_until_ms"),
        ("alm_events", "lease_until_ms"),
        ("alm_states", "expires_ms"),
    ] {
        let plan: String = conn
            .query_row(
                &format!("EXPLAIN QUERY PLAN SELECT 1 FROM {table} WHERE {column} <= 5"),
                [],
                |r| r.get(3),
            )
            .unwrap();
        assert!(plan.contains("INDEX"), "{table}.{column}: {plan}");
    }
}
