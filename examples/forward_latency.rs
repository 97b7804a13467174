//! The time from ALM's POST to the broker's acknowledgement: the example
//! receiver (inbox mode, inbox and store on PostgreSQL, the learner
//! projection on, `ALM_FORWARD` to NATS JetStream) under a steady load of
//! signed deliveries, each account sending one delivery at a time as ALM
//! does; a NATS subscriber on the forwarded subjects notes when each event
//! arrives. Numbers go to BENCHMARKS.md.
//!
//! ```sh
//! cargo run --release --example forward_latency --features axum,simulator,env,postgres,nats -- \
//!     [EVENTS_PER_SECOND] [SECONDS] [ACCOUNTS] [EVENTS_PER_DELIVERY]
//! ```
//!
//! Defaults: 5,000 events/s for 20 s over 10 accounts, 10 events per
//! delivery; the receiver's defaults otherwise (`ALM_PROJECTION=off` and
//! `ALM_ARCHIVE_DAYS=0` turn those two off). Each delivery has a scheduled send time (the load is
//! open: a late sender does not lower it), and an event's latency is its
//! arrival at the subscriber minus its delivery's scheduled time, so a
//! queue anywhere (the sender, the `202`, the inbox, the engine, the
//! outbox, the relay, JetStream) counts. JetStream hands a message to a
//! subscriber when it has stored it, the moment it also acknowledges the
//! publish: the arrival is the acknowledgement, give or take the loopback.
//! Needs PostgreSQL at `ALM_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`; a schema of its own, dropped
//! at the end) and NATS at `ALM_TEST_NATS_URL` (default
//! `nats://127.0.0.1:4222`).

#[path = "common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alm_webhooks::Authentication;
use alm_webhooks::auth::SignatureAuth;
use alm_webhooks::config::Config;
use alm_webhooks::endpoint::Mode;
use alm_webhooks::simulator::scenario::{envelope, learner_event};
use common::{App, Knobs};
use futures_util::StreamExt;

/// The JetStream stream the receiver forwards to (created by the receiver,
/// deleted before and after each run).
const STREAM: &str = "ALMLAT";

const SECRET: &str = "latency-secret";

/// When each event was sent (its delivery's scheduled time).
type Sent = Arc<Mutex<HashMap<String, Instant>>>;

/// One account: a delivery of `per` events every `every` from `start`, one
/// at a time; gives the acknowledgement times.
fn account(
    addr: SocketAddr,
    run: u128,
    account: u64,
    (per, start, every, until): (usize, Instant, Duration, Instant),
    sent: Sent,
) -> Vec<Duration> {
    let sign = SignatureAuth::new(SECRET);
    let mut stream = TcpStream::connect(addr).expect("the receiver");
    let _ = stream.set_nodelay(true);
    let (mut acks, mut scheduled, mut n) = (Vec::new(), start, 0u64);
    while scheduled < until {
        if let Some(wait) = scheduled.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let events: Vec<_> = (0..per)
            .map(|_| {
                n += 1;
                let id = format!("lat-{run}-{account}-{n}");
                learner_event(&id, "COURSE_ENROLLMENT", 1725600000, n, "course:1_2")
            })
            .collect();
        let ids: Vec<String> = (n + 1 - per as u64..=n)
            .map(|k| format!("lat-{run}-{account}-{k}"))
            .collect();
        let body = envelope(account, &events);
        let head = format!(
            "POST /webhooks HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nx-alm-signature: {}\r\n\r\n",
            body.len(),
            sign.sign(&body)
        );
        sent.lock()
            .expect("not poisoned")
            .extend(ids.into_iter().map(|id| (id, scheduled)));
        let wrote = stream
            .write_all(head.as_bytes())
            .and_then(|()| stream.write_all(&body));
        assert!(
            wrote.is_ok() && common::client::accepted(&mut stream),
            "a 202"
        );
        acks.push(scheduled.elapsed());
        scheduled += every;
    }
    acks
}

fn percentiles(mut all: Vec<Duration>) -> String {
    all.sort();
    let at = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    format!(
        "p50 {:>7.1?}  p99 {:>7.1?}  p99.9 {:>7.1?}  max {:>7.1?}  ({} samples)",
        at(0.50),
        at(0.99),
        at(0.999),
        all[all.len() - 1],
        all.len()
    )
}

