//! The crate's metrics through a real receiver's `GET /metrics` (the axum
//! example in inbox mode, the memory store and inbox): after a scripted
//! sequence of deliveries (a processed event, a duplicate, a stale event, a
//! failure then a dead letter, a quarantined body, a 401 and a body over the
//! limit) every metric shows the value the sequence implies.
#![cfg(all(
    feature = "axum",
    feature = "metrics",
    feature = "simulator",
    feature = "env"
))]

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use alm_webhooks::simulator::scenario::{envelope, learner_event};
use support::process::{prometheus_sample, request, request_to, signed_post, start};

fn scrape(addr: SocketAddr) -> String {
    let (status, page) = request_to(addr, "GET", "/metrics", &[], b"");
    assert_eq!(status, 200, "{page}");
    page
}

/// Scrapes until the dead letter and the quarantined body show in the
/// gauges (the workers finish behind the 202s).
fn settled(addr: SocketAddr) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let page = scrape(addr);
        let gauge = |name| prometheus_sample(&page, name, &[]);
        if gauge("alm_webhooks_dead_letters") == Some(1.0)
            && gauge("alm_webhooks_quarantined") == Some(1.0)
            && gauge("alm_webhooks_inbox_pending") == Some(0.0)
        {
            return page;
        }
        assert!(Instant::now() < deadline, "never settled:\n{page}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_scripted_sequence_shows_in_every_metric() {
    let receiver = start(
        "axum_receiver",
        &[
            ("ALM_MODE", "inbox"),
            ("ALM_ON_MALFORMED", "quarantine"),
            ("ALM_MAX_ATTEMPTS", "2"),
            ("ALM_RETRY_BASE_MS", "20"),
            ("ALM_HANDLER_FAIL_ON", "m-fail"),
        ],
    );
    let addr = receiver.addr;
    let post = |events: &[_]| signed_post(addr, &envelope(77, events)).0;
    let enrolled = |id, t| learner_event(id, "COURSE_ENROLLMENT", t, 5, "course:1_1");

    // Processed, then the same event again (duplicate), then an older event
    // of the same record (stale); each waits for the one before.
    assert_eq!(post(&[enrolled("m-1", 1_750_000_200)]), 202);
    support::process::wait_for_lines(&receiver, 1);
    assert_eq!(post(&[enrolled("m-1", 1_750_000_200)]), 202);
    support::process::wait_for_lines(&receiver, 2);
    assert_eq!(post(&[enrolled("m-2", 1_750_000_100)]), 202);
    support::process::wait_for_lines(&receiver, 3);
    // A completion whose handler always fails: two attempts, a dead letter.
    let completed = learner_event("m-fail", "COURSE_COMPLETED", 1_750_000_300, 6, "course:1_1");
    assert_eq!(post(&[completed]), 202);
    // A body that is not an envelope (kept), no signature, too large.
    assert_eq!(signed_post(addr, br#"{"accountId":77,"events":[}"#).0, 202);
    assert_eq!(request(addr, "POST", &[], &envelope(77, &[])).0, 401);
    let huge = vec![b' '; 30_000];
    assert_eq!(signed_post(addr, &huge).0, 413);

    let page = settled(addr);
    let value = |name: &str, labels: &[&str]| {
        prometheus_sample(&page, name, labels)
            .unwrap_or_else(|| panic!("{name} {labels:?} missing:\n{page}"))
    };
    let outcome = |o: &str| {
        value(
            "alm_webhooks_deliveries_total",
            &[&format!(r#"outcome="{o}""#)],
        )
    };
    assert_eq!(outcome("accepted"), 4.0);
    assert_eq!(outcome("quarantined"), 1.0);
    assert_eq!(outcome("unauthorized"), 1.0);
    assert_eq!(outcome("too_large"), 1.0);
    assert_eq!(value("alm_webhooks_ack_seconds_count", &[]), 7.0);

    let events = |decision: &str, reason: &str, event: &str| {
        value(
            "alm_webhooks_events_total",
            &[
                &format!(r#"decision="{decision}""#),
                &format!(r#"reason="{reason}""#),
                &format!(r#"event="{event}""#),
            ],
        )
    };
    assert_eq!(events("processed", "", "COURSE_ENROLLMENT"), 1.0);
    assert_eq!(events("duplicate", "", "COURSE_ENROLLMENT"), 1.0);
    assert_eq!(events("ignored", "stale", "COURSE_ENROLLMENT"), 1.0);
    assert_eq!(events("failed", "", "COURSE_COMPLETED"), 2.0);

    // The handler ran for the processed event and both failed attempts.
    let handler = |event: &str| {
        value(
            "alm_webhooks_handler_seconds_count",
            &[&format!(r#"event="{event}""#)],
        )
    };
    assert_eq!(handler("COURSE_ENROLLMENT"), 1.0);
    assert_eq!(handler("COURSE_COMPLETED"), 2.0);
    // Lag is recorded for every decided event of a family.
    let lag = |family: &str| {
        value(
            "alm_webhooks_event_lag_seconds_count",
            &[&format!(r#"family="{family}""#)],
        )
    };
    assert!(lag("enrollment") >= 1.0, "{page}");
    assert!(lag("completion") >= 1.0, "{page}");

    assert_eq!(value("alm_webhooks_inbox_pending", &[]), 0.0);
    assert_eq!(value("alm_webhooks_inbox_in_flight", &[]), 0.0);
    assert_eq!(value("alm_webhooks_inbox_retrying", &[]), 0.0);
    assert_eq!(value("alm_webhooks_dead_letters", &[]), 1.0);
    assert_eq!(value("alm_webhooks_quarantined", &[]), 1.0);
    assert_eq!(
        value("alm_webhooks_inbox_oldest_pending_age_seconds", &[]),
        0.0
    );

    // Every `op` starts at zero; the engine's calls are counted on theirs.
    let round_trips: f64 = page
        .lines()
        .filter(|l| l.starts_with("alm_webhooks_store_round_trips_total{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum();
    assert!(round_trips >= 1.0, "{page}");
    // The memory store never fails: no error was counted.
    assert!(
        prometheus_sample(&page, "alm_webhooks_store_errors_total", &[]).unwrap_or(0.0) == 0.0,
        "{page}"
    );
}
