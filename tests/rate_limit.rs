//! The rate limit towards the handler (issue 26 item 6): a bulk delivery
//! of 5,000 events, rate-limited to 500 events a second, is acknowledged
//! at once (`202` before its drain has gone far) and drains at 500 events a
//! second ±10 %, on every inbox backend; the backlog and the wait show in
//! the metrics. A second test limits each account.
//!
//! The rate is measured from the handler's own timestamps, over the whole
//! drain: `(events - 1) / (last - first)`, 10 s of events. It is not a
//! speed target of the machine: the upper bound (550/s) is what the token
//! bucket lets through (its burst is a tenth of a second's worth, 50
//! events, which adds 0.5 % over 10 s), so it cannot flake; the lower bound
//! (450/s) needs the receiver to keep up with 500 events a second, which a
//! debug build does with a wide margin (the memory pipeline alone does tens
//! of thousands a second, see BENCHMARKS.md). A window that long makes
//! timer jitter (a millisecond here and there) irrelevant.
//!
//! PostgreSQL is at `ALM_TEST_POSTGRES_URL`, Redis at `ALM_TEST_REDIS_URL`;
//! a service that is not reachable is skipped with a message (a failure
//! under `CI=true`).

#![cfg(all(
    feature = "sqlite",
    feature = "postgres",
    feature = "redis",
    feature = "prometheus"
))]

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alm_webhooks::inbox::{AnyInbox, LeaseToken, MemoryInbox, WorkerOptions};
use alm_webhooks::simulator::scenario::{envelope, learner_event};
use alm_webhooks::store::{AnyStore, Store};
use alm_webhooks::{Authentication, Endpoint, Engine, inbox::Inbox};
use http::HeaderMap;

const EVENTS: u64 = 5_000;
const RATE: u32 = 500;

fn unique() -> String {
    format!("{:016x}", LeaseToken::random().0 as u64)
}

/// `events` enrollments of account `account`, each of its own learner.
fn bulk(account: u64, events: u64) -> Vec<u8> {
    let events: Vec<_> = (0..events)
        .map(|n| {
            let id = format!("rate-{account}-{n}");
            learner_event(
                &id,
                "COURSE_ENROLLMENT",
                1_750_000_000,
                10_000 + n,
                "course:9_1",
            )
        })
        .collect();
    envelope(account, &events)
}

/// When each event's handler ran, by account.
type Runs = Arc<Mutex<Vec<(u64, Instant)>>>;

fn endpoint<S: Store, I: Inbox>(
    engine: Engine<S>,
    inbox: Arc<I>,
    options: WorkerOptions,
    runs: &Runs,
) -> Endpoint {
    let runs = Arc::clone(runs);
    Endpoint::builder(Authentication::None)
        .engine(engine)
        .inbox(inbox, options)
        .max_body_bytes(8 << 20)
        .handler(move |event| {
            let runs = Arc::clone(&runs);
            async move {
                runs.lock()
                    .unwrap()
                    .push((event.account_id.get(), Instant::now()));
                Ok(())
            }
        })
        .build()
        .unwrap()
}

/// Events a second over `times`: `(n - 1) / (last - first)`.
fn rate(times: &mut [Instant]) -> f64 {
    times.sort();
    let span = times[times.len() - 1] - times[0];
    (times.len() - 1) as f64 / span.as_secs_f64()
}

