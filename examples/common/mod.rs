//! What the axum and actix receivers share around the library's `Endpoint`
//! (which answers `POST /webhooks`): configuration from the
//! environment, the engine, the example handler and the decision log. Each
//! receiver only adapts it to its framework.
//!
//! Environment:
//! - `ALM_LISTEN` (default `127.0.0.1:8080`; port 0 picks a free port, and
//!   the address is printed on stderr as `listening on http://ADDR`)
//! - authentication: `ALM_AUTH` and its variables, see `auth_env.rs`
//! - `ALM_MAX_BODY_BYTES` (default 8 MiB)
//! - `ALM_CAPTURE_DIR`: write every delivery there, raw (see `capture.rs`)
//! - `ALM_STORE` = `memory` (default), `postgres://…[?schema=…]`,
//!   `redis://…[?prefix=…]` or `sqlite:path`, as the build's features allow
//! - `ALM_PROJECTION` = `on` (default) | `off`: the learner table, see
//!   `projection.rs`
//! - `ALM_LEASE_SECS`: how long a claim holds before another attempt may take
//!   the event over (default 60; make it longer than your slowest handler)
//! - `ALM_COMMIT_BATCH`: decisions of a delivery committed together (default:
//!   the library's, the whole delivery; 1 commits each event on its own)
//! - test knobs: `ALM_HANDLER_DELAY_MS` (a slow handler),
//!   `ALM_HANDLER_PANIC_ON` (comma-separated event ids whose handler panics)
//! - the inbox mode's variables (`ALM_MODE`, `ALM_INBOX`, `ALM_WORKERS`, …):
//!   see `inbox.rs`; the admin API (`ALM_ADMIN_TOKEN`): see `admin.rs`
//! - `/healthz`, `/readyz` and `/metrics` (no authentication): see `ops.rs`
//! - the front door's bounds (`ALM_READ_TIMEOUT_MS`, …): see `guard_env.rs`
//! - reconciliation with ALM's API (`ALM_RECONCILE`, `ALM_API_…`, feature
//!   `alm-api`): see `reconcile.rs`
#![allow(dead_code, unreachable_pub)]

#[cfg(feature = "actix")]
pub mod actix_app;
pub mod admin;
pub mod auth_env;
#[cfg(feature = "axum")]
pub mod axum_app;
pub mod capture;
pub mod guard_env;
pub mod inbox;
pub mod ops;
pub mod projection;
pub mod reconcile;

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alm_webhooks::Decision;
use alm_webhooks::DeliveryReport;
use alm_webhooks::engine::EventOutcome;
use alm_webhooks::store::AnyStore;
use alm_webhooks::{
    Answer, Authentication, BoxError, DEFAULT_MAX_BODY_BYTES, Endpoint, Engine, Event, Subject,
};

/// The scheme of a store or inbox URL (`postgres`, `redis`…), for logs and
/// `Debug`: the URL itself may hold a password.
pub fn url_scheme(url: &str) -> &str {
    match url.split_once(':') {
        Some((scheme, _))
            if !scheme.is_empty()
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'+') =>
        {
            scheme
        }
        _ if url == "memory" => "memory",
        _ => "(not a URL)",
    }
}

