//! The contract every [`Store`] keeps, as checks to run against your own
//! implementation (feature `store-conformance`): the crate runs them
//! against the memory store and, behind their features, SQLite,
//! PostgreSQL and Redis.
//!
//! [`store_conformance!(factory)`](crate::store_conformance) expands to one
//! `#[tokio::test]` per check (the calling crate needs `tokio` with its
//! `macros` and `rt-multi-thread` features); `factory` is an async
//! expression giving `Option<S>` for a fresh, empty store `S: Store`
//! (`None`: the service is not there and the check is skipped, which the
//! factory reports). A store shared by several hosts, which keeps leases on
//! its own clock, adds
//! [`shared_store_conformance!(factory)`](crate::shared_store_conformance).
//! Each check panics on the first broken promise, naming it; each is also a
//! public `async fn` taking the store, to call from a test of your own.
//!
//! Some checks wait out a lease of 300 ms in real time (a shared store's
//! clock cannot be moved by a test); the suite takes a few seconds.
//!
//! ```ignore
//! use alm_webhooks::store::MemoryStore;
//!
//! async fn memory() -> Option<MemoryStore> {
//!     Some(MemoryStore::new())
//! }
//! alm_webhooks::store_conformance!(memory());
//! ```

mod claims;
mod lifecycle;
mod many;
mod owners;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::engine::{Clock, Engine, ManualClock};
use crate::rules::{Decision, StateKey};
use crate::store::{Claim, ClaimOwner, Commit, DedupKey, Store};
use crate::{AccountId, Envelope};

pub use claims::*;
pub use lifecycle::*;
pub use many::*;
pub use owners::*;

const T0: i64 = 1_750_000_000;
const LEASE: Duration = Duration::from_secs(30);
/// A lease short enough to wait out in real time: shared stores keep leases
/// on their own clock, so a test clock cannot end them.
const SHORT: Duration = Duration::from_millis(300);

/// Waits until a [`SHORT`] lease taken now has ended, on any clock.
async fn outlive_short_lease() {
    tokio::time::sleep(SHORT + Duration::from_millis(200)).await;
}

/// `seconds` after the Unix epoch.
fn at(seconds: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(seconds).expect("a time after the epoch"))
}

/// The real time, in seconds since the Unix epoch.
fn unix_now() -> i64 {
    crate::store::unix_millis(SystemTime::now()) / 1000
}

fn key(account: u64, id: &str) -> DedupKey {
    DedupKey {
        account_id: AccountId(account),
        event_id: id.parse().unwrap(),
    }
}

fn state_key(user: u64) -> StateKey {
    state_key_in(1, user)
}

fn state_key_in(account: u64, user: u64) -> StateKey {
    let e = envelope(
        account,
        &[learner("k", "COURSE_ENROLLMENT", 1, user, "course:1_2")],
    );
    StateKey::for_event(AccountId(account), e.parsed().next().unwrap()).unwrap()
}

fn claimed(c: Claim) -> ClaimOwner {
    match c {
        Claim::Claimed(t) => t,
        other => panic!("expected a claim, got {other:?}"),
    }
}

fn commit(key: &DedupKey, token: ClaimOwner, until: i64) -> Commit<'_> {
    Commit {
        key,
        token,
        update: None,
        remember_until: at(until),
        state_until: at(until),
    }
}

/// The decisions the engine makes for `envelope`, with a handler that
/// succeeds.
async fn decisions<S: Store>(engine: &Engine<S>, envelope: &Envelope) -> Vec<Decision> {
    let report = engine
        .process(envelope.clone(), |_| async { Ok(()) })
        .await
        .unwrap();
    report.outcomes.iter().map(|o| o.decision).collect()
}

/// One learner event in ALM's shape.
fn learner(id: &str, name: &str, ts: i64, user: u64, instance: &str) -> String {
    let lo = instance.rsplit_once('_').map_or(instance, |(lo, _)| lo);
    format!(
        r#"{{"eventId":"{id}","eventName":"{name}","timestamp":{ts},"data":{{"userId":{user},"loId":"{lo}","loInstanceId":"{instance}","progressPercent":50}}}}"#
    )
}

