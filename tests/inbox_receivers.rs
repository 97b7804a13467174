//! The inbox mode of both example receivers (the default `ALM_MODE`),
//! checked over loopback against the real binaries: acknowledgement before
//! processing, order per account, retries, dead letters, quarantine, the
//! admin API and their replays, and `SIGTERM`.
#![cfg(all(
    feature = "axum",
    feature = "actix",
    feature = "simulator",
    feature = "env"
))]

mod support;

use std::time::{Duration, Instant};

use alm_webhooks::simulator::scenario::{envelope, learner_event};
use serde_json::Value;
use support::process::{decisions, request_to, signed_post, start, wait_for_lines};

const RECEIVERS: [&str; 2] = ["axum_receiver", "actix_receiver"];
const TOKEN: &str = "admin-test-token-0123456789abcdef";

/// The receiver's default mode, with the admin API and quick retries.
fn inbox_env<'a>(more: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![
        ("ALM_MODE", ""),
        ("ALM_ON_MALFORMED", ""),
        ("ALM_ADMIN_TOKEN", TOKEN),
        ("ALM_RETRY_BASE_MS", "20"),
        ("ALM_RETRY_MAX_MS", "100"),
    ];
    env.extend_from_slice(more);
    env
}

fn admin(addr: std::net::SocketAddr, method: &str, path: &str) -> (u16, Value) {
    let (status, body) = request_to(
        addr,
        method,
        path,
        &[("authorization", format!("Bearer {TOKEN}"))],
        b"",
    );
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// Polls the admin API until `done` holds (or 20 s pass).
fn admin_until(addr: std::net::SocketAddr, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, value) = admin(addr, "GET", path);
        if done(&value) || Instant::now() > deadline {
            return value;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn acknowledged_before_processing_and_in_order_per_account() {
    for name in RECEIVERS {
        let r = start(name, &inbox_env(&[("ALM_HANDLER_DELAY_MS", "400")]));
        let record = "course:1_2";
        // One account's deliveries, each newer than the last: processed out
        // of order, an older one would be ignored as stale.
        for n in 0..4 {
            let body = envelope(
                1,
                &[learner_event(
                    &format!("a{n}"),
                    "COURSE_ENROLLMENT",
                    1725600000 + n,
                    7,
                    record,
                )],
            );
            let (status, answer) = signed_post(r.addr, &body);
            assert_eq!(status, 202, "{name}: {answer}");
            if n == 0 {
                assert!(
                    r.lines.lock().unwrap().is_empty(),
                    "{name}: answered before the 400 ms handler ran"
                );
            }
        }
        // Another account in parallel.
        let other = envelope(2, &[learner_event("b0", "COURSE_ENROLLMENT", 1, 7, record)]);
        assert_eq!(signed_post(r.addr, &other).0, 202, "{name}");
        let lines = wait_for_lines(&r, 5);
        let d = decisions(&lines);
        let account_one: Vec<_> = d.iter().filter(|(id, _)| id.starts_with('a')).collect();
        assert_eq!(
            account_one,
            [
                &("a0".into(), "processed".into()),
                &("a1".into(), "processed".into()),
                &("a2".into(), "processed".into()),
                &("a3".into(), "processed".into())
            ],
            "{name}: in order, none stale"
        );
        let b0 = d.iter().position(|(id, _)| id == "b0").expect("b0 decided");
        assert!(
            b0 < 3,
            "{name}: account 2 did not wait behind account 1's queue: {d:?}"
        );
    }
}

#[test]
fn a_failing_event_is_retried_then_succeeds() {
    for name in RECEIVERS {
        let r = start(
            name,
            &inbox_env(&[
                ("ALM_HANDLER_FAIL_ON", "flaky"),
                ("ALM_HANDLER_FAIL_TIMES", "2"),
                ("ALM_MAX_ATTEMPTS", "5"),
            ]),
        );
        let record = "course:1_2";
        let body = envelope(
            1,
            &[
                learner_event("flaky", "COURSE_ENROLLMENT", 1725600000, 7, record),
                learner_event("later", "COURSE_COMPLETED", 1725600100, 7, record),
                learner_event("elsewhere", "COURSE_ENROLLMENT", 1725600000, 8, record),
            ],
        );
        assert_eq!(signed_post(r.addr, &body).0, 202, "{name}");
        let lines = wait_for_lines(&r, 5);
        let d = decisions(&lines);
        let of = |id: &str| -> Vec<String> {
            d.iter()
                .filter(|(e, _)| e == id)
                .map(|(_, x)| x.clone())
                .collect()
        };
        assert_eq!(
            of("flaky"),
            ["failed", "failed", "processed"],
            "{name}: {d:?}"
        );
        assert_eq!(of("later"), ["processed"], "{name}: ran once: {d:?}");
        assert_eq!(of("elsewhere"), ["processed"], "{name}: {d:?}");
        let flaky_done = d
            .iter()
            .position(|x| x == &("flaky".into(), "processed".into()));
        let later = d.iter().position(|(e, _)| e == "later");
        assert!(
            flaky_done < later,
            "{name}: the record's later event waited: {d:?}"
        );
        assert!(lines.iter().all(|l| l["decision"] != "dead_lettered"));
    }
}

#[test]
fn an_exhausted_event_is_dead_lettered_and_replayed() {
    for name in RECEIVERS {
        let r = start(
            name,
            &inbox_env(&[
                ("ALM_HANDLER_FAIL_ON", "doomed"),
                ("ALM_HANDLER_FAIL_TIMES", "3"),
                ("ALM_MAX_ATTEMPTS", "3"),
            ]),
        );
        let doomed = learner_event("doomed", "COURSE_COMPLETED", 1725600300, 7, "course:1_2");
        let body = envelope(
            1234,
            &[
                doomed.clone(),
                learner_event("fine", "COURSE_ENROLLMENT", 1725600000, 8, "course:1_2"),
            ],
        );
        assert_eq!(signed_post(r.addr, &body).0, 202, "{name}");
        let lines = wait_for_lines(&r, 5);
        let doomed_lines: Vec<&Value> = lines.iter().filter(|l| l["eventId"] == "doomed").collect();
        let kinds: Vec<&str> = doomed_lines
            .iter()
            .map(|l| l["decision"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            ["failed", "failed", "failed", "dead_lettered"],
            "{name}: {lines:?}"
        );
        assert_eq!(doomed_lines[3]["attempts"], 3, "{name}");
        assert!(
            doomed_lines[3]["reason"]
                .as_str()
                .unwrap()
                .contains("asked to fail"),
            "{name}"
        );

        let (status, letters) = admin(r.addr, "GET", "/admin/dead-letters");
        assert_eq!(status, 200, "{name}");
        let letter = &letters[0];
        assert_eq!(letter["accountId"], 1234, "{name}");
        assert_eq!(letter["eventId"], "doomed", "{name}");
        assert_eq!(letter["eventName"], "COURSE_COMPLETED", "{name}");
        assert_eq!(letter["attempts"], 3, "{name}");
        let id = letter["id"].as_u64().unwrap();
        let (status, whole) = admin(r.addr, "GET", &format!("/admin/dead-letters/{id}"));
        assert_eq!(status, 200, "{name}");
        assert_eq!(whole["event"], doomed, "{name}: the event as sent");
        let stats = admin_until(r.addr, "/admin/inbox", |s| s["dead_letters"] == 1);
        assert_eq!(stats["pending"], 0, "{name}: {stats}");

        // The handler works now (its 3 failures are spent): replay it.
        let id = letter["id"].as_u64().unwrap();
        let (status, _) = admin(r.addr, "POST", &format!("/admin/dead-letters/{id}/replay"));
        assert_eq!(status, 202, "{name}");
        let lines = wait_for_lines(&r, 6);
        assert_eq!(
            (lines[5]["eventId"].as_str(), lines[5]["decision"].as_str()),
            (Some("doomed"), Some("processed")),
            "{name}: {lines:?}"
        );
        assert_eq!(
            admin(r.addr, "GET", "/admin/dead-letters").1,
            Value::Array(vec![])
        );
        let (status, _) = admin(r.addr, "DELETE", &format!("/admin/dead-letters/{id}"));
        assert_eq!(status, 404, "{name}: already replayed");
    }
}

#[test]
fn a_malformed_body_is_quarantined_listed_and_discarded() {
    for name in RECEIVERS {
        let r = start(name, &inbox_env(&[]));
        let bad = br#"{"accountId":77,"events":[{"eventId":"x"},]}"#;
        let (status, answer) = signed_post(r.addr, bad);
        assert_eq!(status, 202, "{name}: {answer}");
        let lines = wait_for_lines(&r, 1);
        assert_eq!(lines[0]["decision"], "quarantined", "{name}");
        assert_eq!(lines[0]["accountId"], 77, "{name}");
        assert_eq!(lines[0]["eventId"], Value::Null, "{name}");
        assert!(
            lines[0]["reason"]
                .as_str()
                .unwrap()
                .contains("trailing comma"),
            "{name}: {}",
            lines[0]
        );
        let (status, list) = admin(r.addr, "GET", "/admin/quarantine");
        assert_eq!(status, 200, "{name}");
        assert_eq!(list[0]["bytes"], bad.len(), "{name}");
        let id = list[0]["id"].as_u64().unwrap();
        let (status, whole) = admin(r.addr, "GET", &format!("/admin/quarantine/{id}"));
        assert_eq!(status, 200, "{name}");
        assert_eq!(whole["body"], std::str::from_utf8(bad).unwrap(), "{name}");
        // It still does not parse: 422, and it stays.
        let (status, error) = admin(r.addr, "POST", &format!("/admin/quarantine/{id}/replay"));
        assert_eq!(status, 422, "{name}");
        assert!(error["error"].as_str().unwrap().contains("trailing comma"));
        let (status, _) = admin(r.addr, "DELETE", &format!("/admin/quarantine/{id}"));
        assert_eq!(status, 204, "{name}");
        assert_eq!(
            admin(r.addr, "GET", "/admin/quarantine").1,
            Value::Array(vec![])
        );

        // Refusing stays available.
        let refusing = start(name, &inbox_env(&[("ALM_ON_MALFORMED", "refuse")]));
        assert_eq!(signed_post(refusing.addr, bad).0, 400, "{name}");
    }
}

#[test]
fn the_admin_api_needs_its_token() {
    for name in RECEIVERS {
        let without = start(name, &[("ALM_MODE", "inbox")]);
        let (status, _) = request_to(without.addr, "GET", "/admin/inbox", &[], b"");
        assert_eq!(status, 404, "{name}: no token configured");
        let r = start(name, &inbox_env(&[]));
        for auth in [None, Some("Bearer wrong"), Some("Basic YWRtaW4=")] {
            let headers: Vec<(&str, String)> = auth
                .map(|a| vec![("authorization", a.to_owned())])
                .unwrap_or_default();
            let (status, body) = request_to(r.addr, "GET", "/admin/inbox", &headers, b"");
            assert_eq!(status, 401, "{name} {auth:?}");
            assert!(!body.contains(TOKEN), "{name}");
        }
        let (status, stats) = admin(r.addr, "GET", "/admin/inbox");
        assert_eq!(status, 200, "{name}");
        for key in [
            "pending",
            "in_flight",
            "retrying",
            "dead_letters",
            "quarantined",
            "oldest_pending_age_ms",
        ] {
            assert!(stats[key].is_u64(), "{name}: {key} in {stats}");
        }
        assert_eq!(admin(r.addr, "GET", "/admin/nothing").0, 404, "{name}");

        // The operator's page (no token: it holds no data) and the
        // decision counts it shows.
        let (status, page) = request_to(r.addr, "GET", "/admin", &[], b"");
        assert_eq!(status, 200, "{name}");
        assert_eq!(page, alm_webhooks::admin::PAGE_HTML, "{name}");
        let (status, _) = request_to(without.addr, "GET", "/admin", &[], b"");
        assert_eq!(status, 404, "{name}: no admin API, no page");
        let body = envelope(
            3,
            &[learner_event(
                "counted",
                "COURSE_ENROLLMENT",
                1,
                7,
                "course:1_2",
            )],
        );
        assert_eq!(signed_post(r.addr, &body).0, 202, "{name}");
        let decisions = admin_until(r.addr, "/admin/decisions", |d| d["processed"] == 1);
        assert_eq!(decisions["processed"], 1, "{name}: {decisions}");
        assert_eq!(decisions["failed"], 0, "{name}: {decisions}");
    }
}

#[test]
fn sigterm_exits_zero_and_keeps_the_unfinished_work() {
    for name in RECEIVERS {
        let file = std::env::temp_dir().join(format!(
            "alm-inbox-sigterm-{}-{name}.db",
            std::process::id()
        ));
        let url = format!("sqlite:{}", file.display());
        let env = inbox_env(&[
            ("ALM_STORE", url.as_str()),
            ("ALM_HANDLER_DELAY_MS", "300"),
            ("ALM_LEASE_SECS", "1"),
        ]);
        let mut r = start(name, &env);
        for n in 0..20 {
            let event = learner_event(&format!("s{n}"), "COURSE_ENROLLMENT", 1, n, "course:1_2");
            assert_eq!(signed_post(r.addr, &envelope(1, &[event])).0, 202, "{name}");
        }
        wait_for_lines(&r, 1);
        let pid = r.child.id().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(sent.success());
        let started = Instant::now();
        let status = loop {
            if let Some(status) = r.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{name}: still running 10 s after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(status.code(), Some(0), "{name}");
        let before = decisions(&r.lines.lock().unwrap())
            .into_iter()
            .filter(|(_, d)| d == "processed")
            .count();
        assert!(
            before < 20,
            "{name}: stopped with deliveries left: {:?}",
            r.lines.lock().unwrap()
        );

        // The next start finishes the delivery from the inbox.
        let again = start(name, &env);
        let lines = wait_for_lines(&again, 20);
        let d = decisions(&lines);
        let processed = d.iter().filter(|(_, x)| x == "processed").count();
        let duplicate = d.iter().filter(|(_, x)| x == "duplicate").count();
        assert_eq!(
            (processed + before, duplicate),
            (20, 0),
            "{name}: each delivery finished once: {d:?}"
        );
        drop(again);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
        }
    }
}

#[test]
fn hostile_bodies_are_quarantined_and_the_receiver_keeps_serving() {
    for name in RECEIVERS {
        let r = start(name, &inbox_env(&[("ALM_AUTH", "none")]));
        let deep = format!("{}{}", "[".repeat(9_000), "]".repeat(9_000)).into_bytes();
        let cases: Vec<(&str, Vec<u8>, u16)> = vec![
            ("nesting 9,000", deep, 202),
            (
                "invalid UTF-8",
                b"{\"accountId\":1,\"events\":[\"\xff\"]}".to_vec(),
                202,
            ),
            ("empty", Vec::new(), 202),
            ("1e400", br#"{"accountId":1e400,"events":[]}"#.to_vec(), 202),
            ("one byte over the limit", vec![b' '; 20_001], 413),
        ];
        for (what, body, expected) in &cases {
            let (status, answer) = support::process::request(r.addr, "POST", &[], body);
            assert_eq!(status, *expected, "{name}: {what}: {answer}");
        }
        let good = envelope(
            5,
            &[learner_event(
                "after",
                "COURSE_ENROLLMENT",
                1,
                7,
                "course:1_2",
            )],
        );
        assert_eq!(support::process::request(r.addr, "POST", &[], &good).0, 202);
        let lines = wait_for_lines(&r, 5);
        let kinds: Vec<&str> = lines
            .iter()
            .map(|l| l["decision"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            [
                "quarantined",
                "quarantined",
                "quarantined",
                "quarantined",
                "processed"
            ],
            "{name}"
        );
        let stats = admin_until(r.addr, "/admin/inbox", |s| s["quarantined"] == 4);
        assert_eq!(stats["quarantined"], 4, "{name}: {stats}");
    }
}

#[test]
fn a_bad_inbox_configuration_stops_at_start_with_a_message() {
    for name in RECEIVERS {
        for (var, value) in [
            ("ALM_MODE", "fast"),
            ("ALM_ON_MALFORMED", "ignore"),
            ("ALM_WORKERS", "0"),
            ("ALM_MAX_ATTEMPTS", "many"),
            ("ALM_RETRY_BASE_MS", "-1"),
            ("ALM_RETRY_MAX_MS", "soon"),
            ("ALM_HANDLER_FAIL_TIMES", "0"),
            ("ALM_INBOX", "ftp://x"),
        ] {
            let output = std::process::Command::new(support::process::example(name))
                .env("ALM_AUTH", "none")
                .env("ALM_LISTEN", "127.0.0.1:0")
                .env(var, value)
                .output()
                .expect("runs");
            assert_eq!(output.status.code(), Some(2), "{name} {var}");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(stderr.contains(var), "{name} {var}: {stderr}");
            assert!(output.stdout.is_empty(), "{name} {var}");
        }
    }
}

#[test]
fn a_hung_handler_times_out_and_the_account_goes_on() {
    for name in RECEIVERS {
        let r = start(
            name,
            &inbox_env(&[
                ("ALM_HANDLER_HANG_ON", "stuck"),
                ("ALM_HANDLER_TIMEOUT_MS", "200"),
                ("ALM_MAX_ATTEMPTS", "2"),
            ]),
        );
        let record = "course:1_2";
        let stuck = envelope(
            5,
            &[learner_event(
                "stuck",
                "COURSE_ENROLLMENT",
                1725600000,
                7,
                record,
            )],
        );
        let next = envelope(
            5,
            &[learner_event(
                "next",
                "COURSE_COMPLETED",
                1725600100,
                7,
                record,
            )],
        );
        assert_eq!(signed_post(r.addr, &stuck).0, 202, "{name}");
        assert_eq!(signed_post(r.addr, &next).0, 202, "{name}");
        let lines = wait_for_lines(&r, 4);
        let d = decisions(&lines);
        assert_eq!(
            d,
            [
                ("stuck".into(), "failed".into()),
                ("stuck".into(), "failed".into()),
                ("stuck".into(), "dead_lettered".into()),
                ("next".into(), "processed".into()),
            ],
            "{name}: {lines:?}"
        );
        assert_eq!(
            lines[2]["reason"], "handler timed out after 200 ms",
            "{name}: {lines:?}"
        );
        let (_, letters) = admin(r.addr, "GET", "/admin/dead-letters");
        assert!(
            letters[0]["error"].as_str().unwrap().contains("timed out"),
            "{name}: {letters}"
        );
    }
}

#[test]
fn a_handler_that_aborts_takes_the_process_down_and_the_work_survives() {
    for name in RECEIVERS {
        let file =
            std::env::temp_dir().join(format!("alm-inbox-abort-{}-{name}.db", std::process::id()));
        let url = format!("sqlite:{}", file.display());
        let env = inbox_env(&[("ALM_STORE", url.as_str()), ("ALM_LEASE_SECS", "1")]);
        let mut aborting = env.clone();
        aborting.push(("ALM_HANDLER_ABORT_ON", "crash"));
        // The handler waits before it aborts: a worker woken by the append
        // could otherwise take the process down before the server has
        // written its `202` (seen once under CI's load, actix).
        aborting.push(("ALM_HANDLER_DELAY_MS", "300"));
        let mut r = start(name, &aborting);
        let body = envelope(
            6,
            &[learner_event(
                "crash",
                "COURSE_ENROLLMENT",
                1725600000,
                7,
                "course:1_2",
            )],
        );
        assert_eq!(
            signed_post(r.addr, &body).0,
            202,
            "{name}: acknowledged first"
        );
        let started = Instant::now();
        let status = loop {
            if let Some(status) = r.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{name}: the handler did not abort the process"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(status.signal(), Some(6), "{name}: SIGABRT, {status:?}");
        }
        assert!(!status.success(), "{name}");
        // Without the knob, the next start processes the delivery kept in
        // the inbox once the dead process's lease has run out.
        let again = start(name, &env);
        let lines = wait_for_lines(&again, 1);
        assert_eq!(
            decisions(&lines),
            [("crash".into(), "processed".into())],
            "{name}: {lines:?}"
        );
        drop(again);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
        }
    }
}

/// A handler that aborts the process every time (issue 22, sequence 2):
/// each crash is an attempt, counted when the delivery is taken; after the
/// last one the event is dead-lettered saying how many times the process
/// died, and the account's next delivery is processed. Before, attempts
/// were only counted by a retry, so the delivery was taken again after
/// every restart, forever.
#[test]
fn a_handler_that_always_aborts_is_dead_lettered_after_the_last_attempt() {
    let name = RECEIVERS[0];
    let file = std::env::temp_dir().join(format!(
        "alm-inbox-abort-always-{}-{name}.db",
        std::process::id()
    ));
    let url = format!("sqlite:{}", file.display());
    let env = inbox_env(&[
        ("ALM_STORE", url.as_str()),
        ("ALM_LEASE_SECS", "1"),
        ("ALM_MAX_ATTEMPTS", "3"),
        ("ALM_HANDLER_ABORT_ON", "crash"),
    ]);
    let crash = envelope(
        6,
        &[learner_event(
            "crash",
            "COURSE_ENROLLMENT",
            1725600000,
            7,
            "course:1_2",
        )],
    );
    let next = envelope(
        6,
        &[learner_event(
            "after",
            "COURSE_ENROLLMENT",
            1725600001,
            8,
            "course:1_2",
        )],
    );
    let mut posted = false;
    let mut crashes = 0;
    let survivor = loop {
        let mut r = start(name, &env);
        if !posted {
            assert_eq!(signed_post(r.addr, &crash).0, 202);
            posted = true;
        }
        // Either the handler aborts the process again, or the attempts are
        // spent and the receiver lives on.
        let started = Instant::now();
        let died = loop {
            if r.child.try_wait().unwrap().is_some() {
                break true;
            }
            if started.elapsed() > Duration::from_secs(6) {
                break false;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if !died {
            break r;
        }
        crashes += 1;
        assert!(crashes <= 3, "{name}: the process died {crashes} times");
    };
    assert_eq!(crashes, 3, "{name}: one crash per attempt");
    // The account goes on.
    assert_eq!(signed_post(survivor.addr, &next).0, 202);
    // The crashed attempts printed nothing; the given-up attempt prints
    // its failure and the dead letter, as any last attempt does.
    let lines = wait_for_lines(&survivor, 3);
    assert_eq!(
        decisions(&lines),
        [
            ("crash".into(), "failed".into()),
            ("crash".into(), "dead_lettered".into()),
            ("after".into(), "processed".into())
        ],
        "{name}: {lines:?}"
    );
    let (_, letters) = admin(survivor.addr, "GET", "/admin/dead-letters");
    let error = letters[0]["error"].as_str().unwrap();
    assert!(error.contains("died or hung 3 times"), "{name}: {error}");
    drop(survivor);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
    }
}
