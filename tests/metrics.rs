//! What the `metrics` module records, read back through `metrics-util`'s
//! debugging recorder: names, bounded labels and values.
#![cfg(feature = "metrics")]

use std::time::Duration;

use alm_webhooks::inbox::{InboxStats, KeptCounts};
use alm_webhooks::metrics::{self, DeliveryOutcome, names};
use alm_webhooks::{Decision, IgnoreReason};
use alm_webhooks::{EventFamily, EventName};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

/// Label pairs, sorted.
type Labels = Vec<(String, String)>;
/// One recorded metric: name, sorted labels, value.
type Recorded = (String, Labels, DebugValue);

/// Every recorded metric.
fn snapshot(snapshotter: &Snapshotter) -> Vec<Recorded> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let mut labels: Vec<_> = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            labels.sort();
            (key.name().to_owned(), labels, value)
        })
        .collect()
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    let mut v: Vec<_> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    v.sort();
    v
}

fn counter(all: &[Recorded], name: &str, want: &[(&str, &str)]) -> u64 {
    let want = labels(want);
    all.iter()
        .find(|(n, l, _)| n == name && *l == want)
        .map(|(_, _, v)| match v {
            DebugValue::Counter(c) => *c,
            other => panic!("{name} is not a counter: {other:?}"),
        })
        .unwrap_or_else(|| panic!("no {name} {want:?} in {all:#?}"))
}

#[test]
fn deliveries_events_and_store_calls_are_counted_with_bounded_labels() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    ::metrics::with_local_recorder(&recorder, || {
        metrics::describe();
        metrics::record_delivery(DeliveryOutcome::Accepted, Duration::from_millis(2));
        metrics::record_delivery(DeliveryOutcome::Accepted, Duration::from_millis(4));
        metrics::record_delivery(DeliveryOutcome::Unauthorized, Duration::from_micros(300));
        let enrollment = EventName::CourseEnrollment;
        let unknown: EventName = "RESPONSE:ASYNCAPI_USERGROUP_USER_ADDED".parse().unwrap();
        metrics::record_event(Decision::Processed, Some(&enrollment));
        metrics::record_event(Decision::Duplicate, Some(&enrollment));
        metrics::record_event(Decision::Duplicate, Some(&enrollment));
        metrics::record_event(Decision::Ignored(IgnoreReason::Stale), Some(&enrollment));
        metrics::record_event(Decision::Processed, Some(&unknown));
        metrics::record_event(Decision::Malformed, None);
        metrics::record_handler(&enrollment, Duration::from_millis(20));
        metrics::record_event_lag(EventFamily::LearnerProgress, 840.0);
        metrics::record_store_call("claim", false);
        metrics::record_store_call("claim", true);
    });
    let all = snapshot(&snapshotter);
    let d = names::DELIVERIES_TOTAL;
    assert_eq!(counter(&all, d, &[("outcome", "accepted")]), 2);
    assert_eq!(counter(&all, d, &[("outcome", "unauthorized")]), 1);
    let e = names::EVENTS_TOTAL;
    let enrolled = |decision, reason| {
        counter(
            &all,
            e,
            &[
                ("decision", decision),
                ("reason", reason),
                ("event", "COURSE_ENROLLMENT"),
            ],
        )
    };
    assert_eq!(enrolled("processed", ""), 1);
    assert_eq!(enrolled("duplicate", ""), 2);
    assert_eq!(enrolled("ignored", "stale"), 1);
    // A name the crate does not know, and an event that did not parse, are
    // `unknown`: a sender cannot add label values.
    let unknown = [
        ("decision", "processed"),
        ("reason", ""),
        ("event", "unknown"),
    ];
    assert_eq!(counter(&all, e, &unknown), 1);
    let rejected = [
        ("decision", "rejected"),
        ("reason", ""),
        ("event", "unknown"),
    ];
    assert_eq!(counter(&all, e, &rejected), 1);
    let calls = [("op", "claim")];
    assert_eq!(counter(&all, names::STORE_ROUND_TRIPS_TOTAL, &calls), 2);
    assert_eq!(counter(&all, names::STORE_ERRORS_TOTAL, &calls), 1);
    let histogram = |name: &str, want: &[(&str, &str)]| {
        let want = labels(want);
        match all.iter().find(|(n, l, _)| n == name && *l == want) {
            Some((_, _, DebugValue::Histogram(values))) => {
                values.iter().map(|v| v.into_inner()).collect::<Vec<f64>>()
            }
            other => panic!("{name}: {other:?}"),
        }
    };
    assert_eq!(
        histogram(names::ACK_SECONDS, &[]),
        vec![0.002, 0.004, 0.0003]
    );
    assert_eq!(
        histogram(names::HANDLER_SECONDS, &[("event", "COURSE_ENROLLMENT")]),
        vec![0.02]
    );
    assert_eq!(
        histogram(names::EVENT_LAG_SECONDS, &[("family", "learner_progress")]),
        vec![840.0]
    );
}

