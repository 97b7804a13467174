//! Issue 22, sequence 9: progress never goes back. A `LEARNER_PROGRESS`
//! (40 %) that failed and is replayed after a newer one (60 %) was
//! processed is ignored with its own reason; the handler never sees the
//! record go back.

mod support;

use std::sync::{Arc, Mutex};

use alm_webhooks::Engine;
use alm_webhooks::{Decision, IgnoreReason};
use support::{decisions, envelope, learner};

const OLDER: Decision = Decision::Ignored(IgnoreReason::OlderProgress);

#[tokio::test]
async fn a_replayed_older_progress_is_ignored_after_a_newer_one() {
    let engine = Engine::in_memory();
    let enrolled = envelope(
        1,
        &[learner("e", "COURSE_ENROLLMENT", 1_000, 7, "course:1_2")],
    );
    assert_eq!(decisions(&engine, &enrolled).await, [Decision::Processed]);
    // The 40 % progress fails (a dead letter, to be replayed later).
    let at_40 = envelope(
        1,
        &[learner("p40", "LEARNER_PROGRESS", 1_100, 7, "course:1_2")],
    );
    let failed = engine
        .process(at_40.clone(), |_| async { Err("CRM down".into()) })
        .await
        .unwrap();
    assert_eq!(failed.outcomes[0].decision, Decision::Failed);
    // The 60 % progress is processed.
    let at_60 = envelope(
        1,
        &[learner("p60", "LEARNER_PROGRESS", 1_200, 7, "course:1_2")],
    );
    assert_eq!(decisions(&engine, &at_60).await, [Decision::Processed]);
    // The 40 % is replayed: ignored, the handler does not run.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let replay = engine
        .process(at_40, move |event| {
            log.lock().unwrap().push(event.event_id.to_string());
            async { Ok(()) }
        })
        .await
        .unwrap();
    assert_eq!(replay.outcomes[0].decision, OLDER);
    assert!(
        seen.lock().unwrap().is_empty(),
        "the handler never saw 40 %"
    );
    assert_eq!(engine.counters().ignored_older_progress, 1);
    assert_eq!(
        OLDER.to_string(),
        format!("ignored: {}", IgnoreReason::OlderProgress)
    );
    assert_eq!(IgnoreReason::OlderProgress.code(), "older_progress");
}

#[tokio::test]
async fn progress_from_before_a_lifecycle_event_is_still_processed() {
    // Rule 3's exemption stays: progress older than the newest lifecycle
    // event, but newer than every progress processed, is processed.
    let engine = Engine::in_memory();
    let delivery = envelope(
        1,
        &[
            learner("p1", "LEARNER_PROGRESS", 1_000, 7, "course:1_2"),
            learner("u", "COURSE_UNENROLLMENT", 1_500, 7, "course:1_2"),
            learner("p2", "LEARNER_PROGRESS", 1_200, 7, "course:1_2"),
            // Equal times are never older.
            learner("p3", "LEARNER_PROGRESS", 1_200, 7, "course:1_2"),
            learner("p4", "LEARNER_PROGRESS", 1_100, 7, "course:1_2"),
        ],
    );
    assert_eq!(
        decisions(&engine, &delivery).await,
        [
            Decision::Processed,
            Decision::Processed,
            Decision::Processed,
            Decision::Processed,
            OLDER
        ]
    );
}
