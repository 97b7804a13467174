//! How long one bulk delivery takes to decide on each store: ALM's bulk
//! operations send thousands of events in one envelope and wait at most 5 s
//! for the acknowledgement.
//!
//! ```sh
//! cargo run --release --example bulk_delivery --features simulator,postgres,redis,sqlite -- \
//!     [EVENTS] [STORE_URL ...]
//! ```
//!
//! For each store (default: `memory`), decides one delivery of `EVENTS`
//! (default 1,000) new learner events with a handler that does nothing, then
//! the same delivery again (all duplicates), and prints both times and the
//! store calls each took. Two ways:
//!
//! - **engine**: [`Engine::process`] as configured by default: one
//!   [`Store::claim_many`] and one [`Store::commit_many`] for the delivery
//!   (`ALM_COMMIT_BATCH=N` claims and commits in chunks of N events
//!   instead, and `ALM_COMMIT_BATCH=1` one event at a time,
//!   [`EngineBuilder::commit_batch`](alm_webhooks::engine::EngineBuilder::commit_batch)).
//!   `ALM_REDELIVERIES=N` sends the duplicates N times (default 1) and
//!   prints their median, fastest and slowest: one redelivery of 5,000
//!   varies by up to 1.5× from one run to the next on a shared machine.
//!   Each store first gets four small deliveries at once, so that its pool
//!   holds the idle connections a receiver with several workers keeps
//!   (PostgreSQL sends the runs of a large claim on them together).
//! - **set-based**: the same store calls made by hand, without the engine:
//!   [`Store::claim_many`] for the whole delivery, the rules and the handler
//!   per event, then [`Store::commit_many`] (every event here has its own
//!   learner record, so no decision depends on another of the delivery).
//!   The difference between the two rows is the engine's own cost.
//!
//! Every call of these stores is one round trip (PostgreSQL and Redis send
//! a set-based call's chunks of [`MANY_CHUNK`] together), so the calls
//! printed are the round trips. Every run, and every store of a run, uses
//! new event ids, so a shared store's earlier contents do not matter.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use alm_webhooks::Decision;
use alm_webhooks::rules::{self, StateKey};
use alm_webhooks::simulator::scenario::{envelope, learner_event};
use alm_webhooks::store::{
    AnyStore, Claim, ClaimOwner, ClaimRequest, Commit, CommitOutcome, DedupKey, MANY_CHUNK,
    StateUpdate, Store, StoreError, Versioned,
};
use alm_webhooks::{Engine, Envelope};
use std::time::SystemTime;

const LEASE: Duration = Duration::from_secs(60);
const WINDOW: Duration = Duration::from_secs(8 * 24 * 3600);

fn delivery(run: u128, events: usize) -> Envelope {
    let events: Vec<_> = (0..events as u64)
        .map(|n| {
            learner_event(
                &format!("bulk-{run}-{n}"),
                "COURSE_ENROLLMENT",
                1_725_600_000,
                n,
                "course:1_2",
            )
        })
        .collect();
    Envelope::from_slice(&envelope(1234, &events)).expect("a valid delivery")
}

/// A store that counts the calls made to it.
#[derive(Debug)]
struct Counted<S> {
    inner: S,
    calls: AtomicU64,
}

impl<S> Counted<S> {
    fn count(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    fn take(&self) -> u64 {
        self.calls.swap(0, Ordering::Relaxed)
    }
}

impl<S: Store> Store for Counted<S> {
    async fn claim(
        &self,
        key: &DedupKey,
        owner: ClaimOwner,
        lease: Duration,
        now: SystemTime,
    ) -> Result<Claim, StoreError> {
        self.count();
        self.inner.claim(key, owner, lease, now).await
    }

    async fn load(&self, key: &StateKey) -> Result<Versioned, StoreError> {
        self.count();
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
        self.count();
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
        self.count();
        self.inner.claim_many(requests, owner, lease, now).await
    }

    async fn commit(&self, commit: Commit<'_>) -> Result<CommitOutcome, StoreError> {
        self.count();
        self.inner.commit(commit).await
    }

