//! The failure sequences of issue 14, one test (or more) each: every one
//! failed on the engine before its fix. Ordering ones run with commit
//! batches too.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use alm_webhooks::Engine;
use alm_webhooks::engine::ManualClock;
use alm_webhooks::rules::StateKey;
use alm_webhooks::store::{
    Claim, ClaimOwner, Commit, CommitOutcome, DedupKey, MANY_CHUNK, MemoryStore, Store, StoreError,
    Versioned,
};
use alm_webhooks::{AccountId, Envelope};
use alm_webhooks::{Decision, IgnoreReason};
use std::time::SystemTime;
use support::{decisions as decide, envelope, learner, lo};

use Decision::{Duplicate, Failed, Ignored, Processed};
const STALE: Decision = Ignored(IgnoreReason::Stale);
const RULE2: Decision = Ignored(IgnoreReason::ProgressAfterCompletion);

/// 2026-03-30, in seconds.
const NOW: i64 = 1_774_865_700;
const DAY: Duration = Duration::from_secs(24 * 3600);

fn engine_at(clock: &ManualClock, commit_batch: usize) -> Engine {
    Engine::builder(MemoryStore::new())
        .clock(clock.clone())
        .commit_batch(commit_batch)
        .build()
}

/// Each delivery's decisions, one delivery after another on one engine,
/// with decisions committed one by one and in batches (asserted equal).
async fn run(deliveries: &[Vec<String>]) -> Vec<Vec<Decision>> {
    let mut first = None;
    for batch in [1, 2, 64, MANY_CHUNK] {
        let engine = engine_at(&ManualClock::at_unix(NOW), batch);
        let mut got = Vec::new();
        for events in deliveries {
            got.push(decide(&engine, &envelope(1, events)).await);
        }
        match &first {
            None => first = Some(got),
            Some(one_by_one) => assert_eq!(&got, one_by_one, "commit_batch({batch})"),
        }
    }
    first.unwrap()
}

// 1. One learning path, two spellings.

#[tokio::test]
async fn both_spellings_of_a_learning_path_name_one_record() {
    let camel = "learningProgram:12345_678";
    let snake = "learning_program:12345_678";
    let events = vec![
        learner("e1", "LEARNING_PATH_ENROLLMENT", NOW - 900, 7, camel),
        learner("p1", "LEARNER_PROGRESS", NOW - 800, 7, camel),
        learner("c1", "LEARNING_PATH_COMPLETED", NOW - 700, 7, camel),
        learner("u1", "LEARNING_PATH_UNENROLLMENT", NOW - 600, 7, snake),
        learner("e2", "LEARNING_PATH_ENROLLMENT", NOW - 500, 7, camel),
        learner("p2", "LEARNER_PROGRESS", NOW - 400, 7, camel),
    ];
    assert_eq!(run(&[events]).await, [[Processed; 6]]);
    // An unenrollment spelled the other way, older than the completion, is
    // stale on the same record.
    let events = vec![
        learner("c1", "LEARNING_PATH_COMPLETED", NOW - 700, 7, camel),
        learner("u1", "LEARNING_PATH_UNENROLLMENT", NOW - 800, 7, snake),
    ];
    assert_eq!(run(&[events]).await, [[Processed, STALE]]);
}

#[tokio::test]
async fn both_spellings_name_one_state_key_and_the_event_keeps_its_id() {
    let e = envelope(
        1,
        &[
            learner("a", "LEARNING_PATH_ENROLLMENT", 1, 7, "learningProgram:1_2"),
            learner(
                "b",
                "LEARNING_PATH_ENROLLMENT",
                1,
                7,
                "learning_program:1_2",
            ),
        ],
    );
    let events: Vec<_> = e.parsed().collect();
    let keys: Vec<_> = events
        .iter()
        .map(|e| StateKey::for_event(AccountId(1), e).unwrap())
        .collect();
    assert_eq!(keys[0], keys[1]);
    assert_eq!(keys[0].to_string(), keys[1].to_string());
    let engine = Engine::in_memory();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    engine
        .process(e.clone(), move |event| {
            let sink = Arc::clone(&sink);
            async move {
                let json = serde_json::to_value(&event).unwrap();
                sink.lock()
                    .unwrap()
                    .push(json["data"]["loInstanceId"].clone());
                Ok(())
            }
        })
        .await
        .unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        ["learningProgram:1_2", "learning_program:1_2"]
    );
}

