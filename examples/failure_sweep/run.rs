//! One run: a backend under one fault, from fresh tables or keys to the
//! counted row.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alm_webhooks::inbox::{AnyInbox, Inbox};
use alm_webhooks::store::PostgresStore;
use time::OffsetDateTime;

use super::committed::Probe;
use super::count::{Gathered, Row, count};
use super::faults::{Backend, Fault, Injected, Targets, inject};
use super::hooked;
use super::ledger::Ledger;
use super::procs::{Decisions, DeliveryReceiver, Helper, wait_listening};
use super::proxy::Proxy;
use super::traffic::{self, Rng, position};

/// The receivers' lease: short, so a killed process's deliveries come back
/// within seconds.
const LEASE: Duration = Duration::from_secs(5);

/// What every run shares.
#[derive(Debug)]
pub(crate) struct Setup {
    pub(crate) postgres: String,
    pub(crate) proxy: Option<PathBuf>,
    pub(crate) redis: Option<Helper>,
    pub(crate) ledger: Ledger,
    pub(crate) stamp: String,
    pub(crate) accounts: u64,
    pub(crate) spread: Duration,
    pub(crate) drain: Duration,
    pub(crate) seed: u64,
    /// Passed to the receivers as is (`SWEEP_WORKERS`, `SWEEP_COMMIT_BATCH`).
    pub(crate) receiver_env: Vec<(String, String)>,
}

fn with_params(url: &str, params: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{params}")
}

fn port_of(url: &str) -> Option<u16> {
    url::Url::parse(url).ok()?.port()
}

fn with_port(url: &str, port: u16) -> String {
    let mut parsed = url::Url::parse(url).expect("a URL");
    let _ = parsed.set_port(Some(port));
    parsed.into()
}

/// The run's URLs: (the sweep's own, direct; the receivers', maybe through
/// the proxy), and the port the proxy forwards to.
fn urls(backend: Backend, setup: &Setup, run: &str) -> (String, String, u16) {
    match backend {
        Backend::Sqlite => {
            let file = std::env::temp_dir().join(format!("alm-sweep-{run}.db"));
            let url = format!("sqlite:{}", file.display());
            (url.clone(), url, 0)
        }
        Backend::Postgres => {
            let direct = with_params(&setup.postgres, &format!("schema=alm_sweep_{run}"));
            let receivers = with_params(&direct, &format!("application_name=alm-sweep-{run}"));
            (direct, receivers, port_of(&setup.postgres).unwrap_or(5432))
        }
        Backend::Redis => {
            let port = setup.redis.as_ref().map_or(0, |r| r.port);
            let url = format!("redis://127.0.0.1:{port}/?prefix=alm-sweep-{run}:");
            (url.clone(), url, port)
        }
    }
}

fn skipped(backend: Backend, fault: Fault, why: impl Into<String>) -> Row {
    Row {
        backend: backend.name().into(),
        fault: fault.name().into(),
        skipped: Some(why.into()),
        ..Row::default()
    }
}

