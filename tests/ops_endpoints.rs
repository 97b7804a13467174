//! The example receivers' operator endpoints: `/healthz`, `/readyz` and
//! `/metrics`, without authentication. Each test runs its own
//! `redis-server` (a spare loopback port) as the store and the inbox, stops
//! it, and starts it again: `/readyz` goes 503 with a reason and back to 200.
//!
//! Needs `redis-server` on the `PATH`; without it the tests say they are
//! skipped (under `CI=true` that is a failure).
#![cfg(all(
    feature = "axum",
    feature = "actix",
    feature = "redis",
    feature = "metrics",
    feature = "simulator",
    feature = "env"
))]

mod support;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alm_webhooks::simulator::scenario::{envelope, learner_event};
use serde_json::Value;
use support::process::{prometheus_sample, request_to, signed_post, start};

/// A private `redis-server`, killed on drop.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    /// Starts `redis-server` on `port`, or `None` when it is not installed.
    fn start(port: u16) -> Option<Self> {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(e) => {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "redis-server is required in CI: {e}"
                );
                eprintln!("skipped: cannot run redis-server ({e})");
                return None;
            }
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Self { child, port })
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A port in this test's range (26390-26399) that nothing listens on.
fn spare_port(from: u16) -> u16 {
    (from..26400)
        .find(|p| TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a spare port in 26390-26399")
}

fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    request_to(addr, "GET", path, &[], b"")
}

/// Polls `path` until it answers `status`; returns the last body.
fn wait_for(addr: SocketAddr, path: &str, status: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (got, body) = get(addr, path);
        if got == status {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{path} stayed {got} (wanted {status}): {body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn operate(example: &str, first_port: u16) {
    let port = spare_port(first_port);
    let Some(mut redis) = Redis::start(port) else {
        return;
    };
    let url = format!("redis://127.0.0.1:{}/?prefix=ops-{example}", redis.port);
    let receiver = start(
        example,
        &[
            ("ALM_MODE", "inbox"),
            ("ALM_STORE", &url),
            ("ALM_RETRY_BASE_MS", "50"),
        ],
    );
    let addr = receiver.addr;

    let (status, body) = get(addr, "/healthz");
    assert_eq!((status, body.as_str()), (200, r#"{"status":"up"}"#));
    let (status, body) = get(addr, "/readyz");
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ready"}"#));

    let delivery = envelope(
        31,
        &[learner_event(
            "ops-1",
            "COURSE_ENROLLMENT",
            1_750_000_000,
            5,
            "course:1_1",
        )],
    );
    assert_eq!(signed_post(addr, &delivery).0, 202);
    support::process::wait_for_lines(&receiver, 1);
    let (status, page) = get(addr, "/metrics");
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        prometheus_sample(
            &page,
            "alm_webhooks_events_total",
            &[r#"decision="processed""#, r#"event="COURSE_ENROLLMENT""#]
        ),
        Some(1.0),
        "{page}"
    );
    assert_eq!(
        prometheus_sample(&page, "alm_webhooks_inbox_pending", &[]),
        Some(0.0),
        "{page}"
    );
    assert_eq!(
        prometheus_sample(&page, "alm_webhooks_dead_letters", &[]),
        Some(0.0),
        "{page}"
    );

    redis.stop();
    let body = wait_for(addr, "/readyz", 503);
    eprintln!("{example} /readyz with the store stopped: {body}");
    let reason: Value = serde_json::from_str(&body).expect("a JSON reason");
    assert_eq!(reason["status"], "unavailable", "{body}");
    assert_ne!(reason["store"], "ok", "{body}");
    assert_ne!(reason["inbox"], "ok", "{body}");
    // The process itself is still up.
    assert_eq!(get(addr, "/healthz").0, 200);

    let _redis = Redis::start(port).expect("redis-server starts again");
    wait_for(addr, "/readyz", 200);
}

#[test]
fn axum_readyz_follows_the_store_and_metrics_are_scraped() {
    operate("axum_receiver", 26390);
}

#[test]
fn actix_readyz_follows_the_store_and_metrics_are_scraped() {
    operate("actix_receiver", 26395);
}
