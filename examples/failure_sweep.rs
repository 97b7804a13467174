//! The failure sweep: receivers in inbox mode on every durable backend
//! (SQLite, PostgreSQL, Redis), fed ALM-shaped deliveries while faults are
//! injected, then checked: nothing acknowledged is lost, no account is
//! stalled once the faults stop, no account's events run out of order, and
//! a handler runs more than once only because a process died before its
//! decision was committed.
//!
//! ```sh
//! cargo run --release --example failure_sweep --all-features -- \
//!     --events 2000 --backends sqlite,postgres,redis \
//!     --latency-proxy /path/to/latency-proxy
//! ```
//!
//! Each backend runs once per fault (`--faults`, default all that apply):
//! `none` (control), `kill` (`kill -9` of a receiver at random points,
//! mid-handler included, restarted), `pg-terminate`
//! (`pg_terminate_backend` of the receivers' connections), `redis-restart`
//! (the sweep's own `redis-server`, on its own port, killed and restarted),
//! `store-cut` and `store-blackhole` (the store reached through
//! `latency-proxy`, killed and restarted, or stopped with `SIGSTOP` for 6 s
//! then `SIGCONT`; or through the sweep's own forwarder, which does the
//! same), `handler-hang`, `handler-panic`, `handler-abort` (two
//! events whose handler never returns, panics, or aborts the process, every
//! time) and `clock-skew` (two receivers 30 s ahead and 30 s behind).
//!
//! The receivers are this program again (`failure_sweep receive`, see
//! `failure_sweep/receiver.rs`): an `Endpoint` whose handler writes one row
//! per run to a PostgreSQL ledger (`alm_sweep_ledger`), for every backend.
//! Their store keeps the learner projection and, on SQLite and
//! PostgreSQL, a commit hook of a user's own (`failure_sweep/hooked.rs`):
//! each run also checks that the hook's table holds exactly one row per
//! processed event and that every learner record is the merge of its
//! events, as if each had been processed once.
//!
//! Options: `--events N` (per backend, shared equally by its runs; default
//! 2000), `--accounts N` (default 8), `--seconds S` (how long each run's
//! sending is spread over while faults are injected; default 3),
//! `--drain-timeout S` (how long the inbox gets to drain once the faults
//! stop; default 20), `--postgres URL` (default `ALM_TEST_POSTGRES_URL` or
//! `postgres://postgres@127.0.0.1:5432/test`), `--latency-proxy PATH`
//! (default `SWEEP_LATENCY_PROXY`; without it the sweep forwards the store
//! itself, see `failure_sweep/proxy.rs`), `--seed N`, `--workers N` and
//! `--commit-batch N` (the receivers' workers and the engine's commit
//! chunk; default the library's: 4 workers, set-based commits).
//!
//! At each receiver's death the sweep records which of the events it ran
//! (its ledger rows) had no committed decision in the store then
//! (`failure_sweep/committed.rs`): a death may repeat those runs, and only
//! those, so every repeated run must be of such an event, in another
//! process, and the extra runs may not exceed their count.
//!
//! Unix only (signals, `kill`, `redis-server`). It prints one markdown
//! table, and exits 1 when an invariant is broken:
//! events lost, good events dead-lettered, order violations, accounts
//! stalled, a repeated handler run that no death explains, a hook row
//! missing or repeated, or a learner record that is not the merge of its
//! events.

#[path = "failure_sweep/committed.rs"]
mod committed;
#[path = "failure_sweep/count.rs"]
mod count;
#[path = "failure_sweep/faults.rs"]
mod faults;
#[path = "failure_sweep/hooked.rs"]
mod hooked;
#[path = "failure_sweep/ledger.rs"]
mod ledger;
#[path = "failure_sweep/procs.rs"]
mod procs;
#[path = "failure_sweep/proxy.rs"]
mod proxy;
#[path = "failure_sweep/receiver.rs"]
mod receiver;
#[path = "failure_sweep/run.rs"]
mod run;
#[path = "failure_sweep/skew.rs"]
mod skew;
#[path = "failure_sweep/traffic.rs"]
mod traffic;

use std::path::PathBuf;
use std::time::Duration;

use faults::{Backend, Fault};
use ledger::Ledger;
use procs::{Helper, free_port};

