//! End-to-end load test on loopback: the axum receiver (auth + parse +
//! engine + the example handler) next to a bare axum server that only
//! reads the body and answers 202, both hit the same way in one run, with signed one-event
//! deliveries whose ids are all new (in this run and against any store's
//! earlier contents).
//!
//! ```sh
//! cargo run --release --example loadtest --features axum,simulator,env -- [SECONDS] [CONNECTIONS] [STORE_URL] [ROUNDS]
//! ```
//!
//! The servers take turns: each round gives each of them `SECONDS` (default
//! 2) in an order that rotates every round, `ROUNDS` times (default 5), so
//! that a burst of load from elsewhere falls on all of them alike. After an
//! inbox-mode phase the next one waits until the inbox's workers have
//! decided every acknowledged event. Prints, per server, the median of the
//! rounds' requests per second, latency and the process's CPU time per
//! request (clients included), and its share of the bare server's rate,
//! round by round. Requests go only to 127.0.0.1; the run is bounded in time
//! and stops by itself.
//!
//! `ALM_LOADTEST_SERVERS=bare,inline` (or any of `bare`, `inline`, `inbox`)
//! runs only those servers' phases, to profile one of them alone
//! (`perf record -g -- loadtest …`); the shares are then of the bare
//! server's rate only when it ran.

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
use common::{App, Knobs, lines};

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

/// One server's phase of a round.
struct Phase {
    /// Acknowledged requests per second.
    rps: f64,
    p50: Duration,
    p99: Duration,
    requests: usize,
    /// The process's CPU time over the phase (and, in inbox mode, until its
    /// workers had decided every acknowledged event), per request.
    cpu_per_request: Option<Duration>,
}

/// The process's CPU time so far (user and system, every thread), from
/// `/proc/self/stat` (in the kernel's `USER_HZ` ticks, 100 per second on
/// Linux); `None` elsewhere.
fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name, which is in parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// Drives `addr` from `connections` keep-alive connections for `seconds`.
fn run(addr: SocketAddr, seconds: f64, connections: usize, next: &Arc<AtomicUsize>) -> Phase {
    let until = Instant::now() + Duration::from_secs_f64(seconds);
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
    Phase {
        rps: all.len() as f64 / seconds,
        p50: pct(0.50),
        p99: pct(0.99),
        requests: all.len(),
        cpu_per_request: None,
    }
}

/// The median of `values` (sorted in place).
fn median<T: PartialOrd + Copy>(values: &mut [T]) -> T {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    values[values.len() / 2]
}

