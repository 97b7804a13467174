//! The receivers' inbox mode: the front door that appends (or quarantines)
//! and answers at once, the workers behind it, and their stdout lines.
//!
//! Environment (beside `mod.rs`'s):
//! - `ALM_MODE` = `inbox` (default: acknowledge once appended, process
//!   behind) | `inline` (process inside the request, as before the inbox)
//! - `ALM_INBOX` = `memory` | `sqlite:PATH` | `postgres://…` | `redis://…`
//!   (default: the same as `ALM_STORE`)
//! - `ALM_WORKERS` (default 4), `ALM_MAX_ATTEMPTS` (default 10),
//!   `ALM_RETRY_BASE_MS` (default 1000), `ALM_RETRY_MAX_MS` (default
//!   300000); the lease is `ALM_LEASE_SECS`
//! - `ALM_ON_MALFORMED` = `quarantine` (default, both modes: keep the body,
//!   answer 202) | `refuse` (answer 400)
//! - `ALM_ADMIN_TOKEN`: enables the admin API (see `admin.rs`)
//! - test knobs: `ALM_HANDLER_FAIL_ON` (comma-separated event ids whose
//!   handler returns an error), `ALM_HANDLER_FAIL_TIMES` (with it: those ids
//!   fail only their first N calls in this process)
#![allow(dead_code, unreachable_pub)]

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alm_webhooks::inbox::{
    AnyInbox, Inbox, NewDelivery, NewQuarantined, Progress, RetryPolicy, WorkerPool, Workers,
};
use alm_webhooks::{AccountId, Rejection};
use http::{HeaderMap, StatusCode};
use time::OffsetDateTime;

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
#[derive(Debug, Clone)]
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
            admin_token: var("ALM_ADMIN_TOKEN").map(AdminToken::new),
            fail_on: var("ALM_HANDLER_FAIL_ON")
                .map(|v| v.split(',').map(str::to_owned).collect())
                .unwrap_or_default(),
            fail_times,
        })
    }
}

/// The `ALM_HANDLER_FAIL_ON` / `ALM_HANDLER_FAIL_TIMES` knob.
#[derive(Debug, Default)]
pub struct FailKnob {
    ids: HashSet<String>,
    times: Option<u32>,
    calls: Mutex<HashMap<String, u32>>,
}

impl FailKnob {
    pub fn new(config: &InboxConfig) -> Self {
        Self {
            ids: config.fail_on.clone(),
            times: config.fail_times,
            calls: Mutex::default(),
        }
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

/// The inbox and its running workers.
#[derive(Debug)]
pub struct Queue {
    pub inbox: Arc<AnyInbox>,
    pub config: InboxConfig,
    pub pool: WorkerPool,
}

impl App {
    /// Opens the inbox and starts the workers (in both modes: in inline
    /// mode they only run what the admin API replays).
    pub(super) async fn start_queue(
        config: InboxConfig,
        store_url: &str,
        lease: Duration,
        engine: alm_webhooks::Engine<alm_webhooks::store::AnyStore>,
        handler: impl Fn(alm_webhooks::Event) -> super::HandlerFuture + Send + Sync + 'static,
        sink: Sink,
    ) -> Result<Queue, String> {
        let url = config.url.clone().unwrap_or_else(|| store_url.to_owned());
        let inbox = Arc::new(
            AnyInbox::from_url(&url)
                .await
                .map_err(|e| format!("ALM_INBOX: {e}"))?,
        );
        let pool = Workers::new(engine, Arc::clone(&inbox))
            .with_count(config.workers)
            .with_lease(lease)
            .with_retry(config.retry)
            .with_observer(move |progress| sink.progress(progress))
            .start(handler);
        Ok(Queue {
            inbox,
            config,
            pool,
        })
    }

    /// The front door of both modes: checks the delivery, then appends it
    /// (inbox mode) or processes it (inline mode); a malformed body is
    /// quarantined or refused. The answer is counted (`/metrics`), its time
    /// from `started`, when the request came in.
    pub async fn deliver(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        started: Instant,
    ) -> (StatusCode, String) {
        let (status, answer, quarantined) = self.answer(headers, body).await;
        super::ops::record_delivery(status, quarantined, started);
        (status, answer)
    }

    /// [`App::deliver`]'s answer, and whether the body was quarantined.
    async fn answer(&self, headers: &HeaderMap, body: &[u8]) -> (StatusCode, String, bool) {
        let now = OffsetDateTime::now_utc();
        let envelope = match self.receiver.receive_at(headers, body, now) {
            Ok(envelope) => envelope,
            Err(Rejection::BadRequest(e))
                if self.queue.config.on_malformed == OnMalformed::Quarantine =>
            {
                let (status, answer) = self.quarantine(body, &e.to_string(), now).await;
                return (status, answer, status == StatusCode::ACCEPTED);
            }
            Err(rejection) => {
                eprintln!("{rejection}");
                return (rejection.status(), rejection.body(), false);
            }
        };
        if self.queue.config.mode == Mode::Inline {
            let (status, answer) = self.handle(envelope).await;
            return (status, answer, false);
        }
        let appended = self
            .queue
            .inbox
            .append(NewDelivery {
                account_id: envelope.account_id,
                body,
                received_at: now,
            })
            .await;
        match appended {
            Ok(id) => {
                self.queue.pool.wake();
                (
                    StatusCode::ACCEPTED,
                    format!(r#"{{"accepted":true,"delivery":{id}}}"#),
                    false,
                )
            }
            Err(e) => {
                eprintln!("{e}");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    r#"{"error":"inbox unavailable"}"#.to_owned(),
                    false,
                )
            }
        }
    }

    async fn quarantine(
        &self,
        body: &[u8],
        error: &str,
        now: OffsetDateTime,
    ) -> (StatusCode, String) {
        let account_id = account_of(body);
        let kept = self
            .queue
            .inbox
            .quarantine(NewQuarantined {
                account_id,
                body,
                error,
                received_at: now,
            })
            .await;
        match kept {
            Ok(id) => {
                self.sink.emit([quarantined_line(account_id, error)]);
                (
                    StatusCode::ACCEPTED,
                    serde_json::json!({"quarantined": id.get(), "error": error}).to_string(),
                )
            }
            Err(e) => {
                eprintln!("{e}");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    r#"{"error":"inbox unavailable"}"#.to_owned(),
                )
            }
        }
    }

    /// Stops the workers within `grace`; unfinished deliveries stay in the
    /// inbox for the next start.
    pub async fn shutdown(&self, grace: Duration) {
        if !self.queue.pool.shutdown(grace).await {
            eprintln!("shutdown: unfinished deliveries were given back to the inbox");
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

/// The `accountId` of a body that is not an envelope, when it can be read:
/// the digits after the first `"accountId":`, even if the JSON around them
/// is broken.
fn account_of(body: &[u8]) -> Option<AccountId> {
    const KEY: &[u8] = b"\"accountId\"";
    let at = body.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let rest = &body[at..];
    let rest = &rest[rest.iter().position(|b| !b.is_ascii_whitespace())?..];
    let rest = rest.strip_prefix(b":")?;
    let rest = &rest[rest.iter().position(|b| !b.is_ascii_whitespace())?..];
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&rest[..digits])
        .ok()?
        .parse()
        .ok()
        .map(AccountId)
}
