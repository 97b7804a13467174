//! Each semantic line of the engine, as a named test.

mod support;

use alm_webhooks::Engine;
use alm_webhooks::Envelope;
use alm_webhooks::store::{MANY_CHUNK, MemoryStore};
use alm_webhooks::{Decision, IgnoreReason};
use support::{decisions as decide, envelope, instance, learner, lo, unknown};

const I: &str = "course:1_2";

/// The decisions for one delivery of `events`, claimed and committed one by
/// one; the same set-based, in chunks of 2, 64 and the default (asserted
/// equal).
async fn run(events: &[String]) -> Vec<Decision> {
    let one_by_one = Engine::builder(MemoryStore::new()).commit_batch(1).build();
    let one_by_one = decide(&one_by_one, &envelope(1, events)).await;
    for batch in [2, 64, MANY_CHUNK] {
        let batched = Engine::builder(MemoryStore::new())
            .commit_batch(batch)
            .build();
        let got = decide(&batched, &envelope(1, events)).await;
        assert_eq!(got, one_by_one, "commit_batch({batch})");
    }
    one_by_one
}

use Decision::{Duplicate, Ignored, Processed};
const STALE: Decision = Ignored(IgnoreReason::Stale);
const RULE1: Decision = Ignored(IgnoreReason::EnrollmentAfterProgress);
const RULE2: Decision = Ignored(IgnoreReason::ProgressAfterCompletion);

#[tokio::test]
async fn dedup_key_is_account_and_event_id() {
    let engine = Engine::in_memory();
    let e = envelope(1, &[unknown("x", 1)]);
    assert_eq!(decide(&engine, &e).await, [Processed]);
    assert_eq!(decide(&engine, &e).await, [Duplicate]);
    // Another account with the same eventId is independent.
    assert_eq!(
        decide(&engine, &envelope(2, &[unknown("x", 1)])).await,
        [Processed]
    );
}

#[tokio::test]
async fn same_event_id_under_another_name_is_a_duplicate() {
    let engine = Engine::in_memory();
    decide(
        &engine,
        &envelope(1, &[learner("x", "COURSE_COMPLETED", 10, 1, I)]),
    )
    .await;
    let again = envelope(1, &[learner("x", "COURSE_COMPLETED_BATCH", 10, 1, I)]);
    assert_eq!(decide(&engine, &again).await, [Duplicate]);
}

#[tokio::test]
async fn same_event_id_twice_in_one_envelope() {
    assert_eq!(
        run(&[unknown("x", 1), unknown("x", 1)]).await,
        [Processed, Duplicate]
    );
}

#[tokio::test]
async fn rule1_enrollment_overtaken_by_its_progress_is_ignored() {
    for name in [
        "COURSE_ENROLLMENT",
        "COURSE_ENROLLMENT_BATCH",
        "LEARNING_PATH_ENROLLMENT",
        "CERTIFICATION_ENROLLMENT_BATCH",
    ] {
        for at in [50, 100] {
            let events = [
                learner("p", "LEARNER_PROGRESS", 100, 1, I),
                learner("e", name, at, 1, I),
            ];
            assert_eq!(run(&events).await, [Processed, RULE1], "{name} at {at}");
        }
    }
}

#[tokio::test]
async fn rule1_an_enrollment_newer_than_the_progress_is_a_new_one() {
    let events = [
        learner("p", "LEARNER_PROGRESS", 100, 1, I),
        learner("e", "COURSE_ENROLLMENT", 200, 1, I),
        // Its unenrollment, overtaken, is older than the new enrollment.
        learner("u", "COURSE_UNENROLLMENT_BATCH", 150, 1, I),
    ];
    assert_eq!(run(&events).await, [Processed, Processed, STALE]);
}

#[tokio::test]
async fn rule1_unenrollment_since_progress_lets_enrollment_through() {
    let events = [
        learner("p", "LEARNER_PROGRESS", 100, 1, I),
        learner("u", "COURSE_UNENROLLMENT", 110, 1, I),
        learner("e", "COURSE_ENROLLMENT", 120, 1, I),
    ];
    assert_eq!(run(&events).await, [Processed, Processed, Processed]);
}

