//! The store conformance suite, and replica tests, on a real Redis.
//!
//! Redis is at `ALM_TEST_REDIS_URL` (default `redis://127.0.0.1:6379/`). If it
//! is not reachable the tests are skipped with a message, except under
//! `CI=true`, where they fail. Every test uses its own key prefix and deletes
//! its keys when its store is dropped (also when the test panics).
#![cfg(feature = "redis")]

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use alm_webhooks::Decision;
use alm_webhooks::Engine;
use alm_webhooks::rules::StateKey;
use alm_webhooks::store::{
    Claim, ClaimOwner, ClaimRequest, Commit, CommitOutcome, DedupKey, RedisStore, Store,
    StoreError, Versioned,
};
use alm_webhooks::{AccountId, EventId};
use support::redis_keys::purge;

fn url() -> String {
    std::env::var("ALM_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned())
}

/// A prefix no other test, run or process uses.
fn unique_prefix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let random = ClaimOwner::random().lease as u64;
    format!("alm-test:{}:{n}:{random:016x}:", std::process::id())
}

/// Deletes its prefix's keys when dropped.
struct Cleanup {
    url: String,
    prefix: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        purge(&self.url, &self.prefix);
    }
}

/// A store on its own prefix, or `None` (skipped) if Redis is not there.
async fn connect(prefix: &str) -> Option<RedisStore> {
    let url = url();
    match RedisStore::connect_with_prefix(&url, prefix).await {
        Ok(store) => Some(store),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!(
                "Redis is required under CI=true but is not reachable ({e}); start redis-server or set ALM_TEST_REDIS_URL"
            )
        }
        Err(e) => {
            eprintln!(
                "skipped: Redis not reachable ({e}); set ALM_TEST_REDIS_URL or start redis-server"
            );
            None
        }
    }
}

/// The store under test: a [`RedisStore`] that cleans its prefix up when
/// the check is over. Every call goes straight to the `RedisStore`.
struct TestStore {
    inner: RedisStore,
    _cleanup: Cleanup,
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

async fn factory() -> Option<TestStore> {
    let prefix = unique_prefix();
    let inner = connect(&prefix).await?;
    Some(TestStore {
        inner,
        _cleanup: Cleanup { url: url(), prefix },
    })
}

store_conformance!(factory());
shared_store_conformance!(factory());

fn key(account: u64, id: &str) -> DedupKey {
    DedupKey {
        account_id: AccountId(account),
        event_id: id.parse::<EventId>().unwrap(),
    }
}

/// Two replicas (two stores, two connections, one prefix) process the same
/// 1,000-event delivery at once: every handler runs exactly once in total.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_run_each_handler_exactly_once() {
    let prefix = unique_prefix();
    let _cleanup = Cleanup {
        url: url(),
        prefix: prefix.clone(),
    };
    let (Some(a), Some(b)) = (connect(&prefix).await, connect(&prefix).await) else {
        return;
    };
    let events: Vec<String> = (0..1000u64)
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
    let replica = |store: RedisStore| {
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
    let (ra, rb) = (replica(a), replica(b));
    let (ra, rb) = (ra.await.unwrap(), rb.await.unwrap());
    assert!(ra.is_acknowledged(), "{ra:?}");
    assert!(rb.is_acknowledged(), "{rb:?}");
    let processed = |r: &alm_webhooks::DeliveryReport| {
        r.outcomes
            .iter()
            .filter(|o| o.decision == Decision::Processed)
            .count()
    };
    assert_eq!(processed(&ra) + processed(&rb), 1000);
    let runs = runs.lock().unwrap();
    assert_eq!(runs.len(), 1000);
    assert!(runs.values().all(|&n| n == 1), "some handler ran twice");
}

/// Event ids are hex-encoded in keys: ids made of separators and glob
/// characters stay distinct, and one prefix's sweep leaves another's alone.
#[tokio::test]
async fn odd_event_ids_and_prefixes_stay_apart() {
    let (p1, p2) = (unique_prefix(), unique_prefix());
    let _c1 = Cleanup {
        url: url(),
        prefix: p1.clone(),
    };
    let _c2 = Cleanup {
        url: url(),
        prefix: p2.clone(),
    };
    let (Some(s1), Some(s2)) = (connect(&p1).await, connect(&p2).await) else {
        return;
    };
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(1_750_000_000).unwrap());
    let (lease, short) = (Duration::from_secs(30), Duration::from_millis(300));
    for id in ["*", "a:b", "1:a", "{x}", "a\nb", "ü"] {
        for account in [1, 12] {
            let k = key(account, id);
            assert!(
                matches!(
                    s1.claim(&k, ClaimOwner::random(), short, t0).await.unwrap(),
                    Claim::Claimed(_)
                ),
                "{account}/{id:?}"
            );
            assert!(matches!(
                s2.claim(&k, ClaimOwner::random(), lease, t0).await.unwrap(),
                Claim::Claimed(_)
            ));
        }
    }
    // Leases end on the server's clock: wait the short ones out.
    tokio::time::sleep(short + Duration::from_millis(200)).await;
    assert_eq!(s1.sweep(t0 + Duration::from_secs(31)).await.unwrap(), 12);
    assert_eq!(
        s2.claim(&key(1, "*"), ClaimOwner::random(), lease, t0)
            .await
            .unwrap(),
        Claim::InFlight
    );
}

