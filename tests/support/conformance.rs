//! One conformance suite for every store: the same checks run against the
//! memory store and, behind their features, the shared stores.
//!
//! `store_conformance!(factory)` expands to one `#[tokio::test]` per check;
//! `factory` is an async expression giving `Option<S>` (`None`: the service is
//! not there and the test is skipped, which the factory reports).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use alm_webhooks::AccountId;
use alm_webhooks::engine::{Engine, ManualClock};
use alm_webhooks::rules::{Decision, EntityState, IgnoreReason, StateKey};
use alm_webhooks::store::{
    Claim, ClaimRequest, ClaimToken, Commit, CommitOutcome, DedupKey, MANY_CHUNK, StateUpdate,
    Store, Versioned,
};
use time::OffsetDateTime;

use super::{decisions, envelope, learner};

const T0: i64 = 1_750_000_000;
const LEASE: Duration = Duration::from_secs(30);
/// A lease short enough to wait out in real time: shared stores keep leases
/// on their own clock, so a test clock cannot end them.
const SHORT: Duration = Duration::from_millis(300);

/// Waits until a [`SHORT`] lease taken now has ended, on any clock.
async fn outlive_short_lease() {
    tokio::time::sleep(SHORT + Duration::from_millis(200)).await;
}

fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(seconds).unwrap()
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

fn claimed(c: Claim) -> alm_webhooks::store::ClaimToken {
    match c {
        Claim::Claimed(t) => t,
        other => panic!("expected a claim, got {other:?}"),
    }
}

fn commit<'a>(key: &'a DedupKey, token: alm_webhooks::store::ClaimToken, until: i64) -> Commit<'a> {
    Commit {
        key,
        token,
        update: None,
        remember_until: at(until),
        state_until: at(until),
    }
}

pub async fn claim_commit_then_duplicate<S: Store>(store: S) {
    let k = key(1, "a");
    let t = claimed(store.claim(&k, LEASE, at(T0)).await.unwrap());
    assert_eq!(
        store.commit(commit(&k, t, T0 + 100)).await.unwrap(),
        CommitOutcome::Committed
    );
    assert_eq!(
        store.claim(&k, LEASE, at(T0 + 1)).await.unwrap(),
        Claim::AlreadyDecided
    );
    // Another account, same id: independent.
    claimed(store.claim(&key(2, "a"), LEASE, at(T0)).await.unwrap());
}

pub async fn live_claim_blocks_others<S: Store>(store: S) {
    let k = key(1, "a");
    claimed(store.claim(&k, LEASE, at(T0)).await.unwrap());
    assert_eq!(
        store.claim(&k, LEASE, at(T0 + 29)).await.unwrap(),
        Claim::InFlight
    );
}

pub async fn expired_lease_can_be_taken_over_and_old_holder_cannot_commit<S: Store>(store: S) {
    let k = key(1, "a");
    let old = claimed(store.claim(&k, SHORT, at(T0)).await.unwrap());
    outlive_short_lease().await;
    let new = claimed(store.claim(&k, LEASE, at(T0 + 31)).await.unwrap());
    assert_ne!(old, new);
    assert_eq!(
        store.commit(commit(&k, old, T0 + 100)).await.unwrap(),
        CommitOutcome::LeaseLost
    );
    assert_eq!(
        store.claim(&k, LEASE, at(T0 + 32)).await.unwrap(),
        Claim::InFlight,
        "the old commit wrote nothing"
    );
    assert_eq!(
        store.commit(commit(&k, new, T0 + 100)).await.unwrap(),
        CommitOutcome::Committed
    );
}

pub async fn release_lets_the_event_be_claimed_again<S: Store>(store: S) {
    let k = key(1, "a");
    let t = claimed(store.claim(&k, LEASE, at(T0)).await.unwrap());
    store.release(&k, t).await.unwrap();
    let t2 = claimed(store.claim(&k, LEASE, at(T0 + 1)).await.unwrap());
    // Releasing a stale token does nothing.
    store.release(&k, t).await.unwrap();
    assert_eq!(
        store.claim(&k, LEASE, at(T0 + 2)).await.unwrap(),
        Claim::InFlight
    );
    assert_eq!(
        store.commit(commit(&k, t2, T0 + 100)).await.unwrap(),
        CommitOutcome::Committed
    );
}

