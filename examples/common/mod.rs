//! What the example receivers share on top of the library's `Config`
//! (every production `ALM_*` variable: `docs/environment.md`): the example
//! handler and its test knobs (`ALM_HANDLER_*`, the table's last section),
//! the decision lines on stdout (`lines.rs`), the framework glue
//! (`serve.rs`).
#![allow(dead_code, unreachable_pub)]

pub mod client;
pub mod lines;
pub mod serve;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alm_webhooks::config::Config;
use alm_webhooks::store::AnyStore;
use alm_webhooks::{BoxError, Endpoint, Engine, Event, Subject};

/// How long the workers get to finish at `SIGTERM`, inside the 10 s a
/// receiver has to exit.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(7);

/// The handler's test knobs.
#[derive(Debug, Default)]
pub struct Knobs {
    pub delay: Duration,
    pub panic_on: HashSet<String>,
    pub fail_on: HashSet<String>,
    /// With `fail_on`: those ids fail only their first N calls.
    pub fail_times: Option<u32>,
    pub hang_on: HashSet<String>,
    pub abort_on: HashSet<String>,
    pub calls: Mutex<HashMap<String, u32>>,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn ids(name: &str) -> HashSet<String> {
    var(name).map_or_else(HashSet::new, |v| v.split(',').map(str::to_owned).collect())
}

impl Knobs {
    /// Reads the knobs; a bad value is an error naming the variable.
    pub fn from_env() -> Result<Self, String> {
        let number = |name: &str, min: u64| match var(name) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .ok()
                .filter(|n| *n >= min)
                .map(Some)
                .ok_or(format!("{name}={v:?} is not a number (at least {min})")),
        };
        Ok(Self {
            delay: Duration::from_millis(number("ALM_HANDLER_DELAY_MS", 0)?.unwrap_or(0)),
            panic_on: ids("ALM_HANDLER_PANIC_ON"),
            fail_on: ids("ALM_HANDLER_FAIL_ON"),
            fail_times: number("ALM_HANDLER_FAIL_TIMES", 1)?
                .map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
            hang_on: ids("ALM_HANDLER_HANG_ON"),
            abort_on: ids("ALM_HANDLER_ABORT_ON"),
            calls: Mutex::default(),
        })
    }

    /// Whether this call of the handler for `id` must fail.
    fn fails(&self, id: &str) -> bool {
        if !self.fail_on.contains(id) {
            return false;
        }
        let Some(times) = self.fail_times else {
            return true;
        };
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        let n = calls.entry(id.to_owned()).or_default();
        *n += 1;
        *n <= times
    }
}