/// A password in the URL never reaches an error's text.
#[tokio::test]
async fn errors_do_not_leak_the_password() {
    for url in [
        "redis://:supersecret@127.0.0.1:1/",
        "redis://user:supersecret@127.0.0.1:1/",
        "redis://:supersecret@[not-a-host/",
    ] {
        let e = RedisStore::connect(url)
            .await
            .expect_err("nothing listens on port 1");
        let (display, debug) = (e.to_string(), format!("{e:?}"));
        assert!(!display.contains("supersecret"), "{display}");
        assert!(!debug.contains("supersecret"), "{debug}");
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            assert!(!s.to_string().contains("supersecret"), "{s}");
            source = s.source();
        }
        assert_eq!(e.status(), http::StatusCode::SERVICE_UNAVAILABLE);
    }
}

/// Debug output shows the host and prefix, not the URL.
#[tokio::test]
async fn debug_shows_the_host_only() {
    let prefix = unique_prefix();
    let Some(store) = connect(&prefix).await else {
        return;
    };
    let debug = format!("{store:?}");
    assert!(debug.starts_with("RedisStore"), "{debug}");
    assert!(debug.contains(&prefix), "{debug}");
    assert!(!debug.contains("redis://"), "{debug}");
}

fn learner_state_key() -> StateKey {
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
    StateKey::for_event(AccountId(1), e.parsed().next().unwrap()).unwrap()
}

/// Raw access to the test's Redis, to look at and spoil keys.
async fn raw() -> redis::aio::MultiplexedConnection {
    redis::Client::open(url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// A store on a prefix of its own (cleaned up when the [`Cleanup`] is
/// dropped) and a raw connection beside it; `None` (skipped) without Redis.
async fn isolated() -> Option<(
    RedisStore,
    String,
    Cleanup,
    redis::aio::MultiplexedConnection,
)> {
    let prefix = unique_prefix();
    let cleanup = Cleanup {
        url: url(),
        prefix: prefix.clone(),
    };
    let store = connect(&prefix).await?;
    Some((store, prefix, cleanup, raw().await))
}

/// The garbage-collection TTLs follow the caller's clock: lease plus grace
/// for a claim, window (from the claim's `now`) plus grace once decided.
#[tokio::test]
async fn ttls_follow_the_callers_clock_with_grace() {
    let Some((store, prefix, _cleanup, mut con)) = isolated().await else {
        return;
    };
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(1_750_000_000).unwrap());
    let k = key(1, "a");
    let redis_key = format!("{prefix}ev:1:61");
    let Claim::Claimed(token) = store
        .claim(&k, ClaimOwner::random(), Duration::from_secs(30), t0)
        .await
        .unwrap()
    else {
        panic!("not claimed");
    };
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&redis_key)
        .query_async(&mut con)
        .await
        .unwrap();
    assert!((80_000..=90_000).contains(&pttl), "claim ttl {pttl}");
    let sk = learner_state_key();
    let state = alm_webhooks::rules::EntityState::default();
    let commit = Commit {
        key: &k,
        token,
        update: Some(alm_webhooks::store::StateUpdate {
            key: &sk,
            expected_version: 0,
            state: &state,
        }),
        remember_until: t0 + Duration::from_secs(1000),
        state_until: t0 + Duration::from_secs(1000),
    };
    assert_eq!(
        store.commit(commit).await.unwrap(),
        CommitOutcome::Committed
    );
    for key in [redis_key, format!("{prefix}st:{sk}")] {
        let pttl: i64 = redis::cmd("PTTL")
            .arg(&key)
            .query_async(&mut con)
            .await
            .unwrap();
        assert!((1_050_000..=1_060_000).contains(&pttl), "{key}: ttl {pttl}");
    }
    assert_eq!(store.load(&sk).await.unwrap().version, 1);
}

