//! The `metrics` module with a global recorder installed (its own test
//! binary: a global recorder is for the whole process): records from any
//! thread reach it, a local recorder in force takes its records instead,
//! and the global one gets them again afterwards.
#![cfg(feature = "metrics")]

use alm_webhooks::Decision;
use alm_webhooks::metrics::{self, names};
use alm_webhooks::{EventFamily, EventName};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

/// (processed enrollments counted, handler times recorded) since the last
/// look.
fn seen(snapshotter: &Snapshotter) -> (u64, usize) {
    let mut counted = 0;
    let mut timed = 0;
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        match (key.name(), value) {
            (names::EVENTS_TOTAL, DebugValue::Counter(n)) => {
                let decision = key.labels().find(|l| l.key() == "decision");
                assert_eq!(decision.map(|l| l.value()), Some("processed"));
                counted += n;
            }
            (names::HANDLER_SECONDS, DebugValue::Histogram(values)) => timed += values.len(),
            _ => {}
        }
    }
    (counted, timed)
}

fn one_event() {
    let name = EventName::CourseEnrollment;
    metrics::record_event(Decision::Processed, Some(&name));
    metrics::record_handler(&name, std::time::Duration::from_millis(2));
    metrics::record_event_lag(EventFamily::Enrollment, 0.5);
}

#[test]
fn the_global_recorder_gets_every_thread_s_records_but_a_local_one_s() {
    // Recorded before any recorder is installed: nowhere.
    one_event();
    let global = DebuggingRecorder::new();
    let global_seen = global.snapshotter();
    global.install().expect("the only global recorder");

    for _ in 0..3 {
        one_event();
    }
    std::thread::spawn(|| {
        one_event();
        one_event();
    })
    .join()
    .unwrap();
    assert_eq!(seen(&global_seen), (5, 5));

    for round in 1..=3u64 {
        let local = DebuggingRecorder::new();
        let local_seen = local.snapshotter();
        ::metrics::with_local_recorder(&local, || {
            for _ in 0..round {
                one_event();
            }
        });
        assert_eq!(seen(&local_seen), (round, usize::try_from(round).unwrap()));
        assert_eq!(seen(&global_seen), (0, 0), "round {round}");
        one_event();
        assert_eq!(seen(&global_seen), (1, 1), "round {round}");
    }
}
