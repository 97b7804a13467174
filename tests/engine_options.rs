//! The engine's options: event families for unknown names, the future skew,
//! the state retention, the per-delivery wait budget; and what a rejected
//! event's outcome keeps.

mod support;

use std::time::Duration;

use alm_webhooks::Engine;
use alm_webhooks::engine::{Clock, ManualClock};
use alm_webhooks::store::{Claim, DedupKey, MemoryStore, Store};
use alm_webhooks::{AccountId, Envelope, EventFamily};
use alm_webhooks::{Decision, IgnoreReason};
use support::{decisions as decide, envelope, learner};

use Decision::{Malformed, Processed};
const RULE2: Decision = Ignored(IgnoreReason::ProgressAfterCompletion);
use Decision::Ignored;

/// 2026-03-30, in seconds.
const NOW: i64 = 1_774_865_700;
const DAY: Duration = Duration::from_secs(24 * 3600);
const I: &str = "course:1_2";

/// An alternate completion: a name ALM has not published, with the usual
/// learner fields.
fn alternate_completion(id: &str, ts: i64, data: &str) -> String {
    format!(
        r#"{{"eventId":"{id}","eventName":"COURSE_ALTERNATE_COMPLETED","timestamp":{ts},"data":{data}}}"#
    )
}

#[tokio::test]
async fn an_unknown_name_given_a_family_takes_part_in_the_rules() {
    let data =
        r#"{"userId":1,"loInstanceId":"course:1_2","sourceLoId":"course:9","method":"EQUIVALENT"}"#;
    let events = [
        learner("e", "COURSE_ENROLLMENT", 100, 1, I),
        alternate_completion("alt", 200, data),
        learner("p", "LEARNER_PROGRESS", 300, 1, I),
    ];
    let configured = Engine::builder(MemoryStore::new())
        .event_family("COURSE_ALTERNATE_COMPLETED", EventFamily::Completion)
        .build();
    assert_eq!(
        decide(&configured, &envelope(1, &events)).await,
        [Processed, Processed, RULE2]
    );
    // Without it, the event is only deduplicated and progress goes through.
    assert_eq!(
        decide(&Engine::in_memory(), &envelope(1, &events)).await,
        [Processed; 3]
    );
    // Known names keep their family.
    let odd = Engine::builder(MemoryStore::new())
        .event_family("LEARNER_PROGRESS", EventFamily::Completion)
        .build();
    assert_eq!(
        odd.family_of(&"LEARNER_PROGRESS".into()),
        EventFamily::LearnerProgress
    );
}

#[tokio::test]
async fn an_event_without_what_its_family_needs_is_rejected_with_its_error() {
    let engine = Engine::builder(MemoryStore::new())
        .event_family("COURSE_ALTERNATE_COMPLETED", EventFamily::Completion)
        .build();
    let events = [alternate_completion(
        "alt",
        200,
        r#"{"loInstanceId":"course:1_2"}"#,
    )];
    let report = engine
        .process(envelope(1, &events), |_| async { Ok(()) })
        .await
        .unwrap();
    assert_eq!(report.outcomes[0].decision, Malformed);
    let error = report.outcomes[0].event_error.as_ref().unwrap();
    assert_eq!(error.path(), "events[0].data");
    assert!(error.message.contains("userId"), "{}", error.message);
    assert!(error.raw.get().contains("COURSE_ALTERNATE_COMPLETED"));
    assert_eq!(report.status(), http::StatusCode::ACCEPTED);
}