/// A series' value in the Prometheus text (0 when absent).
fn series(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            line.strip_prefix(name)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

/// Waits until `runs` holds `count` runs (60 s at most: a bound, not a
/// measure), returning the most events the backlog gauge showed meanwhile.
async fn drained(runs: &Runs, count: usize) -> f64 {
    let prometheus = alm_webhooks::metrics::installed_prometheus().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut most = 0.0_f64;
    while runs.lock().unwrap().len() < count {
        assert!(
            Instant::now() < deadline,
            "only {} of {count} ran",
            runs.lock().unwrap().len()
        );
        most = most.max(series(
            &prometheus.render(),
            "alm_webhooks_rate_limit_backlog",
        ));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    most
}

/// One backend: the delivery is acknowledged before a tenth of it ran,
/// drains at 500/s ±10 %, and the metrics show the backlog and the wait.
async fn bulk_drains_at_the_rate<S: Store, I: Inbox>(
    backend: &str,
    engine: Engine<S>,
    inbox: Arc<I>,
) {
    let prometheus = alm_webhooks::metrics::installed_prometheus().unwrap();
    let waits = r#"alm_webhooks_rate_limit_wait_seconds_count{limit="receiver"}"#;
    let text = prometheus.render();
    let waits_before = series(&text, waits);
    let waited_before = series(
        &text,
        r#"alm_webhooks_rate_limit_wait_seconds_sum{limit="receiver"}"#,
    );
    let runs: Runs = Arc::default();
    let options = WorkerOptions::new().with_rate_limit(NonZeroU32::new(RATE).unwrap());
    let endpoint = endpoint(engine, inbox, options, &runs);
    let answer = endpoint.handle(&HeaderMap::new(), &bulk(7, EVENTS)).await;
    assert_eq!(answer.status(), 202, "{backend}: {}", answer.body());
    let ran_at_ack = runs.lock().unwrap().len();
    assert!(
        ran_at_ack < EVENTS as usize / 10,
        "{backend}: {ran_at_ack} ran before the 202"
    );
    let backlog = drained(&runs, EVENTS as usize).await;
    assert!(
        backlog > 1000.0,
        "{backend}: the backlog gauge showed at most {backlog}"
    );
    let mut times: Vec<Instant> = runs.lock().unwrap().iter().map(|r| r.1).collect();
    let measured = rate(&mut times);
    eprintln!("{backend}: {EVENTS} events at {measured:.1} events/s (limit {RATE})");
    let (low, high) = (f64::from(RATE) * 0.9, f64::from(RATE) * 1.1);
    assert!(
        (low..=high).contains(&measured),
        "{backend}: {measured:.1} events/s, limit {RATE}"
    );
    endpoint.shutdown(Duration::from_secs(5)).await;
    let text = prometheus.render();
    assert_eq!(
        series(&text, "alm_webhooks_rate_limit_backlog"),
        0.0,
        "{backend}: nothing left"
    );
    // Each run of the handler waited its turn, and the wait shows: about
    // 10 s in all (each event waits for its slot). The exporter drains
    // histogram samples while they are recorded (a render every 100 ms
    // here), and a sample recorded during a drain can miss the render
    // after it: the count is held to 1 % of the runs, not to one.
    let ran = runs.lock().unwrap().len() as f64;
    let counted = series(&text, waits) - waits_before;
    assert!(
        (ran * 0.99..=ran).contains(&counted),
        "{backend}: {counted} waits counted for {ran} handler runs"
    );
    let sum = r#"alm_webhooks_rate_limit_wait_seconds_sum{limit="receiver"}"#;
    let waited = series(&text, sum) - waited_before;
    assert!(
        waited > 5.0,
        "{backend}: the events waited {waited} s in all"
    );
    assert_eq!(
        series(&text, waits) - waits_before,
        ran as f64,
        "{backend}: every handler run waited ({ran} runs)"
    );
}

/// `None` when the service is not reachable (a panic under `CI=true`).
async fn store(url: &str, what: &str) -> Option<AnyStore> {
    match AnyStore::from_url(url).await {
        Ok(store) => Some(store),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{what} is required under CI=true but is not reachable ({e})")
        }
        Err(e) => {
            eprintln!("skipped {what}: not reachable ({e})");
            None
        }
    }
}

/// One test, the backends one after another: they share the process's
/// metrics, and each has the machine to itself for its 10 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_bulk_delivery_is_acknowledged_at_once_and_drains_at_the_rate() {
    alm_webhooks::metrics::install_prometheus().unwrap();
    let memory = Arc::new(MemoryInbox::new());
    bulk_drains_at_the_rate("memory", Engine::in_memory(), memory).await;

    let path = std::env::temp_dir().join(format!("alm-rate-{}.db", unique()));
    let sqlite = AnyStore::from_url(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    let inbox = Arc::new(AnyInbox::from_store(&sqlite).await.unwrap());
    bulk_drains_at_the_rate("sqlite", Engine::builder(sqlite).build(), inbox).await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }

    let pg_url = std::env::var("ALM_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let schema = format!("alm_rate_{}", unique());
    let sep = if pg_url.contains('?') { '&' } else { '?' };
    if let Some(pg) = store(
        &format!("{pg_url}{sep}schema={schema}&migrate=true"),
        "PostgreSQL",
    )
    .await
    {
        let inbox = Arc::new(AnyInbox::from_store(&pg).await.unwrap());
        let dropper = alm_webhooks::store::PostgresStore::connect_with_schema(&pg_url, &schema)
            .await
            .unwrap();
        bulk_drains_at_the_rate("postgres", Engine::builder(pg).build(), inbox).await;
        dropper.drop_schema().await.unwrap();
    }

    let redis_url = std::env::var("ALM_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned());
    let prefix = format!("alm-rate:{}:", unique());
    if let Some(redis) = store(&format!("{redis_url}?prefix={prefix}"), "Redis").await {
        let inbox = Arc::new(AnyInbox::from_store(&redis).await.unwrap());
        bulk_drains_at_the_rate("redis", Engine::builder(redis).build(), inbox).await;
        purge(&redis_url, &prefix);
    }
}

fn purge(url: &str, prefix: &str) {
    let client = redis::Client::open(url).unwrap();
    let mut con = client.get_connection().unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query(&mut con)
        .unwrap();
    if !keys.is_empty() {
        redis::cmd("DEL").arg(&keys).exec(&mut con).unwrap();
    }
}

/// Each account on its own at 200 events a second: two accounts' bulk
/// deliveries (1,000 events each, 5 s) drain side by side, each at 200/s
/// ±10 % (its own timestamps), so together at twice that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_account_drains_at_its_own_rate() {
    let _ = alm_webhooks::metrics::install_prometheus();
    let runs: Runs = Arc::default();
    let options = WorkerOptions::new().with_account_rate_limit(NonZeroU32::new(200).unwrap());
    let inbox = Arc::new(MemoryInbox::new());
    let endpoint = endpoint(Engine::in_memory(), inbox, options, &runs);
    for account in [7, 8] {
        let answer = endpoint
            .handle(&HeaderMap::new(), &bulk(account, 1_000))
            .await;
        assert_eq!(answer.status(), 202);
    }
    drained(&runs, 2_000).await;
    for account in [7, 8] {
        let mut times: Vec<Instant> = runs
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.0 == account)
            .map(|r| r.1)
            .collect();
        let measured = rate(&mut times);
        eprintln!(
            "account {account}: 1000 events at {measured:.1} events/s (limit 200 per account)"
        );
        assert!(
            (180.0..=220.0).contains(&measured),
            "account {account}: {measured:.1} events/s"
        );
    }
    let mut all: Vec<Instant> = runs.lock().unwrap().iter().map(|r| r.1).collect();
    assert!(rate(&mut all) > 300.0, "the accounts drain side by side");
    endpoint.shutdown(Duration::from_secs(5)).await;
}