pub async fn state_commit_is_versioned_and_atomic<S: Store>(store: S) {
    let sk = state_key(7);
    let loaded = store.load(&sk).await.unwrap();
    assert_eq!(
        (loaded.version, &loaded.state),
        (0, &EntityState::default())
    );
    let mut next = EntityState::default();
    next.newest_millis = Some(5);
    let (a, b) = (key(1, "a"), key(1, "b"));
    let ta = claimed(store.claim(&a, LEASE, at(T0)).await.unwrap());
    let tb = claimed(store.claim(&b, LEASE, at(T0)).await.unwrap());
    let update = |v| {
        Some(StateUpdate {
            key: &sk,
            expected_version: v,
            state: &next,
        })
    };
    let c = Commit {
        key: &a,
        token: ta,
        update: update(0),
        remember_until: at(T0 + 100),
        state_until: at(T0 + 100),
    };
    assert_eq!(store.commit(c).await.unwrap(), CommitOutcome::Committed);
    // b decided on version 0 too: refused, and b is not marked decided.
    let c = Commit {
        key: &b,
        token: tb,
        update: update(0),
        remember_until: at(T0 + 100),
        state_until: at(T0 + 100),
    };
    assert_eq!(store.commit(c).await.unwrap(), CommitOutcome::StateChanged);
    assert_eq!(
        store.claim(&b, LEASE, at(T0 + 1)).await.unwrap(),
        Claim::InFlight
    );
    let loaded = store.load(&sk).await.unwrap();
    assert_eq!((loaded.version, loaded.state.newest_millis), (1, Some(5)));
    let c = Commit {
        key: &b,
        token: tb,
        update: update(1),
        remember_until: at(T0 + 100),
        state_until: at(T0 + 100),
    };
    assert_eq!(store.commit(c).await.unwrap(), CommitOutcome::Committed);
    assert_eq!(store.load(&sk).await.unwrap().version, 2);
}

pub async fn claim_and_load_reads_the_state_for_the_winner_only<S: Store>(store: S) {
    let sk = state_key(8);
    let (a, b) = (key(1, "a"), key(1, "b"));
    // A fresh entity: claimed, at version 0.
    let (claim, loaded) = store
        .claim_and_load(&a, Some(&sk), LEASE, at(T0))
        .await
        .unwrap();
    let ta = claimed(claim);
    assert_eq!(
        (loaded.version, &loaded.state),
        (0, &EntityState::default())
    );
    let mut next = EntityState::default();
    next.newest_millis = Some(9);
    let c = Commit {
        key: &a,
        token: ta,
        update: Some(StateUpdate {
            key: &sk,
            expected_version: 0,
            state: &next,
        }),
        remember_until: at(T0 + 100),
        state_until: at(T0 + 100),
    };
    assert_eq!(store.commit(c).await.unwrap(), CommitOutcome::Committed);
    // The next event of the entity reads what the first one wrote.
    let (claim, loaded) = store
        .claim_and_load(&b, Some(&sk), LEASE, at(T0 + 1))
        .await
        .unwrap();
    claimed(claim);
    assert_eq!((loaded.version, &loaded.state), (1, &next));
    // A lost claim reads nothing: decided, in flight, or no state asked.
    for (k, expected) in [(&a, Claim::AlreadyDecided), (&b, Claim::InFlight)] {
        let (claim, loaded) = store
            .claim_and_load(k, Some(&sk), LEASE, at(T0 + 2))
            .await
            .unwrap();
        assert_eq!((claim, loaded.version), (expected, 0), "{k:?}");
    }
    let (claim, loaded) = store
        .claim_and_load(&key(1, "c"), None, LEASE, at(T0 + 2))
        .await
        .unwrap();
    claimed(claim);
    assert_eq!(loaded.version, 0);
}