/// Rewrites the event key `redis_key` (a string, as this version writes
/// it) as the hash an earlier version wrote, with the same fields.
async fn as_earlier_hash(con: &mut redis::aio::MultiplexedConnection, redis_key: &str) {
    let value: String = redis::cmd("GET")
        .arg(redis_key)
        .query_async(con)
        .await
        .unwrap();
    let pttl: i64 = redis::cmd("PTTL")
        .arg(redis_key)
        .query_async(con)
        .await
        .unwrap();
    let fields: Vec<(&str, &str)> = match value.split(':').collect::<Vec<_>>()[..] {
        ["c", token, lease, at] => vec![
            ("status", "claimed"),
            ("token", token),
            ("lease_until_ms", lease),
            ("claimed_at_ms", at),
        ],
        ["d", until] => vec![("status", "decided"), ("remember_until_ms", until)],
        _ => panic!("not an event key's value: {value:?}"),
    };
    let _: () = redis::pipe()
        .atomic()
        .del(redis_key)
        .hset_multiple(redis_key, &fields)
        .pexpire(redis_key, pttl)
        .query_async(con)
        .await
        .unwrap();
}

/// A store written before event keys were strings kept each event as a
/// hash: every script still reads one (claimed or decided), and the next
/// write of its event replaces it with the string.
#[tokio::test]
async fn event_hashes_of_an_earlier_version_are_read_and_replaced() {
    let Some((store, prefix, _cleanup, mut con)) = isolated().await else {
        return;
    };
    let now = SystemTime::now();
    let lease = Duration::from_secs(30);
    let kind = |con: &mut redis::aio::MultiplexedConnection, k: String| {
        let mut con = con.clone();
        async move {
            redis::cmd("TYPE")
                .arg(k)
                .query_async::<String>(&mut con)
                .await
                .unwrap()
        }
    };
    let (holder, other) = (ClaimOwner::new(7, 1), ClaimOwner::new(8, 1));

    // A live claim, as a hash: in flight for another holder, renewed and
    // committed by its own; the commit writes the string.
    let (a, a_key) = (key(1, "a"), format!("{prefix}ev:1:61"));
    assert_eq!(
        store.claim(&a, holder, lease, now).await.unwrap(),
        Claim::Claimed(holder)
    );
    as_earlier_hash(&mut con, &a_key).await;
    assert_eq!(kind(&mut con, a_key.clone()).await, "hash");
    assert_eq!(
        store.claim(&a, other, lease, now).await.unwrap(),
        Claim::InFlight
    );
    assert!(store.renew(&a, holder, lease, now).await.unwrap());
    assert!(!store.renew(&a, other, lease, now).await.unwrap());
    assert_eq!(
        kind(&mut con, a_key.clone()).await,
        "string",
        "renewed as a string"
    );
    as_earlier_hash(&mut con, &a_key).await;
    let commit = Commit {
        key: &a,
        token: holder,
        update: None,
        remember_until: now + Duration::from_secs(1000),
        state_until: now + Duration::from_secs(1000),
    };
    assert_eq!(
        store.commit(commit).await.unwrap(),
        CommitOutcome::Committed
    );
    let value: String = redis::cmd("GET")
        .arg(&a_key)
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(value.starts_with("d:"), "{value}");

    // A decided event, as a hash: decided for every claim, many or one.
    as_earlier_hash(&mut con, &a_key).await;
    assert_eq!(
        store.claim(&a, other, lease, now).await.unwrap(),
        Claim::AlreadyDecided
    );
    let request = ClaimRequest {
        key: &a,
        state: None,
    };
    let claims = store
        .claim_many(&[request], other, lease, now)
        .await
        .unwrap();
    assert_eq!(claims[0].0, Claim::AlreadyDecided);

    // A claim, as a hash, released by its holder; one whose lease ended,
    // taken over by another holder (as a string).
    let (b, b_key) = (key(1, "b"), format!("{prefix}ev:1:62"));
    assert_eq!(
        store.claim(&b, holder, lease, now).await.unwrap(),
        Claim::Claimed(holder)
    );
    as_earlier_hash(&mut con, &b_key).await;
    store.release(&b, other).await.unwrap();
    assert_eq!(
        kind(&mut con, b_key.clone()).await,
        "hash",
        "not the other's to release"
    );
    store.release(&b, holder).await.unwrap();
    assert_eq!(kind(&mut con, b_key.clone()).await, "none");
    assert_eq!(
        store.claim(&b, holder, lease, now).await.unwrap(),
        Claim::Claimed(holder)
    );
    as_earlier_hash(&mut con, &b_key).await;
    let _: () = redis::cmd("HSET")
        .arg(&b_key)
        .arg("lease_until_ms")
        .arg("1")
        .query_async(&mut con)
        .await
        .unwrap();
    let claims = store
        .claim_many(
            &[ClaimRequest {
                key: &b,
                state: None,
            }],
            other,
            lease,
            now,
        )
        .await
        .unwrap();
    assert_eq!(claims[0].0, Claim::Claimed(other));
    assert_eq!(kind(&mut con, b_key.clone()).await, "string");

    // The sweep: a decided hash stays until its window ends, then goes.
    assert_eq!(store.sweep(now).await.unwrap(), 0);
    assert_eq!(kind(&mut con, a_key.clone()).await, "hash");
    let later = now + Duration::from_secs(2000);
    assert_eq!(
        store.sweep(later).await.unwrap(),
        1,
        "the decided hash; the claim is live"
    );
    assert_eq!(kind(&mut con, a_key).await, "none");
}