#[tokio::main]
async fn main() {
    let arg = |i: usize, default: u64| {
        std::env::args()
            .nth(i)
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let (rate, seconds, accounts, per) = (arg(1, 5000), arg(2, 20), arg(3, 10), arg(4, 10));
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let pg = std::env::var("ALM_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let nats =
        std::env::var("ALM_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let schema = format!("alm_latency_{}", run % 1_000_000_000);
    let url = format!("{pg}?schema={schema}&migrate=true");
    let host = nats.trim_start_matches("nats://");

    let mut config = Config::default();
    config.listen = "127.0.0.1:0".parse().expect("an address");
    config.auth = Authentication::Signature(SignatureAuth::new(SECRET));
    config.store.url = url.clone();
    config.store.forward = Some(format!("nats://{host}/almlat?stream={STREAM}"));
    config.inbox.mode = Mode::Inbox;
    config.inbox.url = Some(url);
    // To see what each part costs: `ALM_PROJECTION=off`, `ALM_ARCHIVE_DAYS=0`.
    if std::env::var("ALM_PROJECTION").as_deref() == Ok("off") {
        config.store.projection = false;
    }
    if std::env::var("ALM_ARCHIVE_DAYS").as_deref() == Ok("0") {
        config.inbox.archive = Duration::ZERO;
    }
    // Each run starts with an empty stream (the runs would otherwise pile
    // up in it: 100,000 messages each) and leaves none behind.
    let client = async_nats::connect(&nats).await.expect("NATS");
    let jetstream = async_nats::jetstream::new(client.clone());
    let _ = jetstream.delete_stream(STREAM).await;
    let journal = Arc::new(Mutex::new(Vec::new()));
    let app = App::with_journal(config, Knobs::default(), journal)
        .await
        .unwrap_or_else(|e| panic!("the receiver: {e}"));
    let addr = common::serve::axum(&app).await.expect("a port");

    let mut arrivals = client.subscribe("almlat.>").await.expect("a subscription");
    client.flush().await.expect("subscribed");
    let total = (rate * seconds) as usize;
    let collector = tokio::spawn(async move {
        let mut seen: HashMap<String, Instant> = HashMap::new();
        let prefix = format!("lat-{run}-");
        while seen.len() < total {
            let next = tokio::time::timeout(Duration::from_secs(30), arrivals.next()).await;
            let Ok(Some(message)) = next else { break };
            let at = Instant::now();
            let id = message
                .headers
                .as_ref()
                .and_then(|h| h.get("alm-event-id"))
                .map(|v| v.as_str().to_owned())
                .unwrap_or_default();
            if id.starts_with(&prefix) {
                seen.entry(id).or_insert(at);
            }
        }
        seen
    });

    println!(
        "{rate} events/s for {seconds} s: {accounts} accounts, {per} events per delivery, \
         inbox + store + outbox on PostgreSQL, forwarded to NATS JetStream"
    );
    let sent = Sent::default();
    let deliveries_per_second = rate as f64 / per as f64 / accounts as f64;
    let every = Duration::from_secs_f64(1.0 / deliveries_per_second);
    let now = Instant::now();
    let until = now + Duration::from_secs(seconds);
    // Independent accounts' sends fall anywhere in the period: spread evenly
    // (`ALM_LATENCY_TOGETHER=1`: all at the same instants, the worst case).
    let together = std::env::var("ALM_LATENCY_TOGETHER").as_deref() == Ok("1");
    let senders: Vec<_> = (1..=accounts)
        .map(|a| {
            let sent = Arc::clone(&sent);
            let offset = if together { 0 } else { (a - 1) as u32 };
            let start = now + every * offset / accounts as u32;
            let plan = (per as usize, start, every, until);
            std::thread::spawn(move || account(addr, run, a, plan, sent))
        })
        .collect();
    let acks: Vec<Duration> = senders
        .into_iter()
        .flat_map(|s| s.join().expect("a sender"))
        .collect();
    let arrived = collector.await.expect("the subscriber");
    let sent = std::mem::take(&mut *sent.lock().expect("not poisoned"));
    let latencies: Vec<Duration> = arrived
        .iter()
        .filter_map(|(id, at)| sent.get(id).map(|s| at.saturating_duration_since(*s)))
        .collect();
    println!("POST -> 202:                {}", percentiles(acks));
    println!("POST -> broker (per event): {}", percentiles(latencies));
    println!("events sent {}, forwarded {}", sent.len(), arrived.len());
    app.shutdown(Duration::from_secs(5)).await;
    let store = alm_webhooks::store::PostgresStore::connect_with_schema(&pg, &schema)
        .await
        .expect("the store");
    store.drop_schema().await.expect("dropped");
    let _ = jetstream.delete_stream(STREAM).await;
}
