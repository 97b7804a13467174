//! The demo: starts the axum receiver on the in-memory store, drives it with
//! the sender simulator over loopback the way ALM would (duplicates,
//! reordering, a malformed event, a bad signature, a bulk batch with dropped
//! connections), then prints what the receiver decided. Then the inbox: a
//! second receiver in the (default) inbox mode with a slow handler
//! acknowledges in milliseconds, retries a failing event, dead-letters it,
//! quarantines a body that is not an envelope, and replays the dead letter.
//! Built with the feature `alm-api` too, it then shows reconciliation: a
//! completion ALM never delivered, found by a report job of the ALM API
//! double and repaired through the engine into the learner table. It ends
//! by itself.
//!
//! ```sh
//! cargo run --example demo --features axum,simulator,alm-api,env   # the README's
//! cargo run --example demo --features axum,simulator,env         # without reconciliation
//! ```

#[path = "common/mod.rs"]
mod common;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alm_webhooks::Authentication;
use alm_webhooks::admin::AdminToken;
use alm_webhooks::auth::SignatureAuth;
use alm_webhooks::config::Config;
use alm_webhooks::endpoint::{Mode, OnMalformed};
use alm_webhooks::simulator::scenario::{self, Faults, learner_event};
use alm_webhooks::simulator::{Backoff, Delivery, Simulator, signers};
use common::{App, Knobs};
use serde_json::{Value, json};

const SECRET: &str = "demo-signing-secret";
const ACCOUNT: u64 = 1234;

fn step(title: &str, events: Vec<Value>) -> (String, Vec<u8>) {
    (title.to_owned(), scenario::envelope(ACCOUNT, &events))
}

