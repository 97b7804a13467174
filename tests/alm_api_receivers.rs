//! Reconciliation in both example receivers, over HTTP against the ALM API
//! double: a completion ALM never delivered is found by `POST
//! /admin/reconcile`, repaired through the inbox and the engine (the
//! handler sees the synthetic event), `GET /admin/reconcile/{id}` shows it
//! found and repaired, the day's one report job is then spent, the admin
//! token guards both calls, and neither the client secret nor the refresh
//! token ever reaches the receiver's output. In `report` mode a run that
//! `ALM_RECONCILE_EVERY` started finds without repairing.
#![cfg(all(
    feature = "alm-api",
    feature = "axum",
    feature = "actix",
    feature = "simulator",
    feature = "env"
))]

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use alm_webhooks::simulator::alm_api::{AlmApiDouble, DoubleOptions};
use alm_webhooks::simulator::scenario::{envelope, learner_event};
use serde_json::Value;
use support::process::{Running, request_to, signed_post, start, wait_for_lines};

const TOKEN: &str = "admin-test-token-0123456789abcdef";
const ACCOUNT: u64 = 1234;

fn admin(addr: SocketAddr, method: &str, path: &str, token: &str) -> (u16, Value) {
    let (status, body) = request_to(
        addr,
        method,
        path,
        &[("authorization", format!("Bearer {token}"))],
        b"",
    );
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// Polls a run until it is no longer running (or 30 s pass).
fn finished(addr: SocketAddr, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, run) = admin(addr, "GET", &format!("/admin/reconcile/{id}"), TOKEN);
        assert_eq!(status, 200, "{run}");
        if run["state"] != "running" || Instant::now() > deadline {
            return run;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn start_run(r: &Running) -> String {
    let (status, started) = admin(r.addr, "POST", "/admin/reconcile", TOKEN);
    assert_eq!(status, 202, "{started}");
    started["id"].as_str().expect("an id").to_owned()
}

#[test]
fn a_dropped_completion_is_found_and_repaired_through_the_admin_api() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for (n, receiver) in ["axum_receiver", "actix_receiver"].into_iter().enumerate() {
        let double = runtime
            .block_on(AlmApiDouble::start(DoubleOptions::default()))
            .unwrap();
        let o = double.options().clone();
        // User 7 enrolled, progressed and completed; the completion is
        // dropped on the way. User 8's record arrives whole.
        let base = 1_725_000_000;
        let kept = vec![
            learner_event("e-7-1", "COURSE_ENROLLMENT", base, 7, "course:1_1"),
            learner_event("e-8-1", "COURSE_ENROLLMENT", base + 1, 8, "course:1_1"),
            learner_event("e-8-2", "COURSE_COMPLETED", base + 2, 8, "course:1_1"),
        ];
        let dropped = learner_event("e-7-2", "COURSE_COMPLETED", base + 3, 7, "course:1_1");
        let mut all = kept.clone();
        all.push(dropped);
        double.record_sent(&envelope(ACCOUNT, &all));

        // One receiver reads the secrets from a file, the other from the
        // environment.
        let secret_file =
            std::env::temp_dir().join(format!("alm-api-secret-{}-{n}.json", std::process::id()));
        let base_url = double.base();
        let account = ACCOUNT.to_string();
        let mut env = vec![
            ("ALM_MODE", ""),
            ("ALM_ON_MALFORMED", ""),
            ("ALM_ADMIN_TOKEN", TOKEN),
            ("ALM_RECONCILE", "repair"),
            ("ALM_API_BASE", base_url.as_str()),
            ("ALM_API_CLIENT_ID", o.client_id.as_str()),
            ("ALM_ACCOUNT_ID", account.as_str()),
        ];
        let file_text = serde_json::json!({
            "client_secret": o.client_secret,
            "refresh_token": o.refresh_token,
        })
        .to_string();
        let secret_path = secret_file.display().to_string();
        if n == 0 {
            std::fs::write(&secret_file, &file_text).unwrap();
            env.push(("ALM_API_SECRET_FILE", secret_path.as_str()));
        } else {
            env.push(("ALM_API_CLIENT_SECRET", o.client_secret.as_str()));
            env.push(("ALM_API_REFRESH_TOKEN", o.refresh_token.as_str()));
        }
        let r = start(receiver, &env);
        let (status, _) = signed_post(r.addr, &envelope(ACCOUNT, &kept));
        assert_eq!(status, 202, "{receiver}");
        let lines = wait_for_lines(&r, 3);
        assert_eq!(lines.len(), 3, "{receiver}: {lines:?}");

        // The admin token guards both calls.
        assert_eq!(admin(r.addr, "POST", "/admin/reconcile", "wrong").0, 401);
        assert_eq!(admin(r.addr, "GET", "/admin/reconcile/1", "wrong").0, 401);
        assert_eq!(admin(r.addr, "GET", "/admin/reconcile/999", TOKEN).0, 404);

        let id = start_run(&r);
        let run = finished(r.addr, &id);
        assert_eq!(run["state"], "done", "{receiver}: {run}");
        assert_eq!(run["mode"], "repair", "{receiver}: {run}");
        assert_eq!(
            (run["found"].as_u64(), run["repaired"].as_u64()),
            (Some(1), Some(1)),
            "{receiver}: {run}"
        );
        assert_eq!(run["byKind"]["status"], 1, "{receiver}: {run}");

        // The repair went through the inbox, the engine and the handler.
        let lines = wait_for_lines(&r, 4);
        let repair = lines
            .iter()
            .find(|l| {
                l["eventId"]
                    .as_str()
                    .is_some_and(|id| id.starts_with("reconcile-7-"))
            })
            .unwrap_or_else(|| panic!("{receiver}: no repair decided: {lines:?}"));
        assert_eq!(repair["decision"], "processed", "{receiver}: {repair}");
        assert_eq!(
            repair["eventName"], "COURSE_COMPLETED",
            "{receiver}: {repair}"
        );

        // The day's one report job is spent: a second run fails and says so.
        let again = finished(r.addr, &start_run(&r));
        assert_eq!(again["state"], "failed", "{receiver}: {again}");
        assert!(
            again["error"]
                .as_str()
                .is_some_and(|e| e.contains("a day are spent")),
            "{receiver}: {again}"
        );
        let counts = double.counts();
        assert_eq!(counts.jobs_created, 1, "{receiver}: {counts:?}");
        assert_eq!(counts.token_refreshes, 1, "{receiver}: {counts:?}");

        // No secret in anything the receiver wrote.
        let stdout = serde_json::to_string(&*r.lines.lock().unwrap()).unwrap();
        let stderr = r.stderr.lock().unwrap().join("\n");
        assert!(
            stderr.contains("reconciliation: Repair"),
            "{receiver}: {stderr}"
        );
        for secret in [&o.client_secret, &o.refresh_token] {
            assert!(!stdout.contains(secret.as_str()), "{receiver}");
            assert!(!stderr.contains(secret.as_str()), "{receiver}: {stderr}");
        }
        let _ = std::fs::remove_file(&secret_file);
    }
}

#[test]
fn reconciliation_is_off_by_default_and_a_bad_mode_stops_the_start() {
    let r = start(
        "axum_receiver",
        &[("ALM_MODE", ""), ("ALM_ADMIN_TOKEN", TOKEN)],
    );
    assert_eq!(admin(r.addr, "POST", "/admin/reconcile", TOKEN).0, 404);
    drop(r);
    let out = std::process::Command::new(support::process::example("axum_receiver"))
        .env("ALM_LISTEN", "127.0.0.1:0")
        .env("ALM_AUTH", "signature")
        .env("ALM_SIGNING_SECRET", "s")
        .env("ALM_RECONCILE", "sometimes")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ALM_RECONCILE"), "{stderr}");
}

#[test]
fn report_mode_on_a_timer_finds_without_repairing() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let double = runtime
        .block_on(AlmApiDouble::start(DoubleOptions::default()))
        .unwrap();
    let o = double.options().clone();
    let base = 1_725_000_000;
    let kept = vec![learner_event(
        "e-9-1",
        "COURSE_ENROLLMENT",
        base,
        9,
        "course:3_1",
    )];
    let dropped = learner_event("e-9-2", "COURSE_COMPLETED", base + 5, 9, "course:3_1");
    let mut all = kept.clone();
    all.push(dropped);
    double.record_sent(&envelope(ACCOUNT, &all));
    let (base_url, account) = (double.base(), ACCOUNT.to_string());
    let r = start(
        "axum_receiver",
        &[
            ("ALM_MODE", ""),
            ("ALM_ADMIN_TOKEN", TOKEN),
            ("ALM_RECONCILE", "report"),
            ("ALM_RECONCILE_EVERY", "2s"),
            ("ALM_API_BASE", base_url.as_str()),
            ("ALM_API_CLIENT_ID", o.client_id.as_str()),
            ("ALM_API_CLIENT_SECRET", o.client_secret.as_str()),
            ("ALM_API_REFRESH_TOKEN", o.refresh_token.as_str()),
            ("ALM_ACCOUNT_ID", account.as_str()),
        ],
    );
    let (status, _) = signed_post(r.addr, &envelope(ACCOUNT, &kept));
    assert_eq!(status, 202);
    assert_eq!(wait_for_lines(&r, 1).len(), 1);
    // Nobody asks: the timer starts run 1 two seconds after start.
    let deadline = Instant::now() + Duration::from_secs(15);
    while admin(r.addr, "GET", "/admin/reconcile/1", TOKEN).0 == 404 {
        assert!(Instant::now() < deadline, "no run started by the timer");
        std::thread::sleep(Duration::from_millis(100));
    }
    let run = finished(r.addr, "1");
    assert_eq!(run["state"], "done", "{run}");
    assert_eq!(run["mode"], "report", "{run}");
    assert_eq!(
        (run["found"].as_u64(), run["repaired"].as_u64()),
        (Some(1), Some(0)),
        "{run}"
    );
    // A dry run feeds nothing: no decision beyond the delivered one.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(r.lines.lock().unwrap().len(), 1);
}
