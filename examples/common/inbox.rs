//! The receivers' inbox mode from the environment: the inbox, the workers'
//! options, and their stdout lines (the front door is the library's
//! `Endpoint`).
//!
//! Environment (beside `mod.rs`'s):
//! - `ALM_MODE` = `inbox` (default: acknowledge once appended, process
//!   behind) | `inline` (process inside the request, as before the inbox)
//! - `ALM_INBOX` = `memory` | `sqlite:PATH` | `postgres://…` | `redis://…`
//!   (default: beside the store, on its pool or connection)
//! - `ALM_WORKERS` (default 4), `ALM_MAX_ATTEMPTS` (default 10),
//!   `ALM_RETRY_BASE_MS` (default 1000), `ALM_RETRY_MAX_MS` (default
//!   300000); the lease is `ALM_LEASE_SECS`
//! - `ALM_HANDLER_TIMEOUT_MS`: how long a worker's handler may run on one
//!   event before the attempt fails "timed out" (default: the library's
//!   `DEFAULT_HANDLER_TIMEOUT`, 30000)
//! - `ALM_ON_MALFORMED` = `quarantine` (default, both modes: keep the body,
//!   answer 202) | `refuse` (answer 400)
//! - `ALM_ADMIN_TOKEN`: enables the admin API (see `admin.rs`)
//! - the caps on what the inbox keeps (default: the library's `KeptLimits`):
//!   `ALM_MAX_DEAD_LETTERS`, `ALM_MAX_QUARANTINED`, `ALM_MAX_QUARANTINED_BYTES`
//!   in all, and `ALM_MAX_DEAD_LETTERS_PER_ACCOUNT`,
//!   `ALM_MAX_QUARANTINED_PER_ACCOUNT`, `ALM_MAX_QUARANTINED_BYTES_PER_ACCOUNT`
//! - test knobs: `ALM_HANDLER_FAIL_ON` (comma-separated event ids whose
//!   handler returns an error), `ALM_HANDLER_FAIL_TIMES` (with it: those ids
//!   fail only their first N calls in this process), `ALM_HANDLER_HANG_ON`
//!   (ids whose handler never returns), `ALM_HANDLER_ABORT_ON` (ids whose
//!   handler aborts the process, as `std::process::abort` does)
#![allow(dead_code, unreachable_pub)]

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alm_webhooks::endpoint::{self, EndpointBuilder, WorkerOptions};
use alm_webhooks::inbox::{AnyInbox, DEFAULT_HANDLER_TIMEOUT, Progress, RetryPolicy};
use alm_webhooks::store::AnyStore;
use alm_webhooks::{AccountId, Endpoint};

use super::admin::AdminToken;
use super::{App, outcome_line, var};

/// Where a receiver processes deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Acknowledge once appended to the inbox; workers process behind.
    Inbox,
    /// Process inside the request (the 5 s budget applies).
    Inline,
}

/// What to do with an authenticated body that is not an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnMalformed {
    /// Keep it in the inbox's quarantine and answer 202.
    Quarantine,
    /// Answer 400 (ALM retries it for 7 days, holding the account back).
    Refuse,
}

/// The inbox part of the configuration.
/// The inbox's configuration; its `Debug` shows the URL's scheme only.
#[derive(Clone)]
pub struct InboxConfig {
    pub mode: Mode,
    /// `None`: the store's URL.
    pub url: Option<String>,
    pub workers: usize,
    pub retry: RetryPolicy,
    pub on_malformed: OnMalformed,
    pub admin_token: Option<AdminToken>,
    pub fail_on: HashSet<String>,
    pub fail_times: Option<u32>,
    pub hang_on: HashSet<String>,
    pub abort_on: HashSet<String>,
    pub handler_timeout: Duration,
    pub kept: endpoint::KeptLimits,
}

impl std::fmt::Debug for InboxConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboxConfig")
            .field("mode", &self.mode)
            .field("url", &self.url.as_deref().map(super::url_scheme))
            .field("workers", &self.workers)
            .field("retry", &self.retry)
            .field("on_malformed", &self.on_malformed)
            .field("admin_token", &self.admin_token)
            .field("kept", &self.kept)
            .finish_non_exhaustive()
    }
}

impl Default for InboxConfig {
    fn default() -> Self {
        Self {
            mode: Mode::Inbox,
            url: None,
            workers: 4,
            retry: RetryPolicy::default(),
            on_malformed: OnMalformed::Quarantine,
            admin_token: None,
            fail_on: HashSet::new(),
            fail_times: None,
            hang_on: HashSet::new(),
            abort_on: HashSet::new(),
            handler_timeout: DEFAULT_HANDLER_TIMEOUT,
            kept: endpoint::KeptLimits::new(),
        }
    }
}

fn number<T: std::str::FromStr + PartialOrd + Default>(
    name: &str,
    default: T,
    what: &str,
) -> Result<T, String> {
    match var(name) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .ok()
            .filter(|n| *n > T::default())
            .ok_or_else(|| format!("{name}={v:?} is not a positive {what}")),
    }
}

