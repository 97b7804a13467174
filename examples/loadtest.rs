//! End-to-end load test on loopback: the axum receiver (auth + parse +
//! engine + the example handler) next to a bare axum server that only
//! reads the body and answers 202, both hit the same way in one run, with signed one-event
//! deliveries whose ids are all new (in this run and against any store's
//! earlier contents).
//!
//! ```sh
//! cargo run --release --example loadtest --features axum,simulator,env -- [SECONDS] [CONNECTIONS] [STORE_URL]
//! ```
//!
//! Prints requests per second and p50/p99 latency for each server, and the
//! SDK's share of the cost. Requests go only to 127.0.0.1; the run is bounded
//! in time and stops by itself.

#[path = "common/mod.rs"]
mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use alm_webhooks::Authentication;
use alm_webhooks::auth::SignatureAuth;
use alm_webhooks::config::Config;
use alm_webhooks::endpoint::Mode;
use alm_webhooks::simulator::scenario::{envelope, learner_event};
use common::{App, Knobs};

const SECRET: &str = "loadtest-secret";

/// One keep-alive connection sending signed deliveries until `until`;
/// returns the latency of each acknowledged request.
/// This process's run: event ids are `load-{run}-{n}`, new in every run, so
/// a shared store that outlives runs never answers "duplicate".
fn run_id() -> u128 {
    static RUN: std::sync::OnceLock<u128> = std::sync::OnceLock::new();
    *RUN.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    })
}

fn client(addr: SocketAddr, until: Instant, next: Arc<AtomicUsize>) -> Vec<Duration> {
    let run = run_id();
    let sign = SignatureAuth::new(SECRET);
    let mut latencies = Vec::new();
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return latencies;
    };
    let _ = stream.set_nodelay(true);
    while Instant::now() < until {
        let n = next.fetch_add(1, Ordering::Relaxed) as u64;
        let body = envelope(
            1234,
            &[learner_event(
                &format!("load-{run}-{n}"),
                "COURSE_ENROLLMENT",
                1725600000,
                n,
                "course:1_2",
            )],
        );
        let request = format!(
            "POST /webhooks HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nx-alm-signature: {}\r\n\r\n",
            body.len(),
            sign.sign(&body)
        );
        let started = Instant::now();
        if stream
            .write_all(request.as_bytes())
            .and_then(|()| stream.write_all(&body))
            .is_err()
        {
            break;
        }
        let complete = common::client::accepted(&mut stream);
        if !complete {
            break;
        }
        latencies.push(started.elapsed());
    }
    latencies
}

fn run(
    name: &str,
    addr: SocketAddr,
    seconds: u64,
    connections: usize,
    next: &Arc<AtomicUsize>,
) -> (f64, Duration, Duration) {
    let until = Instant::now() + Duration::from_secs(seconds);
    let threads: Vec<_> = (0..connections)
        .map(|_| {
            let next = Arc::clone(next);
            std::thread::spawn(move || client(addr, until, next))
        })
        .collect();
    let mut all: Vec<Duration> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap_or_default())
        .collect();
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let rps = all.len() as f64 / seconds as f64;
    println!(
        "{name:<28} {:>9.0} req/s   p50 {:>8.1?}   p99 {:>8.1?}   ({} requests)",
        rps,
        pct(0.50),
        pct(0.99),
        all.len()
    );
    (rps, pct(0.50), pct(0.99))
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5);
    let connections: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(8);
    let store_url = args.next().unwrap_or_else(|| "memory".into());
    let start = |mode: Mode| {
        let mut config = Config::default();
        config.listen = "127.0.0.1:0".parse().expect("an address");
        config.auth = Authentication::Signature(SignatureAuth::new(SECRET));
        config.store.url = store_url.clone();
        config.inbox.mode = mode;
        async move {
            let journal = Arc::new(std::sync::Mutex::new(Vec::new()));
            let app = App::with_journal(config, Knobs::default(), journal)
                .await
                .unwrap_or_else(|e| {
                    eprintln!("error: {e}");
                    std::process::exit(2);
                });
            common::serve::axum(&app).await.expect("a port")
        }
    };
    let sdk = start(Mode::Inline).await;
    let inbox = start(Mode::Inbox).await;
    let bare_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let bare = bare_listener.local_addr().expect("an address");
    let bare_app = axum::Router::new().route(
        "/webhooks",
        axum::routing::post(|_body: axum::body::Bytes| async { http::StatusCode::ACCEPTED }),
    );
    tokio::spawn(async move { axum::serve(bare_listener, bare_app).await });

    println!(
        "{seconds} s per server, {connections} keep-alive connections, signed 1-event deliveries, store {store_url}"
    );
    let next = Arc::new(AtomicUsize::new(0));
    let (bare_rps, bare_p50, _) = tokio::task::spawn_blocking({
        let next = Arc::clone(&next);
        move || run("bare axum (202 only)", bare, seconds, connections, &next)
    })
    .await
    .expect("the run completes");
    let (sdk_rps, sdk_p50, _) = tokio::task::spawn_blocking({
        let next = Arc::clone(&next);
        move || {
            run(
                "alm-webhooks, inline mode",
                sdk,
                seconds,
                connections,
                &next,
            )
        }
    })
    .await
    .expect("the run completes");
    let (inbox_rps, inbox_p50, _) = tokio::task::spawn_blocking({
        let next = Arc::clone(&next);
        move || {
            run(
                "alm-webhooks, inbox mode",
                inbox,
                seconds,
                connections,
                &next,
            )
        }
    })
    .await
    .expect("the run completes");
    if sdk_rps > 0.0 && bare_rps > 0.0 {
        let share = 100.0 * (1.0 / sdk_rps - 1.0 / bare_rps) / (1.0 / sdk_rps);
        println!(
            "the SDK's share of the cost per request, inline: {share:.0} % (p50 {:.1?} over bare)",
            sdk_p50.saturating_sub(bare_p50)
        );
    }
    if inbox_rps > 0.0 && bare_rps > 0.0 {
        let share = 100.0 * (1.0 / inbox_rps - 1.0 / bare_rps) / (1.0 / inbox_rps);
        println!(
            "the SDK's share of the cost per request, inbox: {share:.0} % (p50 {:.1?} over bare)",
            inbox_p50.saturating_sub(bare_p50)
        );
    }
}