#[tokio::main]
async fn main() {
    let mut config = Config::default();
    config.listen = "127.0.0.1:0".parse().expect("a loopback address");
    config.auth = Authentication::Signature(SignatureAuth::new(SECRET));
    config.inbox.mode = Mode::Inline;
    config.inbox.on_malformed = OnMalformed::Refuse;
    let journal = Arc::new(Mutex::new(Vec::new()));
    let app = App::with_journal(config, Knobs::default(), Arc::clone(&journal))
        .await
        .expect("the memory store opens");
    let addr = common::serve::axum(&app).await.expect("a loopback port");
    let url = format!("http://{addr}/webhooks");
    eprintln!("receiver listening on {url} (in-memory store, HMAC-SHA256 signatures)\n");

    let sim = Simulator::new(&url)
        .expect("a valid URL")
        .with_signer(signers::signature(SignatureAuth::new(SECRET)))
        .with_backoff(Backoff {
            time_scale: 0.001,
            ..Backoff::default()
        })
        .with_max_attempts(3);

    let (learner, other, instance) = (7, 8, "course:100_1");
    let malformed = json!({"eventId": "bad-1", "eventName": "COURSE_ENROLLMENT", "timestamp": 1725600000,
        "data": {"userId": "seven", "loId": "course:100", "loInstanceId": instance}});
    let steps = vec![
        step(
            "real-time completion arrives first",
            vec![learner_event(
                "c-1",
                "COURSE_COMPLETED",
                1725600300,
                learner,
                instance,
            )],
        ),
        step(
            "the bulk enrollment it overtook (rule 3: stale)",
            vec![learner_event(
                "e-1",
                "COURSE_ENROLLMENT_BATCH",
                1725600100,
                learner,
                instance,
            )],
        ),
        step(
            "delayed LEARNER_PROGRESS (rule 2: after completion)",
            vec![learner_event(
                "p-1",
                "LEARNER_PROGRESS",
                1725600250,
                learner,
                instance,
            )],
        ),
        step(
            "progress before enrollment for another learner (rule 1)",
            vec![
                learner_event("p-2", "LEARNER_PROGRESS", 1725600200, other, instance),
                learner_event("e-2", "COURSE_ENROLLMENT", 1725600100, other, instance),
            ],
        ),
        step(
            "ALM redelivers the completion (duplicate)",
            vec![learner_event(
                "c-1",
                "COURSE_COMPLETED",
                1725600300,
                learner,
                instance,
            )],
        ),
        step(
            "an event this crate does not know",
            vec![json!({"eventId": "job-42", "eventName": "ASYNC_JOB_RESULT",
            "timestamp": "2024-11-08T03:49:52.000Z", "data": {"status": "SUCCESS", "request": {"id": 42}}})],
        ),
        step(
            "one malformed event next to a good one",
            vec![
                malformed,
                learner_event("u-1", "COURSE_UNENROLLMENT", 1725600400, learner, instance),
            ],
        ),
    ];
    let mut outcomes = Vec::new();
    for (title, body) in steps {
        let before = journal.lock().map(|j| j.len()).unwrap_or(0);
        let summary = sim.deliver(&Delivery::from(body)).await;
        let lines: Vec<String> = journal
            .lock()
            .map(|j| j[before..].to_vec())
            .unwrap_or_default();
        outcomes.push((title, summary, lines));
    }

    // Refused deliveries: a sample with a trailing comma, and a bad signature.
    let trailing_comma = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/course_unenrollment.json"
    ))
    .expect("the fixture exists");
    let refused_400 = sim.deliver(&Delivery::from(trailing_comma)).await;
    let forged = Simulator::new(&url)
        .expect("a valid URL")
        .with_signer(signers::signature(SignatureAuth::new("not-the-secret")))
        .with_max_attempts(1);
    let refused_401 = forged
        .deliver(&Delivery::from(scenario::envelope(ACCOUNT, &[])))
        .await;

    // A bulk batch as an admin's bulk enrollment sends it, with duplicates
    // and dropped connections.
    let bulk = scenario::bulk_enrollments("bulk", 3000, 1725600500);
    let faults = Faults {
        duplicate_every: Some(10),
        drop_every: Some(2),
        ..Faults::default()
    };
    let before = journal.lock().map(|j| j.len()).unwrap_or(0);
    let bulk_summary = sim
        .run(scenario::deliveries(ACCOUNT, bulk, 1000, faults))
        .await;
    let bulk_lines: Vec<String> = journal
        .lock()
        .map(|j| j[before..].to_vec())
        .unwrap_or_default();

    println!(
        "{:<58} {:<8} {:<26} {:<10} REASON",
        "STEP", "HTTP", "EVENT", "DECISION"
    );
    for (title, summary, lines) in &outcomes {
        let status = summary
            .outcomes
            .keys()
            .last()
            .map(ToString::to_string)
            .unwrap_or_default();
        for (i, line) in lines.iter().enumerate() {
            let v: Value = serde_json::from_str(line).unwrap_or_default();
            let event = format!(
                "{} {}",
                v["eventName"].as_str().unwrap_or("?"),
                v["eventId"].as_str().unwrap_or("-")
            );
            let title = if i == 0 { title.as_str() } else { "" };
            println!(
                "{:<58} {:<8} {:<26} {:<10} {}",
                title,
                if i == 0 { status.as_str() } else { "" },
                shorten(&event, 26),
                v["decision"].as_str().unwrap_or("?"),
                v["reason"].as_str().unwrap_or("")
            );
        }
    }
    println!("{:<58} {}", "a sample with a trailing comma", refused_400);
    println!(
        "{:<58} {}",
        "a delivery signed with the wrong secret", refused_401
    );
    let mut bulk_counts: BTreeMap<String, usize> = BTreeMap::new();
    for line in &bulk_lines {
        let v: Value = serde_json::from_str(line).unwrap_or_default();
        *bulk_counts
            .entry(v["decision"].as_str().unwrap_or("?").to_owned())
            .or_default() += 1;
    }
    println!(
        "\nbulk batch of 3000 enrollments in deliveries of 1000, every 10th event sent again, every 2nd delivery's first attempt cut:"
    );
    println!("  simulator: {bulk_summary}");
    println!("  receiver:  {bulk_counts:?}");
    let c = app.engine.counters();
    println!(
        "\ncounters: processed {}, duplicate {}, ignored {} (rule 1: {}, rule 2: {}, rule 3: {}), rejected {}, failed {}, busy {}",
        c.processed,
        c.duplicate,
        c.ignored(),
        c.ignored_enrollment_after_progress,
        c.ignored_progress_after_completion,
        c.ignored_stale,
        c.rejected,
        c.failed,
        c.busy
    );
    let views = app.views.lock().map(|v| v.clone()).unwrap_or_default();
    println!(
        "\nthe handler's view of learner {learner} @ {instance}: {:?}",
        views.get(&format!("learner {learner} @ {instance}"))
    );
    inbox_mode().await;
    #[cfg(feature = "alm-api")]
    reconciliation().await;
    #[cfg(not(feature = "alm-api"))]
    println!(
        "\n(reconciliation, a dropped completion found and repaired: add the feature alm-api)"
    );
}