/// An event whose name the crate does not know.
fn unknown(id: &str, ts: i64) -> String {
    format!(
        r#"{{"eventId":"{id}","eventName":"SOMETHING_NEW","timestamp":{ts},"data":{{"status":"SUCCESS"}}}}"#
    )
}

/// An envelope of these events.
fn envelope(account: u64, events: &[String]) -> Envelope {
    let body = format!(
        r#"{{"accountId":{account},"events":[{}]}}"#,
        events.join(",")
    );
    Envelope::from_slice(body.as_bytes()).expect("test envelope parses")
}

/// An engine on `store` with `clock`.
fn engine<S: Store>(store: S, clock: &ManualClock) -> Engine<S> {
    batched_engine(store, clock, 1)
}

/// An engine on `store` with `clock`, committing in chunks of `commit_batch`.
fn batched_engine<S: Store>(store: S, clock: &ManualClock, commit_batch: usize) -> Engine<S> {
    Engine::builder(store)
        .clock(clock.clone())
        .claim_lease(LEASE)
        .in_flight_wait(Duration::from_millis(100))
        .dedup_window(Duration::from_secs(8 * 24 * 3600))
        .commit_batch(commit_batch)
        .build()
}

/// The clock's current time, for driving a store directly.
trait NowForTest {
    fn now_for_test(&self) -> SystemTime;
}

impl NowForTest for ManualClock {
    fn now_for_test(&self) -> SystemTime {
        Clock::now(self).into()
    }
}

/// One `#[tokio::test]` per check that only a store shared by several
/// hosts passes (PostgreSQL, Redis): leases on the store's own clock. Use
/// it beside [`store_conformance!`](crate::store_conformance).
#[macro_export]
macro_rules! shared_store_conformance {
    ($factory:expr) => {
        $crate::store_conformance!(@tests $factory;
            engines_with_clocks_60_s_apart_process_once
        );
    };
}

/// One `#[tokio::test]` per conformance check of
/// [`conformance::store`](crate::conformance::store), for the store
/// `$factory` (an async expression giving `Option<S>`) makes.
#[macro_export]
macro_rules! store_conformance {
    ($factory:expr) => {
        $crate::store_conformance!(@tests $factory;
            claim_commit_then_duplicate,
            live_claim_blocks_others,
            expired_lease_can_be_taken_over_and_old_holder_cannot_commit,
            release_lets_the_event_be_claimed_again,
            state_commit_is_versioned_and_atomic,
            claim_and_load_reads_the_state_for_the_winner_only,
            commit_many_commits_each_on_its_own,
            claim_many_answers_as_one_by_one,
            commit_many_answers_as_one_by_one,
            set_based_operations_span_chunks,
            ids_of_any_length_and_content_are_processed,
            renew_keeps_a_claim_past_its_lease,
            decided_events_expire_after_the_window,
            sweep_removes_expired_entries,
            state_outlives_the_dedup_window,
            concurrent_claims_have_one_winner,
            engine_rules_hold,
            handler_failure_records_nothing_and_redelivery_processes_once,
            crashed_holder_lease_expires_and_redelivery_processes,
            window_expiry_with_the_engine_clock,
            concurrent_deliveries_run_each_handler_once,
            batched_commits_keep_handler_failures_apart,
            batched_concurrent_deliveries_run_each_handler_once,
            same_holder_takes_its_claim_over_and_fences_the_old_lease,
            claim_many_takes_over_the_same_holders_claims,
            commit_many_refuses_the_rest_of_a_broken_chain,
            batched_chain_keeps_another_deliverys_commit
        );
    };
    (@tests $factory:expr; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if let Some(store) = $factory.await {
                    $crate::conformance::store::$name(store).await;
                }
            }
        )*
    };
}
