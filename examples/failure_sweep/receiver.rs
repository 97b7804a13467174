//! `failure_sweep receive`: one receiver process in inbox mode, built on
//! the library's `Endpoint`, whose handler writes each run to the ledger.
//!
//! Environment (set by the sweep):
//! - `SWEEP_LISTEN` (`127.0.0.1:PORT`), `SWEEP_STORE` (the store's and the
//!   inbox's URL), `SWEEP_LEDGER` (a `postgres://` URL), `SWEEP_RUN`
//! - `SWEEP_WORKERS`, `SWEEP_MAX_ATTEMPTS`, `SWEEP_LEASE_MS`,
//!   `SWEEP_HANDLER_TIMEOUT_MS` (default 2000: the handler's own work takes
//!   a few milliseconds, and a hanging event must be given up on within the
//!   sweep's drain timeout)
//! - knobs: `SWEEP_HANG_ON`, `SWEEP_PANIC_ON`, `SWEEP_ABORT_ON`
//!   (comma-separated event ids whose handler never returns, panics, or
//!   aborts the process), `SWEEP_CLOCK_OFFSET_SECS` (this process's clock
//!   offset as the inbox sees it, see `skew.rs`)
//!
//! The store keeps the learner projection and, on SQLite and PostgreSQL,
//! the user's hook of `hooked.rs`.
//!
//! Every decision and dead letter the workers report is printed to stdout
//! as one JSON line (`eventId`, `decision`, `reason`). It exits when its
//! stdin closes (the sweep holds the other end).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use alm_webhooks::auth::SignatureAuth;
use alm_webhooks::inbox::WorkerOptions;
use alm_webhooks::inbox::{AnyInbox, Progress, RetryPolicy};
use alm_webhooks::store::AnyStore;
use alm_webhooks::{Authentication, Endpoint, Engine, Event};

use super::ledger::Ledger;
use super::skew::Skewed;

/// The signing secret the sweep's sender and its receivers share.
pub(crate) const SECRET: &str = "failure-sweep-secret";

/// How long the handler rests after its effect: the window in which a
/// `kill -9` lands after the effect and before the commit.
const AFTER_EFFECT: Duration = Duration::from_millis(2);

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set"))
}

fn number<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(v) => v
            .parse()
            .map_err(|_| format!("{name}={v:?} is not a number")),
    }
}

fn ids(name: &str) -> HashSet<String> {
    std::env::var(name)
        .map(|v| {
            v.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The handler's fault knobs.
#[derive(Debug, Default)]
struct Knobs {
    hang: HashSet<String>,
    panic: HashSet<String>,
    abort: HashSet<String>,
}

fn print_progress(progress: Progress<'_>) {
    let line = match progress {
        Progress::Decided { outcome, .. } => serde_json::json!({
            "eventId": outcome.event_id.as_ref().map(|id| id.as_str()),
            "decision": outcome.decision.as_str(),
            "reason": outcome.decision.to_string(),
        }),
        Progress::DeadLettered { letter } => serde_json::json!({
            "eventId": letter.event_id,
            "decision": "dead_lettered",
            "reason": letter.error,
        }),
        Progress::Unavailable { error } => {
            eprintln!("receiver {}: {error}", std::process::id());
            return;
        }
        _ => return,
    };
    println!("{line}");
}

/// Runs the receiver until killed.
pub(crate) async fn run() -> Result<(), String> {
    let listen = env("SWEEP_LISTEN")?;
    let store_url = env("SWEEP_STORE")?;
    let run = Arc::new(env("SWEEP_RUN")?);
    let ledger = Arc::new(Ledger::new(&env("SWEEP_LEDGER")?));
    let knobs = Arc::new(Knobs {
        hang: ids("SWEEP_HANG_ON"),
        panic: ids("SWEEP_PANIC_ON"),
        abort: ids("SWEEP_ABORT_ON"),
    });
    let store = AnyStore::from_url(&store_url)
        .await
        .map_err(|e| format!("store: {e}"))?;
    let store = super::hooked::keep(store).await?;
    let inbox = AnyInbox::from_url(&store_url)
        .await
        .map_err(|e| format!("inbox: {e}"))?;
    let inbox = Arc::new(Skewed::new(inbox, number("SWEEP_CLOCK_OFFSET_SECS", 0)?));
    let workers = WorkerOptions::new()
        .with_count(number("SWEEP_WORKERS", 4)?)
        .with_delivery_lease(Duration::from_millis(number("SWEEP_LEASE_MS", 5000)?))
        .with_poll_interval(Duration::from_millis(10))
        .with_handler_timeout(Duration::from_millis(number(
            "SWEEP_HANDLER_TIMEOUT_MS",
            2000,
        )?))
        .with_retry(RetryPolicy {
            max_attempts: number("SWEEP_MAX_ATTEMPTS", 4)?,
            base: Duration::from_millis(50),
            max: Duration::from_millis(500),
        })
        .with_observer(print_progress);
    let mut engine = Engine::builder(store);
    if let Ok(batch) = std::env::var("SWEEP_COMMIT_BATCH") {
        let batch = batch
            .parse()
            .map_err(|_| format!("SWEEP_COMMIT_BATCH={batch:?} is not a number"))?;
        engine = engine.commit_batch(batch);
    }
    let engine = engine.build();
    let endpoint = Endpoint::builder(Authentication::Signature(SignatureAuth::new(SECRET)))
        .engine(engine)
        .inbox(inbox, workers)
        .handler(move |event: Event| {
            let (run, ledger, knobs) = (Arc::clone(&run), Arc::clone(&ledger), Arc::clone(&knobs));
            async move {
                let id = event.event_id.as_str();
                if knobs.abort.contains(id) {
                    eprintln!("receiver {}: aborting on {id}", std::process::id());
                    std::process::abort();
                }
                if knobs.panic.contains(id) {
                    panic!("the sweep's handler panics on {id}");
                }
                if knobs.hang.contains(id) {
                    std::future::pending::<()>().await;
                }
                ledger.record(&run, id).await?;
                tokio::time::sleep(AFTER_EFFECT).await;
                Ok(())
            }
        })
        .build()
        .map_err(|e| e.to_string())?;
    let endpoint = Arc::new(endpoint);
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|e| format!("{listen}: {e}"))?;
    let app = axum::Router::new().route(
        "/webhooks",
        axum::routing::post(move |request: axum::extract::Request| {
            let endpoint = Arc::clone(&endpoint);
            async move { endpoint.handle_axum(request).await }
        }),
    );
    // The sweep holds our stdin: when it is gone, so are we.
    std::thread::spawn(|| {
        use std::io::Read;
        let mut buffer = [0u8; 64];
        while matches!(std::io::stdin().read(&mut buffer), Ok(n) if n > 0) {}
        std::process::exit(0);
    });
    eprintln!("receiver {} listening on {listen}", std::process::id());
    axum::serve(listener, app).await.map_err(|e| e.to_string())
}