#[tokio::test]
async fn both_spellings_name_one_learning_object() {
    let events = vec![
        lo(
            "a",
            "LEARNING_OBJECT_MODIFICATION",
            100,
            "learningProgram:12345",
        ),
        lo(
            "b",
            "LEARNING_OBJECT_MODIFICATION",
            90,
            "learning_program:12345",
        ),
    ];
    assert_eq!(run(&[events]).await, [[Processed, STALE]]);
}

// 2. A failure, then a newer event of the same record in the same delivery.

#[tokio::test]
async fn a_later_event_of_a_record_waits_for_its_failed_predecessor() {
    let i = "course:1_2";
    let events = [
        learner("e", "COURSE_ENROLLMENT", 100, 1, i),
        learner("c", "COURSE_COMPLETED", 200, 1, i),
        // Another record is not held back.
        learner("o", "COURSE_ENROLLMENT", 150, 2, i),
    ];
    for batch in [1, 2, 64, MANY_CHUNK] {
        let engine = engine_at(&ManualClock::at_unix(NOW), batch);
        let report = engine
            .process(envelope(1, &events), |event| async move {
                if event.event_id.as_str() == "e" {
                    return Err("CRM down".into());
                }
                Ok(())
            })
            .await
            .unwrap();
        let got: Vec<_> = report.outcomes.iter().map(|o| o.decision).collect();
        assert_eq!(got[0], Failed, "commit_batch({batch})");
        assert!(!got[1].is_final(), "commit_batch({batch}): {got:?}");
        assert_eq!(got[2], Processed, "commit_batch({batch})");
        assert!(!report.is_acknowledged());
        // The redelivery processes the enrollment, then the completion.
        let again = decide(&engine, &envelope(1, &events)).await;
        assert_eq!(
            again,
            [Processed, Processed, Duplicate],
            "commit_batch({batch})"
        );
    }
}

#[tokio::test]
async fn a_later_event_of_a_record_waits_for_its_busy_predecessor() {
    let clock = ManualClock::at_unix(NOW);
    let engine = Engine::builder(MemoryStore::new())
        .clock(clock.clone())
        .in_flight_wait(Duration::ZERO)
        .build();
    let key = DedupKey {
        account_id: AccountId(1),
        event_id: "e".parse().unwrap(),
    };
    // Another attempt holds the enrollment.
    let held = engine
        .store()
        .claim(
            &key,
            ClaimOwner::random(),
            Duration::from_secs(60),
            clock.now_utc(),
        )
        .await
        .unwrap();
    assert!(matches!(held, Claim::Claimed(_)));
    let events = [
        learner("e", "COURSE_ENROLLMENT", 100, 1, "course:1_2"),
        learner("c", "COURSE_COMPLETED", 200, 1, "course:1_2"),
    ];
    let got = decide(&engine, &envelope(1, &events)).await;
    assert_eq!(got, [Decision::InFlight, Decision::Deferred]);
    assert_eq!(engine.counters().deferred, 1);
    // Once the other attempt's lease is over, both are processed in order.
    clock.advance(Duration::from_secs(61));
    assert_eq!(decide(&engine, &envelope(1, &events)).await, [Processed; 2]);
}

// 3. A lost claim is not a duplicate.

