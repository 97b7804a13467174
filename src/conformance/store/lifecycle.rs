//! Clocks, expiry, concurrency, and the engine on the store.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::rules::{EntityState, IgnoreReason};
use crate::store::{CommitOutcome, StateUpdate};

/// Two engines whose clocks are 30 s behind and 30 s ahead share the store:
/// the one ahead does not see the slow one's claim as expired, so the
/// handler runs once. Shared stores only: they keep leases on their own
/// clock (a memory or SQLite store serves one host, one clock).
pub async fn engines_with_clocks_60_s_apart_process_once<S: Store>(store: S) {
    let store = Arc::new(store);
    let real = unix_now();
    let (behind, ahead) = (
        ManualClock::at_unix(real - 30),
        ManualClock::at_unix(real + 30),
    );
    let build = |clock: &ManualClock| {
        Engine::builder(Arc::clone(&store))
            .clock(clock.clone())
            .claim_lease(Duration::from_secs(10))
            .in_flight_wait(Duration::from_millis(100))
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
                    Ok(())
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
            async { Ok(()) }
        })
        .await
        .unwrap();
    assert_eq!(report.outcomes[0].decision, Decision::InFlight);
    finish.notify_one();
    assert_eq!(
        first.await.unwrap().outcomes[0].decision,
        Decision::Processed
    );
    let again = fast
        .process(e, |_| {
            runs.fetch_add(1, Ordering::SeqCst);
            async { Ok(()) }
        })
        .await
        .unwrap();
    assert_eq!(again.outcomes[0].decision, Decision::Duplicate);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

/// A decided event is forgotten at its `remember_until`, not before.
pub async fn decided_events_expire_after_the_window<S: Store>(store: S) {
    let k = key(1, "a");
    let t = claimed(
        store
            .claim(&k, ClaimOwner::random(), LEASE, at(T0))
            .await
            .unwrap(),
    );
    store.commit(commit(&k, t, T0 + 100)).await.unwrap();
    assert_eq!(
        store
            .claim(&k, ClaimOwner::random(), LEASE, at(T0 + 99))
            .await
            .unwrap(),
        Claim::AlreadyDecided
    );
    claimed(
        store
            .claim(&k, ClaimOwner::random(), LEASE, at(T0 + 100))
            .await
            .unwrap(),
    );
}

/// [`Store::sweep`] removes what expired and keeps the rest.
pub async fn sweep_removes_expired_entries<S: Store>(store: S) {
    for (i, until) in [(0, T0 + 10), (1, T0 + 10), (2, T0 + 1000)] {
        let k = key(1, &format!("e{i}"));
        let t = claimed(
            store
                .claim(&k, ClaimOwner::random(), LEASE, at(T0))
                .await
                .unwrap(),
        );
        store.commit(commit(&k, t, until)).await.unwrap();
    }
    let removed = store.sweep(at(T0 + 11)).await.unwrap();
    assert!(removed >= 2, "removed {removed}");
    assert_eq!(
        store
            .claim(&key(1, "e2"), ClaimOwner::random(), LEASE, at(T0 + 12))
            .await
            .unwrap(),
        Claim::AlreadyDecided
    );
    claimed(
        store
            .claim(&key(1, "e0"), ClaimOwner::random(), LEASE, at(T0 + 12))
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
    let next = EntityState {
        newest_millis: Some(7),
        ..EntityState::default()
    };
    let t = claimed(
        store
            .claim(&k, ClaimOwner::random(), LEASE, at(T0))
            .await
            .unwrap(),
    );
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
    claimed(
        store
            .claim(&k, ClaimOwner::random(), LEASE, at(T0 + 200))
            .await
            .unwrap(),
    );
    let loaded = store.load(&sk).await.unwrap();
    assert_eq!((loaded.version, loaded.state.newest_millis), (1, Some(7)));
    store.sweep(at(T0 + 10_001)).await.unwrap();
    assert_eq!(store.load(&sk).await.unwrap().version, 0);
}

/// Of many concurrent claims of one event, exactly one wins.
pub async fn concurrent_claims_have_one_winner<S: Store>(store: S) {
    let store = Arc::new(store);
    let k = key(1, "contended");
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (store, k) = (Arc::clone(&store), k.clone());
            tokio::spawn(async move {
                store
                    .claim(&k, ClaimOwner::random(), LEASE, at(T0))
                    .await
                    .unwrap()
            })
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

/// The engine's ordering rules give the same decisions on this store as on any other.
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

/// A handler that fails records nothing, and the redelivery processes the event once.
pub async fn handler_failure_records_nothing_and_redelivery_processes_once<S: Store>(store: S) {
    handler_failure_with_batches_of(store, 1).await;
}

/// With batched commits, one handler's failure does not record or fail the others.
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
                Err("CRM down".into())
            } else {
                Ok(())
            }
        })
        .await
        .unwrap();
    assert_eq!(report.outcomes[0].decision, Decision::Failed);
    assert_eq!(report.outcomes[0].error_message(), Some("CRM down"));
    // The completion of the same record waits for the failed enrollment.
    assert_eq!(report.outcomes[1].decision, Decision::Deferred);
    assert_eq!(report.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
    let runs = AtomicUsize::new(0);
    let again = engine
        .process(e.clone(), |_| {
            runs.fetch_add(1, Ordering::SeqCst);
            async { Ok(()) }
        })
        .await
        .unwrap();
    // The redelivery processes the enrollment, then the completion.
    let got: Vec<_> = again.outcomes.iter().map(|o| o.decision).collect();
    assert_eq!(got, [Decision::Processed, Decision::Processed]);
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert_eq!(again.status(), http::StatusCode::ACCEPTED);
}

