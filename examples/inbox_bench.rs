//! What the inbox costs on each backend: the acknowledgement latency (the
//! front door's checks and the append, as the inbox-mode receiver does
//! before it answers `202`) of 1-event and 5,000-event deliveries, and how
//! fast workers drain 100-event deliveries with a handler that does nothing,
//! with the machine's busy CPU time per drained event meanwhile (every
//! process, the database server's too; from `/proc/stat`, Linux only).
//!
//! ```sh
//! cargo run --release --example inbox_bench --features simulator,postgres,redis,sqlite -- \
//!     memory sqlite:/tmp/inbox-bench.db "postgres://postgres@127.0.0.1:5432/test?migrate=true" \
//!     redis://127.0.0.1:6379/
//! ```
//!
//! Each URL names both the inbox and the engine's store. Every run uses new
//! event ids; deliveries appended by the latency runs are taken and
//! completed unprocessed before the drain run, so the drain counts only its
//! own. Each latency run first makes three acknowledgements it does not
//! count (their times go to stderr). Environment: `BENCH_ACKS` (1-event
//! acknowledgements measured, default 500; a tenth as many 5,000-event
//! ones), `BENCH_DRAIN_EVENTS` (default 20,000), `BENCH_ACCOUNTS`
//! (accounts the drain's deliveries are spread over, default 8),
//! `BENCH_WORKERS` (default 4),
//! `BENCH_PROJECTION` (`on`: the engine's store keeps the learner table,
//! every drained event a record of its own; default off),
//! `ALM_COMMIT_BATCH` (the engine's, default 100), `BENCH_ARCHIVE_DAYS`
//! (the workers' archive retention in days, default the library's 30;
//! `0` turns the archive off, to measure what it costs the drain),
//! `BENCH_TAKE_BATCH` (deliveries of one account a worker takes in one
//! step, default the library's `DEFAULT_TAKE_BATCH`; `1` takes one at a
//! time).

use std::sync::Arc;
use std::time::{Duration, Instant};

use alm_webhooks::auth::SignatureAuth;
use alm_webhooks::inbox::{AnyInbox, Inbox, NewDelivery, Workers};
use alm_webhooks::simulator::scenario::{envelope, learner_event};
use alm_webhooks::store::AnyStore;
use alm_webhooks::{Authentication, DeliveryReceiver, Engine, Event};
use time::OffsetDateTime;

const SECRET: &str = "bench-secret";

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{name} is a number")))
        .unwrap_or(default)
}

fn body(run: &str, account: u64, first: u64, events: u64) -> Vec<u8> {
    let events: Vec<_> = (first..first + events)
        .map(|n| {
            learner_event(
                &format!("{run}-{account}-{n}"),
                "COURSE_ENROLLMENT",
                1_725_600_000,
                n,
                "course:1_2",
            )
        })
        .collect();
    envelope(account, &events)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let at = ((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1));
    sorted.get(at).copied().unwrap_or_default()
}

/// Acknowledgements made before the measured ones: the first appends of a
/// run meet a new table, an empty plan cache and unsized buffers, which a
/// receiver that has been running does not. Their times are printed apart.
const WARM_UP: usize = 3;

/// p50 and p99 of `reps` acknowledgements of an `events`-event delivery,
/// after [`WARM_UP`] unmeasured ones.
async fn acknowledgements(
    inbox: &AnyInbox,
    receiver: &DeliveryReceiver,
    run: &str,
    events: u64,
    reps: usize,
) -> (Duration, Duration) {
    let body = body(run, 1, 0, events);
    let mut headers = http::HeaderMap::new();
    let signature = SignatureAuth::new(SECRET).sign(&body);
    headers.insert(
        "x-alm-signature",
        signature.parse().expect("a header value"),
    );
    let mut times = Vec::with_capacity(WARM_UP + reps);
    for _ in 0..WARM_UP + reps {
        let started = Instant::now();
        let now = OffsetDateTime::now_utc();
        let account_id = receiver
            .verify_at(&headers, &body, now)
            .expect("a valid delivery");
        inbox
            .append(NewDelivery {
                account_id,
                body: &body,
                received_at: OffsetDateTime::now_utc(),
            })
            .await
            .expect("the inbox takes it");
        times.push(started.elapsed());
    }
    let mut measured = times.split_off(WARM_UP.min(times.len()));
    eprintln!("  warm-up acknowledgements of {events} event(s), not counted: {times:.2?}");
    measured.sort();
    let times = measured;
    (percentile(&times, 0.50), percentile(&times, 0.99))
}

/// Takes and completes, unprocessed, whatever the inbox holds.
async fn empty(inbox: &AnyInbox) {
    let lease = Duration::from_secs(60);
    while let Some(taken) = inbox
        .take(lease, OffsetDateTime::now_utc())
        .await
        .expect("take")
    {
        inbox
            .complete(taken.id, taken.token, &[])
            .await
            .expect("complete");
    }
}