/// Redis errors (here, keys of the wrong shape) come back as `StoreError`s,
/// never as panics or wrong answers.
#[tokio::test]
async fn redis_errors_become_store_errors() {
    let Some((store, prefix, _cleanup, mut con)) = isolated().await else {
        return;
    };
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(1_750_000_000).unwrap());
    let sk = learner_state_key();
    let _: () = redis::cmd("SET")
        .arg(format!("{prefix}ev:1:61"))
        .arg("x")
        .query_async(&mut con)
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg(format!("{prefix}st:{sk}"))
        .arg("garbage")
        .query_async(&mut con)
        .await
        .unwrap();
    let e = store
        .claim(
            &key(1, "a"),
            ClaimOwner::random(),
            Duration::from_secs(30),
            t0,
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("redis: claim failed"), "{e}");
    assert!(!e.is_transient(), "a key of the wrong type stays so: {e:?}");
    let e = store
        .release(&key(1, "a"), ClaimOwner::new(1, 1))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("redis: release failed"), "{e}");
    let e = store.load(&sk).await.unwrap_err();
    assert!(e.to_string().contains("malformed"), "{e}");
    assert!(!e.is_transient(), "{e:?}");
    let k = key(1, "b");
    let Claim::Claimed(token) = store
        .claim(&k, ClaimOwner::random(), Duration::from_secs(30), t0)
        .await
        .unwrap()
    else {
        panic!("not claimed");
    };
    let state = alm_webhooks::rules::EntityState::default();
    let commit = Commit {
        key: &k,
        token,
        update: Some(alm_webhooks::store::StateUpdate {
            key: &sk,
            expected_version: 0,
            state: &state,
        }),
        remember_until: t0 + Duration::from_secs(100),
        state_until: t0 + Duration::from_secs(100),
    };
    let e = store.commit(commit).await.unwrap_err();
    assert!(e.to_string().contains("redis: commit failed"), "{e}");
    // The state cannot be read: trying again fails again.
    assert!(!e.is_transient(), "{e:?}");
    assert_eq!(e.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
    let e = RedisStore::connect("redis://127.0.0.1:1/")
        .await
        .expect_err("nothing listens on port 1");
    assert!(e.is_transient(), "{e:?}");
    assert_eq!(e.status(), http::StatusCode::SERVICE_UNAVAILABLE);
    // Nothing was written: the claim still holds.
    assert_eq!(
        store
            .claim(&k, ClaimOwner::random(), Duration::from_secs(30), t0)
            .await
            .unwrap(),
        Claim::InFlight
    );
}

/// `from_manager`: a store on a connection the application opened keys
/// exactly as one that connected itself (they see each other's claims),
/// and its `Debug` names no URL.
#[tokio::test]
async fn from_manager_uses_the_applications_connection() {
    let prefix = unique_prefix();
    let Some(connected) = connect(&prefix).await else {
        return;
    };
    let _cleanup = Cleanup {
        url: url(),
        prefix: prefix.clone(),
    };
    let client = redis::Client::open(url()).unwrap();
    let manager = redis::aio::ConnectionManager::new(client).await.unwrap();
    let store = RedisStore::from_manager(manager, &prefix);
    assert_eq!(store.prefix(), prefix);
    let (k, lease, now) = (
        key(1, "from-manager"),
        Duration::from_secs(30),
        SystemTime::now(),
    );
    let Claim::Claimed(token) = store
        .claim(&k, ClaimOwner::random(), lease, now)
        .await
        .unwrap()
    else {
        panic!("the first claim wins");
    };
    assert_eq!(
        connected
            .claim(&k, ClaimOwner::random(), lease, now)
            .await
            .unwrap(),
        Claim::InFlight
    );
    store.release(&k, token).await.unwrap();
    assert!(matches!(
        connected
            .claim(&k, ClaimOwner::random(), lease, now)
            .await
            .unwrap(),
        Claim::Claimed(_)
    ));
    let debug = format!("{store:?}");
    assert!(!debug.contains("redis://"), "{debug}");
}
