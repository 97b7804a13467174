//! The engine on the set-based store operations (issue 13): a permanent
//! store error is one event's failure, claims held while slow handlers run
//! are renewed, and a delivery with repeats decides as one by one.

mod support;

use std::sync::Arc;
use std::time::Duration;

use alm_webhooks::Decision;
use alm_webhooks::Engine;
use alm_webhooks::rules::StateKey;
use alm_webhooks::store::{
    Claim, ClaimOwner, Commit, CommitOutcome, DedupKey, MemoryStore, Store, StoreError,
    StoreErrorKind, Versioned,
};
use alm_webhooks::{AccountId, EventId};
use std::time::SystemTime;
use support::counting::Counting;
use support::{decisions as decide, envelope, learner, unknown};

use Decision::{Duplicate, Failed, Processed};

/// A memory store that refuses, permanently, to claim or to commit one
/// event (as PostgreSQL refuses a value it cannot hold).
#[derive(Debug, Default)]
struct Refusing {
    inner: MemoryStore,
    claim_of: Option<&'static str>,
    commit_of: Option<&'static str>,
}

fn refused(which: Option<&str>, key: &DedupKey) -> Result<(), StoreError> {
    if which == Some(key.event_id.as_str()) {
        let error = StoreError::new(format!("cannot hold event {}", key.event_id.as_str()));
        return Err(error.with_kind(StoreErrorKind::Permanent));
    }
    Ok(())
}

impl Store for Refusing {
    async fn claim(
        &self,
        key: &DedupKey,
        owner: ClaimOwner,
        lease: Duration,
        now: SystemTime,
    ) -> Result<Claim, StoreError> {
        refused(self.claim_of, key)?;
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
        refused(self.claim_of, key)?;
        self.inner
            .claim_and_load(key, state, owner, lease, now)
            .await
    }

    async fn commit(&self, commit: Commit<'_>) -> Result<CommitOutcome, StoreError> {
        refused(self.commit_of, commit.key)?;
        self.inner.commit(commit).await
    }

    async fn release(&self, key: &DedupKey, token: ClaimOwner) -> Result<(), StoreError> {
        self.inner.release(key, token).await
    }

    async fn sweep(&self, now: SystemTime) -> Result<u64, StoreError> {
        self.inner.sweep(now).await
    }
}

fn three_learners() -> Vec<String> {
    (1..=3)
        .map(|n| learner(&format!("e{n}"), "COURSE_ENROLLMENT", 100, n, "course:1_2"))
        .collect()
}

#[tokio::test]
async fn a_permanent_claim_error_is_that_events_failure() {
    for batch in [1, 64, usize::MAX] {
        let store = Refusing {
            claim_of: Some("e2"),
            ..Refusing::default()
        };
        let engine = Engine::builder(store).commit_batch(batch).build();
        let report = engine
            .process(envelope(1, &three_learners()), |_| async { Ok(()) })
            .await
            .expect("a permanent error about one event is not the delivery's error");
        let got: Vec<_> = report.outcomes.iter().map(|o| o.decision).collect();
        assert_eq!(got, [Processed, Failed, Processed], "commit_batch({batch})");
        let error = report.outcomes[1].error_message().unwrap();
        assert!(error.contains("cannot hold event e2"), "{error}");
        assert!(error.contains("store refused the data"), "{error}");
    }
}

#[tokio::test]
async fn a_permanent_commit_error_is_that_events_failure_and_frees_its_claim() {
    for batch in [1, 64, usize::MAX] {
        let store = Refusing {
            commit_of: Some("e3"),
            ..Refusing::default()
        };
        let engine = Engine::builder(store).commit_batch(batch).build();
        let got = decide(&engine, &envelope(1, &three_learners())).await;
        assert_eq!(got, [Processed, Processed, Failed], "commit_batch({batch})");
        // The claim was released: the event is free to be claimed again.
        let key = DedupKey {
            account_id: AccountId(1),
            event_id: "e3".parse::<EventId>().unwrap(),
        };
        let claim = engine
            .store()
            .inner
            .claim(
                &key,
                ClaimOwner::random(),
                Duration::from_secs(60),
                SystemTime::now(),
            )
            .await
            .unwrap();
        assert!(matches!(claim, Claim::Claimed(_)), "commit_batch({batch})");
    }
}