#[test]
fn inbox_gauges_show_the_figures() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    ::metrics::with_local_recorder(&recorder, || {
        InboxStats::new(3, 1, 2, 4, 5, Some(Duration::from_secs(90)))
            .with_quarantined_bytes(6)
            .set_gauges();
        KeptCounts::new(10, 0, 0).set_fullest_account_gauge(KeptCounts::new(20, 5, 100));
    });
    let all = snapshot(&snapshotter);
    let gauge = |name: &str| match all.iter().find(|(n, _, _)| n == name) {
        Some((_, _, DebugValue::Gauge(g))) => g.into_inner(),
        other => panic!("{name}: {other:?}"),
    };
    assert_eq!(gauge(names::INBOX_PENDING), 3.0);
    assert_eq!(gauge(names::INBOX_IN_FLIGHT), 1.0);
    assert_eq!(gauge(names::INBOX_RETRYING), 2.0);
    assert_eq!(gauge(names::DEAD_LETTERS), 4.0);
    assert_eq!(gauge(names::QUARANTINED), 5.0);
    assert_eq!(gauge(names::QUARANTINED_BYTES), 6.0);
    assert_eq!(gauge(names::INBOX_OLDEST_PENDING_AGE_SECONDS), 90.0);
    assert_eq!(gauge(names::KEPT_FULLEST_ACCOUNT_RATIO), 0.5);
}

#[test]
fn every_known_event_name_is_its_own_label_and_every_family_has_one() {
    for name in EventName::KNOWN {
        assert_eq!(metrics::event_label(name), name.as_str());
    }
    let other: EventName = "SOMETHING_NEW".parse().unwrap();
    assert_eq!(metrics::event_label(&other), "unknown");
    for name in EventName::KNOWN {
        assert_ne!(metrics::family_label(name.family()), "unknown", "{name}");
    }
    assert_eq!(metrics::family_label(other.family()), "unknown");
}