impl InboxConfig {
    /// Reads the environment; a bad value is an error naming the variable.
    pub fn from_env() -> Result<Self, String> {
        let mode = match var("ALM_MODE").as_deref().unwrap_or("inbox") {
            "inbox" => Mode::Inbox,
            "inline" => Mode::Inline,
            other => return Err(format!("ALM_MODE={other:?}: expected inbox or inline")),
        };
        let on_malformed = match var("ALM_ON_MALFORMED").as_deref().unwrap_or("quarantine") {
            "quarantine" => OnMalformed::Quarantine,
            "refuse" => OnMalformed::Refuse,
            other => {
                return Err(format!(
                    "ALM_ON_MALFORMED={other:?}: expected quarantine or refuse"
                ));
            }
        };
        let base = number::<u64>("ALM_RETRY_BASE_MS", 1000, "number of milliseconds")?;
        let max = number::<u64>("ALM_RETRY_MAX_MS", 300_000, "number of milliseconds")?;
        let fail_times = match var("ALM_HANDLER_FAIL_TIMES") {
            None => None,
            Some(_) => Some(number::<u32>("ALM_HANDLER_FAIL_TIMES", 1, "number")?),
        };
        Ok(Self {
            mode,
            url: var("ALM_INBOX"),
            workers: number("ALM_WORKERS", 4, "number of workers")?,
            retry: RetryPolicy {
                max_attempts: number("ALM_MAX_ATTEMPTS", 10, "number of attempts")?,
                base: Duration::from_millis(base),
                max: Duration::from_millis(max.max(base)),
            },
            on_malformed,
            admin_token: var("ALM_ADMIN_TOKEN")
                .map(|t| AdminToken::parse(&t).map_err(|e| format!("ALM_ADMIN_TOKEN: {e}")))
                .transpose()?,
            fail_on: ids("ALM_HANDLER_FAIL_ON"),
            fail_times,
            hang_on: ids("ALM_HANDLER_HANG_ON"),
            abort_on: ids("ALM_HANDLER_ABORT_ON"),
            handler_timeout: Duration::from_millis(number(
                "ALM_HANDLER_TIMEOUT_MS",
                u64::try_from(DEFAULT_HANDLER_TIMEOUT.as_millis()).unwrap_or(u64::MAX),
                "number of milliseconds",
            )?),
            kept: kept_limits()?,
        })
    }
}

/// The caps on what the inbox keeps: the library's, each one the
/// environment sets replaced.
fn kept_limits() -> Result<endpoint::KeptLimits, String> {
    type Set = fn(endpoint::KeptLimits, u64) -> endpoint::KeptLimits;
    let caps: [(&str, Set); 6] = [
        (
            "ALM_MAX_DEAD_LETTERS",
            endpoint::KeptLimits::with_max_dead_letters,
        ),
        (
            "ALM_MAX_QUARANTINED",
            endpoint::KeptLimits::with_max_quarantined,
        ),
        (
            "ALM_MAX_QUARANTINED_BYTES",
            endpoint::KeptLimits::with_max_quarantined_bytes,
        ),
        (
            "ALM_MAX_DEAD_LETTERS_PER_ACCOUNT",
            endpoint::KeptLimits::with_max_dead_letters_per_account,
        ),
        (
            "ALM_MAX_QUARANTINED_PER_ACCOUNT",
            endpoint::KeptLimits::with_max_quarantined_per_account,
        ),
        (
            "ALM_MAX_QUARANTINED_BYTES_PER_ACCOUNT",
            endpoint::KeptLimits::with_max_quarantined_bytes_per_account,
        ),
    ];
    let mut limits = endpoint::KeptLimits::new();
    for (name, set) in caps {
        if var(name).is_some() {
            limits = set(limits, number(name, 1, "number")?);
        }
    }
    Ok(limits)
}

/// A comma-separated list of event ids (none when unset).
fn ids(name: &str) -> HashSet<String> {
    var(name)
        .map(|v| v.split(',').map(str::to_owned).collect())
        .unwrap_or_default()
}

/// The `ALM_HANDLER_FAIL_ON` / `ALM_HANDLER_FAIL_TIMES`,
/// `ALM_HANDLER_HANG_ON` and `ALM_HANDLER_ABORT_ON` knobs.
#[derive(Debug, Default)]
pub struct FailKnob {
    ids: HashSet<String>,
    times: Option<u32>,
    calls: Mutex<HashMap<String, u32>>,
    hang_on: HashSet<String>,
    abort_on: HashSet<String>,
}

impl FailKnob {
    pub fn new(config: &InboxConfig) -> Self {
        Self {
            ids: config.fail_on.clone(),
            times: config.fail_times,
            calls: Mutex::default(),
            hang_on: config.hang_on.clone(),
            abort_on: config.abort_on.clone(),
        }
    }

    /// Whether the handler for `event_id` must never return.
    pub fn hangs(&self, event_id: &str) -> bool {
        self.hang_on.contains(event_id)
    }

    /// Whether the handler for `event_id` must abort the process.
    pub fn aborts(&self, event_id: &str) -> bool {
        self.abort_on.contains(event_id)
    }

