//! The example receivers' learner table over HTTP (`ALM_PROJECTION` on by
//! default): `GET /admin/records` by user, by instance and both, its
//! refusals, and `GET /admin/records.csv` streamed; on both receivers with
//! their defaults (memory store, inbox mode), and on the axum receiver
//! over every shared store reachable here (SQLite, PostgreSQL, Redis).
#![cfg(all(
    feature = "axum",
    feature = "actix",
    feature = "simulator",
    feature = "env",
    feature = "redis"
))]

mod support;

use std::time::{Duration, Instant};

use alm_webhooks::simulator::scenario::{envelope, learner_event};
use serde_json::Value;
use support::process::{request_to, signed_post, start};

const TOKEN: &str = "learner-records-admin-token-0123456789";

fn admin(addr: std::net::SocketAddr, path: &str, token: &str) -> (u16, String) {
    request_to(
        addr,
        "GET",
        path,
        &[("authorization", format!("Bearer {token}"))],
        b"",
    )
}

/// A chunked HTTP/1.1 body, de-chunked.
fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
    out
}

fn records(addr: std::net::SocketAddr, query: &str) -> Vec<Value> {
    let (status, body) = admin(addr, &format!("/admin/records?{query}"), TOKEN);
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Value>(&body)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// Waits until `query` answers `n` records (the inbox decides after the
/// `202`).
fn wait_for(addr: std::net::SocketAddr, query: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows = records(addr, query);
        if rows.len() == n || Instant::now() > deadline {
            return rows;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn check(name: &str, env: &[(&str, &str)]) {
    let mut env = env.to_vec();
    env.extend([
        ("ALM_MODE", ""),
        ("ALM_ON_MALFORMED", ""),
        ("ALM_ADMIN_TOKEN", TOKEN),
    ]);
    let r = start(name, &env);
    let stderr = r.stderr.lock().unwrap().join("\n");
    assert!(!stderr.contains("ALM_PROJECTION"), "{name}: {stderr}");
    let i = "course:1_2";
    let body = envelope(
        1234,
        &[
            learner_event("e1", "COURSE_ENROLLMENT", 1725600100, 7, i),
            learner_event("c1", "COURSE_COMPLETED", 1725600300, 7, i),
            learner_event("e2", "COURSE_ENROLLMENT", 1725600200, 8, i),
            learner_event(
                "e3",
                "LEARNING_PATH_ENROLLMENT",
                1725600400,
                7,
                "learningProgram:9_1",
            ),
        ],
    );
    assert_eq!(signed_post(r.addr, &body).0, 202, "{name}");

    // All of a user's records.
    let rows = wait_for(r.addr, "userId=7", 2);
    assert_eq!(rows.len(), 2, "{name}: {rows:?}");
    let course = rows.iter().find(|r| r["loInstanceId"] == i).unwrap();
    assert_eq!(course["accountId"], 1234, "{name}");
    assert_eq!(course["userId"], 7);
    assert_eq!(course["loId"], "course:1");
    assert_eq!(course["loType"], "course");
    assert_eq!(course["status"], "completed");
    assert_eq!(course["progressPercent"], 100.0);
    assert_eq!(course["lastEventId"], "c1");
    assert_eq!(course["lastEventName"], "COURSE_COMPLETED");
    assert_eq!(course["lastEventTime"], "2024-09-06T05:25:00.000Z");
    assert_eq!(course["dateStarted"], Value::Null, "absent is null");
    for field in ["dateEnrolled", "dateCompleted", "updatedAt"] {
        let text = course[field]
            .as_str()
            .unwrap_or_else(|| panic!("{field}: {course}"));
        assert!(text.ends_with('Z') && text.contains('T'), "{field}: {text}");
    }
    for field in [
        "accountId",
        "userId",
        "loId",
        "loInstanceId",
        "loType",
        "status",
        "progressPercent",
        "dateEnrolled",
        "dateStarted",
        "dateCompleted",
        "hasPassed",
        "enrollmentSource",
        "lastEventId",
        "lastEventName",
        "lastEventTime",
        "updatedAt",
    ] {
        assert!(
            course.get(field).is_some(),
            "{name}: no {field} in {course}"
        );
    }
    let path = rows
        .iter()
        .find(|r| r["loType"] == "learningProgram")
        .unwrap();
    assert_eq!(path["status"], "enrolled");

    // An instance's records; one record; either spelling of a path.
    let of_instance = records(r.addr, "loInstanceId=course%3A1_2");
    let users: Vec<_> = of_instance.iter().map(|r| r["userId"].clone()).collect();
    assert_eq!(users, vec![Value::from(7), Value::from(8)], "{name}");
    assert_eq!(records(r.addr, "userId=8&loInstanceId=course:1_2").len(), 1);
    assert_eq!(
        records(r.addr, "userId=7&loInstanceId=learning_program:9_1").len(),
        1
    );
    assert!(records(r.addr, "userId=99").is_empty());

    // Refusals: neither parameter, a bad one, no token.
    let (status, body) = admin(r.addr, "/admin/records", TOKEN);
    assert_eq!(status, 400, "{name}: {body}");
    assert!(
        body.contains("userId") && body.contains("loInstanceId"),
        "{body}"
    );
    let (status, body) = admin(r.addr, "/admin/records?userId=seven", TOKEN);
    assert_eq!(status, 400, "{name}: {body}");
    assert!(body.contains("userId"), "{body}");
    assert_eq!(admin(r.addr, "/admin/records?userId=7", "wrong").0, 401);
    assert_eq!(admin(r.addr, "/admin/records.csv", "wrong").0, 401);

    // The CSV export, streamed.
    let (status, body) = admin(r.addr, "/admin/records.csv", TOKEN);
    assert_eq!(status, 200, "{name}: {body}");
    let csv = if body.starts_with("Account ID") {
        body
    } else {
        dechunk(&body)
    };
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4, "{name}: {csv}");
    assert!(
        lines[0].starts_with("Account ID,User ID,Training ID"),
        "{csv}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("1234,7,course:1,course,course:1_2,completed,100")),
        "{name}: {csv}"
    );
}

#[test]
fn both_receivers_serve_the_learner_table_with_their_defaults() {
    for name in ["axum_receiver", "actix_receiver"] {
        check(name, &[]);
    }
}

#[test]
fn every_shared_store_serves_it_too() {
    for url in support::services::store_urls() {
        // Removes the Redis keys, the PostgreSQL schema or the SQLite file
        // the receiver wrote, even when the check fails.
        let _purge = support::services::Purge(url.clone());
        check("axum_receiver", &[("ALM_STORE", url.as_str())]);
    }
}