/// The engine records every decision, handler time, event lag and store
/// call as it decides a scripted sequence of deliveries.
#[test]
fn the_engine_records_decisions_handler_times_lag_and_store_calls() {
    use alm_webhooks::{Engine, Envelope};
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let event = |id: &str, t: i64| {
        format!(
            r#"{{"eventId":"{id}","eventName":"COURSE_ENROLLMENT","timestamp":{t},"data":{{"userId":7,"loId":"course:1","loInstanceId":"course:1_2","loType":"course"}}}}"#
        )
    };
    let delivery = |events: &[String]| {
        let body = format!(r#"{{"accountId":1,"events":[{}]}}"#, events.join(","));
        Envelope::from_slice(body.as_bytes()).unwrap()
    };
    ::metrics::with_local_recorder(&recorder, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let engine = Engine::in_memory();
        let ok = |_| async { Ok(()) };
        runtime.block_on(async {
            // Processed, then the same again (a duplicate), then an older
            // event of the same record (stale), then a failing handler.
            engine
                .process(delivery(&[event("m1", 1_750_000_100)]), ok)
                .await
                .unwrap();
            engine
                .process(delivery(&[event("m1", 1_750_000_100)]), ok)
                .await
                .unwrap();
            engine
                .process(delivery(&[event("m2", 1_750_000_000)]), ok)
                .await
                .unwrap();
            let fail = |_| async { Err("CRM down".into()) };
            let report = engine
                .process(delivery(&[event("m3", 1_750_000_200)]), fail)
                .await
                .unwrap();
            assert_eq!(report.outcomes[0].decision, Decision::Failed);
        });
    });
    let all = snapshot(&snapshotter);
    let e = names::EVENTS_TOTAL;
    let of = |decision, reason| {
        counter(
            &all,
            e,
            &[
                ("decision", decision),
                ("reason", reason),
                ("event", "COURSE_ENROLLMENT"),
            ],
        )
    };
    assert_eq!(of("processed", ""), 1);
    assert_eq!(of("duplicate", ""), 1);
    assert_eq!(of("ignored", "stale"), 1);
    assert_eq!(of("failed", ""), 1);
    // Four deliveries of one event each: one set-based claim per delivery;
    // the handler ran twice (the processed event and the failing one).
    assert_eq!(
        counter(
            &all,
            names::STORE_ROUND_TRIPS_TOTAL,
            &[("op", "claim_many")]
        ),
        4
    );
    let histogram_len = |name: &str, want: &[(&str, &str)]| {
        let want = labels(want);
        match all.iter().find(|(n, l, _)| n == name && *l == want) {
            Some((_, _, DebugValue::Histogram(values))) => values.len(),
            other => panic!("{name}: {other:?}"),
        }
    };
    assert_eq!(
        histogram_len(names::HANDLER_SECONDS, &[("event", "COURSE_ENROLLMENT")]),
        2
    );
    // Every event that was claimed and decided on its time has a lag.
    assert!(histogram_len(names::EVENT_LAG_SECONDS, &[("family", "enrollment")]) >= 3);
}