#[tokio::test]
async fn a_claim_lost_during_the_handler_is_claimed_again_and_committed() {
    let i = "course:1_2";
    for batch in [1, 64] {
        let clock = ManualClock::at_unix(NOW);
        let engine = engine_at(&clock, batch);
        let (sweeper, clock2) = (engine.clone(), clock.clone());
        let report = engine
            .process(
                envelope(1, &[learner("c", "COURSE_COMPLETED", 200, 1, i)]),
                move |_| {
                    let (sweeper, clock) = (sweeper.clone(), clock2.clone());
                    async move {
                        // The handler outlives its lease and a sweep drops the claim.
                        clock.advance(Duration::from_secs(120));
                        sweeper.sweep().await.unwrap();
                        Ok(())
                    }
                },
            )
            .await
            .unwrap();
        assert_eq!(
            report.outcomes[0].decision, Processed,
            "commit_batch({batch})"
        );
        let later = envelope(1, &[learner("p", "LEARNER_PROGRESS", 210, 1, i)]);
        assert_eq!(
            decide(&engine, &later).await,
            [RULE2],
            "commit_batch({batch})"
        );
    }
}

#[tokio::test]
async fn a_claim_taken_over_during_the_handler_is_busy() {
    let clock = ManualClock::at_unix(NOW);
    let engine = engine_at(&clock, 1);
    let (other, clock2) = (engine.clone(), clock.clone());
    let report = engine
        .process(
            envelope(1, &[learner("c", "COURSE_COMPLETED", 200, 1, "course:1_2")]),
            move |_| {
                let (other, clock) = (other.clone(), clock2.clone());
                async move {
                    clock.advance(Duration::from_secs(120));
                    let key = DedupKey {
                        account_id: AccountId(1),
                        event_id: "c".parse().unwrap(),
                    };
                    let claim = other
                        .store()
                        .claim(
                            &key,
                            ClaimOwner::random(),
                            Duration::from_secs(60),
                            clock.now_utc(),
                        )
                        .await
                        .unwrap();
                    assert!(matches!(claim, Claim::Claimed(_)));
                    Ok(())
                }
            },
        )
        .await
        .unwrap();
    assert_eq!(report.outcomes[0].decision, Decision::InFlight);
    assert_eq!(report.status(), http::StatusCode::SERVICE_UNAVAILABLE);
}

trait NowUtc {
    fn now_utc(&self) -> SystemTime;
}

impl NowUtc for ManualClock {
    fn now_utc(&self) -> SystemTime {
        alm_webhooks::engine::Clock::now(self).into()
    }
}

// 4. A transient store error with `commit_batch`.

/// A memory store whose `n`-th claim fails once, and whose `n`-th commit
/// fails (with the `commit_failures - 1` commits after it).
#[derive(Debug, Default)]
struct FlakyStore {
    inner: MemoryStore,
    claims: AtomicUsize,
    commits: AtomicUsize,
    fail_claim: usize,
    fail_commit: usize,
    commit_failures: usize,
}

impl FlakyStore {
    fn failing_claim(&self) -> Result<(), StoreError> {
        if self.claims.fetch_add(1, Ordering::SeqCst) + 1 == self.fail_claim {
            return Err(StoreError::new("connection reset"));
        }
        Ok(())
    }
}

impl Store for FlakyStore {
    async fn claim(
        &self,
        key: &DedupKey,
        owner: ClaimOwner,
        lease: Duration,
        now: SystemTime,
    ) -> Result<Claim, StoreError> {
        self.failing_claim()?;
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
        self.failing_claim()?;
        self.inner
            .claim_and_load(key, state, owner, lease, now)
            .await
    }

    async fn commit(&self, commit: Commit<'_>) -> Result<CommitOutcome, StoreError> {
        let n = self.commits.fetch_add(1, Ordering::SeqCst) + 1;
        if self.fail_commit > 0
            && (self.fail_commit..self.fail_commit + self.commit_failures.max(1)).contains(&n)
        {
            return Err(StoreError::new("connection reset"));
        }
        self.inner.commit(commit).await
    }

    async fn release(&self, key: &DedupKey, token: ClaimOwner) -> Result<(), StoreError> {
        self.inner.release(key, token).await
    }

    async fn sweep(&self, now: SystemTime) -> Result<u64, StoreError> {
        self.inner.sweep(now).await
    }
}