#[derive(Debug)]
struct Options {
    events: u64,
    backends: Vec<Backend>,
    faults: Vec<Fault>,
    accounts: u64,
    seconds: f64,
    drain: f64,
    postgres: String,
    proxy: Option<PathBuf>,
    seed: u64,
    workers: Option<u32>,
    commit_batch: Option<u32>,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        events: 2000,
        backends: Backend::ALL.to_vec(),
        faults: Fault::ALL.to_vec(),
        accounts: 8,
        seconds: 3.0,
        drain: 20.0,
        postgres: std::env::var("ALM_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into()),
        proxy: std::env::var_os("SWEEP_LATENCY_PROXY").map(PathBuf::from),
        seed: 0x5eed,
        workers: None,
        commit_batch: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |what: &str| format!("{flag} {value:?}: expected {what}");
        match flag.as_str() {
            "--events" => o.events = value.parse().map_err(|_| bad("a number"))?,
            "--accounts" => o.accounts = value.parse().map_err(|_| bad("a number"))?,
            "--seconds" => o.seconds = value.parse().map_err(|_| bad("seconds"))?,
            "--drain-timeout" => o.drain = value.parse().map_err(|_| bad("seconds"))?,
            "--postgres" => o.postgres = value,
            "--latency-proxy" => o.proxy = Some(PathBuf::from(value)),
            "--seed" => o.seed = value.parse().map_err(|_| bad("a number"))?,
            "--workers" => o.workers = Some(value.parse().map_err(|_| bad("a number"))?),
            "--commit-batch" => {
                o.commit_batch = Some(value.parse().map_err(|_| bad("a number"))?);
            }
            "--backends" => {
                o.backends = value
                    .split(',')
                    .map(|b| {
                        Backend::ALL
                            .into_iter()
                            .find(|x| x.name() == b)
                            .ok_or_else(|| bad("sqlite, postgres, redis"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--faults" => {
                o.faults = value
                    .split(',')
                    .map(|f| Fault::parse(f).ok_or_else(|| bad("known fault names")))
                    .collect::<Result<_, _>>()?;
            }
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if o.accounts == 0 {
        return Err("--accounts must be positive".into());
    }
    Ok(o)
}

/// The sweep's own Redis server: its own port and directory, every write
/// fsynced before it is acknowledged (`appendfsync always`).
async fn redis_server(dir: &std::path::Path) -> Result<Helper, String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let port = free_port();
    let args = [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--dir",
        &dir.display().to_string(),
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
    ]
    .map(str::to_owned)
    .to_vec();
    Helper::start(PathBuf::from("redis-server"), args, port).await
}

/// A directory removed when dropped (also when the sweep is interrupted).
struct Removed(PathBuf);

impl Drop for Removed {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn sweep(o: Options) -> i32 {
    let ledger = Ledger::new(&o.postgres);
    if let Err(e) = ledger.create().await {
        eprintln!("sweep: the ledger needs PostgreSQL at {}: {e}", o.postgres);
        return 2;
    }
    let stamp = format!(
        "s{}x{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() % 1_000_000)
    );
    let redis_dir = Removed(std::env::temp_dir().join(format!("alm-sweep-redis-{stamp}")));
    let redis = if o.backends.contains(&Backend::Redis) {
        match redis_server(&redis_dir.0).await {
            Ok(redis) => Some(redis),
            Err(e) => {
                eprintln!("sweep: {e}");
                None
            }
        }
    } else {
        None
    };
    let mut setup = run::Setup {
        postgres: o.postgres.clone(),
        proxy: o.proxy.clone(),
        redis,
        ledger,
        stamp,
        accounts: o.accounts,
        spread: Duration::from_secs_f64(o.seconds),
        drain: Duration::from_secs_f64(o.drain),
        seed: o.seed,
        receiver_env: [
            ("SWEEP_WORKERS", o.workers),
            ("SWEEP_COMMIT_BATCH", o.commit_batch),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_string())))
        .collect(),
    };
    let per_run = o.events / (o.faults.len() as u64).max(1);
    let mut rows = Vec::new();
    for &backend in &o.backends {
        for &fault in o.faults.iter().filter(|f| f.applies_to(backend)) {
            eprintln!("sweep: {} / {} …", backend.name(), fault.name());
            let row = run::run(backend, fault, per_run, &mut setup).await;
            eprintln!(
                "sweep: {} / {}: {}",
                backend.name(),
                fault.name(),
                row.skipped.clone().unwrap_or_else(|| {
                    let broken = row.violations();
                    if broken.is_empty() {
                        "ok".into()
                    } else {
                        broken.join(", ")
                    }
                })
            );
            rows.push(row);
        }
    }
    if let Some(redis) = setup.redis.take() {
        redis.stop().await;
    }
    println!("{}", count::table(&rows, per_run));
    let broken = rows.iter().filter(|r| !r.violations().is_empty()).count();
    if broken > 0 {
        eprintln!("sweep: {broken} runs broke an invariant");
        1
    } else {
        0
    }
}

/// Ctrl-C or `SIGTERM`.
async fn interrupted() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[tokio::main]
async fn main() {
    if std::env::args().nth(1).as_deref() == Some("receive") {
        if let Err(e) = receiver::run().await {
            eprintln!("receiver: {e}");
            std::process::exit(2);
        }
        return;
    }
    let code = match options() {
        // Interrupted, the sweep is dropped: its Redis server, proxy and
        // receivers are killed with it.
        Ok(o) => tokio::select! {
            code = sweep(o) => code,
            () = interrupted() => 130,
        },
        Err(e) => {
            eprintln!("failure_sweep: {e}");
            2
        }
    };
    std::process::exit(code);
}