/// The receiver's configuration, read once at start. Its `Debug` shows the
/// store's scheme only.
pub struct Config {
    pub listen: SocketAddr,
    pub auth: Authentication,
    pub max_body_bytes: usize,
    pub store_url: String,
    pub handler_delay: Duration,
    pub panic_on: HashSet<String>,
    pub lease: Duration,
    /// `None`: the library's default.
    pub commit_batch: Option<usize>,
    pub inbox: inbox::InboxConfig,
    pub guard: guard_env::GuardConfig,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("auth", &self.auth)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("store", &url_scheme(&self.store_url))
            .field("handler_delay", &self.handler_delay)
            .field("lease", &self.lease)
            .field("commit_batch", &self.commit_batch)
            .field("inbox", &self.inbox)
            .field("guard", &self.guard)
            .finish_non_exhaustive()
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn required(name: &str, why: &str) -> Result<String, String> {
    var(name).ok_or_else(|| format!("{name} must be set {why}"))
}

impl Config {
    /// Reads the environment; a bad value is an error naming the variable.
    pub fn from_env() -> Result<Self, String> {
        let listen = var("ALM_LISTEN").unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen = listen
            .parse()
            .map_err(|_| format!("ALM_LISTEN={listen:?} is not an address like 127.0.0.1:8080"))?;
        let auth = auth_env::from_env()?;
        let max_body_bytes = match var("ALM_MAX_BODY_BYTES") {
            None => DEFAULT_MAX_BODY_BYTES,
            Some(v) => v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                format!("ALM_MAX_BODY_BYTES={v:?} is not a positive number of bytes")
            })?,
        };
        let handler_delay = match var("ALM_HANDLER_DELAY_MS") {
            None => Duration::ZERO,
            Some(v) => Duration::from_millis(
                v.parse()
                    .map_err(|_| format!("ALM_HANDLER_DELAY_MS={v:?} is not a number"))?,
            ),
        };
        let lease = match var("ALM_LEASE_SECS") {
            None => alm_webhooks::engine::DEFAULT_CLAIM_LEASE,
            Some(v) => Duration::from_secs(v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                format!("ALM_LEASE_SECS={v:?} is not a positive number of seconds")
            })?),
        };
        let commit_batch = match var("ALM_COMMIT_BATCH") {
            None => None,
            Some(v) => Some(v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                format!("ALM_COMMIT_BATCH={v:?} is not a positive number of events")
            })?),
        };
        let panic_on = var("ALM_HANDLER_PANIC_ON")
            .map(|v| v.split(',').map(str::to_owned).collect())
            .unwrap_or_default();
        Ok(Self {
            listen,
            auth,
            max_body_bytes,
            store_url: var("ALM_STORE").unwrap_or_else(|| "memory".into()),
            handler_delay,
            panic_on,
            lease,
            commit_batch,
            inbox: inbox::InboxConfig::from_env()?,
            guard: guard_env::GuardConfig::from_env()?,
        })
    }
}

/// What the receiver shares between requests.
#[derive(Debug)]
pub struct App {
    pub engine: Engine<AnyStore>,
    /// The example's downstream: each record's processed event names.
    pub views: Arc<Mutex<BTreeMap<String, Vec<String>>>>,
    /// Where decisions go: stdout lines (receivers) or a journal (the demo).
    sink: inbox::Sink,
    /// The inbox, and the endpoint that owns its workers.
    pub queue: inbox::Queue,
    /// Where raw deliveries are written, when capturing.
    pub capture: Option<Arc<capture::Capture>>,
    /// The front door's bounds.
    pub guard: guard_env::GuardConfig,
}

impl App {
    /// Builds the receiver and connects the store; the endpoint sweeps it hourly.
    /// Decisions are printed on stdout.
    pub async fn new(config: Config) -> Result<Arc<Self>, String> {
        Self::build(config, None).await
    }

    /// As [`App::new`], but decision lines go to `journal` instead of stdout.
    pub async fn with_journal(
        config: Config,
        journal: Arc<Mutex<Vec<String>>>,
    ) -> Result<Arc<Self>, String> {
        Self::build(config, Some(journal)).await
    }

    async fn build(
        config: Config,
        journal: Option<Arc<Mutex<Vec<String>>>>,
    ) -> Result<Arc<Self>, String> {
        let store = AnyStore::from_url(&config.store_url)
            .await
            .map_err(|e| format!("ALM_STORE: {e}"))?;
        let store = projection::apply(store).await?;
        ops::start_metrics();
        let mut engine = Engine::builder(store).claim_lease(config.lease);
        if let Some(events) = config.commit_batch {
            engine = engine.commit_batch(events);
        }
        let engine = engine.build();
        let sink = journal.map_or(inbox::Sink::Stdout, inbox::Sink::Journal);
        let fail = Arc::new(inbox::FailKnob::new(&config.inbox));
        let views: Arc<Mutex<BTreeMap<String, Vec<String>>>> = Arc::default();
        let panic_on = Arc::new(config.panic_on);
        let handler = {
            let (views, delay) = (Arc::clone(&views), config.handler_delay);
            move |event: Event| {
                let (views, panic_on, fail) =
                    (Arc::clone(&views), Arc::clone(&panic_on), Arc::clone(&fail));
                async move { record(views, delay, panic_on, fail, event).await }
            }
        };
        let capture = capture::Capture::from_env(config.max_body_bytes)?.map(Arc::new);
        let guard = config.guard;
        let answers = sink.clone();
        let queue = inbox::Queue::start(
            config.inbox,
            engine.store(),
            config.lease,
            Endpoint::builder(config.auth)
                .max_body_bytes(config.max_body_bytes)
                .engine(engine.clone())
                .sweep_every(Duration::from_secs(3600))
                .handler(handler)
                .on_answer(move |answer| report(&answers, answer)),
            sink.clone(),
        )
        .await?;
        // Reconciliation runs, when `ALM_RECONCILE` is not `off`: the
        // endpoint keeps them, and its admin API (`/admin/reconcile`)
        // serves them.
        #[cfg(feature = "alm-api")]
        if let Some(runs) =
            reconcile::from_env(&engine, Arc::clone(&queue.inbox), queue.pool.waker())?
        {
            queue.pool.reconciling(runs);
        }
        #[cfg(not(feature = "alm-api"))]
        reconcile::refuse_without_feature()?;
        Ok(Arc::new(Self {
            engine,
            views,
            sink,
            queue,
            capture,
            guard,
        }))
    }