/// Reconciliation: ALM's API double knows a completion the receiver never
/// got; one report job finds it, and the repair goes through the engine
/// into the learner table.
#[cfg(feature = "alm-api")]
async fn reconciliation() {
    use alm_webhooks::alm_api::reconcile::Reconciler;
    use alm_webhooks::alm_api::{AlmApi, ApiConfig};
    use alm_webhooks::simulator::alm_api::{AlmApiDouble, DoubleOptions};
    use alm_webhooks::store::MemoryStore;
    use alm_webhooks::{AccountId, Engine, Envelope, Timestamp, UserId};

    println!("\n== reconciliation: a completion ALM never delivered ==");
    let double = AlmApiDouble::start(DoubleOptions::default())
        .await
        .expect("a loopback port");
    let (learner, instance) = (7, "course:200_1");
    let t = 1_725_600_000;
    let delivered = vec![
        learner_event("r-1", "COURSE_ENROLLMENT", t, learner, instance),
        learner_event("r-2", "LEARNER_PROGRESS", t + 60, learner, instance),
    ];
    let lost = learner_event("r-3", "COURSE_COMPLETED", t + 120, learner, instance);
    let mut everything = delivered.clone();
    everything.push(lost);
    // ALM knows all three; the webhook carried two.
    double.record_sent(&scenario::envelope(ACCOUNT, &everything));
    let engine = Engine::builder(MemoryStore::new().with_learner_projection()).build();
    let body = scenario::envelope(ACCOUNT, &delivered);
    let envelope = Envelope::from_slice(&body).expect("an envelope");
    engine
        .process(envelope, |_event| async { Ok(()) })
        .await
        .expect("the memory store answers");
    let (account, user) = (AccountId(ACCOUNT), UserId(learner));
    let instance_id = instance.parse().expect("an instance id");
    let row = |engine: &Engine<MemoryStore>| {
        engine
            .store()
            .learner_record(account, user, &instance_id)
            .map(|r| format!("{} ({} %)", r.status.as_str(), r.progress_percent))
    };
    println!("  the learner table says: {:?}", row(&engine));

    let o = double.options();
    let config = ApiConfig::new(
        double.base(),
        &o.client_id,
        &o.client_secret,
        &o.refresh_token,
    );
    let api = AlmApi::new(config).expect("a valid configuration");
    let reconciler = Reconciler::new(api, engine.clone(), account);
    let from = Timestamp::from_epoch(t - 86_400).expect("a time");
    let to = Timestamp::from_epoch(t + 86_400).expect("a time");
    let found = match reconciler
        .bulk(
            from,
            to,
            Duration::from_millis(100),
            Duration::from_secs(30),
        )
        .await
    {
        Ok(found) => found,
        Err(e) => {
            println!("  the reconciliation failed: {e}");
            return;
        }
    };
    for d in &found.differences {
        println!(
            "  found by one report job: learner {} in {}: {:?}",
            d.user_id, d.lo_instance_id, d.kind
        );
    }
    if let Some(repairs) = found.repair_envelope() {
        let report = engine
            .process(repairs, |event| async move {
                println!(
                    "  the handler sees {} {} (origin: {})",
                    event.event_name, event.event_id, event.other["origin"]
                );
                Ok(())
            })
            .await
            .expect("the memory store answers");
        for outcome in &report.outcomes {
            println!("  repair decided: {}", outcome.decision.as_str());
        }
    }
    println!("  the learner table now says: {:?}", row(&engine));
    let counts = double.counts();
    println!(
        "  API calls: {} report job, {} budgeted requests, {} token refresh",
        counts.jobs_created, counts.limited_requests, counts.token_refreshes
    );
}