/// Three events, claimed and committed in chunks of `batch`, against
/// `store`: the first delivery meets the store's error; the redelivery,
/// after any lease ran out, is answered. Returns the redelivery's decisions
/// and the handler calls in all.
async fn deliver_twice_to(store: FlakyStore, batch: usize) -> (Vec<Decision>, usize) {
    let clock = ManualClock::at_unix(NOW);
    let engine = Engine::builder(store)
        .clock(clock.clone())
        .commit_batch(batch)
        .build();
    let events = [
        learner("a", "COURSE_ENROLLMENT", 100, 1, "course:1_2"),
        learner("b", "COURSE_ENROLLMENT", 100, 2, "course:1_2"),
        learner("c", "COURSE_ENROLLMENT", 100, 3, "course:1_2"),
    ];
    let calls = Arc::new(AtomicUsize::new(0));
    let handler = |calls: Arc<AtomicUsize>| {
        move |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Ok(()) }
        }
    };
    let first = engine
        .process(envelope(1, &events), handler(Arc::clone(&calls)))
        .await;
    assert!(first.is_err(), "the store error leaves `process`");
    clock.advance(Duration::from_secs(600));
    let again = engine
        .process(envelope(1, &events), handler(Arc::clone(&calls)))
        .await
        .unwrap();
    let got = again.outcomes.iter().map(|o| o.decision).collect();
    (got, calls.load(Ordering::SeqCst))
}

#[tokio::test]
async fn a_store_error_in_a_batch_commits_what_the_handlers_did_first() {
    // One by one, the third claim comes after two handlers ran.
    let store = FlakyStore {
        fail_claim: 3,
        ..FlakyStore::default()
    };
    let (got, calls) = deliver_twice_to(store, 1).await;
    assert_eq!(got, [Duplicate, Duplicate, Processed]);
    assert_eq!(calls, 3, "one handler call per event");
    // Set-based, the chunk's claims come before any handler: none ran.
    let store = FlakyStore {
        fail_claim: 3,
        ..FlakyStore::default()
    };
    let (got, calls) = deliver_twice_to(store, 100).await;
    assert_eq!(got, [Processed; 3]);
    assert_eq!(calls, 3, "one handler call per event");
}

#[tokio::test]
async fn a_failed_batch_commit_is_tried_again_before_the_error_leaves() {
    let store = FlakyStore {
        fail_commit: 2,
        ..FlakyStore::default()
    };
    let (got, calls) = deliver_twice_to(store, 100).await;
    assert_eq!(got, [Duplicate; 3]);
    assert_eq!(calls, 3, "one handler call per event");
}

/// A pool whose connections were all cut at once (`pg_terminate_backend`)
/// fails the commit and the next ones until it has fresh connections: the
/// decisions whose handlers ran are committed again after short pauses,
/// not left to the redelivery, which would run the handlers again.
#[tokio::test]
async fn a_commit_failing_three_times_in_a_row_is_tried_again_and_no_handler_runs_twice() {
    let store = FlakyStore {
        fail_commit: 1,
        commit_failures: 3,
        ..FlakyStore::default()
    };
    let (got, calls) = deliver_twice_to(store, 100).await;
    assert_eq!(got, [Duplicate; 3]);
    assert_eq!(calls, 3, "one handler call per event");
}

// 5. Re-enrollment after completion.

#[tokio::test]
async fn a_re_enrollment_after_completion_reopens_the_record() {
    let i = "course:1_2";
    let events = vec![
        learner("e1", "COURSE_ENROLLMENT", 100, 1, i),
        learner("p1", "LEARNER_PROGRESS", 150, 1, i),
        learner("c1", "COURSE_COMPLETED", 200, 1, i),
        learner("e2", "COURSE_ENROLLMENT", 10_000, 1, i),
        learner("p2", "LEARNER_PROGRESS", 10_100, 1, i),
    ];
    assert_eq!(run(&[events]).await, [[Processed; 5]]);
}