/// A handler slower than the lease: the delivery's claims (its own and the
/// ones of the events after it) are renewed while it runs, so another
/// attempt cannot take them over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_held_while_a_slow_handler_runs_are_renewed() {
    let lease = Duration::from_millis(900);
    let store = Arc::new(Counting::new(MemoryStore::new()));
    let engine = Engine::builder(Arc::clone(&store))
        .claim_lease(lease)
        .build();
    let events = [
        learner("slow", "COURSE_ENROLLMENT", 100, 1, "course:1_2"),
        learner("next", "COURSE_ENROLLMENT", 100, 2, "course:1_2"),
    ];
    let delivery = {
        let engine = engine.clone();
        tokio::spawn(async move {
            engine
                .process(envelope(1, &events), |event| async move {
                    if event.event_id.as_str() == "slow" {
                        tokio::time::sleep(Duration::from_millis(2_700)).await;
                    }
                    Ok(())
                })
                .await
                .unwrap()
        })
    };
    // Well past the lease, while the slow handler runs: both claims live.
    tokio::time::sleep(Duration::from_millis(1_800)).await;
    for id in ["slow", "next"] {
        let key = DedupKey {
            account_id: AccountId(1),
            event_id: id.parse().unwrap(),
        };
        let other = store
            .inner
            .claim(&key, ClaimOwner::random(), lease, SystemTime::now())
            .await
            .unwrap();
        assert_eq!(other, Claim::InFlight, "{id}");
    }
    let report = delivery.await.unwrap();
    let got: Vec<_> = report.outcomes.iter().map(|o| o.decision).collect();
    assert_eq!(got, [Processed, Processed]);
    let renewals = store.take().get("renew_many").copied().unwrap_or(0);
    assert!(renewals >= 2, "{renewals} renewals");
}

/// The same `eventId` twice, two events of one record, and an unknown
/// event repeated: the set-based engine decides as the one-by-one one.
#[tokio::test]
async fn repeats_in_one_delivery_decide_as_one_by_one() {
    let i = "course:1_2";
    let events = [
        learner("a", "COURSE_ENROLLMENT", 100, 1, i),
        learner("b", "LEARNER_PROGRESS", 150, 1, i),
        learner("a", "COURSE_ENROLLMENT", 100, 1, i),
        unknown("u", 120),
        learner("c", "COURSE_COMPLETED", 200, 1, i),
        unknown("u", 120),
        learner("d", "LEARNER_PROGRESS", 210, 1, i),
        learner("e", "COURSE_ENROLLMENT", 90, 2, i),
    ];
    let one_by_one = Engine::builder(MemoryStore::new()).commit_batch(1).build();
    let want = decide(&one_by_one, &envelope(1, &events)).await;
    assert_eq!(&want[..4], [Processed, Processed, Duplicate, Processed]);
    let engine = Engine::builder(MemoryStore::new()).build();
    assert_eq!(decide(&engine, &envelope(1, &events)).await, want);
    let redelivered = decide(&engine, &envelope(1, &events)).await;
    assert_eq!(redelivered, [Duplicate; 8]);
}

/// An event held by another attempt, which decides it while the delivery
/// waits: the delivery's later event of the same record is decided on the
/// state that attempt left (as one by one), not on the state read with the
/// delivery's claims before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_event_sees_what_an_attempt_in_flight_left() {
    use alm_webhooks::IgnoreReason;
    use alm_webhooks::rules;
    use alm_webhooks::store::{Commit, StateUpdate};

    let i = "course:1_2";
    let events = [
        learner("done", "COURSE_COMPLETED", 200, 1, i),
        learner("late", "LEARNER_PROGRESS", 210, 1, i),
    ];
    let delivery = envelope(1, &events);
    let store = Arc::new(Counting::new(MemoryStore::new()));
    let engine = Engine::builder(Arc::clone(&store))
        .in_flight_wait(Duration::from_secs(10))
        .build();
    // Another attempt holds the completion, then commits it.
    let completion = delivery.parsed().next().unwrap().clone();
    let key = DedupKey {
        account_id: AccountId(1),
        event_id: "done".parse().unwrap(),
    };
    let now = SystemTime::now();
    let Claim::Claimed(token) = store
        .inner
        .claim(&key, ClaimOwner::random(), Duration::from_secs(60), now)
        .await
        .unwrap()
    else {
        panic!("the other attempt claims the completion");
    };
    let other = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let state_key = StateKey::for_event(AccountId(1), &completion).unwrap();
            let (_, state) = rules::decide(&Default::default(), &completion);
            let update = StateUpdate {
                key: &state_key,
                expected_version: 0,
                state: &state,
            };
            let day = Duration::from_secs(24 * 3600);
            let commit = Commit {
                key: &key,
                token,
                update: Some(update),
                remember_until: now + 8 * day,
                state_until: now + 400 * day,
            };
            store.inner.commit(commit).await.unwrap()
        })
    };
    let got = decide(&engine, &delivery).await;
    assert_eq!(other.await.unwrap(), CommitOutcome::Committed);
    let after_completion = Decision::Ignored(IgnoreReason::ProgressAfterCompletion);
    assert_eq!(got, [Duplicate, after_completion]);
}
