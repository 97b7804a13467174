//! The front door under attack, measured (issue 29's load figure): the
//! axum receiver (inbox mode, memory store, default bounds) while N
//! unauthenticated clients send large bodies slowly and stall, and a few
//! authenticated clients keep delivering. Prints the process's resident
//! memory above idle and the authenticated deliveries' latency.
//!
//! ```sh
//! cargo run --release --example slow_senders --features axum,simulator,env -- [SENDERS] [SECONDS]
//! ```
//!
//! Defaults: 100 slow senders, 20 s. A third send a forged (well formed)
//! signature and dribble an 8 MiB − 1 body at 64 KiB per second; a third
//! send the same body at once but for its last byte, and stall; a third
//! send half a header and stall. When the guard closes
//! one, it connects again, so the pressure lasts the whole run. Requests go
//! only to 127.0.0.1.

#[path = "common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use alm_webhooks::auth::SignatureAuth;
use alm_webhooks::config::Config;
use alm_webhooks::simulator::scenario::{envelope, learner_event};
use alm_webhooks::{Authentication, DEFAULT_MAX_BODY_BYTES};
use common::{App, Knobs};

const SECRET: &str = "slow-senders-secret";

/// This process's resident memory, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// How an attacker misbehaves.
#[derive(Clone, Copy, PartialEq)]
enum Attack {
    /// Half a header, then nothing.
    Header,
    /// A body at 64 KiB per second.
    Dribble,
    /// A body but for its last byte, at once, then nothing.
    Stall,
}

/// One attacker: connects, misbehaves until cut off, connects again.
fn slow_sender(addr: SocketAddr, attack: Attack, stop: Arc<AtomicBool>, cut: Arc<AtomicU64>) {
    let body = attack != Attack::Header;
    let chunk = vec![b' '; 64 * 1024];
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut s) = TcpStream::connect(addr) else {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        let _ = s.set_write_timeout(Some(Duration::from_secs(1)));
        let opened = if body {
            let head = format!(
                "POST /webhooks HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\nx-alm-signature: {}\r\n\r\n",
                DEFAULT_MAX_BODY_BYTES - 1,
                "ab".repeat(32)
            );
            s.write_all(head.as_bytes()).is_ok()
        } else {
            s.write_all(b"POST /webhooks HTTP/1.1\r\nhost: x\r\ncontent-len")
                .is_ok()
        };
        if !opened {
            continue;
        }
        let mut sent = 0;
        if attack == Attack::Stall {
            while sent + chunk.len() < DEFAULT_MAX_BODY_BYTES - 1 && s.write_all(&chunk).is_ok() {
                sent += chunk.len();
            }
        }
        // Until the server closes: a body sender dribbles, the other stalls.
        loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(Duration::from_secs(1));
            let alive = if body && sent + chunk.len() < DEFAULT_MAX_BODY_BYTES - 1 {
                sent += chunk.len();
                s.write_all(&chunk).is_ok()
            } else {
                let _ = s.set_nonblocking(true);
                let mut probe = [0u8; 512];
                let open = matches!(s.read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
                let _ = s.set_nonblocking(false);
                open
            };
            if !alive {
                cut.fetch_add(1, Ordering::Relaxed);
                break;
            }
        }
    }
}

/// One authenticated client: a signed one-event delivery every 20 ms on
/// a fresh connection; returns each acknowledgement's latency.
fn deliverer(addr: SocketAddr, id: usize, until: Instant) -> (Vec<Duration>, u64) {
    let sign = SignatureAuth::new(SECRET);
    let mut latencies = Vec::new();
    let mut failed = 0;
    let mut n = 0u64;
    while Instant::now() < until {
        n += 1;
        let body = envelope(
            1234,
            &[learner_event(
                &format!("slow-{id}-{n}"),
                "COURSE_ENROLLMENT",
                1725600000,
                n,
                "course:1_2",
            )],
        );
        let head = format!(
            "POST /webhooks HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\nx-alm-signature: {}\r\n\r\n",
            body.len(),
            sign.sign(&body)
        );
        let started = Instant::now();
        let ok = TcpStream::connect(addr).is_ok_and(|mut s| {
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut response = Vec::new();
            s.write_all(head.as_bytes()).is_ok()
                && s.write_all(&body).is_ok()
                && s.read_to_end(&mut response).is_ok()
                && response.starts_with(b"HTTP/1.1 202")
        });
        if ok {
            latencies.push(started.elapsed());
        } else {
            failed += 1;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (latencies, failed)
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let senders: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(100);
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(20);
    let mut config = Config::default();
    config.listen = "127.0.0.1:0".parse().expect("an address");
    config.auth = Authentication::Signature(SignatureAuth::new(SECRET));
    let journal = Arc::new(std::sync::Mutex::new(Vec::new()));
    let app = App::with_journal(config, Knobs::default(), journal)
        .await
        .unwrap_or_else(|e| {
            eprintln!("error: {e}");
            std::process::exit(2);
        });
    let addr = common::serve::axum(&app).await.expect("a port");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = rss();
    let stop = Arc::new(AtomicBool::new(false));
    let cut = Arc::new(AtomicU64::new(0));
    let attackers: Vec<_> = (0..senders)
        .map(|i| {
            let (stop, cut) = (Arc::clone(&stop), Arc::clone(&cut));
            let attack = [Attack::Header, Attack::Dribble, Attack::Stall][i % 3];
            std::thread::spawn(move || slow_sender(addr, attack, stop, cut))
        })
        .collect();
    let until = Instant::now() + Duration::from_secs(seconds);
    let clients: Vec<_> = (0..4)
        .map(|id| std::thread::spawn(move || deliverer(addr, id, until)))
        .collect();
    let mut peak = idle;
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(200)).await;
        peak = peak.max(rss());
    }
    let mut all = Vec::new();
    let mut failed = 0;
    for client in clients {
        let (latencies, f) = client.join().unwrap_or_default();
        all.extend(latencies);
        failed += f;
    }
    stop.store(true, Ordering::Relaxed);
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let mb = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!(
        "{senders} slow unauthenticated senders for {seconds} s (a third each: dribbling 8 MiB bodies, 8 MiB bodies stalled before their last byte, half-sent headers), 4 authenticated clients"
    );
    println!(
        "resident memory: idle {:.1} MB, peak {:.1} MB, peak above idle {:.1} MB",
        mb(idle),
        mb(peak),
        mb(peak.saturating_sub(idle))
    );
    println!(
        "authenticated deliveries: {} acknowledged (202), {} not; p50 {:.1?}, p99 {:.1?}, max {:.1?}",
        all.len(),
        failed,
        pct(0.50),
        pct(0.99),
        all.last().copied().unwrap_or_default()
    );
    println!(
        "slow connections cut by the server: {}",
        cut.load(Ordering::Relaxed)
    );
    drop(attackers);
    std::process::exit(0);
}