#[tokio::test(flavor = "current_thread")]
async fn a_running_worker_pool_keeps_the_inbox_gauges_current() {
    use std::sync::Arc;

    use alm_webhooks::Engine;
    use alm_webhooks::inbox::{Inbox, MemoryInbox, NewQuarantined, Workers};
    use alm_webhooks::store::MemoryStore;

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    // The pool's tasks run on this thread (a current-thread runtime).
    let _local = ::metrics::set_default_local_recorder(&recorder);
    let inbox = Arc::new(MemoryInbox::new());
    inbox
        .quarantine(NewQuarantined {
            account_id: None,
            body: b"{not json",
            error: "expected a value",
            received_at: time::OffsetDateTime::now_utc(),
        })
        .await
        .unwrap();
    let engine = Engine::builder(MemoryStore::new()).build();
    let pool = Workers::new(engine, Arc::clone(&inbox)).start(|_| async { Ok(()) });
    let quarantined = || {
        snapshot(&snapshotter)
            .into_iter()
            .find(|(n, _, _)| n == names::QUARANTINED)
            .map(|(_, _, v)| v)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(DebugValue::Gauge(g)) = quarantined() {
            assert_eq!(g.into_inner(), 1.0);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the gauges were never set"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(pool.shutdown(Duration::from_secs(5)).await);
}

/// How many events a fresh local recorder counted while `times` were
/// recorded (a helper called again and again on one thread: its recorder
/// is likely at the same address each time).
fn counted_by_a_fresh_recorder(times: u64) -> u64 {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    ::metrics::with_local_recorder(&recorder, || {
        for _ in 0..times {
            metrics::record_event(Decision::Processed, Some(&EventName::CourseEnrollment));
        }
    });
    processed_enrollments(&snapshot(&snapshotter))
}

fn processed_enrollments(all: &[Recorded]) -> u64 {
    counter(
        all,
        names::EVENTS_TOTAL,
        &[
            ("decision", "processed"),
            ("reason", ""),
            ("event", "COURSE_ENROLLMENT"),
        ],
    )
}

#[test]
fn local_recorders_in_turn_each_get_their_own_records() {
    for times in [3, 1, 5, 2] {
        assert_eq!(counted_by_a_fresh_recorder(times), times);
    }
    // Two alive at once, in force by turns.
    let (a, b) = (DebuggingRecorder::new(), DebuggingRecorder::new());
    let (seen_a, seen_b) = (a.snapshotter(), b.snapshotter());
    let record = || metrics::record_event(Decision::Processed, Some(&EventName::CourseEnrollment));
    ::metrics::with_local_recorder(&a, record);
    ::metrics::with_local_recorder(&b, || {
        record();
        record();
    });
    ::metrics::with_local_recorder(&a, record);
    assert_eq!(processed_enrollments(&snapshot(&seen_a)), 2);
    assert_eq!(processed_enrollments(&snapshot(&seen_b)), 2);
}

/// The engine records one sample of each histogram per delivery and
/// label: the largest lag of each family and the longest handler run of
/// each event name, while `events_total` still counts every event.
#[test]
fn a_delivery_records_its_largest_lag_and_longest_handler_run_per_label() {
    use alm_webhooks::engine::ManualClock;
    use alm_webhooks::{Engine, Envelope, store::MemoryStore};
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    // Each event its own learner, so that every one is processed.
    let event = |id: &str, name: &str, user: u32, t: i64| {
        format!(
            r#"{{"eventId":"{id}","eventName":"{name}","timestamp":{t},"data":{{"userId":{user},"loId":"course:1","loInstanceId":"course:1_2","loType":"course"}}}}"#
        )
    };
    let events = [
        event("e1", "COURSE_ENROLLMENT", 1, 1_750_000_900),
        event("e2", "COURSE_ENROLLMENT", 2, 1_750_000_400),
        event("c1", "COURSE_COMPLETED", 3, 1_750_000_970),
        event("e3", "COURSE_ENROLLMENT", 4, 1_750_000_990),
    ];
    let body = format!(r#"{{"accountId":1,"events":[{}]}}"#, events.join(","));
    let envelope = Envelope::from_slice(body.as_bytes()).unwrap();
    let engine = Engine::builder(MemoryStore::new())
        .clock(ManualClock::at_unix(1_750_001_000))
        .build();
    // The second enrollment's handler is the slow one.
    let handler = |event: alm_webhooks::Event| async move {
        if event.event_id.as_str() == "e2" {
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        Ok(())
    };
    ::metrics::with_local_recorder(&recorder, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let report = runtime.block_on(engine.process(envelope, handler)).unwrap();
        assert!(
            report
                .outcomes
                .iter()
                .all(|o| o.decision == Decision::Processed),
            "{report:?}"
        );
    });
    let all = snapshot(&snapshotter);
    let samples = |name: &str, want: &[(&str, &str)]| {
        let want = labels(want);
        match all.iter().find(|(n, l, _)| n == name && *l == want) {
            Some((_, _, DebugValue::Histogram(values))) => {
                values.iter().map(|v| v.into_inner()).collect::<Vec<f64>>()
            }
            other => panic!("{name} {want:?}: {other:?}"),
        }
    };
    // Lags of 100, 600 and 10 s: one sample, the largest.
    let lag = names::EVENT_LAG_SECONDS;
    assert_eq!(samples(lag, &[("family", "enrollment")]), [600.0]);
    assert_eq!(samples(lag, &[("family", "completion")]), [30.0]);
    let handler_seconds = |event| samples(names::HANDLER_SECONDS, &[("event", event)]);
    let enrollment = handler_seconds("COURSE_ENROLLMENT");
    assert_eq!(enrollment.len(), 1, "{enrollment:?}");
    assert!(enrollment[0] >= 0.030, "{enrollment:?}");
    assert_eq!(handler_seconds("COURSE_COMPLETED").len(), 1);
    let processed = |event| {
        counter(
            &all,
            names::EVENTS_TOTAL,
            &[("decision", "processed"), ("reason", ""), ("event", event)],
        )
    };
    assert_eq!(processed("COURSE_ENROLLMENT"), 3);
    assert_eq!(processed("COURSE_COMPLETED"), 1);
}