/// Dead-lettered event id → reason (tried a few times: the store may be
/// restarting).
async fn dead_letters(inbox: &AnyInbox) -> HashMap<String, String> {
    let mut error = None;
    for _ in 0..10 {
        match inbox.dead_letters(1_000_000).await {
            Ok(letters) => {
                return letters
                    .into_iter()
                    .map(|d| {
                        let id = d.letter.event_id.unwrap_or_else(|| "(no id)".into());
                        (id, d.letter.error)
                    })
                    .collect();
            }
            Err(e) => error = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    if let Some(e) = error {
        eprintln!("sweep: dead letters: {e}");
    }
    HashMap::new()
}

/// How many deliveries the inbox holds (pending, in flight, retrying).
async fn holds(inbox: &AnyInbox) -> Option<u64> {
    let s = inbox.stats(OffsetDateTime::now_utc()).await.ok()?;
    Some(s.pending + s.in_flight + s.retrying)
}

/// Accounts whose delivery the inbox still holds: taken (and left leased)
/// one head per account, with a clock far ahead so that retry waits and
/// dead processes' leases are behind it.
async fn held(inbox: &AnyInbox) -> BTreeSet<u64> {
    let later = OffsetDateTime::now_utc() + time::Duration::hours(1);
    let mut accounts = BTreeSet::new();
    for _ in 0..100_000 {
        match inbox.take(Duration::from_secs(3600), later).await {
            Ok(Some(taken)) => {
                if !accounts.insert(taken.account_id.get()) {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                eprintln!("sweep: take: {e}");
                break;
            }
        }
    }
    accounts
}

/// Runs `backend` under `fault` with `events` events.
pub(crate) async fn run(backend: Backend, fault: Fault, events: u64, setup: &mut Setup) -> Row {
    let run = format!(
        "{}_{}_{}",
        setup.stamp,
        backend.name(),
        fault.name().replace('-', "_")
    );
    if backend == Backend::Redis && setup.redis.is_none() {
        return skipped(backend, fault, "redis-server did not start");
    }
    let (direct, mut receivers_url, target) = urls(backend, setup, &run);
    let mut proxy = None;
    if fault.needs_proxy() {
        match Proxy::start(setup.proxy.clone(), target).await {
            Ok(started) => {
                receivers_url = with_port(&receivers_url, started.port());
                proxy = Some(started);
            }
            Err(e) => return skipped(backend, fault, e),
        }
    }
    if backend == Backend::Postgres {
        let (base, schema) = (&setup.postgres, format!("alm_sweep_{run}"));
        if let Err(e) = PostgresStore::migrate(base, &schema).await {
            return skipped(backend, fault, format!("migrate: {e}"));
        }
        if let Err(e) = setup
            .ledger
            .admin(&hooked::postgres_table_sql(&schema))
            .await
        {
            return skipped(backend, fault, format!("the hook's table: {e}"));
        }
    }
    let inbox = match AnyInbox::from_url(&direct).await {
        Ok(inbox) => inbox,
        Err(e) => return skipped(backend, fault, format!("inbox: {e}")),
    };
    let mut rng = Rng::new(setup.seed ^ ((backend as u64) << 8) ^ (fault as u64));
    let per_account = (events / setup.accounts).max(2);
    let plans: Vec<(u64, traffic::Plan)> = (1..=setup.accounts)
        .map(|a| {
            (
                1000 + a,
                traffic::plan(&run, 1000 + a, per_account, &mut rng),
            )
        })
        .collect();
    // The handler faults' events: an enrollment halfway through each of
    // the first two accounts.
    let middle = (per_account / 2) & !1;
    let targets: Vec<String> = plans
        .iter()
        .take(2)
        .filter_map(|(_, plan)| {
            plan.iter()
                .flat_map(|(ids, _)| ids)
                .find(|id| position(id).is_some_and(|p| p.seq == middle))
                .cloned()
        })
        .collect();
    let probe = match backend {
        Backend::Postgres => Probe::Postgres {
            schema: format!("alm_sweep_{run}"),
        },
        Backend::Sqlite => Probe::Sqlite {
            path: direct.trim_start_matches("sqlite:").into(),
        },
        Backend::Redis => Probe::Redis {
            url: format!("redis://127.0.0.1:{target}/"),
            prefix: format!("alm-sweep-{run}:"),
        },
    };
    let (died, snapshots) = probe.watch(&setup.postgres, &run);
    let decisions: Decisions = Arc::new(Mutex::new(HashMap::new()));
    let receivers: Vec<DeliveryReceiver> = (0..backend.receivers())
        .map(|index| {
            let mut env: Vec<(String, String)> = vec![
                ("SWEEP_STORE".into(), receivers_url.clone()),
                ("SWEEP_LEDGER".into(), setup.postgres.clone()),
                ("SWEEP_RUN".into(), run.clone()),
                ("SWEEP_LEASE_MS".into(), LEASE.as_millis().to_string()),
            ];
            env.extend(setup.receiver_env.iter().cloned());
            env.extend(fault.env(index, &targets));
            DeliveryReceiver::start(env, Arc::clone(&decisions), died.clone())
        })
        .collect();
    for r in &receivers {
        if !wait_listening(r.port, Duration::from_secs(20)).await {
            for r in receivers {
                r.stop().await;
            }
            return skipped(backend, fault, "a receiver did not start");
        }
    }
    let ports: Vec<u16> = receivers.iter().map(|r| r.port).collect();
    let deadline = Instant::now() + setup.spread + Duration::from_secs(60);
    let plans_kept = plans.clone();
    let sender = tokio::spawn(traffic::send(plans, ports, setup.spread, deadline));
    let mut injected = Injected::default();
    let application_name = format!("alm-sweep-{run}");
    {
        let mut targets = Targets {
            receivers: &receivers,
            redis: setup.redis.as_mut(),
            proxy: proxy.as_mut(),
            ledger: &setup.ledger,
            run: &run,
            application_name: &application_name,
        };
        // Faults while the events flow, for `spread`; then they stop.
        let window = Instant::now() + setup.spread;
        while !sender.is_finished() && Instant::now() < window {
            let wait = inject(fault, &mut targets, &mut rng, &mut injected).await;
            let until = Instant::now() + wait;
            while Instant::now() < until && !sender.is_finished() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    // The faults have stopped: everything acknowledged must now drain.
    let recovered = Instant::now();
    let sent = sender.await.unwrap_or_default();
    let mut drain = None;
    while recovered.elapsed() < setup.drain {
        let runs = setup.ledger.runs(&run).await.unwrap_or_default();
        let dead = dead_letters(&inbox).await;
        let handled: HashSet<&str> = runs.iter().map(|r| r.event_id.as_str()).collect();
        let accounted = sent
            .acknowledged
            .iter()
            .all(|id| handled.contains(id.as_str()) || dead.contains_key(id));
        // Drained: every effect recorded, and the inbox empty.
        if accounted && holds(&inbox).await == Some(0) {
            drain = Some(recovered.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mut deaths = 0;
    for r in receivers {
        deaths += r.deaths.load(std::sync::atomic::Ordering::SeqCst);
        r.stop().await;
    }
    drop(died);
    let snapshots = tokio::time::timeout(Duration::from_secs(30), snapshots)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    if drain.is_none() {
        // Leases of the stopped processes run out first.
        tokio::time::sleep(LEASE + Duration::from_secs(1)).await;
    }
    let mut row = Row {
        backend: backend.name().into(),
        fault: fault.name().into(),
        deaths,
        drain,
        ..Row::default()
    };
    let stats = inbox.stats(OffsetDateTime::now_utc()).await;
    let held = held(&inbox).await;
    let runs = setup.ledger.runs(&run).await.unwrap_or_default();
    let dead = dead_letters(&inbox).await;
    let decisions = decisions.lock().map(|d| d.clone()).unwrap_or_default();
    count(
        &mut row,
        &Gathered {
            acknowledged: &sent.acknowledged,
            runs: &runs,
            dead: &dead,
            decisions: &decisions,
            held: &held,
            targets: &targets,
            at_deaths: &snapshots.at_deaths,
        },
    );
    let processed: HashSet<String> = runs
        .iter()
        .map(|r| r.event_id.clone())
        .filter(|id| !dead.contains_key(id))
        .collect();
    let ignored: HashSet<String> = decisions
        .iter()
        .filter(|(_, (decision, _))| decision == "ignored")
        .map(|(id, _)| id.clone())
        .collect();
    let schema = format!("alm_sweep_{run}");
    let checked = hooked::check(
        backend,
        &direct,
        &schema,
        &setup.ledger,
        &plans_kept,
        &processed,
        &ignored,
    )
    .await;
    row.hook_rows = checked.hook_rows;
    row.hook_wrong = checked.hook_wrong;
    row.learner_records = checked.records;
    row.learner_wrong = checked.records_wrong;
    row.notes.extend(checked.notes);
    if snapshots.at_deaths.len() < deaths {
        row.notes.push(format!(
            "{} deaths without a snapshot of what they left uncommitted",
            deaths - snapshots.at_deaths.len()
        ));
    }
    for e in snapshots.errors.iter().take(3) {
        row.notes.push(e.clone());
    }
    if deaths > injected.kills {
        row.notes.push(format!(
            "{} deaths not caused by the sweep (kills: {})",
            deaths - injected.kills,
            injected.kills
        ));
    }
    if injected.actions > 0 {
        row.notes
            .push(format!("fault actions: {}", injected.actions));
    }
    for e in injected.errors.iter().take(3) {
        row.notes.push(format!("fault error: {e}"));
    }
    if sent.abandoned > 0 {
        row.notes
            .push(format!("{} deliveries never acknowledged", sent.abandoned));
    }
    if let Ok(s) = stats {
        if s.pending + s.in_flight + s.retrying > 0 {
            row.notes.push(format!(
                "inbox at the end: {} pending, {} in flight, {} retrying",
                s.pending, s.in_flight, s.retrying
            ));
        }
    }
    if let Some(proxy) = proxy {
        proxy.stop().await;
    }
    cleanup(backend, &direct, &run, setup).await;
    row
}

async fn cleanup(backend: Backend, direct: &str, run: &str, setup: &Setup) {
    let _ = setup.ledger.forget(run).await;
    match backend {
        Backend::Postgres => {
            let sql = format!("DROP SCHEMA IF EXISTS alm_sweep_{run} CASCADE");
            if let Err(e) = setup.ledger.admin(&sql).await {
                eprintln!("sweep: {e}");
            }
        }
        Backend::Sqlite => {
            let path = direct.trim_start_matches("sqlite:");
            for suffix in ["", "-wal", "-shm", "-journal"] {
                let _ = std::fs::remove_file(format!("{path}{suffix}"));
            }
        }
        // The sweep's own Redis server goes away with its directory.
        Backend::Redis => {}
    }
}