pub async fn commit_many_commits_each_on_its_own<S: Store>(store: S) {
    let sk = state_key(9);
    let (a, b, c, d) = (key(1, "a"), key(1, "b"), key(1, "c"), key(1, "d"));
    let mut tokens = Vec::new();
    for k in [&a, &b, &c, &d] {
        tokens.push(claimed(store.claim(k, LEASE, at(T0)).await.unwrap()));
    }
    let mut first = EntityState::default();
    first.newest_millis = Some(1);
    let mut second = EntityState::default();
    second.newest_millis = Some(2);
    let with = |k, token, expected_version, state| Commit {
        key: k,
        token,
        update: Some(StateUpdate {
            key: &sk,
            expected_version,
            state,
        }),
        remember_until: at(T0 + 100),
        state_until: at(T0 + 100),
    };
    let wrong_token = alm_webhooks::store::ClaimToken(tokens[1].0 ^ 1);
    let commits = [
        with(&a, tokens[0], 0, &first),
        // Not this caller's claim: nothing written.
        with(&b, wrong_token, 1, &second),
        // Decided on version 0, which `a` just moved: nothing written.
        with(&c, tokens[2], 0, &second),
        // Sees what `a` wrote.
        with(&d, tokens[3], 1, &second),
    ];
    assert_eq!(
        store.commit_many(&commits).await.unwrap(),
        [
            CommitOutcome::Committed,
            CommitOutcome::LeaseLost,
            CommitOutcome::StateChanged,
            CommitOutcome::Committed,
        ]
    );
    let loaded = store.load(&sk).await.unwrap();
    assert_eq!((loaded.version, loaded.state.newest_millis), (2, Some(2)));
    for (k, expected) in [
        (&a, Claim::AlreadyDecided),
        (&b, Claim::InFlight),
        (&c, Claim::InFlight),
        (&d, Claim::AlreadyDecided),
    ] {
        assert_eq!(
            store.claim(k, LEASE, at(T0 + 1)).await.unwrap(),
            expected,
            "{k:?}"
        );
    }
    assert_eq!(store.commit_many(&[]).await.unwrap(), []);
}

/// A claim's answer without its token (tokens differ from run to run).
#[derive(Debug, PartialEq)]
enum Answer {
    Claimed(u64, EntityState),
    AlreadyDecided(u64),
    InFlight(u64),
}

fn answer((claim, loaded): (Claim, Versioned)) -> Answer {
    match claim {
        Claim::Claimed(_) => Answer::Claimed(loaded.version, loaded.state),
        Claim::AlreadyDecided => Answer::AlreadyDecided(loaded.version),
        Claim::InFlight => Answer::InFlight(loaded.version),
    }
}

fn newest(millis: i64) -> EntityState {
    let mut state = EntityState::default();
    state.newest_millis = Some(millis);
    state
}

/// In `account`: "d" decided (writing state `s` at version 1), "f" held by
/// another caller.
async fn claim_scene<S: Store>(store: &S, account: u64) {
    let (d, f, s) = (
        key(account, "d"),
        key(account, "f"),
        state_key_in(account, 1),
    );
    let t = claimed(store.claim(&d, LEASE, at(T0)).await.unwrap());
    let state = newest(5);
    let c = Commit {
        key: &d,
        token: t,
        update: Some(StateUpdate {
            key: &s,
            expected_version: 0,
            state: &state,
        }),
        remember_until: at(T0 + 100),
        state_until: at(T0 + 100),
    };
    assert_eq!(store.commit(c).await.unwrap(), CommitOutcome::Committed);
    claimed(store.claim(&f, LEASE, at(T0)).await.unwrap());
}

/// `claim_many` answers what `claim_and_load` one by one answers, on the
/// same scene in two accounts: a new event with a state, a decided one, one
/// in flight, the first one again, one on a fresh state, one without state.
pub async fn claim_many_answers_as_one_by_one<S: Store>(store: S) {
    let mut results = Vec::new();
    for (account, set_based) in [(1, false), (2, true)] {
        claim_scene(&store, account).await;
        let (s, fresh) = (state_key_in(account, 1), state_key_in(account, 2));
        let keys = ["a", "d", "f", "a", "b", "c"].map(|id| key(account, id));
        let states = [Some(&s), Some(&s), Some(&s), Some(&s), Some(&fresh), None];
        let requests: Vec<ClaimRequest<'_>> = keys
            .iter()
            .zip(states)
            .map(|(key, state)| ClaimRequest { key, state })
            .collect();
        let answers = if set_based {
            store
                .claim_many(&requests, LEASE, at(T0 + 1))
                .await
                .unwrap()
        } else {
            let mut answers = Vec::new();
            for r in &requests {
                answers.push(
                    store
                        .claim_and_load(r.key, r.state, LEASE, at(T0 + 1))
                        .await
                        .unwrap(),
                );
            }
            answers
        };
        // The tokens won commit.
        let (a_token, c_token) = (claimed(answers[0].0), claimed(answers[5].0));
        for (k, t) in [(&keys[0], a_token), (&keys[5], c_token)] {
            assert_eq!(
                store.commit(commit(k, t, T0 + 100)).await.unwrap(),
                CommitOutcome::Committed
            );
        }
        results.push(answers.into_iter().map(answer).collect::<Vec<_>>());
    }
    assert_eq!(
        results[1],
        [
            Answer::Claimed(1, newest(5)),
            Answer::AlreadyDecided(0),
            Answer::InFlight(0),
            Answer::InFlight(0),
            Answer::Claimed(0, EntityState::default()),
            Answer::Claimed(0, EntityState::default()),
        ]
    );
    assert_eq!(results[0], results[1], "one by one, then set-based");
    assert!(
        store
            .claim_many(&[], LEASE, at(T0))
            .await
            .unwrap()
            .is_empty()
    );
}

