//! The contract of the two example receivers, checked over loopback against
//! the real binaries (`cargo test --all-features` builds them).
#![cfg(all(
    feature = "axum",
    feature = "actix",
    feature = "simulator",
    feature = "env"
))]

mod support;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use alm_webhooks::simulator::scenario::{envelope, learner_event};
use serde_json::Value;
use support::process::{decisions, example, request, signed_post, start, wait_for_lines};

const RECEIVERS: [&str; 2] = ["axum_receiver", "actix_receiver"];

#[test]
fn statuses_and_decision_lines() {
    for name in RECEIVERS {
        let r = start(name, &[]);
        let i = "course:1_2";
        let first = envelope(
            1234,
            &[learner_event("c1", "COURSE_COMPLETED", 1725600300, 7, i)],
        );
        assert_eq!(signed_post(r.addr, &first).0, 202, "{name}");
        let lines = wait_for_lines(&r, 1);
        assert_eq!(
            lines[0],
            serde_json::json!({"accountId":1234,"eventId":"c1","eventName":"COURSE_COMPLETED","decision":"processed"}),
            "{name}"
        );
        // Redelivery and an older, overtaken enrollment.
        assert_eq!(signed_post(r.addr, &first).0, 202, "{name}");
        let older = envelope(
            1234,
            &[learner_event(
                "e1",
                "COURSE_ENROLLMENT_BATCH",
                1725600100,
                7,
                i,
            )],
        );
        assert_eq!(signed_post(r.addr, &older).0, 202, "{name}");
        let lines = wait_for_lines(&r, 3);
        assert_eq!(lines[1]["decision"], "duplicate", "{name}");
        assert_eq!(
            (lines[2]["decision"].as_str(), lines[2]["reason"].as_str()),
            (Some("ignored"), Some("stale")),
            "{name}"
        );

        // Every authentication failure: 401, one body.
        let (s1, b1) = request(r.addr, "POST", &[], &first);
        let (s2, b2) = request(
            r.addr,
            "POST",
            &[("x-alm-signature", "00".repeat(32))],
            &first,
        );
        let (s3, b3) = request(
            r.addr,
            "POST",
            &[("x-alm-signature", "garbage".into())],
            b"not json",
        );
        assert_eq!((s1, s2, s3), (401, 401, 401), "{name}");
        assert!(b1 == b2 && b2 == b3, "{name}: {b1} / {b2} / {b3}");
        // Not an envelope: 400 with a JSON reason.
        let (status, body) = signed_post(r.addr, br#"{"accountId":"x","events":[]}"#);
        assert_eq!(status, 400, "{name}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert!(
            body["detail"].as_str().unwrap().contains("accountId"),
            "{name}: {body}"
        );
        // Over the limit: 413, whatever the signature.
        let big = vec![b' '; 20001];
        assert_eq!(request(r.addr, "POST", &[], &big).0, 413, "{name}");
        // Other methods: 405.
        assert_eq!(request(r.addr, "GET", &[], b"").0, 405, "{name}");
        assert_eq!(request(r.addr, "PUT", &[], &first).0, 405, "{name}");
        // Nothing else reached stdout.
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(r.lines.lock().unwrap().len(), 3, "{name}");
    }
}

#[test]
fn concurrent_redeliveries_process_each_event_once() {
    for name in RECEIVERS {
        let r = Arc::new(start(name, &[("ALM_HANDLER_DELAY_MS", "20")]));
        let events: Vec<_> = (0..20)
            .map(|n| {
                learner_event(
                    &format!("e{n}"),
                    "COURSE_ENROLLMENT_BATCH",
                    1725600100,
                    n,
                    "course:1_2",
                )
            })
            .collect();
        let body = Arc::new(envelope(1234, &events));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (r, body) = (Arc::clone(&r), Arc::clone(&body));
                std::thread::spawn(move || signed_post(r.addr, &body).0)
            })
            .collect();
        let statuses: Vec<u16> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert!(
            statuses.iter().all(|s| *s == 202 || *s == 503),
            "{name}: {statuses:?}"
        );
        let accepted = statuses.iter().filter(|s| **s == 202).count();
        let lines = wait_for_lines(&r, accepted * 20);
        let processed: Vec<_> = decisions(&lines)
            .into_iter()
            .filter(|(_, d)| d == "processed")
            .collect();
        assert_eq!(
            processed.len(),
            20,
            "{name}: each event processed exactly once"
        );
        let mut ids: Vec<_> = processed.iter().map(|(id, _)| id.clone()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 20, "{name}");
    }
}

#[test]
fn a_panicking_handler_is_not_recorded_and_the_receiver_keeps_serving() {
    for name in RECEIVERS {
        let r = start(name, &[("ALM_HANDLER_PANIC_ON", "boom")]);
        let body = envelope(
            1234,
            &[
                learner_event("boom", "COURSE_COMPLETED", 1, 7, "course:1_2"),
                learner_event("ok", "COURSE_COMPLETED", 1, 8, "course:1_2"),
            ],
        );
        assert_eq!(signed_post(r.addr, &body).0, 500, "{name}");
        let lines = wait_for_lines(&r, 2);
        assert_eq!(
            decisions(&lines),
            [
                ("boom".into(), "failed".into()),
                ("ok".into(), "processed".into())
            ],
            "{name}"
        );
        // Still serving; the failed event was not recorded.
        let again = envelope(
            1234,
            &[learner_event("ok", "COURSE_COMPLETED", 1, 8, "course:1_2")],
        );
        assert_eq!(signed_post(r.addr, &again).0, 202, "{name}");
        assert_eq!(
            signed_post(r.addr, &body).0,
            500,
            "{name}: the panicking event is tried again"
        );
    }
}

#[test]
fn a_bad_configuration_stops_at_start_with_a_message() {
    for name in RECEIVERS {
        for (var, value, expected) in [
            ("ALM_AUTH", "kerberos", "ALM_AUTH"),
            ("ALM_MAX_BODY_BYTES", "lots", "ALM_MAX_BODY_BYTES"),
            ("ALM_LISTEN", "nowhere", "ALM_LISTEN"),
            ("ALM_STORE", "ftp://x", "ALM_STORE"),
            ("ALM_COMMIT_BATCH", "0", "ALM_COMMIT_BATCH"),
        ] {
            let output = Command::new(example(name))
                .env("ALM_AUTH", "none")
                .env(var, value)
                .output()
                .expect("runs");
            assert_eq!(output.status.code(), Some(2), "{name} {var}");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(stderr.contains(expected), "{name} {var}: {stderr}");
            assert!(output.stdout.is_empty(), "{name} {var}");
        }
        let output = Command::new(example(name))
            .env("ALM_AUTH", "signature")
            .env_remove("ALM_SIGNING_SECRET")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&output.stderr).contains("ALM_SIGNING_SECRET"));
    }
}