/// A server under test: its address, and the decision lines its receiver
/// made (none for the bare server).
struct Server {
    name: &'static str,
    addr: SocketAddr,
    lines: Option<Arc<AtomicUsize>>,
    phases: Vec<Phase>,
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(2.0);
    let connections: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(8);
    let store_url = args.next().unwrap_or_else(|| "memory".into());
    let rounds: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(5).max(1);
    let start = |mode: Mode, made: Arc<AtomicUsize>| {
        let mut config = Config::default();
        config.listen = "127.0.0.1:0".parse().expect("an address");
        config.auth = Authentication::Signature(SignatureAuth::new(SECRET));
        config.store.url = store_url.clone();
        config.inbox.mode = mode;
        async move {
            // The decision lines are made, as the receivers make them, and
            // counted rather than printed or kept.
            let app = App::with_sink(config, Knobs::default(), lines::counted(made))
                .await
                .unwrap_or_else(|e| {
                    eprintln!("error: {e}");
                    std::process::exit(2);
                });
            common::serve::axum(&app).await.expect("a port")
        }
    };
    let (inline_lines, inbox_lines) =
        (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let sdk = start(Mode::Inline, Arc::clone(&inline_lines)).await;
    let inbox = start(Mode::Inbox, Arc::clone(&inbox_lines)).await;
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
        "{rounds} rounds of {seconds} s per server (the order rotates each round), {connections} keep-alive connections, signed 1-event deliveries, store {store_url}"
    );
    let mut servers = [
        Server {
            name: "bare axum (202 only)",
            addr: bare,
            lines: None,
            phases: Vec::new(),
        },
        Server {
            name: "alm-webhooks, inline mode",
            addr: sdk,
            lines: Some(inline_lines),
            phases: Vec::new(),
        },
        Server {
            name: "alm-webhooks, inbox mode",
            addr: inbox,
            lines: Some(inbox_lines),
            phases: Vec::new(),
        },
    ];
    let chosen = std::env::var("ALM_LOADTEST_SERVERS").ok();
    let runs = |name: &str| {
        chosen.as_deref().is_none_or(|list| {
            // An empty entry (`inline,`) names no server.
            list.split(',')
                .map(str::trim)
                .any(|s| !s.is_empty() && name.contains(s))
        })
    };
    let next = Arc::new(AtomicUsize::new(0));
    for round in 0..rounds {
        for k in 0..servers.len() {
            let at = (round + k) % servers.len();
            let server = &mut servers[at];
            if !runs(server.name) {
                continue;
            }
            let cpu_before = process_cpu();
            let addr = server.addr;
            let mut phase = tokio::task::spawn_blocking({
                let next = Arc::clone(&next);
                move || run(addr, seconds, connections, &next)
            })
            .await
            .expect("the run completes");
            // Every acknowledged event decided (an inbox's workers finish
            // behind its acknowledgements) before the next phase, so that
            // no phase shares the machine with another's work.
            if let Some(lines) = &server.lines {
                let owed: usize =
                    server.phases.iter().map(|p| p.requests).sum::<usize>() + phase.requests;
                let deadline = Instant::now() + Duration::from_secs(60);
                while lines.load(Ordering::Relaxed) < owed && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                if lines.load(Ordering::Relaxed) < owed {
                    eprintln!("{}: events still undecided after 60 s", server.name);
                }
            }
            phase.cpu_per_request = cpu_before.zip(process_cpu()).map(|(before, after)| {
                (after.saturating_sub(before))
                    / u32::try_from(phase.requests.max(1)).unwrap_or(u32::MAX)
            });
            server.phases.push(phase);
        }
    }
    println!(
        "| server | req/s (median of rounds) | p50 | p99 | CPU per request (process) | of bare, per round |"
    );
    println!("|---|---|---|---|---|---|");
    let bare_rps: Vec<f64> = servers[0].phases.iter().map(|p| p.rps).collect();
    for server in servers.iter().filter(|s| !s.phases.is_empty()) {
        let mut rps: Vec<f64> = server.phases.iter().map(|p| p.rps).collect();
        let mut p50: Vec<Duration> = server.phases.iter().map(|p| p.p50).collect();
        let mut p99: Vec<Duration> = server.phases.iter().map(|p| p.p99).collect();
        let mut cpu: Vec<Duration> = server
            .phases
            .iter()
            .filter_map(|p| p.cpu_per_request)
            .collect();
        let mut shares: Vec<f64> = rps
            .iter()
            .zip(&bare_rps)
            .map(|(r, b)| 100.0 * r / b)
            .collect();
        let cpu = if cpu.is_empty() {
            "n/a".to_owned()
        } else {
            format!("{:.1?}", median(&mut cpu))
        };
        let share = if shares.is_empty() {
            "n/a (bare not run)".to_owned()
        } else {
            let median = median(&mut shares);
            let (low, high) = (shares[0], shares[shares.len() - 1]);
            format!("{median:.0} % (from {low:.0} to {high:.0} %)")
        };
        println!(
            "| {} | {:.0} | {:.1?} | {:.1?} | {cpu} | {share} |",
            server.name,
            median(&mut rps),
            median(&mut p50),
            median(&mut p99),
        );
    }
    let made = servers
        .iter()
        .filter_map(|s| s.lines.as_ref())
        .map(|l| l.load(Ordering::Relaxed))
        .sum::<usize>();
    let acknowledged = servers[1..]
        .iter()
        .flat_map(|s| &s.phases)
        .map(|p| p.requests)
        .sum::<usize>();
    println!("decision lines made: {made}, for {acknowledged} acknowledged deliveries");
}