/// `commit_many` gives what `commit` one by one gives, outcomes and
/// states: the same event twice, the same state twice (at v and v + 1,
/// ending at v + 2), a stale version, no state, a wrong token.
pub async fn commit_many_answers_as_one_by_one<S: Store>(store: S) {
    let mut results = Vec::new();
    for (account, set_based) in [(1, false), (2, true)] {
        let s = state_key_in(account, 1);
        let keys = ["a", "b", "c", "d", "e"].map(|id| key(account, id));
        let mut tokens = Vec::new();
        for k in &keys {
            tokens.push(claimed(store.claim(k, LEASE, at(T0)).await.unwrap()));
        }
        let (one, two, three) = (newest(1), newest(2), newest(3));
        let with = |i: usize, token: ClaimToken, expected_version, state| Commit {
            key: &keys[i],
            token,
            update: Some(StateUpdate {
                key: &s,
                expected_version,
                state,
            }),
            remember_until: at(T0 + 100),
            state_until: at(T0 + 100),
        };
        let commits = [
            with(0, tokens[0], 0, &one),
            with(0, tokens[0], 1, &two),
            with(1, tokens[1], 1, &two),
            with(2, tokens[2], 1, &three),
            commit(&keys[3], tokens[3], T0 + 100),
            commit(&keys[4], ClaimToken(tokens[4].0 ^ 1), T0 + 100),
        ];
        let outcomes = if set_based {
            store.commit_many(&commits).await.unwrap()
        } else {
            let mut outcomes = Vec::new();
            for c in commits {
                outcomes.push(store.commit(c).await.unwrap());
            }
            outcomes
        };
        let loaded = store.load(&s).await.unwrap();
        let mut claims = Vec::new();
        for k in &keys {
            claims.push(store.claim(k, LEASE, at(T0 + 1)).await.unwrap());
        }
        results.push((outcomes, loaded, claims));
    }
    use CommitOutcome::*;
    assert_eq!(
        results[1].0,
        [
            Committed,
            LeaseLost,
            Committed,
            StateChanged,
            Committed,
            LeaseLost
        ]
    );
    assert_eq!((results[1].1.version, &results[1].1.state), (2, &newest(2)));
    assert_eq!(
        results[1].2[..4],
        [
            Claim::AlreadyDecided,
            Claim::AlreadyDecided,
            Claim::InFlight,
            Claim::AlreadyDecided
        ]
    );
    assert_eq!(results[0].0, results[1].0, "one by one, then set-based");
    assert_eq!(results[0].1, results[1].1);
    assert_eq!(results[0].2[..4], results[1].2[..4]);
}

/// More events than one chunk: claimed in one call, committed in one call,
/// and all duplicates afterwards.
pub async fn set_based_operations_span_chunks<S: Store>(store: S) {
    let n = MANY_CHUNK + 500;
    let keys: Vec<DedupKey> = (0..n).map(|i| key(3, &format!("bulk-{i}"))).collect();
    let states: Vec<StateKey> = (0..n as u64).map(|i| state_key_in(3, i)).collect();
    let requests: Vec<ClaimRequest<'_>> = keys
        .iter()
        .zip(&states)
        .map(|(key, state)| ClaimRequest {
            key,
            state: Some(state),
        })
        .collect();
    let answers = store.claim_many(&requests, LEASE, at(T0)).await.unwrap();
    assert_eq!(answers.len(), n);
    let next = newest(7);
    let commits: Vec<Commit<'_>> = answers
        .iter()
        .zip(&requests)
        .map(|((claim, loaded), r)| {
            assert_eq!(loaded.version, 0);
            Commit {
                key: r.key,
                token: claimed(*claim),
                update: Some(StateUpdate {
                    key: r.state.unwrap(),
                    expected_version: 0,
                    state: &next,
                }),
                remember_until: at(T0 + 100),
                state_until: at(T0 + 100),
            }
        })
        .collect();
    let outcomes = store.commit_many(&commits).await.unwrap();
    assert!(outcomes.iter().all(|o| *o == CommitOutcome::Committed));
    let again = store
        .claim_many(&requests, LEASE, at(T0 + 1))
        .await
        .unwrap();
    assert!(again.iter().all(|(c, _)| *c == Claim::AlreadyDecided));
    assert_eq!(store.load(&states[n - 1]).await.unwrap().version, 1);
}