    /// The front door, which owns the inbox's workers.
    pub fn endpoint(&self) -> &Endpoint {
        &self.queue.pool
    }
}

/// Prints what an answer decided (one JSON line per decided event, or one
/// for a quarantined body) and logs an outage on stderr. Refusals are not
/// logged one by one (a flood of them would flood the log): both
/// receivers' guards summarise them.
fn report(sink: &inbox::Sink, answer: &Answer) {
    match answer {
        Answer::Processed { account_id, report } => {
            sink.emit(decision_lines(account_id.get(), report));
        }
        Answer::Quarantined {
            account_id, error, ..
        } => sink.emit([inbox::quarantined_line(*account_id, error)]),
        Answer::StoreUnavailable(e) => eprintln!("store error: {e}"),
        Answer::InboxUnavailable(e) => eprintln!("{e}"),
        _ => {}
    }
}

/// The example handler: appends the event to its record's view. Quick, as
/// ALM waits for the acknowledgement before it sends the next events.
async fn record(
    views: Arc<Mutex<BTreeMap<String, Vec<String>>>>,
    delay: Duration,
    panic_on: Arc<HashSet<String>>,
    fail: Arc<inbox::FailKnob>,
    event: Event,
) -> Result<(), BoxError> {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if fail.aborts(event.event_id.as_str()) {
        eprintln!("handler asked to abort on {}", event.event_id);
        std::process::abort();
    }
    if fail.hangs(event.event_id.as_str()) {
        std::future::pending::<()>().await;
    }
    if fail.fails(event.event_id.as_str()) {
        return Err(format!("handler asked to fail on {}", event.event_id).into());
    }
    if panic_on.contains(event.event_id.as_str()) {
        panic!("handler asked to panic on {}", event.event_id);
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

/// One JSON object per decided event on stdout; nothing else goes there.
pub fn print_decisions(account_id: u64, report: &DeliveryReport) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for line in decision_lines(account_id, report) {
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
}

/// The decision lines of a report.
pub fn decision_lines(account_id: u64, report: &DeliveryReport) -> Vec<String> {
    report
        .outcomes
        .iter()
        .map(|o| outcome_line(account_id, o))
        .collect()
}

/// The decision line of one event.
pub fn outcome_line(account_id: u64, o: &EventOutcome) -> String {
    let mut line = serde_json::json!({
        "accountId": account_id,
        "eventId": o.event_id.as_ref().map(|id| id.as_str()),
        "eventName": o.event_name.as_ref().map(|n| n.as_str()),
        "decision": o.decision.as_str(),
    });
    let reason = match (o.decision, &o.error) {
        (Decision::Ignored(reason), _) => Some(reason.code().to_owned()),
        (Decision::Failed, Some(e)) => Some(e.message().to_owned()),
        (Decision::Duplicate, _) => Some("already decided".to_owned()),
        (Decision::Malformed, _) => Some("event did not parse".to_owned()),
        (Decision::InFlight, _) => Some("in flight elsewhere".to_owned()),
        _ => None,
    };
    if let Some(reason) = reason {
        line["reason"] = reason.into();
    }
    line.to_string()
}

/// Reads the configuration or stops the program with a clear message.
pub fn config_or_exit() -> Config {
    Config::from_env().unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(2);
    })
}