#[tokio::test]
async fn a_rejected_event_keeps_its_error_in_the_outcome() {
    let body = r#"{"accountId":1,"events":[
      {"eventId":"bad","eventName":"COURSE_ENROLLMENT","timestamp":1,"data":{"userId":"seven"}},
      {"eventId":"ok","eventName":"X","timestamp":1}]}"#;
    let report = Engine::in_memory()
        .process(Envelope::from_str(body).unwrap(), |_| async { Ok(()) })
        .await
        .unwrap();
    let bad = &report.outcomes[0];
    assert_eq!(bad.decision, Malformed);
    let error = bad.event_error.as_deref().unwrap();
    assert_eq!(error.index, 0);
    assert_eq!(error.path(), "events[0].data.userId");
    // Where serde stopped: the end of the bad value.
    assert_eq!((error.line, error.column), (2, 93));
    assert!(error.raw.get().starts_with(r#"{"eventId":"bad""#));
    assert_eq!(report.outcomes[1].event_error, None);
    assert_eq!(report.malformed().count(), 1);
}

#[tokio::test]
async fn the_future_skew_is_configurable_and_counted() {
    let clock = ManualClock::at_unix(NOW);
    let engine = Engine::builder(MemoryStore::new())
        .clock(clock.clone())
        .future_skew(Duration::from_secs(3600))
        .build();
    let events = [
        // Two hours ahead: more than the skew, so it counts as now.
        learner("e", "COURSE_ENROLLMENT", NOW + 7200, 1, I),
        learner("c", "COURSE_COMPLETED", NOW + 60, 1, I),
    ];
    assert_eq!(decide(&engine, &envelope(1, &events)).await, [Processed; 2]);
    assert_eq!(engine.counters().future_times, 1);
    // With the default skew (a day), two hours ahead is a real time.
    let engine = Engine::builder(MemoryStore::new()).clock(clock).build();
    assert_eq!(
        decide(&engine, &envelope(1, &events)).await,
        [Processed, Ignored(IgnoreReason::Stale)]
    );
    assert_eq!(engine.counters().future_times, 0);
}

#[tokio::test]
async fn the_state_retention_is_configurable() {
    let clock = ManualClock::at_unix(NOW);
    let engine = Engine::builder(MemoryStore::new())
        .clock(clock.clone())
        .state_retention(30 * DAY)
        .build();
    let completed = envelope(1, &[learner("c", "COURSE_COMPLETED", NOW, 1, I)]);
    assert_eq!(decide(&engine, &completed).await, [Processed]);
    clock.advance(29 * DAY);
    engine.sweep().await.unwrap();
    let progress = envelope(1, &[learner("p1", "LEARNER_PROGRESS", NOW + 60, 1, I)]);
    assert_eq!(decide(&engine, &progress).await, [RULE2]);
    clock.advance(2 * DAY);
    engine.sweep().await.unwrap();
    let progress = envelope(1, &[learner("p2", "LEARNER_PROGRESS", NOW + 120, 1, I)]);
    assert_eq!(decide(&engine, &progress).await, [Processed], "forgotten");
}

/// Issue 13: one wait budget per delivery, not one per event. Time is
/// tokio's paused clock, so the elapsed time is exact, not measured.
#[tokio::test(start_paused = true)]
async fn the_wait_for_events_in_flight_is_one_budget_per_delivery() {
    let clock = ManualClock::at_unix(NOW);
    let engine = Engine::builder(MemoryStore::new())
        .clock(clock.clone())
        .in_flight_wait(Duration::from_secs(2))
        .build();
    let ids = ["a", "b", "c"];
    for id in ids {
        let key = DedupKey {
            account_id: AccountId(1),
            event_id: id.parse().unwrap(),
        };
        let claim = engine
            .store()
            .claim(
                &key,
                alm_webhooks::store::ClaimOwner::random(),
                Duration::from_secs(60),
                clock.now().into(),
            )
            .await
            .unwrap();
        assert!(matches!(claim, Claim::Claimed(_)), "held elsewhere");
    }
    let events: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(user, id)| learner(id, "COURSE_ENROLLMENT", 100, user as u64, I))
        .collect();
    let started = tokio::time::Instant::now();
    let got = decide(&engine, &envelope(1, &events)).await;
    assert_eq!(got, [Decision::InFlight; 3]);
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(2),
        "one budget for the delivery"
    );
    assert_eq!(engine.counters().busy, 3);
}
