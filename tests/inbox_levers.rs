//! The operator's levers on every inbox backend this build has (issue 26):
//! a pause kept in the backend outlives a restart of the receiver and
//! keeps the account's order; the admin API pauses and resumes accounts
//! and replays or discards every dead letter and quarantined body a filter
//! matches, a page at a time. PostgreSQL is at `ALM_TEST_POSTGRES_URL`,
//! Redis at `ALM_TEST_REDIS_URL`; a service that is not reachable is
//! skipped with a message (a failure under `CI=true`).

#![cfg(all(feature = "sqlite", feature = "postgres", feature = "redis"))]

mod support;

use std::sync::Arc;
use std::time::Duration;

use alm_webhooks::AccountId;
use alm_webhooks::admin::{AdminApi, AdminToken};
use alm_webhooks::inbox::{
    Inbox, NewDeadLetter, NewDelivery, NewQuarantined, Pause, PauseScope, PostgresInbox,
    RedisInbox, SqliteInbox,
};
use alm_webhooks::store::PostgresStore;
use http::{HeaderMap, Method, StatusCode};
use serde_json::Value;
use time::OffsetDateTime;

const LEASE: Duration = Duration::from_secs(30);
const TOKEN: &str = "levers-test-admin-token-0123456789abcdef";

fn postgres_url() -> String {
    std::env::var("ALM_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn redis_url() -> String {
    std::env::var("ALM_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned())
}

fn unique() -> String {
    format!(
        "{:016x}",
        alm_webhooks::inbox::LeaseToken::random().0 as u64
    )
}

/// `None` when the service is not reachable (a panic under `CI=true`).
fn reachable<T>(result: Result<T, impl std::fmt::Display>, what: &str) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{what} is required under CI=true but is not reachable ({e})")
        }
        Err(e) => {
            eprintln!("skipped: {what} not reachable ({e})");
            None
        }
    }
}

/// Drops a PostgreSQL schema, or deletes Redis keys, or a file, at the end.
enum Cleanup {
    Schema(String),
    Keys(String),
    File(std::path::PathBuf),
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        match self {
            Self::Schema(schema) => {
                let schema = schema.clone();
                std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    runtime.block_on(async {
                        let url = postgres_url();
                        let store = PostgresStore::connect_with_schema(&url, &schema);
                        if let Ok(store) = store.await {
                            let _ = store.drop_schema().await;
                        }
                    });
                })
                .join()
                .unwrap();
            }
            Self::Keys(prefix) => support::redis_keys::purge(&redis_url(), prefix),
            Self::File(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut path = path.clone().into_os_string();
                    path.push(suffix);
                    let _ = std::fs::remove_file(path);
                }
            }
        }
    }
}

async fn sqlite_pair() -> (SqliteInbox, SqliteInbox, Cleanup) {
    let path = std::env::temp_dir().join(format!("alm-levers-{}.db", unique()));
    let first = SqliteInbox::open(&path).unwrap();
    let second = SqliteInbox::open(&path).unwrap();
    (first, second, Cleanup::File(path))
}

async fn postgres_pair() -> Option<(PostgresInbox, PostgresInbox, Cleanup)> {
    let schema = format!("alm_levers_{}", unique());
    reachable(
        PostgresInbox::migrate(&postgres_url(), &schema).await,
        "PostgreSQL",
    )?;
    let cleanup = Cleanup::Schema(schema.clone());
    let url = postgres_url();
    let first = PostgresInbox::connect_with_schema(&url, &schema).await;
    let second = PostgresInbox::connect_with_schema(&url, &schema).await;
    Some((first.unwrap(), second.unwrap(), cleanup))
}

async fn redis_pair() -> Option<(RedisInbox, RedisInbox, Cleanup)> {
    let prefix = format!("alm-levers:{}:", unique());
    let first = reachable(
        RedisInbox::connect_with_prefix(&redis_url(), &prefix).await,
        "Redis",
    )?;
    let second = RedisInbox::connect_with_prefix(&redis_url(), &prefix).await;
    Some((first, second.unwrap(), Cleanup::Keys(prefix)))
}

fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_750_000_000 + seconds).unwrap()
}

async fn append(inbox: &impl Inbox, account: u64, body: &[u8]) {
    let delivery = NewDelivery {
        account_id: AccountId(account),
        body,
        received_at: at(0),
    };
    inbox.append(delivery).await.unwrap();
}

/// The bodies taken (and completed) until none is left to take.
async fn drain(inbox: &impl Inbox) -> Vec<String> {
    let mut bodies = Vec::new();
    while let Some(taken) = inbox.take(LEASE, at(0)).await.unwrap() {
        assert!(inbox.complete(taken.id, taken.token, &[]).await.unwrap());
        bodies.push(String::from_utf8(taken.body).unwrap());
    }
    bodies
}

