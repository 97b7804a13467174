//! Hostile bodies and framing through both example receivers: the right
//! status every time, no panic, and the receiver keeps serving.
#![cfg(all(
    feature = "axum",
    feature = "actix",
    feature = "simulator",
    feature = "env"
))]

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use alm_webhooks::simulator::scenario::{envelope, learner_event};
use support::process::{request, start, wait_for_lines};

const LIMIT: usize = 20_000;

/// Sends raw bytes; returns the status (0 if the server closed without one).
fn raw(addr: SocketAddr, bytes: &[u8], close_write: bool) -> u16 {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = stream.write_all(bytes);
    if close_write {
        let _ = stream.shutdown(std::net::Shutdown::Write);
    }
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    String::from_utf8_lossy(&response)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn post(addr: SocketAddr, body: &[u8]) -> u16 {
    request(addr, "POST", &[], body).0
}

#[test]
fn hostile_bodies_get_the_right_status() {
    for name in ["axum_receiver", "actix_receiver"] {
        let r = start(
            name,
            &[
                ("ALM_AUTH", "none"),
                ("ALM_MAX_BODY_BYTES", &LIMIT.to_string()),
            ],
        );
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n)).into_bytes();
        let deep_in_event = |n: usize| {
            format!(
                r#"{{"accountId":1,"events":[{{"eventId":"deep","eventName":"X","timestamp":1,"data":{}{}}}]}}"#,
                "[".repeat(n),
                "]".repeat(n)
            )
            .into_bytes()
        };
        let cases: Vec<(&str, Vec<u8>, u16)> = vec![
            ("nesting 129", deep(129), 400),
            ("nesting 9,000", deep(9_000), 400),
            ("nesting 129 inside an event", deep_in_event(129), 202),
            (
                "a huge number",
                format!(r#"{{"accountId":{},"events":[]}}"#, "9".repeat(15_000)).into_bytes(),
                400,
            ),
            ("1e400", br#"{"accountId":1e400,"events":[]}"#.to_vec(), 400),
            (
                "invalid UTF-8",
                b"{\"accountId\":1,\"events\":[\"\xff\"]}".to_vec(),
                400,
            ),
            (
                "duplicate keys",
                br#"{"accountId":1,"accountId":2,"events":[]}"#.to_vec(),
                400,
            ),
            ("empty", Vec::new(), 400),
            ("one byte over the limit", vec![b' '; LIMIT + 1], 413),
        ];
        for (what, body, status) in cases {
            assert_eq!(post(r.addr, &body), status, "{name}: {what}");
        }
        // Exactly at the limit: accepted.
        let mut at_limit = envelope(
            1,
            &[learner_event(
                "edge",
                "COURSE_ENROLLMENT",
                1,
                1,
                "course:1_2",
            )],
        );
        at_limit.resize(LIMIT, b' ');
        assert_eq!(post(r.addr, &at_limit), 202, "{name}: exactly at the limit");
        // A deep event is rejected on its own; the envelope is accepted.
        let lines = wait_for_lines(&r, 2);
        assert!(
            lines
                .iter()
                .any(|l| l["eventId"] == "deep" && l["decision"] == "rejected"),
            "{name}: {lines:?}"
        );
    }
}

#[test]
fn lying_or_missing_content_length() {
    for name in ["axum_receiver", "actix_receiver"] {
        let r = start(
            name,
            &[
                ("ALM_AUTH", "none"),
                ("ALM_MAX_BODY_BYTES", &LIMIT.to_string()),
            ],
        );
        let body = envelope(
            1,
            &[learner_event("cl", "COURSE_ENROLLMENT", 1, 1, "course:1_2")],
        );
        let head = |cl: &str| {
            format!(
                "POST /webhooks HTTP/1.1\r\nhost: x\r\ncontent-length: {cl}\r\nconnection: close\r\n\r\n"
            )
        };
        // Claims more than the limit: refused before the body is read.
        assert_eq!(
            raw(r.addr, head("999999999").as_bytes(), false),
            413,
            "{name}"
        );
        // Claims more than it sends, then hangs up: the body cannot be read.
        let mut short = head(&(body.len() + 100).to_string()).into_bytes();
        short.extend_from_slice(&body);
        let status = raw(r.addr, &short, true);
        assert!(status == 400 || status == 0, "{name}: {status}");
        // Claims less than it sends: only the claimed bytes are the body.
        let mut long = head(&(body.len() - 10).to_string()).into_bytes();
        long.extend_from_slice(&body);
        assert_eq!(raw(r.addr, &long, false), 400, "{name}");
        // Chunked, no length, over the limit: stopped while reading.
        let mut chunked = b"POST /webhooks HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n".to_vec();
        for _ in 0..3 {
            chunked.extend_from_slice(format!("{:x}\r\n", 10_000).as_bytes());
            chunked.extend_from_slice(&vec![b' '; 10_000]);
            chunked.extend_from_slice(b"\r\n");
        }
        chunked.extend_from_slice(b"0\r\n\r\n");
        assert_eq!(raw(r.addr, &chunked, false), 413, "{name}");
        // Still serving.
        assert_eq!(post(r.addr, &body), 202, "{name}");
    }
}

#[test]
fn thousands_of_events_in_one_delivery() {
    for name in ["axum_receiver", "actix_receiver"] {
        let r = start(
            name,
            &[("ALM_AUTH", "none"), ("ALM_MAX_BODY_BYTES", "8388608")],
        );
        let events: Vec<_> = (0..5_000)
            .map(|i| {
                learner_event(
                    &format!("bulk-{i}"),
                    "COURSE_ENROLLMENT_BATCH",
                    1,
                    i,
                    "course:1_2",
                )
            })
            .collect();
        let mut body_events = events.clone();
        body_events[2_500] = serde_json::json!({"eventId": "broken", "eventName": "COURSE_ENROLLMENT_BATCH", "timestamp": 1, "data": {"userId": "x"}});
        assert_eq!(post(r.addr, &envelope(1, &body_events)), 202, "{name}");
        let lines = wait_for_lines(&r, 5_000);
        assert_eq!(lines.len(), 5_000, "{name}");
        let processed = lines
            .iter()
            .filter(|l| l["decision"] == "processed")
            .count();
        assert_eq!(processed, 4_999, "{name}: one bad event costs nothing else");
        assert_eq!(lines[2_500]["decision"], "rejected", "{name}");
    }
}