/// Ids no database can key as they are: a 2.7 KB `eventId`, one with a NUL
/// byte, two long ones that differ only at their end, and a 2.7 KB
/// `loInstanceId` and one with a NUL byte. Each is processed once, its
/// record's state is kept (an older enrollment after a completion is
/// stale), and the redelivery is all duplicates.
pub async fn ids_of_any_length_and_content_are_processed<S: Store>(store: S) {
    let clock = ManualClock::at_unix(T0);
    let engine = engine(store, &clock);
    // Not repetitive, so that a database cannot compress it under its limit.
    let noise = |len: usize| {
        let mut x = 0x9e37_79b9_u64;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(b'a' + (x % 26) as u8)
            })
            .collect::<String>()
    };
    let long = noise(2_700);
    let long_instance = format!("course:{}_2", noise(2_700));
    let nul_instance = "course:1\\u0000x_2";
    let e = envelope(
        1,
        &[
            learner(
                &format!("{long}1"),
                "COURSE_COMPLETED",
                300,
                1,
                &long_instance,
            ),
            learner(
                &format!("{long}2"),
                "COURSE_ENROLLMENT",
                200,
                1,
                &long_instance,
            ),
            learner("nul\\u0000a", "COURSE_COMPLETED", 300, 1, nul_instance),
            learner("nul\\u0000b", "COURSE_ENROLLMENT", 200, 1, nul_instance),
            learner("nul\\u0000c", "COURSE_ENROLLMENT", 400, 1, "course:1_2"),
        ],
    );
    assert_eq!(e.parsed().count(), 5, "every event parses");
    use Decision::*;
    let stale = Ignored(IgnoreReason::Stale);
    assert_eq!(
        decisions(&engine, &e).await,
        [Processed, stale, Processed, stale, Processed]
    );
    assert_eq!(decisions(&engine, &e).await, [Duplicate; 5]);
}

/// `renew` extends a held claim past its first lease; it answers `false`
/// for a token that does not hold the claim, after the commit, and for a
/// holder whose expired claim was taken over.
pub async fn renew_keeps_a_claim_past_its_lease<S: Store>(store: S) {
    let (a, b) = (key(1, "a"), key(1, "b"));
    let t = claimed(store.claim(&a, SHORT, at(T0)).await.unwrap());
    assert!(store.renew(&a, t, LEASE, at(T0)).await.unwrap());
    assert!(
        !store
            .renew(&a, ClaimToken(t.0 ^ 1), LEASE, at(T0))
            .await
            .unwrap()
    );
    outlive_short_lease().await;
    assert_eq!(
        store.claim(&a, LEASE, at(T0 + 1)).await.unwrap(),
        Claim::InFlight,
        "renewed: still held"
    );
    assert_eq!(
        store.commit(commit(&a, t, T0 + 100)).await.unwrap(),
        CommitOutcome::Committed
    );
    assert!(!store.renew(&a, t, LEASE, at(T0 + 1)).await.unwrap());
    // An expired claim that another caller took over is not renewed.
    let old = claimed(store.claim(&b, SHORT, at(T0)).await.unwrap());
    outlive_short_lease().await;
    let new = claimed(store.claim(&b, LEASE, at(T0 + 31)).await.unwrap());
    assert!(!store.renew(&b, old, LEASE, at(T0 + 31)).await.unwrap());
    assert!(store.renew(&b, new, LEASE, at(T0 + 31)).await.unwrap());
}