#[tokio::test]
async fn rule1_progress_on_another_record_does_not_count() {
    let events = [
        learner("p", "LEARNER_PROGRESS", 100, 1, "course:1_3"),
        learner("e", "COURSE_ENROLLMENT", 120, 1, I),
    ];
    assert_eq!(run(&events).await, [Processed, Processed]);
    let events = [
        learner("p", "LEARNER_PROGRESS", 100, 2, I),
        learner("e", "COURSE_ENROLLMENT", 120, 1, I),
    ];
    assert_eq!(run(&events).await, [Processed, Processed]);
}

#[tokio::test]
async fn rule2_progress_after_completion_is_ignored() {
    for name in [
        "COURSE_COMPLETED",
        "COURSE_COMPLETED_BATCH",
        "LEARNING_PATH_COMPLETED",
        "CERTIFICATION_COMPLETED_BATCH",
    ] {
        let events = [
            learner("c", name, 100, 1, I),
            learner("p", "LEARNER_PROGRESS", 90, 1, I),
        ];
        assert_eq!(run(&events).await, [Processed, RULE2], "{name}");
    }
}

#[tokio::test]
async fn rule2_rollback_unenrollment_or_reenrollment_reopens() {
    let complete = learner("c", "LEARNING_PATH_COMPLETED", 100, 1, I);
    let progress = learner("p", "LEARNER_PROGRESS", 130, 1, I);
    for reopen in [
        learner("r", "LEARNING_PATH_COMPLETION_ROLLBACK", 110, 1, I),
        learner("r", "LEARNING_PATH_COMPLETION_ROLLBACK_BATCH", 110, 1, I),
        learner("r", "LEARNING_PATH_UNENROLLMENT", 110, 1, I),
        learner("r", "LEARNING_PATH_ENROLLMENT", 110, 1, I),
    ] {
        assert_eq!(
            run(&[complete.clone(), reopen.clone(), progress.clone()]).await,
            [Processed; 3],
            "{reopen}"
        );
    }
}

#[tokio::test]
async fn rule3_older_lifecycle_event_is_stale() {
    let events = [
        learner("c", "COURSE_COMPLETED", 100, 1, I),
        learner("e", "COURSE_ENROLLMENT_BATCH", 99, 1, I),
    ];
    assert_eq!(run(&events).await, [Processed, STALE]);
    let events = [
        learner("u", "COURSE_UNENROLLMENT", 100, 1, I),
        learner("c", "COURSE_COMPLETED", 99, 1, I),
    ];
    assert_eq!(run(&events).await, [Processed, STALE]);
}

#[tokio::test]
async fn rule3_equal_times_are_processed() {
    let events = [
        learner("e", "COURSE_ENROLLMENT", 1_725_604_380, 1, I),
        learner("c", "COURSE_COMPLETED", 1_725_604_380, 1, I),
    ];
    assert_eq!(run(&events).await, [Processed, Processed]);
}

#[tokio::test]
async fn rule3_compares_instants_across_formats() {
    let events = [
        learner("e", "COURSE_ENROLLMENT", 1_725_604_380_000, 1, I),
        learner("c", "COURSE_COMPLETED", 1_725_604_380, 1, I),
        learner("u", "COURSE_UNENROLLMENT", 1_725_604_379_999, 1, I),
    ];
    assert_eq!(run(&events).await, [Processed, Processed, STALE]);
    let rfc = r#"{"eventId":"r","eventName":"COURSE_UNENROLLMENT","timestamp":"2024-09-06T06:32:59Z","data":{"userId":1,"loId":"course:1","loInstanceId":"course:1_2"}}"#;
    let events = [
        learner("e", "COURSE_ENROLLMENT", 1_725_604_380, 1, I),
        rfc.to_owned(),
    ];
    assert_eq!(
        run(&events).await,
        [Processed, STALE],
        "06:32:59Z is 1725604379"
    );
}

#[tokio::test]
async fn learner_progress_is_exempt_from_rule3() {
    let events = [
        learner("e", "COURSE_ENROLLMENT", 100, 1, I),
        learner("p", "LEARNER_PROGRESS", 1, 1, I),
    ];
    assert_eq!(run(&events).await, [Processed, Processed]);
}

#[tokio::test]
async fn learning_objects_are_keyed_by_lo_id() {
    let events = [
        lo("a", "LEARNING_OBJECT_MODIFICATION", 100, "course:1"),
        lo("b", "LEARNING_OBJECT_MODIFICATION_BATCH", 99, "course:1"),
        lo("c", "LEARNING_OBJECT_DELETION", 99, "course:2"),
        lo("d", "LEARNING_OBJECT_DRAFT", 100, "course:1"),
    ];
    assert_eq!(run(&events).await, [Processed, STALE, Processed, Processed]);
}