/// The configuration and the knobs, or the program stops with a clear
/// message (exit code 2); warnings go to stderr.
pub fn config_or_exit() -> (Config, Knobs) {
    let read = Config::from_env().map_err(|e| e.to_string());
    match read.and_then(|config| Ok((config, Knobs::from_env()?))) {
        Ok((config, knobs)) => {
            for warning in config.warnings() {
                eprintln!("warning: {warning}");
            }
            (config, knobs)
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
}

/// Each record's processed event names: the example's downstream.
pub type Views = Arc<Mutex<BTreeMap<String, Vec<String>>>>;

/// A running receiver: the endpoint (which owns the inbox's workers), its
/// engine, and what the handler saw.
#[derive(Debug)]
pub struct App {
    pub config: Config,
    pub engine: Engine<AnyStore>,
    pub endpoint: Endpoint,
    pub views: Views,
}

impl App {
    /// Opens the store and the inbox, builds the endpoint and starts its
    /// workers; decisions are printed on stdout.
    pub async fn new(config: Config, knobs: Knobs) -> Result<Arc<Self>, String> {
        Self::start(config, knobs, lines::stdout()).await
    }

    /// As [`App::new`], but the decision lines go to `journal`.
    pub async fn with_journal(
        config: Config,
        knobs: Knobs,
        journal: Arc<Mutex<Vec<String>>>,
    ) -> Result<Arc<Self>, String> {
        Self::start(config, knobs, lines::journal(journal)).await
    }

    /// As [`App::new`], but the decision lines go to `sink`.
    pub async fn with_sink(
        config: Config,
        knobs: Knobs,
        sink: lines::Sink,
    ) -> Result<Arc<Self>, String> {
        Self::start(config, knobs, sink).await
    }

    async fn start(config: Config, knobs: Knobs, sink: lines::Sink) -> Result<Arc<Self>, String> {
        let opened = config.open().await.map_err(|e| e.to_string())?;
        #[cfg(feature = "prometheus")]
        if let Err(e) = alm_webhooks::metrics::install_prometheus() {
            eprintln!("metrics: no Prometheus recorder: {e}");
        }
        let views = Views::default();
        let (knobs, seen) = (Arc::new(knobs), Arc::clone(&views));
        let handler = move |event: Event| record(Arc::clone(&seen), Arc::clone(&knobs), event);
        let answers = Arc::clone(&sink);
        let workers = config
            .worker_options()
            .with_observer(move |p| lines::progress(&sink, p));
        let endpoint = config
            .builder(&opened, workers)
            .handler(handler)
            .on_answer(move |answer| lines::answer(&answers, answer))
            .build()
            .map_err(|e| e.to_string())?;
        config.show_learners(&opened, &endpoint);
        #[cfg(feature = "alm-api")]
        if config
            .reconcile(&opened, &endpoint)
            .map_err(|e| e.to_string())?
        {
            let (r, account) = (&config.reconcile, config.reconcile.account);
            let account = account.map_or(0, |a| a.get());
            eprintln!(
                "reconciliation: {:?} every {:?} for account {account}",
                r.mode, r.every
            );
        }
        // ALM_FORWARD: a relay hands every processed event to the brokers.
        if let Some(forwarding) = config
            .forwarding(&opened)
            .await
            .map_err(|e| e.to_string())?
        {
            eprintln!("forwarding processed events ({:?})", config.store);
            endpoint.forwarding(forwarding);
        }
        Ok(Arc::new(Self {
            config,
            engine: opened.engine,
            endpoint,
            views,
        }))
    }

    /// Stops the workers within `grace`; unfinished deliveries stay in the
    /// inbox for the next start.
    pub async fn shutdown(&self, grace: Duration) {
        if !self.endpoint.shutdown(grace).await {
            eprintln!(
                "shutdown: unfinished deliveries were given back to the inbox, or a worker panicked"
            );
        }
    }
}

/// The example handler: appends the event to its record's view. Quick, as
/// ALM waits for the acknowledgement before it sends the next events.
async fn record(views: Views, knobs: Arc<Knobs>, event: Event) -> Result<(), BoxError> {
    let id = event.event_id.as_str();
    if !knobs.delay.is_zero() {
        tokio::time::sleep(knobs.delay).await;
    }
    if knobs.abort_on.contains(id) {
        eprintln!("handler asked to abort on {id}");
        std::process::abort();
    }
    if knobs.hang_on.contains(id) {
        std::future::pending::<()>().await;
    }
    if knobs.fails(id) {
        return Err(format!("handler asked to fail on {id}").into());
    }
    if knobs.panic_on.contains(id) {
        panic!("handler asked to panic on {id}");
    }
    let record = match event.subject() {
        Some(Subject::Learner {
            user_id,
            lo_instance_id,
        }) => format!("learner {user_id} @ {lo_instance_id}"),
        Some(Subject::LearningObject(lo)) => format!("object {lo}"),
        Some(Subject::LearningObjectInstance(i)) => format!("instance {i}"),
        Some(Subject::InstanceStats(i)) => format!("stats {i}"),
        _ => "other".to_owned(),
    };
    let mut views = views.lock().map_err(|_| "view lock poisoned")?;
    views
        .entry(record)
        .or_default()
        .push(event.event_name.to_string());
    Ok(())
}