/// Two engines whose clocks are 30 s behind and 30 s ahead share the store:
/// the one ahead does not see the slow one's claim as expired, so the
/// handler runs once. Shared stores only: they keep leases on their own
/// clock (a memory or SQLite store serves one host, one clock).
pub async fn engines_with_clocks_60_s_apart_process_once<S: Store>(store: S) {
    let store = Arc::new(store);
    let real = OffsetDateTime::now_utc().unix_timestamp();
    let (behind, ahead) = (
        ManualClock::at_unix(real - 30),
        ManualClock::at_unix(real + 30),
    );
    let build = |clock: &ManualClock| {
        Engine::builder(Arc::clone(&store))
            .clock(clock.clone())
            .lease(Duration::from_secs(10))
            .wait_for_in_flight(Duration::from_millis(100))
            .build()
    };
    let (slow, fast) = (build(&behind), build(&ahead));
    let e = envelope(
        1,
        &[learner("skew", "COURSE_ENROLLMENT", 1, 1, "course:1_2")],
    );
    let runs = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(tokio::sync::Notify::new());
    let finish = Arc::new(tokio::sync::Notify::new());
    let first = {
        let (e, runs, started, finish) = (
            e.clone(),
            Arc::clone(&runs),
            Arc::clone(&started),
            Arc::clone(&finish),
        );
        tokio::spawn(async move {
            slow.process(e, |_| {
                runs.fetch_add(1, Ordering::SeqCst);
                started.notify_one();
                let finish = Arc::clone(&finish);
                async move {
                    finish.notified().await;
                    Ok::<(), String>(())
                }
            })
            .await
            .unwrap()
        })
    };
    // Bounded, so that a failing first engine fails the test, not hangs it.
    tokio::time::timeout(Duration::from_secs(30), started.notified())
        .await
        .expect("the slow engine runs the handler");
    // The slow engine's claim ended at its clock + 10 s, 20 s ago by the
    // fast engine's clock: only the store's clock says it is live.
    let report = fast
        .process(e.clone(), |_| {
            runs.fetch_add(1, Ordering::SeqCst);
            async { Ok::<(), String>(()) }
        })
        .await
        .unwrap();
    assert_eq!(report.outcomes[0].decision, Decision::Busy);
    finish.notify_one();
    assert_eq!(
        first.await.unwrap().outcomes[0].decision,
        Decision::Processed
    );
    let again = fast
        .process(e, |_| {
            runs.fetch_add(1, Ordering::SeqCst);
            async { Ok::<(), String>(()) }
        })
        .await
        .unwrap();
    assert_eq!(again.outcomes[0].decision, Decision::Duplicate);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

pub async fn decided_events_expire_after_the_window<S: Store>(store: S) {
    let k = key(1, "a");
    let t = claimed(store.claim(&k, LEASE, at(T0)).await.unwrap());
    store.commit(commit(&k, t, T0 + 100)).await.unwrap();
    assert_eq!(
        store.claim(&k, LEASE, at(T0 + 99)).await.unwrap(),
        Claim::AlreadyDecided
    );
    claimed(store.claim(&k, LEASE, at(T0 + 100)).await.unwrap());
}

pub async fn sweep_removes_expired_entries<S: Store>(store: S) {
    for (i, until) in [(0, T0 + 10), (1, T0 + 10), (2, T0 + 1000)] {
        let k = key(1, &format!("e{i}"));
        let t = claimed(store.claim(&k, LEASE, at(T0)).await.unwrap());
        store.commit(commit(&k, t, until)).await.unwrap();
    }
    let removed = store.sweep(at(T0 + 11)).await.unwrap();
    assert!(removed >= 2, "removed {removed}");
    assert_eq!(
        store
            .claim(&key(1, "e2"), LEASE, at(T0 + 12))
            .await
            .unwrap(),
        Claim::AlreadyDecided
    );
    claimed(
        store
            .claim(&key(1, "e0"), LEASE, at(T0 + 12))
            .await
            .unwrap(),
    );
}

/// Rule state has its own expiry (`state_until`), later than the dedup
/// window's: after the window the event is forgotten, its entity's state is
/// not; after `state_until` the state goes too.
pub async fn state_outlives_the_dedup_window<S: Store>(store: S) {
    let k = key(1, "kept-state");
    let sk = state_key(21);
    let mut next = EntityState::default();
    next.newest_millis = Some(7);
    let t = claimed(store.claim(&k, LEASE, at(T0)).await.unwrap());
    let c = Commit {
        key: &k,
        token: t,
        update: Some(StateUpdate {
            key: &sk,
            expected_version: 0,
            state: &next,
        }),
        remember_until: at(T0 + 100),
        state_until: at(T0 + 10_000),
    };
    assert_eq!(store.commit(c).await.unwrap(), CommitOutcome::Committed);
    store.sweep(at(T0 + 200)).await.unwrap();
    claimed(store.claim(&k, LEASE, at(T0 + 200)).await.unwrap());
    let loaded = store.load(&sk).await.unwrap();
    assert_eq!((loaded.version, loaded.state.newest_millis), (1, Some(7)));
    store.sweep(at(T0 + 10_001)).await.unwrap();
    assert_eq!(store.load(&sk).await.unwrap().version, 0);
}

pub async fn concurrent_claims_have_one_winner<S: Store>(store: S) {
    let store = Arc::new(store);
    let k = key(1, "contended");
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (store, k) = (Arc::clone(&store), k.clone());
            tokio::spawn(async move { store.claim(&k, LEASE, at(T0)).await.unwrap() })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        if matches!(t.await.unwrap(), Claim::Claimed(_)) {
            won += 1;
        }
    }
    assert_eq!(won, 1);
}