/// Account 7 paused by one process; the process restarts (a new inbox on
/// the same backend): the pause is still there, account 7's deliveries
/// wait in order while account 8's go; resumed, they drain in order.
async fn pause_outlives_a_restart(before: impl Inbox, after: impl Inbox) {
    before
        .pause(PauseScope::Account(AccountId(7)), at(0))
        .await
        .unwrap();
    for n in 1..=5 {
        append(&before, 7, format!("a7-{n}").as_bytes()).await;
    }
    append(&before, 8, b"a8-1").await;
    drop(before);
    assert_eq!(
        after.pauses().await.unwrap(),
        vec![Pause::new(PauseScope::Account(AccountId(7)), at(0))]
    );
    assert_eq!(drain(&after).await, ["a8-1"], "only account 8 is taken");
    assert!(
        after
            .resume(PauseScope::Account(AccountId(7)))
            .await
            .unwrap()
    );
    let expected: Vec<String> = (1..=5).map(|n| format!("a7-{n}")).collect();
    assert_eq!(drain(&after).await, expected, "in the order acknowledged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_pause_outlives_a_restart() {
    let (before, after, _cleanup) = sqlite_pair().await;
    pause_outlives_a_restart(before, after).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_pause_outlives_a_restart() {
    if let Some((before, after, _cleanup)) = postgres_pair().await {
        pause_outlives_a_restart(before, after).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_pause_outlives_a_restart() {
    if let Some((before, after, _cleanup)) = redis_pair().await {
        pause_outlives_a_restart(before, after).await;
    }
}

/// One admin call with the token; the status and the JSON body (`null`
/// when empty).
async fn call<I: Inbox>(
    api: &AdminApi<I>,
    method: Method,
    path: &str,
    body: &str,
) -> (StatusCode, Value) {
    let mut headers = HeaderMap::new();
    headers.insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    let answer = api
        .handle_with_body(&method, path, &headers, body.as_bytes())
        .await;
    let json = if answer.body().is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(answer.body()).unwrap()
    };
    (answer.status(), json)
}

fn letter(account: u64, name: &str, error: &str, seconds: i64, n: usize) -> NewDeadLetter {
    let id = format!("e{account}-{name}-{n}");
    NewDeadLetter {
        account_id: AccountId(account),
        event_id: Some(id.clone()),
        event_name: Some(name.to_owned()),
        event: format!(r#"{{"eventId":"{id}","eventName":"{name}"}}"#),
        error: error.to_owned(),
        attempts: 3,
        at: at(seconds),
    }
}

/// Keeps `letters` as the dead letters of one completed delivery.
async fn keep(inbox: &impl Inbox, letters: &[NewDeadLetter]) {
    append(inbox, 99, b"{}").await;
    let taken = inbox.take(LEASE, at(0)).await.unwrap().unwrap();
    assert!(
        inbox
            .complete(taken.id, taken.token, letters)
            .await
            .unwrap()
    );
}

/// The admin API over `inbox`: pause and resume (one account, every
/// account, a bad id), and bulk replay and discard by filter over more
/// dead letters than one page.
async fn admin_levers<I: Inbox>(inbox: I) {
    let inbox = Arc::new(inbox);
    let api = AdminApi::new(Arc::clone(&inbox), AdminToken::new(TOKEN));
    let post = |path: &'static str, body: &'static str| call(&api, Method::POST, path, body);

    assert_eq!(
        post("/accounts/7/pause", "").await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        post("/accounts/all/pause", "").await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        post("/accounts/seven/pause", "").await.0,
        StatusCode::NOT_FOUND
    );
    let (_, figures) = call(&api, Method::GET, "/inbox", "").await;
    assert_eq!(
        (figures["paused"].clone(), figures["pausedAll"].clone()),
        (serde_json::json!([7]), Value::Bool(true))
    );
    assert_eq!(
        post("/accounts/all/resume", "").await.0,
        StatusCode::NO_CONTENT
    );
    let (_, figures) = call(&api, Method::GET, "/inbox", "").await;
    assert_eq!(figures["paused"], serde_json::json!([]));

    // 150 of account 7 (CRM timed out, at 10 s), 60 of account 8 (at 20 s
    // and 30 s), more than one page of 100.
    let mut letters: Vec<_> = (0..150)
        .map(|n| letter(7, "COURSE_COMPLETED", "CRM timed out", 10, n))
        .collect();
    letters.extend((0..30).map(|n| letter(8, "COURSE_ENROLLMENT", "CRM refused: 400", 20, n)));
    letters.extend((0..30).map(|n| letter(8, "COURSE_COMPLETED", "CRM timed out", 30, n)));
    keep(&*inbox, &letters).await;

    let (status, error) = post("/dead-letters/replay", r#"{"from": "now"}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error["error"].as_str().unwrap().contains("`from`"),
        "{error}"
    );
    assert_eq!(
        post("/dead-letters/discard", "").await.0,
        StatusCode::BAD_REQUEST
    );

    let from_25s =
        r#"{"accountId": 8, "errorContains": "timed out", "from": "2025-06-15T15:07:05Z"}"#;
    assert_eq!(at(25).to_string(), "2025-06-15 15:07:05.0 +00:00:00");
    let (status, done) = post("/dead-letters/replay", from_25s).await;
    assert_eq!(
        (status, done),
        (StatusCode::OK, serde_json::json!({"matched": 30}))
    );
    let (_, done) = post(
        "/dead-letters/discard",
        r#"{"eventName": "COURSE_ENROLLMENT"}"#,
    )
    .await;
    assert_eq!(done, serde_json::json!({"matched": 30}));
    let (_, done) = post(
        "/dead-letters/replay",
        r#"{"accountId": 7, "to": "2025-06-15T15:06:50Z"}"#,
    )
    .await;
    assert_eq!(
        done,
        serde_json::json!({"matched": 0}),
        "kept at 10 s, not before `to`"
    );
    let stats = inbox.stats(at(0)).await.unwrap();
    assert_eq!(
        (stats.dead_letters, stats.pending),
        (150, 30),
        "30 replayed as deliveries"
    );
    let (_, done) = post("/dead-letters/discard", "{}").await;
    assert_eq!(done, serde_json::json!({"matched": 150}));
    assert_eq!(inbox.stats(at(0)).await.unwrap().dead_letters, 0);
    drain(&*inbox).await;

    // Quarantined bodies: one of account 7 that parses now, one that does
    // not, one of account 8.
    for (account, body) in [
        (7, &br#"{"accountId":7,"events":[]}"#[..]),
        (7, b"{\"accountId\":7,"),
        (8, b"{\"accountId\":8,"),
    ] {
        let kept = NewQuarantined {
            account_id: Some(AccountId(account)),
            body,
            error: "EOF",
            received_at: at(0),
        };
        inbox.quarantine(kept).await.unwrap();
    }
    let (_, done) = post("/quarantine/replay", r#"{"accountId": 7}"#).await;
    assert_eq!(
        done,
        serde_json::json!({"matched": 2, "done": 1}),
        "one still does not parse"
    );
    let (_, done) = post("/quarantine/discard", r#"{"errorContains": "EOF"}"#).await;
    assert_eq!(done, serde_json::json!({"matched": 2}));
    assert_eq!(drain(&*inbox).await, [r#"{"accountId":7,"events":[]}"#]);
    assert_eq!(
        post("/quarantine/archive", "{}").await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_admin_levers() {
    admin_levers(alm_webhooks::inbox::MemoryInbox::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_admin_levers() {
    let (inbox, _, _cleanup) = sqlite_pair().await;
    admin_levers(inbox).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_admin_levers() {
    if let Some((inbox, _, _cleanup)) = postgres_pair().await {
        admin_levers(inbox).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_admin_levers() {
    if let Some((inbox, _, _cleanup)) = redis_pair().await {
        admin_levers(inbox).await;
    }
}

/// A bulk replay while workers run: each replayed event fails again at
/// once (one attempt) and is dead-lettered anew, with a higher id, while
/// the replay is still paging. The replay takes only what was kept when it
/// began: 2,000 matched, not the new ones again (without that bound it
/// would chase its own tail).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_replay_leaves_alone_what_is_dead_lettered_meanwhile() {
    use alm_webhooks::inbox::{
        BulkAction, KeptFilter, MemoryInbox, RetryPolicy, WorkerOptions, Workers, bulk_dead_letters,
    };
    let inbox = Arc::new(MemoryInbox::new());
    let letters: Vec<_> = (0..2000)
        .map(|n| {
            let mut letter = letter(7, "COURSE_ENROLLMENT", "CRM down", 10, n);
            letter.event = format!(
                r#"{{"eventId":"again-{n}","eventName":"COURSE_ENROLLMENT","timestamp":1750000000,"data":{{"userId":{n},"loId":"course:9","loInstanceId":"course:9_1","progressPercent":50}}}}"#
            );
            letter
        })
        .collect();
    keep(&*inbox, &letters).await;
    let retry = RetryPolicy {
        max_attempts: 1,
        ..RetryPolicy::default()
    };
    let options = WorkerOptions::new()
        .with_retry(retry)
        .with_poll_interval(Duration::from_millis(1));
    let pool = Workers::new(alm_webhooks::Engine::in_memory(), Arc::clone(&inbox))
        .with_options(options)
        .start(|_event| async { Err("CRM still down".into()) });
    let now = OffsetDateTime::now_utc();
    let outcome = bulk_dead_letters(&*inbox, &KeptFilter::default(), BulkAction::Replay, now)
        .await
        .unwrap();
    assert_eq!((outcome.matched, outcome.done), (2000, 2000));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while inbox.stats(now).await.unwrap().dead_letters < 2000 {
        assert!(
            std::time::Instant::now() < deadline,
            "the replays were not dead-lettered again"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(pool.shutdown(Duration::from_secs(5)).await);
    let stats = inbox.stats(now).await.unwrap();
    assert_eq!(
        (stats.dead_letters, stats.pending),
        (2000, 0),
        "each dead-lettered once more"
    );
}
