//! Reconciliation with ALM's admin API (built with the feature `alm-api`):
//!
//! - `ALM_API_BASE` (the account's API host, default
//!   `https://learningmanager.adobe.com`), `ALM_API_CLIENT_ID`,
//!   `ALM_API_CLIENT_SECRET`, `ALM_API_REFRESH_TOKEN` (or
//!   `ALM_API_SECRET_FILE`: a JSON file with `client_secret` and
//!   `refresh_token`), `ALM_API_BUDGET_PER_HOUR` (default 50): read by the
//!   library's `ApiConfig::from_env`; secrets are never printed;
//! - `ALM_RECONCILE` = `off` (default) | `report` | `repair`;
//! - `ALM_RECONCILE_EVERY` (default `24h`; `30m`, `90s`, or seconds): a
//!   run on that period, the first one a period after start;
//! - `ALM_ACCOUNT_ID`: the account the API credentials belong to (needed
//!   when `ALM_RECONCILE` is not `off`).
//!
//! The table compared is the learner projection the store keeps
//! (`ALM_PROJECTION=on`, memory, SQLite or PostgreSQL). Repairs are one
//! delivery appended to the inbox: the workers run it through the engine
//! and the example handler like any delivery. With `ALM_ADMIN_TOKEN`,
//! `POST /admin/reconcile` starts a run and `GET /admin/reconcile/{id}`
//! shows it (the library's admin API, `AdminApi::reconciling`).
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

/// `ALM_RECONCILE_EVERY`: `24h`, `30m`, `90s`, or a number of seconds.
pub fn period(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().last() {
        Some((at, 'h')) => (&text[..at], 3600),
        Some((at, 'm')) => (&text[..at], 60),
        Some((at, 's')) => (&text[..at], 1),
        _ => (text, 1),
    };
    match number.parse::<u64>() {
        Ok(n) if n > 0 => Ok(Duration::from_secs(n * unit)),
        _ => Err(format!(
            "ALM_RECONCILE_EVERY={text:?}: expected a period like 24h, 30m or 90s"
        )),
    }
}

#[cfg(feature = "alm-api")]
mod enabled {
    use std::sync::Arc;

    use alm_webhooks::alm_api::reconcile::{ReconcileMode, ReconcileRuns, Reconciler};
    use alm_webhooks::alm_api::{AlmApi, ApiConfig};
    use alm_webhooks::inbox::{AnyInbox, Inbox, NewDelivery, PoolWaker};
    use alm_webhooks::store::AnyStore;
    use alm_webhooks::{AccountId, BoxError, Engine};

    /// The runs the environment asks for; `None` when `ALM_RECONCILE` is
    /// `off` (the default).
    pub fn from_env(
        engine: &Engine<AnyStore>,
        inbox: Arc<AnyInbox>,
        waker: Option<PoolWaker>,
    ) -> Result<Option<ReconcileRuns>, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let mode: ReconcileMode = var("ALM_RECONCILE")
            .unwrap_or_default()
            .parse()
            .map_err(|e| format!("{e}"))?;
        if mode == ReconcileMode::Off {
            return Ok(None);
        }
        let config = ApiConfig::from_env()
            .map_err(|e| format!("{e}"))?
            .ok_or("ALM_RECONCILE is on but ALM_API_CLIENT_ID is not set")?;
        let account: AccountId = var("ALM_ACCOUNT_ID")
            .ok_or("ALM_RECONCILE is on but ALM_ACCOUNT_ID is not set")?
            .parse()
            .map_err(|_| "ALM_ACCOUNT_ID is not an account id")?;
        let api = AlmApi::new(config).map_err(|e| format!("{e}"))?;
        let every = super::period(&var("ALM_RECONCILE_EVERY").unwrap_or_else(|| "24h".into()))?;
        let reconciler = Reconciler::new(api, engine.clone(), account);
        let runs = ReconcileRuns::new(reconciler, mode).repairing(move |repairs| {
            let (inbox, waker) = (Arc::clone(&inbox), waker.clone());
            async move {
                let body = serde_json::to_vec(&repairs)?;
                let delivery = NewDelivery {
                    account_id: repairs.account_id,
                    body: &body,
                    received_at: time::OffsetDateTime::now_utc(),
                };
                inbox.append(delivery).await?;
                if let Some(waker) = waker {
                    waker.wake();
                }
                Ok::<(), BoxError>(())
            }
        });
        runs.every(every);
        eprintln!("reconciliation: {mode:?} every {every:?} for account {account}");
        Ok(Some(runs))
    }
}

#[cfg(feature = "alm-api")]
pub use enabled::from_env;

/// Without the feature `alm-api`: an error if `ALM_RECONCILE` asks for it.
#[cfg(not(feature = "alm-api"))]
pub fn refuse_without_feature() -> Result<(), String> {
    match std::env::var("ALM_RECONCILE").ok().as_deref() {
        None | Some("") | Some("off") => Ok(()),
        Some(_) => Err("ALM_RECONCILE needs a build with the feature alm-api".into()),
    }
}