#[tokio::test]
async fn instances_and_stats_are_keyed_apart() {
    let events = [
        instance("a", "LEARNING_OBJECT_INSTANCE_MODIFICATION", 100, I),
        instance("b", "LEARNING_OBJECT_INSTANCE_DELETION", 99, I),
        // CI_STATS for the same instance is tracked on its own.
        instance("c", "CI_STATS", 99, I),
        instance("d", "CI_STATS", 98, I),
        // A learner record on the same instance is another entity.
        learner("e", "COURSE_ENROLLMENT", 1, 1, I),
    ];
    assert_eq!(
        run(&events).await,
        [Processed, STALE, Processed, STALE, Processed]
    );
}

#[tokio::test]
async fn unknown_events_are_only_deduplicated() {
    let events = [unknown("a", 100), unknown("b", 1), unknown("a", 1)];
    assert_eq!(run(&events).await, [Processed, Processed, Duplicate]);
}

#[tokio::test]
async fn accounts_never_affect_each_other() {
    let engine = Engine::in_memory();
    decide(
        &engine,
        &envelope(1, &[learner("c", "COURSE_COMPLETED", 100, 1, I)]),
    )
    .await;
    let other = envelope(
        2,
        &[
            learner("p", "LEARNER_PROGRESS", 100, 1, I),
            learner("e", "COURSE_ENROLLMENT", 1, 1, "course:1_3"),
        ],
    );
    assert_eq!(decide(&engine, &other).await, [Processed, Processed]);
}

#[tokio::test]
async fn ignored_events_are_remembered_and_redeliveries_are_duplicates() {
    let engine = Engine::in_memory();
    let e = envelope(
        1,
        &[
            learner("c", "COURSE_COMPLETED", 100, 1, I),
            learner("p", "LEARNER_PROGRESS", 90, 1, I),
        ],
    );
    assert_eq!(decide(&engine, &e).await, [Processed, RULE2]);
    assert_eq!(decide(&engine, &e).await, [Duplicate, Duplicate]);
}

#[tokio::test]
async fn rejected_events_are_reported_and_not_remembered() {
    let engine = Engine::in_memory();
    let body = r#"{"accountId":1,"events":[{"eventId":"bad","eventName":"COURSE_ENROLLMENT","timestamp":1,"data":{}},{"eventId":"ok","eventName":"X","timestamp":1}]}"#;
    let e = Envelope::from_str(body).unwrap();
    let report = engine
        .process(e.clone(), |_| async { Ok(()) })
        .await
        .unwrap();
    assert_eq!(report.outcomes[0].decision, Decision::Malformed);
    assert_eq!(
        report.outcomes[0].event_id.as_ref().unwrap().as_str(),
        "bad"
    );
    assert_eq!(report.outcomes[1].decision, Processed);
    assert_eq!(
        report.status(),
        http::StatusCode::ACCEPTED,
        "a rejected event does not fail the delivery"
    );
    let again = engine
        .process(e.clone(), |_| async { Ok(()) })
        .await
        .unwrap();
    assert_eq!(again.outcomes[0].decision, Decision::Malformed);
    let c = engine.counters();
    assert_eq!((c.processed, c.duplicate, c.rejected), (1, 1, 2));
}

#[tokio::test]
async fn counters_count_each_decision_and_reason() {
    let engine = Engine::in_memory();
    let e = envelope(
        1,
        &[
            learner("p", "LEARNER_PROGRESS", 100, 1, I),
            learner("e", "COURSE_ENROLLMENT", 90, 1, I),
            learner("c", "COURSE_COMPLETED", 200, 1, I),
            learner("p2", "LEARNER_PROGRESS", 210, 1, I),
            learner("u", "COURSE_UNENROLLMENT", 150, 1, I),
            unknown("x", 1),
            unknown("x", 1),
        ],
    );
    decide(&engine, &e).await;
    let c = engine.counters();
    assert_eq!(c.processed, 3);
    assert_eq!(c.ignored_enrollment_after_progress, 1);
    assert_eq!(c.ignored_progress_after_completion, 1);
    assert_eq!(c.ignored_stale, 1);
    assert_eq!(c.duplicate, 1);
    assert_eq!(c.ignored(), 3);
}