    async fn commit_many(&self, commits: &[Commit<'_>]) -> Result<Vec<CommitOutcome>, StoreError> {
        self.count();
        self.inner.commit_many(commits).await
    }

    async fn renew(
        &self,
        key: &DedupKey,
        token: ClaimOwner,
        lease: Duration,
        now: SystemTime,
    ) -> Result<bool, StoreError> {
        self.count();
        self.inner.renew(key, token, lease, now).await
    }

    async fn release(&self, key: &DedupKey, token: ClaimOwner) -> Result<(), StoreError> {
        self.count();
        self.inner.release(key, token).await
    }

    async fn sweep(&self, now: SystemTime) -> Result<u64, StoreError> {
        self.count();
        self.inner.sweep(now).await
    }
}

/// One delivery through the engine.
async fn through_engine(engine: &Engine<Counted<AnyStore>>, envelope: Envelope) -> Duration {
    let started = Instant::now();
    let report = engine
        .process(envelope, |_| async { Ok(()) })
        .await
        .expect("the store answers");
    assert!(report.is_acknowledged());
    started.elapsed()
}

/// One delivery with the set-based operations: one `claim_many`, the rules
/// and the handler per event, one `commit_many`.
async fn set_based<S: Store>(store: &S, envelope: &Envelope) -> Duration {
    let started = Instant::now();
    let now = SystemTime::now();
    let events: Vec<_> = envelope.parsed().collect();
    let keys: Vec<DedupKey> = events
        .iter()
        .map(|e| DedupKey {
            account_id: envelope.account_id,
            event_id: e.event_id.clone(),
        })
        .collect();
    let states: Vec<Option<StateKey>> = events
        .iter()
        .map(|e| StateKey::for_event(envelope.account_id, e))
        .collect();
    let requests: Vec<ClaimRequest<'_>> = keys
        .iter()
        .zip(&states)
        .map(|(key, state)| ClaimRequest {
            key,
            state: state.as_ref(),
        })
        .collect();
    let answers = store
        .claim_many(&requests, ClaimOwner::random(), LEASE, now)
        .await
        .expect("the store answers");
    let mut decided = Vec::new();
    for ((answer, event), request) in answers.into_iter().zip(&events).zip(&requests) {
        let (Claim::Claimed(token), loaded) = answer else {
            assert_eq!(answer.0, Claim::AlreadyDecided, "no other caller here");
            continue;
        };
        let (decision, next) = rules::decide(&loaded.state, event);
        if decision == Decision::Processed {
            // The handler: does nothing.
        }
        decided.push((request, token, loaded.version, next));
    }
    let commits: Vec<Commit<'_>> = decided
        .iter()
        .map(|(request, token, version, next)| Commit {
            key: request.key,
            token: *token,
            update: request.state.map(|key| StateUpdate {
                key,
                expected_version: *version,
                state: next,
            }),
            remember_until: now + WINDOW,
            state_until: now + alm_webhooks::engine::DEFAULT_STATE_RETENTION,
        })
        .collect();
    if !commits.is_empty() {
        let outcomes = store
            .commit_many(&commits)
            .await
            .expect("the store answers");
        assert!(outcomes.iter().all(|o| *o == CommitOutcome::Committed));
    }
    started.elapsed()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let events: usize = args
        .next()
        .map(|a| a.parse().expect("EVENTS is a number"))
        .unwrap_or(1_000);
    let mut urls: Vec<String> = args.collect();
    if urls.is_empty() {
        urls.push("memory".to_owned());
    }
    let commit_batch: usize = std::env::var("ALM_COMMIT_BATCH")
        .ok()
        .map(|v| v.parse().expect("ALM_COMMIT_BATCH is a number"))
        .unwrap_or(usize::MAX);
    let redeliveries: usize = std::env::var("ALM_REDELIVERIES")
        .ok()
        .map(|v| v.parse().expect("ALM_REDELIVERIES is a number"))
        .unwrap_or(1)
        .max(1);
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let chunk = if commit_batch == usize::MAX {
        "the delivery".to_owned()
    } else {
        format!("{commit_batch} events")
    };
    println!("engine chunks: {chunk}; a store's set-based slices: {MANY_CHUNK} events");
    println!("store      way        events   new delivery (calls)   redelivery (calls)");
    for (index, url) in urls.into_iter().enumerate() {
        let store = match AnyStore::from_url(&url).await {
            Ok(store) => store,
            Err(e) => {
                eprintln!("{url}: {e}");
                std::process::exit(2);
            }
        };
        let scheme = url.split(':').next().unwrap_or("memory").to_owned();
        let store = Counted {
            inner: store,
            calls: AtomicU64::new(0),
        };
        let engine = Engine::builder(store)
            .claim_lease(LEASE)
            .dedup_window(WINDOW)
            .commit_batch(commit_batch)
            .build();
        let store = engine.store();
        // New ids per store and per way: two URLs may name the same
        // database. A small delivery first warms the connections and
        // prepared statements of both ways.
        let base = run + 10 * index as u128;
        // Four at once: idle connections in the pool, as a receiver with
        // several workers keeps them.
        futures_util::future::join_all(
            (0..4).map(|n| through_engine(&engine, delivery(base + 5 + n, 2))),
        )
        .await;
        through_engine(&engine, delivery(base + 1, 2)).await;
        set_based(store, &delivery(base + 2, 2)).await;
        store.take();
        let print = |way: &str, first: Duration, first_calls: u64, again: Duration, again_calls| {
            println!(
                "{scheme:<10} {way:<9} {events:>7}   {:>9.1} ms ({first_calls:>5})   {:>9.1} ms ({again_calls:>5})",
                first.as_secs_f64() * 1e3,
                again.as_secs_f64() * 1e3,
            );
        };
        let envelope = delivery(base + 3, events);
        let first = through_engine(&engine, envelope.clone()).await;
        let first_calls = store.take();
        let mut again = Vec::with_capacity(redeliveries);
        for _ in 0..redeliveries {
            again.push(through_engine(&engine, envelope.clone()).await);
        }
        let again_calls = store.take() / redeliveries as u64;
        again.sort();
        print(
            "engine",
            first,
            first_calls,
            again[again.len() / 2],
            again_calls,
        );
        if redeliveries > 1 {
            println!(
                "{:<31}redeliveries: {redeliveries}, fastest {:.1} ms, slowest {:.1} ms",
                "",
                again[0].as_secs_f64() * 1e3,
                again[again.len() - 1].as_secs_f64() * 1e3,
            );
        }
        let envelope = delivery(base + 4, events);
        let first = set_based(store, &envelope).await;
        let first_calls = store.take();
        let again = set_based(store, &envelope).await;
        print("set-based", first, first_calls, again, store.take());
    }
}
