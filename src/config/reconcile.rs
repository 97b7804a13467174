//! Reconciliation with ALM's API: `ALM_RECONCILE`, `ALM_RECONCILE_EVERY`,
//! `ALM_ACCOUNT_ID`, and the `ALM_API_*` variables
//! ([`ApiConfig::from_lookup`]).

use std::sync::Arc;
use std::time::Duration;

use super::ConfigError;
use super::vars::Vars;
use crate::alm_api::reconcile::{ReconcileMode, ReconcileRuns, Reconciler};
use crate::alm_api::{AlmApi, ApiConfig, ApiError};
use crate::inbox::{AnyInbox, Inbox, NewDelivery, PoolWaker};
use crate::store::AnyStore;
use crate::{AccountId, BoxError, Engine};

/// The period of a reconciliation run, by default: a day.
///
/// ```
/// assert_eq!(alm_webhooks::config::DEFAULT_RECONCILE_EVERY.as_secs(), 24 * 3600);
/// ```
pub const DEFAULT_RECONCILE_EVERY: Duration = Duration::from_secs(24 * 3600);

/// The `ALM_API_*` variables, for errors that name one.
const API: [&str; 6] = [
    "ALM_API_CLIENT_ID",
    "ALM_API_CLIENT_SECRET",
    "ALM_API_REFRESH_TOKEN",
    "ALM_API_SECRET_FILE",
    "ALM_API_BUDGET_PER_HOUR",
    "ALM_API_BASE",
];

/// ALM's API and the reconciliation runs (feature `alm-api`). Its `Debug`
/// never shows the API's secrets.
///
/// ```
/// use alm_webhooks::alm_api::reconcile::ReconcileMode;
/// use alm_webhooks::config::Config;
/// let config = Config::from_vars([
///     ("ALM_RECONCILE", "report"), ("ALM_RECONCILE_EVERY", "6h"), ("ALM_ACCOUNT_ID", "1234"),
///     ("ALM_API_CLIENT_ID", "app"), ("ALM_API_CLIENT_SECRET", "s3cret"), ("ALM_API_REFRESH_TOKEN", "r3fresh"),
/// ]).unwrap();
/// assert_eq!(config.reconcile.mode, ReconcileMode::Report);
/// assert_eq!(config.reconcile.every.as_secs(), 6 * 3600);
/// assert!(!format!("{config:?}").contains("s3cret"));
/// let refused = Config::from_vars([("ALM_RECONCILE", "repair")]).unwrap_err();
/// assert_eq!(refused.variable(), Some("ALM_API_CLIENT_ID"));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReconcileConfig {
    /// `ALM_RECONCILE`: `off` (default), `report` or `repair`.
    pub mode: ReconcileMode,
    /// `ALM_RECONCILE_EVERY`: `24h` (default), `30m`, `90s`, or seconds;
    /// the first run a period after start.
    pub every: Duration,
    /// `ALM_ACCOUNT_ID`: the account the credentials belong to (needed
    /// unless the mode is `off`).
    pub account: Option<AccountId>,
    /// `ALM_API_*`: ALM's API, when `ALM_API_CLIENT_ID` is set (needed
    /// unless the mode is `off`).
    pub api: Option<ApiConfig>,
}

impl ReconcileConfig {
    pub(super) fn read(vars: &Vars) -> Result<Self, ConfigError> {
        let mode: ReconcileMode = vars
            .get("ALM_RECONCILE")
            .unwrap_or("off")
            .parse()
            .map_err(|e: ApiError| ConfigError::from_message(e.to_string(), &["ALM_RECONCILE"]))?;
        let every = match vars.get("ALM_RECONCILE_EVERY") {
            None => DEFAULT_RECONCILE_EVERY,
            Some(text) => period(text).ok_or_else(|| {
                ConfigError::invalid(
                    "ALM_RECONCILE_EVERY",
                    format!("{text:?}: expected a period like 24h, 30m or 90s"),
                )
            })?,
        };
        let account = vars
            .get("ALM_ACCOUNT_ID")
            .map(|v| {
                v.trim().parse::<AccountId>().map_err(|_| {
                    ConfigError::invalid("ALM_ACCOUNT_ID", format!("{v:?} is not an account id"))
                })
            })
            .transpose()?;
        let api = ApiConfig::from_lookup(|name| vars.string(name)).map_err(|e| match e {
            ApiError::Config(message) => ConfigError::from_message(message, &API),
            other => ConfigError::unavailable("ALM_API_CLIENT_ID", other),
        })?;
        if mode != ReconcileMode::Off {
            if api.is_none() {
                return Err(ConfigError::invalid(
                    "ALM_API_CLIENT_ID",
                    "must be set when ALM_RECONCILE is not off",
                ));
            }
            if account.is_none() {
                return Err(ConfigError::invalid(
                    "ALM_ACCOUNT_ID",
                    "must be set when ALM_RECONCILE is not off",
                ));
            }
        }
        Ok(Self {
            mode,
            every,
            account,
            api,
        })
    }

    /// The API client, when the runs need one.
    pub(super) fn api(&self) -> Result<Option<(AlmApi, AccountId)>, ConfigError> {
        let (Some(config), Some(account)) = (&self.api, self.account) else {
            return Ok(None);
        };
        if self.mode == ReconcileMode::Off {
            return Ok(None);
        }
        let api =
            AlmApi::new(config.clone()).map_err(|e| ConfigError::unavailable("ALM_API_BASE", e))?;
        Ok(Some((api, account)))
    }

    /// The runs, every period from now; repairs are appended to `inbox`
    /// as one delivery each, and the workers woken.
    pub(super) fn runs(
        &self,
        (api, account): (AlmApi, AccountId),
        engine: &Engine<AnyStore>,
        inbox: &Arc<AnyInbox>,
        waker: Option<PoolWaker>,
    ) -> ReconcileRuns {
        let reconciler = Reconciler::new(api, engine.clone(), account);
        let inbox = Arc::clone(inbox);
        let runs = ReconcileRuns::new(reconciler, self.mode).repairing(move |repairs| {
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
        runs.every(self.every);
        runs
    }
}

/// `24h`, `30m`, `90s`, or a number of seconds; `None` for anything else
/// (or zero).
fn period(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().last() {
        Some((at, 'h')) => (&text[..at], 3600),
        Some((at, 'm')) => (&text[..at], 60),
        Some((at, 's')) => (&text[..at], 1),
        _ => (text, 1),
    };
    match number.parse::<u64>() {
        Ok(n) if n > 0 => Some(Duration::from_secs(n.saturating_mul(unit))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::period;
    use std::time::Duration;

    #[test]
    fn periods_read_hours_minutes_and_seconds() {
        assert_eq!(period("24h"), Some(Duration::from_secs(86_400)));
        assert_eq!(period("30m"), Some(Duration::from_secs(1_800)));
        assert_eq!(period(" 90s "), Some(Duration::from_secs(90)));
        assert_eq!(period("45"), Some(Duration::from_secs(45)));
        assert_eq!(period("0h"), None);
        assert_eq!(period("daily"), None);
    }
}