#[tokio::test]
async fn a_re_enrollment_after_a_rollback_or_unenrollment_reopens_the_record() {
    let i = "learningProgram:1_2";
    for close in [
        "LEARNING_PATH_COMPLETION_ROLLBACK",
        "LEARNING_PATH_UNENROLLMENT_BATCH",
    ] {
        let events = vec![
            learner("e1", "LEARNING_PATH_ENROLLMENT", 100, 1, i),
            learner("p1", "LEARNER_PROGRESS", 150, 1, i),
            learner("x", close, 200, 1, i),
            learner("e2", "LEARNING_PATH_ENROLLMENT_BATCH", 300, 1, i),
            learner("p2", "LEARNER_PROGRESS", 400, 1, i),
        ];
        assert_eq!(run(&[events]).await, [[Processed; 5]], "{close}");
    }
}

#[tokio::test]
async fn an_enrollment_into_another_session_is_its_own_record() {
    let events = vec![
        learner("e1", "COURSE_ENROLLMENT", 100, 1, "course:1_2"),
        learner("p1", "LEARNER_PROGRESS", 150, 1, "course:1_2"),
        learner("c1", "COURSE_COMPLETED", 200, 1, "course:1_2"),
        learner("e2", "COURSE_ENROLLMENT", 300, 1, "course:1_3"),
        learner("p2", "LEARNER_PROGRESS", 400, 1, "course:1_3"),
    ];
    assert_eq!(run(&[events]).await, [[Processed; 5]]);
}

// 6. A far-future time.

#[tokio::test]
async fn a_far_future_time_counts_as_now() {
    let i = "course:1_2";
    let deliveries = [
        vec![learner("e", "COURSE_ENROLLMENT", 4_000_000_000, 1, i)],
        vec![learner("c", "COURSE_COMPLETED", NOW + 60, 1, i)],
        vec![learner("u", "COURSE_UNENROLLMENT", NOW + 120, 1, i)],
    ];
    assert_eq!(run(&deliveries).await, [[Processed]; 3]);
}

#[tokio::test]
async fn an_ignored_event_changes_neither_the_state_nor_its_version() {
    let i = "course:1_2";
    let engine = engine_at(&ManualClock::at_unix(NOW), 1);
    let completed = envelope(1, &[learner("c", "COURSE_COMPLETED", 200, 1, i)]);
    decide(&engine, &completed).await;
    let key = StateKey::for_event(AccountId(1), completed.parsed().next().unwrap()).unwrap();
    let before = engine.store().load(&key).await.unwrap();
    let stale = envelope(
        1,
        &[
            learner("e", "COURSE_ENROLLMENT", 100, 1, i),
            learner("p", "LEARNER_PROGRESS", 300, 1, i),
        ],
    );
    assert_eq!(decide(&engine, &stale).await, [STALE, RULE2]);
    assert_eq!(engine.store().load(&key).await.unwrap(), before);
}

// 7. Rule state outlives the dedup window.

#[tokio::test]
async fn rule_state_outlives_the_dedup_window() {
    let i = "course:1_2";
    let clock = ManualClock::at_unix(NOW);
    let engine = engine_at(&clock, 1);
    let completed = envelope(1, &[learner("c", "COURSE_COMPLETED", NOW, 1, i)]);
    assert_eq!(decide(&engine, &completed).await, [Processed]);
    clock.advance(9 * DAY);
    engine.sweep().await.unwrap();
    let progress = envelope(1, &[learner("p", "LEARNER_PROGRESS", NOW + 60, 1, i)]);
    assert_eq!(decide(&engine, &progress).await, [RULE2]);
    // The event id itself is forgotten after the dedup window.
    let again = decide(&engine, &completed).await;
    assert_eq!(again, [Processed], "equal time: processed again");
}

// 8. Unknown events that need nothing of the rules.

const USERGROUP_ADDED: &str = r#"{"eventId":"sync-2026-03-30T10:15:00Z-ug-12345",
  "eventName":"RESPONSE:ASYNCAPI_USERGROUP_USER_ADDED",
  "data":{"status":"SUCCESS","request":{"metadata":{"event_id":"sync-2026-03-30T10:15:00Z-ug-12345"},
  "data":[{"type":"user","id":"12345"}]}}}"#;