/// `BENCH_ARCHIVE_DAYS`, or the library's default.
fn archive_retention() -> Duration {
    match std::env::var("BENCH_ARCHIVE_DAYS") {
        Ok(days) => Duration::from_secs(days.parse::<u64>().expect("a number of days") * 86_400),
        Err(_) => alm_webhooks::inbox::DEFAULT_ARCHIVE_RETENTION,
    }
}

/// The machine's busy CPU time so far (every process: the benchmark and
/// the database server), from `/proc/stat`; `None` where there is none.
fn machine_busy() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .map_while(|f| f.parse().ok())
        .collect();
    // user, nice, system, idle, iowait, irq, softirq, steal: all but idle
    // and iowait, in clock ticks (100 per second on Linux).
    let busy: u64 = [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&i| fields.get(i))
        .sum();
    Some(Duration::from_millis(busy * 10))
}

/// Events per second drained by `workers` workers, and the machine's busy
/// CPU time per event meanwhile (steadier than the rate on a small,
/// shared machine).
async fn drain(url: &str, inbox: Arc<AnyInbox>, run: &str) -> (f64, Option<Duration>) {
    let (total, accounts) = (env("BENCH_DRAIN_EVENTS", 20_000), env("BENCH_ACCOUNTS", 8));
    let deliveries = total.div_ceil(100);
    for d in 0..deliveries {
        let account = (d % accounts) as u64 + 1;
        let body = body(run, account, (d as u64) * 100, 100);
        inbox
            .append(NewDelivery {
                account_id: alm_webhooks::AccountId(account),
                body: &body,
                received_at: OffsetDateTime::now_utc(),
            })
            .await
            .expect("append");
    }
    let mut store = AnyStore::from_url(url).await.expect("the store opens");
    if std::env::var("BENCH_PROJECTION").as_deref() == Ok("on") {
        store = store
            .with_learner_projection()
            .await
            .expect("the learner table");
    }
    let engine = Engine::builder(store)
        .commit_batch(env("ALM_COMMIT_BATCH", 100))
        .build();
    let (started, busy) = (Instant::now(), machine_busy());
    let pool = Workers::new(engine, Arc::clone(&inbox))
        .with_options(
            alm_webhooks::inbox::WorkerOptions::new()
                .with_count(env("BENCH_WORKERS", 4))
                .with_take_batch(env(
                    "BENCH_TAKE_BATCH",
                    alm_webhooks::inbox::DEFAULT_TAKE_BATCH,
                ))
                .with_archive(archive_retention())
                .with_poll_interval(Duration::from_millis(1)),
        )
        .start(|_event: Event| async { Ok(()) });
    loop {
        let stats = inbox.stats(OffsetDateTime::now_utc()).await.expect("stats");
        if stats.pending + stats.in_flight + stats.retrying == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = started.elapsed();
    let events = (deliveries * 100) as u32;
    let cpu = busy.zip(machine_busy()).map(|(a, b)| (b - a) / events);
    pool.shutdown(Duration::from_secs(5)).await;
    (f64::from(events) / elapsed.as_secs_f64(), cpu)
}

#[tokio::main]
async fn main() {
    let mut urls: Vec<String> = std::env::args().skip(1).collect();
    if urls.is_empty() {
        urls.push("memory".to_owned());
    }
    let reps = env("BENCH_ACKS", 500);
    let receiver = DeliveryReceiver::new(Authentication::Signature(SignatureAuth::new(SECRET)))
        .with_max_body_bytes(64 * 1024 * 1024);
    let run = format!(
        "bench{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis())
    );
    println!(
        "backend    ack 1 event p50 / p99     ack 5,000 events p50 / p99     drain (events/s)   CPU per event"
    );
    for (index, url) in urls.iter().enumerate() {
        let run = format!("{run}-{index}");
        let inbox = match AnyInbox::from_url(url).await {
            Ok(inbox) => Arc::new(inbox),
            Err(e) => {
                eprintln!("{url}: {e}");
                std::process::exit(2);
            }
        };
        empty(&inbox).await;
        let one = acknowledgements(&inbox, &receiver, &format!("{run}-one"), 1, reps).await;
        let bulk =
            acknowledgements(&inbox, &receiver, &format!("{run}-bulk"), 5000, reps / 10).await;
        empty(&inbox).await;
        let (rate, cpu) = drain(url, Arc::clone(&inbox), &format!("{run}-drain")).await;
        let scheme = url.split(':').next().unwrap_or("memory");
        println!(
            "{scheme:<10} {:>8.2?} / {:>8.2?}     {:>10.2?} / {:>10.2?}          {rate:>10.0}   {:>10}",
            one.0,
            one.1,
            bulk.0,
            bulk.1,
            cpu.map_or_else(
                || "n/a".to_owned(),
                |c| format!("{:.1} µs", c.as_secs_f64() * 1e6)
            )
        );
    }
}