fn engine<S: Store>(store: S, clock: &ManualClock) -> Engine<S> {
    batched_engine(store, clock, 1)
}

fn batched_engine<S: Store>(store: S, clock: &ManualClock, commit_batch: usize) -> Engine<S> {
    Engine::builder(store)
        .clock(clock.clone())
        .lease(LEASE)
        .wait_for_in_flight(Duration::from_millis(100))
        .dedup_window(Duration::from_secs(8 * 24 * 3600))
        .commit_batch(commit_batch)
        .build()
}

pub async fn engine_rules_hold<S: Store>(store: S) {
    let clock = ManualClock::at_unix(T0);
    let engine = engine(store, &clock);
    let i = "course:1_2";
    let e = envelope(
        1,
        &[
            learner("p", "LEARNER_PROGRESS", 100, 1, i),
            learner("e", "COURSE_ENROLLMENT", 90, 1, i),
            learner("c", "COURSE_COMPLETED", 300, 1, i),
            learner("p2", "LEARNER_PROGRESS", 310, 1, i),
            learner("u", "COURSE_UNENROLLMENT", 250, 1, i),
            learner("p", "LEARNER_PROGRESS", 100, 1, i),
        ],
    );
    use Decision::*;
    assert_eq!(
        decisions(&engine, &e).await,
        [
            Processed,
            Ignored(IgnoreReason::EnrollmentAfterProgress),
            Processed,
            Ignored(IgnoreReason::ProgressAfterCompletion),
            Ignored(IgnoreReason::Stale),
            Duplicate,
        ]
    );
}

pub async fn handler_failure_records_nothing_and_redelivery_processes_once<S: Store>(store: S) {
    handler_failure_with_batches_of(store, 1).await;
}

pub async fn batched_commits_keep_handler_failures_apart<S: Store>(store: S) {
    handler_failure_with_batches_of(store, 4).await;
}

