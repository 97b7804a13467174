//! The operator's levers through both example receivers (axum and
//! actix-web), as an operator calls them: pause an account over HTTP, see
//! its delivery acknowledged and waiting, send a bulk action's JSON body
//! (the adapters pass it on), resume, and see the event handled.
#![cfg(all(
    feature = "axum",
    feature = "actix",
    feature = "simulator",
    feature = "env"
))]

mod support;

use alm_webhooks::simulator::scenario::{envelope, learner_event};
use serde_json::{Value, json};
use support::process::{decisions, request_to, signed_post, start, wait_for_lines};

const TOKEN: &str = "levers-receivers-token-0123456789abcdef";

fn admin(addr: std::net::SocketAddr, method: &str, path: &str, body: &str) -> (u16, Value) {
    let auth = [("authorization", format!("Bearer {TOKEN}"))];
    let (status, text) = request_to(
        addr,
        method,
        &format!("/admin{path}"),
        &auth,
        body.as_bytes(),
    );
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn levers(example: &str) {
    let receiver = start(
        example,
        &[("ALM_MODE", "inbox"), ("ALM_ADMIN_TOKEN", TOKEN)],
    );
    let addr = receiver.addr;
    assert_eq!(
        admin(addr, "POST", "/accounts/5/pause", "").0,
        204,
        "{example}"
    );
    let event = learner_event(
        "lever-1",
        "COURSE_ENROLLMENT",
        1_750_000_000,
        77,
        "course:9_1",
    );
    assert_eq!(
        signed_post(addr, &envelope(5, &[event])).0,
        202,
        "{example}"
    );
    let (_, inbox) = admin(addr, "GET", "/inbox", "");
    assert_eq!(
        (inbox["paused"].clone(), inbox["pending"].clone()),
        (json!([5]), json!(1)),
        "{example}"
    );
    let (status, matched) = admin(addr, "POST", "/dead-letters/discard", r#"{"accountId": 5}"#);
    assert_eq!(
        (status, matched),
        (200, json!({"matched": 0})),
        "{example}: the body reached the API"
    );
    let (status, error) = admin(addr, "POST", "/quarantine/replay", r#"{"to": "tomorrow"}"#);
    assert_eq!(status, 400, "{example}");
    assert!(
        error["error"].as_str().unwrap().contains("`to`"),
        "{example}: {error}"
    );
    assert!(
        receiver.lines.lock().unwrap().is_empty(),
        "{example}: handled while paused"
    );
    assert_eq!(
        admin(addr, "POST", "/accounts/5/resume", "").0,
        204,
        "{example}"
    );
    let lines = wait_for_lines(&receiver, 1);
    assert_eq!(
        decisions(&lines),
        [("lever-1".to_owned(), "processed".to_owned())],
        "{example}"
    );
    replays(example, &receiver);
}

/// A replay job to its end: `(state, matched, done)`.
fn replay_to_end(addr: std::net::SocketAddr, body: &Value) -> (String, u64, u64) {
    let (status, started) = admin(addr, "POST", "/replays", &body.to_string());
    assert_eq!(status, 202, "{started}");
    let id = started["id"].as_str().unwrap().to_owned();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (status, job) = admin(addr, "GET", &format!("/replays/{id}"), "");
        assert_eq!(status, 200, "{job}");
        if job["state"] != "running" || std::time::Instant::now() > deadline {
            let (_, list) = admin(addr, "GET", "/replays", "");
            assert!(
                list.as_array()
                    .unwrap()
                    .iter()
                    .any(|j| j["id"] == id.as_str()),
                "{list}"
            );
            return (
                job["state"].as_str().unwrap().to_owned(),
                job["matched"].as_u64().unwrap(),
                job["done"].as_u64().unwrap(),
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Replays of account 5's archived range: a bad body named, a rerun that
/// runs the handler and decides nothing (no decision line), an unprocessed
/// replay that the engine finds a duplicate.
fn replays(example: &str, receiver: &support::process::Running) {
    let addr = receiver.addr;
    let rfc = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let now = time::OffsetDateTime::now_utc();
    let (from, to) = (
        rfc(now - time::Duration::hours(1)),
        rfc(now + time::Duration::hours(1)),
    );
    let (status, error) = admin(
        addr,
        "POST",
        "/replays",
        r#"{"from": "now", "mode": "rerun"}"#,
    );
    assert_eq!(status, 400, "{example}");
    assert!(
        error["error"].as_str().unwrap().starts_with("`from`"),
        "{example}: {error}"
    );
    let rerun = json!({"from": from, "to": to, "accountId": 5, "mode": "rerun"});
    assert_eq!(
        replay_to_end(addr, &rerun),
        ("done".to_owned(), 1, 1),
        "{example}"
    );
    let unprocessed = json!({"from": from, "to": to, "accountId": 5, "mode": "unprocessed"});
    assert_eq!(
        replay_to_end(addr, &unprocessed),
        ("done".to_owned(), 1, 1),
        "{example}"
    );
    let lines = wait_for_lines(receiver, 2);
    assert_eq!(
        decisions(&lines),
        [
            ("lever-1".to_owned(), "processed".to_owned()),
            ("lever-1".to_owned(), "duplicate".to_owned())
        ],
        "{example}: the rerun decided nothing, the unprocessed replay found a duplicate"
    );
}

#[test]
fn axum_receiver_levers() {
    levers("axum_receiver");
}

#[test]
fn actix_receiver_levers() {
    levers("actix_receiver");
}