/// A holder that dies mid-handler loses its claim with its lease, and the redelivery processes the event.
pub async fn crashed_holder_lease_expires_and_redelivery_processes<S: Store>(store: S) {
    let clock = ManualClock::at_unix(T0);
    let engine = engine(store, &clock);
    let k = key(1, "a");
    // A process claimed the event (for long enough to see it busy) and died.
    let lease = Duration::from_secs(2);
    claimed(
        engine
            .store()
            .claim(&k, ClaimOwner::random(), lease, clock.now_for_test())
            .await
            .unwrap(),
    );
    let e = envelope(1, &[learner("a", "COURSE_ENROLLMENT", 1, 1, "course:1_2")]);
    assert_eq!(decisions(&engine, &e).await, [Decision::InFlight]);
    // Its lease ends on every clock: the engine's and the store's.
    clock.advance(lease + Duration::from_secs(1));
    tokio::time::sleep(lease + Duration::from_millis(200)).await;
    assert_eq!(decisions(&engine, &e).await, [Decision::Processed]);
    assert_eq!(decisions(&engine, &e).await, [Decision::Duplicate]);
}

/// The engine's dedup window, on its clock: a duplicate inside it, processed again after it.
pub async fn window_expiry_with_the_engine_clock<S: Store>(store: S) {
    let clock = ManualClock::at_unix(T0);
    let engine = Engine::builder(store)
        .clock(clock.clone())
        .dedup_window(Duration::from_secs(3600))
        .build();
    let e = envelope(1, &[unknown("x", 1)]);
    assert_eq!(decisions(&engine, &e).await, [Decision::Processed]);
    clock.advance(Duration::from_secs(3599));
    assert_eq!(decisions(&engine, &e).await, [Decision::Duplicate]);
    clock.advance(Duration::from_secs(2));
    assert_eq!(decisions(&engine, &e).await, [Decision::Processed]);
}

/// Twenty concurrent copies of a 50-event delivery run each handler once.
pub async fn concurrent_deliveries_run_each_handler_once<S: Store>(store: S) {
    concurrent_deliveries_with_batches_of(store, 1).await;
}

/// As [`concurrent_deliveries_run_each_handler_once`], with commits batched by 16.
pub async fn batched_concurrent_deliveries_run_each_handler_once<S: Store>(store: S) {
    concurrent_deliveries_with_batches_of(store, 16).await;
}

async fn concurrent_deliveries_with_batches_of<S: Store>(store: S, commit_batch: usize) {
    let engine = Engine::builder(store)
        .in_flight_wait(Duration::from_secs(10))
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
                            Ok(())
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