#[tokio::test]
async fn an_unknown_event_needs_only_an_id_and_a_name() {
    let body = format!(r#"{{"accountId":1,"events":[{USERGROUP_ADDED}]}}"#);
    let envelope = Envelope::from_str(&body).unwrap();
    let event = envelope.events[0].as_ref().expect("the event parses");
    assert_eq!(
        event.event_name.as_str(),
        "RESPONSE:ASYNCAPI_USERGROUP_USER_ADDED"
    );
    assert_eq!(event.event_info, None);
    let engine = Engine::in_memory();
    let ran = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&ran);
    let report = engine
        .process(envelope, move |_| {
            count.fetch_add(1, Ordering::SeqCst);
            async { Ok(()) }
        })
        .await
        .unwrap();
    assert_eq!(report.outcomes[0].decision, Processed);
    assert_eq!(ran.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn unknown_events_are_deduplicated_by_name_and_id() {
    let removed = USERGROUP_ADDED.replace("USER_ADDED", "USER_REMOVED");
    let body =
        format!(r#"{{"accountId":1,"events":[{USERGROUP_ADDED},{removed},{USERGROUP_ADDED}]}}"#);
    let envelope = Envelope::from_str(&body).unwrap();
    assert_eq!(
        decide(&Engine::in_memory(), &envelope).await,
        [Processed, Processed, Duplicate]
    );
}

// 9. A panic in the synchronous part of the handler.

#[tokio::test]
async fn a_panic_before_the_handler_future_is_a_failure() {
    let engine = Engine::in_memory();
    let e = envelope(
        1,
        &[
            learner("boom", "COURSE_ENROLLMENT", 100, 1, "course:1_2"),
            learner("fine", "COURSE_ENROLLMENT", 100, 2, "course:1_2"),
        ],
    );
    let report = engine
        .process(e, |event| {
            assert_ne!(event.event_id.as_str(), "boom", "handler bug");
            async { Ok(()) }
        })
        .await
        .unwrap();
    let got: Vec<_> = report.outcomes.iter().map(|o| o.decision).collect();
    assert_eq!(got, [Failed, Processed]);
    assert_eq!(
        report.outcomes[0].error_message(),
        Some("the handler panicked")
    );
}

// Child-course events (May 2025): two records, decided apart.

#[tokio::test]
async fn child_course_events_update_their_own_record() {
    let parent = "learningProgram:9_10";
    let child = "course:1_2";
    let parent_events = [
        learner("pe", "LEARNING_PATH_ENROLLMENT", 100, 1, parent),
        learner("pc", "LEARNING_PATH_COMPLETED", 300, 1, parent),
    ];
    let child_events = [
        learner("ce", "COURSE_ENROLLMENT", 100, 1, child),
        learner("cp", "LEARNER_PROGRESS", 200, 1, child),
        learner("cc", "COURSE_COMPLETED", 250, 1, child),
    ];
    let together = vec![
        parent_events[0].clone(),
        child_events[0].clone(),
        child_events[1].clone(),
        child_events[2].clone(),
        parent_events[1].clone(),
    ];
    assert_eq!(run(&[together]).await, [[Processed; 5]]);
    // The parent's completion first changes nothing for the child, and the
    // other way round.
    let parent_first = vec![
        parent_events[1].clone(),
        child_events[0].clone(),
        child_events[1].clone(),
        parent_events[0].clone(),
    ];
    assert_eq!(
        run(&[parent_first]).await,
        [[Processed, Processed, Processed, STALE]]
    );
    let child_first = vec![
        child_events[2].clone(),
        parent_events[0].clone(),
        child_events[1].clone(),
        parent_events[1].clone(),
    ];
    assert_eq!(
        run(&[child_first]).await,
        [[Processed, Processed, RULE2, Processed]]
    );
}