    /// Whether this call of the handler for `event_id` must fail.
    pub fn fails(&self, event_id: &str) -> bool {
        if !self.ids.contains(event_id) {
            return false;
        }
        let Some(times) = self.times else {
            return true;
        };
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        let n = calls.entry(event_id.to_owned()).or_default();
        *n += 1;
        *n <= times
    }
}

/// Where decision lines go: stdout (the receivers) or a journal (the demo).
#[derive(Debug, Clone)]
pub enum Sink {
    Stdout,
    Journal(Arc<Mutex<Vec<String>>>),
}

impl Sink {
    pub fn emit(&self, lines: impl IntoIterator<Item = String>) {
        match self {
            Self::Stdout => {
                use std::io::Write;
                let mut out = std::io::stdout().lock();
                for line in lines {
                    let _ = writeln!(out, "{line}");
                }
                let _ = out.flush();
            }
            Self::Journal(journal) => {
                if let Ok(mut journal) = journal.lock() {
                    journal.extend(lines);
                }
            }
        }
    }

    /// The line for what a worker did, if it makes one.
    fn progress(&self, progress: Progress<'_>) {
        let line = match progress {
            Progress::Decided {
                account_id,
                outcome,
                ..
            } => outcome_line(account_id.get(), outcome),
            Progress::DeadLettered { letter } => serde_json::json!({
                "accountId": letter.account_id.get(),
                "eventId": letter.event_id,
                "eventName": letter.event_name,
                "decision": "dead_lettered",
                "reason": letter.error,
                "attempts": letter.attempts,
            })
            .to_string(),
            Progress::Quarantined { account_id, error } => quarantined_line(account_id, error),
            Progress::Unavailable { error } => {
                eprintln!("inbox worker: {error}");
                return;
            }
            Progress::Panicked {
                account_id,
                delivery,
            } => {
                eprintln!(
                    "inbox worker panicked (account {:?}, delivery {:?}): restarted",
                    account_id.map(AccountId::get),
                    delivery.map(|d| d.0)
                );
                return;
            }
            _ => return,
        };
        self.emit([line]);
    }
}

/// The line for a quarantined body.
pub fn quarantined_line(account_id: Option<AccountId>, error: &str) -> String {
    serde_json::json!({
        "accountId": account_id.map(AccountId::get),
        "eventId": null,
        "eventName": null,
        "decision": "quarantined",
        "reason": error,
    })
    .to_string()
}

/// The inbox, and the endpoint that owns its running workers.
#[derive(Debug)]
pub struct Queue {
    pub inbox: Arc<AnyInbox>,
    pub config: InboxConfig,
    /// The front door; it owns the workers (`wake`, `shutdown`).
    pub pool: Endpoint,
}

impl Queue {
    /// Opens the inbox and builds the endpoint on it, which starts the
    /// workers (in both modes: in inline mode they only run what the admin
    /// API replays; the inbox keeps quarantined bodies).
    pub(super) async fn start(
        config: InboxConfig,
        store: &AnyStore,
        lease: Duration,
        endpoint: EndpointBuilder<AnyStore>,
        sink: Sink,
    ) -> Result<Self, String> {
        // Without ALM_INBOX, the inbox shares the store's pool (or
        // connection), in the same database.
        let inbox = match &config.url {
            Some(url) => AnyInbox::from_url(url).await,
            None => AnyInbox::from_store(store).await,
        };
        let inbox = Arc::new(inbox.map_err(|e| format!("ALM_INBOX: {e}"))?);
        let workers = WorkerOptions::new()
            .with_count(config.workers)
            .with_lease(lease)
            .with_retry(config.retry)
            .with_handler_timeout(config.handler_timeout)
            .with_observer(move |progress| sink.progress(progress));
        let endpoint = match config.admin_token.clone() {
            Some(token) => endpoint.admin_token(token),
            None => endpoint,
        };
        let pool = endpoint
            .inbox(Arc::clone(&inbox), workers)
            .mode(match config.mode {
                Mode::Inbox => endpoint::Mode::Inbox,
                Mode::Inline => endpoint::Mode::Inline,
            })
            .on_malformed(match config.on_malformed {
                OnMalformed::Quarantine => endpoint::OnMalformed::Quarantine,
                OnMalformed::Refuse => endpoint::OnMalformed::Refuse,
            })
            .kept_limits(config.kept)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            inbox,
            config,
            pool,
        })
    }
}

impl App {
    /// Stops the workers within `grace`; unfinished deliveries stay in the
    /// inbox for the next start.
    pub async fn shutdown(&self, grace: Duration) {
        if !self.endpoint().shutdown(grace).await {
            eprintln!(
                "shutdown: unfinished deliveries were given back to the inbox, or a worker panicked"
            );
        }
    }
}

/// How long the workers get to finish at `SIGTERM`, inside the 10 s a
/// receiver has to exit.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(7);

/// Waits for Ctrl-C or (on Unix) `SIGTERM`.
pub async fn terminated() {
    #[cfg(unix)]
    {
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
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