/// The inbox mode: acknowledge at once, process behind, keep what fails.
async fn inbox_mode() {
    let token = "demo-admin-token-0123456789abcdef";
    let mut config = Config::default();
    config.listen = "127.0.0.1:0".parse().expect("a loopback address");
    config.auth = Authentication::Signature(SignatureAuth::new(SECRET));
    config.inbox.retry = alm_webhooks::inbox::RetryPolicy {
        max_attempts: 3,
        base: Duration::from_millis(100),
        max: Duration::from_millis(400),
    };
    config.admin_token = Some(AdminToken::new(token.to_owned()));
    let knobs = Knobs {
        delay: Duration::from_millis(100),
        fail_on: HashSet::from(["crm-down".to_owned()]),
        fail_times: Some(3),
        ..Knobs::default()
    };
    let journal = Arc::new(Mutex::new(Vec::new()));
    let app = App::with_journal(config, knobs, Arc::clone(&journal))
        .await
        .expect("the memory inbox opens");
    let addr = common::serve::axum(&app).await.expect("a loopback port");
    let sim = Simulator::new(&format!("http://{addr}/webhooks"))
        .expect("a valid URL")
        .with_signer(signers::signature(SignatureAuth::new(SECRET)))
        .with_max_attempts(1);
    println!(
        "\n--- the inbox (ALM_MODE=inbox, the default): a handler that takes 100 ms per event ---"
    );
    let mut events: Vec<Value> = (0..20)
        .map(|n| {
            learner_event(
                &format!("slow-{n}"),
                "COURSE_ENROLLMENT",
                1725600000,
                100 + n,
                "course:7_1",
            )
        })
        .collect();
    events.push(learner_event(
        "crm-down",
        "COURSE_COMPLETED",
        1725600300,
        7,
        "course:7_1",
    ));
    let started = std::time::Instant::now();
    let summary = sim
        .deliver(&Delivery::from(scenario::envelope(ACCOUNT, &events)))
        .await;
    println!(
        "21 events acknowledged in {:.1?} ({summary}); the handler needs 2 s for them",
        started.elapsed()
    );
    let trailing_comma = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/course_unenrollment.json"
    ))
    .expect("the fixture exists");
    let quarantined = sim.deliver(&Delivery::from(trailing_comma)).await;
    println!("a sample with a trailing comma: {quarantined} (quarantined, not refused)");

    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        format!("Bearer {token}").parse().expect("a header value"),
    );
    let get = |path: &'static str| {
        let (app, headers) = (Arc::clone(&app), headers.clone());
        async move { admin(&app, &http::Method::GET, path, &headers).await.1 }
    };
    let idle = |stats: String| {
        let v: Value = serde_json::from_str(&stats).unwrap_or_default();
        v["pending"] == 0 && v["in_flight"] == 0 && v["retrying"] == 0
    };
    while !idle(get("/admin/inbox").await) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("GET /admin/inbox → {}", get("/admin/inbox").await);
    let letters: Value =
        serde_json::from_str(&get("/admin/dead-letters").await).unwrap_or_default();
    println!("GET /admin/dead-letters → {letters}");
    let kept: Value = serde_json::from_str(&get("/admin/quarantine").await).unwrap_or_default();
    println!(
        "GET /admin/quarantine → id {}, {} bytes kept exactly, error: {}",
        kept[0]["id"], kept[0]["bytes"], kept[0]["error"]
    );
    if let Some(id) = letters[0]["id"].as_u64() {
        let path = format!("/admin/dead-letters/{id}/replay");
        let (status, body) = admin(&app, &http::Method::POST, &path, &headers).await;
        println!("POST {path} → {status} {body} (the CRM is back)");
    }
    // The replay is appended; wait for the workers to take and finish it.
    tokio::time::sleep(Duration::from_millis(100)).await;
    while !idle(get("/admin/inbox").await) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let lines = journal.lock().map(|j| j.clone()).unwrap_or_default();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for line in &lines {
        let v: Value = serde_json::from_str(line).unwrap_or_default();
        let decision = v["decision"].as_str().unwrap_or("?").to_owned();
        if v["eventId"]
            .as_str()
            .is_some_and(|id| id.starts_with("slow-"))
        {
            *counts.entry(decision).or_default() += 1;
        } else {
            println!("  {line}");
        }
    }
    println!("  …and the 20 slow events: {counts:?}");
    app.shutdown(Duration::from_secs(2)).await;
}

fn shorten(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_owned()
    } else {
        format!("{}…", text.chars().take(width - 1).collect::<String>())
    }
}

/// One admin request without HTTP; `path` starts with `/admin`.
async fn admin(
    app: &App,
    method: &http::Method,
    path: &str,
    headers: &http::HeaderMap,
) -> (http::StatusCode, String) {
    let Some(admin) = app.endpoint.admin() else {
        return (
            http::StatusCode::NOT_FOUND,
            r#"{"error":"not found"}"#.to_owned(),
        );
    };
    let below = path.strip_prefix("/admin").unwrap_or(path);
    let response = admin.handle(method, below, headers).await;
    let body = String::from_utf8_lossy(response.body()).into_owned();
    (response.status(), body)
}