async fn handler_failure_with_batches_of<S: Store>(store: S, commit_batch: usize) {
    let clock = ManualClock::at_unix(T0);
    let engine = batched_engine(store, &clock, commit_batch);
    let e = envelope(
        1,
        &[
            learner("a", "COURSE_ENROLLMENT", 1, 1, "course:1_2"),
            learner("b", "COURSE_COMPLETED", 2, 1, "course:1_2"),
        ],
    );
    let report = engine
        .process(e.clone(), |event| async move {
            if event.event_id.as_str() == "a" {
                Err("CRM down")
            } else {
                Ok(())
            }
        })
        .await
        .unwrap();
    assert_eq!(report.outcomes[0].decision, Decision::Failed);
    assert_eq!(report.outcomes[0].error.as_deref(), Some("CRM down"));
    // The completion of the same record waits for the failed enrollment.
    assert_eq!(report.outcomes[1].decision, Decision::Deferred);
    assert_eq!(report.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
    let runs = AtomicUsize::new(0);
    let again = engine
        .process(e.clone(), |_| {
            runs.fetch_add(1, Ordering::SeqCst);
            async { Ok::<(), String>(()) }
        })
        .await
        .unwrap();
    // The redelivery processes the enrollment, then the completion.
    let got: Vec<_> = again.outcomes.iter().map(|o| o.decision).collect();
    assert_eq!(got, [Decision::Processed, Decision::Processed]);
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert_eq!(again.status(), http::StatusCode::ACCEPTED);
}

pub async fn crashed_holder_lease_expires_and_redelivery_processes<S: Store>(store: S) {
    let clock = ManualClock::at_unix(T0);
    let engine = engine(store, &clock);
    let k = key(1, "a");
    // A process claimed the event (for long enough to see it busy) and died.
    let lease = Duration::from_secs(2);
    claimed(
        engine
            .store()
            .claim(&k, lease, clock.now_for_test())
            .await
            .unwrap(),
    );
    let e = envelope(1, &[learner("a", "COURSE_ENROLLMENT", 1, 1, "course:1_2")]);
    assert_eq!(decisions(&engine, &e).await, [Decision::Busy]);
    // Its lease ends on every clock: the engine's and the store's.
    clock.advance(lease + Duration::from_secs(1));
    tokio::time::sleep(lease + Duration::from_millis(200)).await;
    assert_eq!(decisions(&engine, &e).await, [Decision::Processed]);
    assert_eq!(decisions(&engine, &e).await, [Decision::Duplicate]);
}

pub async fn window_expiry_with_the_engine_clock<S: Store>(store: S) {
    let clock = ManualClock::at_unix(T0);
    let engine = Engine::builder(store)
        .clock(clock.clone())
        .dedup_window(Duration::from_secs(3600))
        .build();
    let e = envelope(1, &[super::unknown("x", 1)]);
    assert_eq!(decisions(&engine, &e).await, [Decision::Processed]);
    clock.advance(Duration::from_secs(3599));
    assert_eq!(decisions(&engine, &e).await, [Decision::Duplicate]);
    clock.advance(Duration::from_secs(2));
    assert_eq!(decisions(&engine, &e).await, [Decision::Processed]);
}

pub async fn concurrent_deliveries_run_each_handler_once<S: Store>(store: S) {
    concurrent_deliveries_with_batches_of(store, 1).await;
}

pub async fn batched_concurrent_deliveries_run_each_handler_once<S: Store>(store: S) {
    concurrent_deliveries_with_batches_of(store, 16).await;
}

async fn concurrent_deliveries_with_batches_of<S: Store>(store: S, commit_batch: usize) {
    let engine = Engine::builder(store)
        .wait_for_in_flight(Duration::from_secs(10))
        .commit_batch(commit_batch)
        .build();
    let events: Vec<String> = (0..50)
        .map(|n| {
            learner(
                &format!("e{n}"),
                "COURSE_ENROLLMENT_BATCH",
                1,
                n,
                "course:1_2",
            )
        })
        .collect();
    let e = Arc::new(envelope(1, &events));
    let runs = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (engine, e, runs) = (engine.clone(), Arc::clone(&e), Arc::clone(&runs));
            tokio::spawn(async move {
                engine
                    .process((*e).clone(), |_| {
                        let runs = Arc::clone(&runs);
                        async move {
                            runs.fetch_add(1, Ordering::SeqCst);
                            tokio::task::yield_now().await;
                            Ok::<(), String>(())
                        }
                    })
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut processed = 0;
    for t in tasks {
        let report = t.await.unwrap();
        assert!(report.is_acknowledged(), "{report:?}");
        processed += report
            .outcomes
            .iter()
            .filter(|o| o.decision == Decision::Processed)
            .count();
    }
    assert_eq!(runs.load(Ordering::SeqCst), 50);
    assert_eq!(processed, 50);
}

#[allow(unused_imports)] // used by the `store_conformance!` macro
pub use super::counting::a_delivery_costs_a_constant_number_of_store_calls;

/// The clock's current time, for driving a store directly.
trait NowForTest {
    fn now_for_test(&self) -> OffsetDateTime;
}

impl NowForTest for ManualClock {
    fn now_for_test(&self) -> OffsetDateTime {
        alm_webhooks::engine::Clock::now(self)
    }
}

/// The checks only shared stores (PostgreSQL, Redis) pass: leases on the
/// store's clock.
#[macro_export]
macro_rules! shared_store_conformance {
    ($factory:expr) => {
        $crate::store_conformance!(@tests $factory;
            engines_with_clocks_60_s_apart_process_once
        );
    };
}

/// One `#[tokio::test]` per conformance check, for the store `$factory` makes.
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
            a_delivery_costs_a_constant_number_of_store_calls
        );
    };
    (@tests $factory:expr; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if let Some(store) = $factory.await {
                    $crate::support::conformance::$name(store).await;
                }
            }
        )*
    };
}
