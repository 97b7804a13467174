//! The inbox and its workers: `ALM_MODE`, `ALM_INBOX`, `ALM_WORKERS`,
//! `ALM_MAX_ATTEMPTS`, `ALM_RETRY_BASE_MS`, `ALM_RETRY_MAX_MS`,
//! `ALM_HANDLER_TIMEOUT_MS`, `ALM_ON_MALFORMED` and the caps on what it
//! keeps (`ALM_MAX_DEAD_LETTERS`, `ALM_MAX_QUARANTINED`,
//! `ALM_MAX_QUARANTINED_BYTES`, and per account
//! `ALM_MAX_DEAD_LETTERS_PER_ACCOUNT`, `ALM_MAX_QUARANTINED_PER_ACCOUNT`,
//! `ALM_MAX_QUARANTINED_BYTES_PER_ACCOUNT`), and the rate limits towards
//! the handler (`ALM_RATE_LIMIT`, `ALM_ACCOUNT_RATE_LIMIT`), and how long
//! the archive keeps a completed delivery (`ALM_ARCHIVE_DAYS`).

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use super::ConfigError;
use super::vars::{Vars, scheme};
use crate::endpoint::{
    DEFAULT_MAX_DEAD_LETTERS, DEFAULT_MAX_DEAD_LETTERS_PER_ACCOUNT, DEFAULT_MAX_QUARANTINED,
    DEFAULT_MAX_QUARANTINED_BYTES, DEFAULT_MAX_QUARANTINED_BYTES_PER_ACCOUNT,
    DEFAULT_MAX_QUARANTINED_PER_ACCOUNT, KeptLimits, Mode, OnMalformed,
};
use crate::inbox::{
    AnyInbox, DEFAULT_ARCHIVE_RETENTION, DEFAULT_HANDLER_TIMEOUT, DEFAULT_WORKERS, RetryPolicy,
    WorkerOptions,
};
use crate::store::AnyStore;

/// Where deliveries wait, and how the workers take them. Its `Debug`
/// shows the inbox URL's scheme alone.
///
/// ```
/// use alm_webhooks::config::Config;
/// use alm_webhooks::endpoint::{Mode, OnMalformed};
/// let config = Config::from_vars([("ALM_MODE", "inline"), ("ALM_WORKERS", "8")]).unwrap();
/// assert_eq!(config.inbox.mode, Mode::Inline);
/// assert_eq!(config.inbox.workers, 8);
/// assert_eq!(config.inbox.on_malformed, OnMalformed::Quarantine);
/// assert_eq!(config.inbox.url, None, "beside the store");
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InboxConfig {
    /// `ALM_MODE`: `inbox` (default: acknowledge once appended, process
    /// behind) or `inline` (process inside the request).
    pub mode: Mode,
    /// `ALM_INBOX`: a URL for [`AnyInbox::from_url`]; `None` (default):
    /// beside the store, on its pool or connection.
    pub url: Option<String>,
    /// `ALM_WORKERS` (default [`DEFAULT_WORKERS`]).
    pub workers: usize,
    /// `ALM_MAX_ATTEMPTS`, `ALM_RETRY_BASE_MS`, `ALM_RETRY_MAX_MS`
    /// (default [`RetryPolicy::default`]).
    pub retry: RetryPolicy,
    /// `ALM_HANDLER_TIMEOUT_MS` (default [`DEFAULT_HANDLER_TIMEOUT`]).
    pub handler_timeout: Duration,
    /// `ALM_ON_MALFORMED`: `quarantine` (default) or `refuse`.
    pub on_malformed: OnMalformed,
    /// `ALM_MAX_DEAD_LETTERS`, `ALM_MAX_QUARANTINED`,
    /// `ALM_MAX_QUARANTINED_BYTES`, `ALM_MAX_DEAD_LETTERS_PER_ACCOUNT`,
    /// `ALM_MAX_QUARANTINED_PER_ACCOUNT`, `ALM_MAX_QUARANTINED_BYTES_PER_ACCOUNT`
    /// (default [`KeptLimits::default`]).
    pub kept: KeptLimits,
    /// `ALM_RATE_LIMIT`: events a second the handler gets at most, all
    /// accounts together (default none;
    /// [`WorkerOptions::with_rate_limit`]).
    pub rate_limit: Option<NonZeroU32>,
    /// `ALM_ACCOUNT_RATE_LIMIT`: events a second the handler gets at most
    /// of one account (default none;
    /// [`WorkerOptions::with_account_rate_limit`]).
    pub account_rate_limit: Option<NonZeroU32>,
    /// `ALM_ARCHIVE_DAYS`: how long the archive keeps a completed delivery,
    /// in whole days (default [`DEFAULT_ARCHIVE_RETENTION`], 30 days; `0`
    /// turns the archive off: [`Duration::ZERO`];
    /// [`WorkerOptions::with_archive`]).
    pub archive: Duration,
}

impl fmt::Debug for InboxConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboxConfig")
            .field("mode", &self.mode)
            .field("url", &self.url.as_deref().map(scheme))
            .field("workers", &self.workers)
            .field("retry", &self.retry)
            .field("handler_timeout", &self.handler_timeout)
            .field("on_malformed", &self.on_malformed)
            .field("kept", &self.kept)
            .field("rate_limit", &self.rate_limit)
            .field("account_rate_limit", &self.account_rate_limit)
            .field("archive", &self.archive)
            .finish()
    }
}

impl InboxConfig {
    pub(super) fn read(vars: &Vars) -> Result<Self, ConfigError> {
        let mode = vars.choice(
            "ALM_MODE",
            Mode::Inbox,
            &[("inbox", Mode::Inbox), ("inline", Mode::Inline)],
        )?;
        let on_malformed = vars.choice(
            "ALM_ON_MALFORMED",
            OnMalformed::Quarantine,
            &[
                ("quarantine", OnMalformed::Quarantine),
                ("refuse", OnMalformed::Refuse),
            ],
        )?;
        let defaults = RetryPolicy::default();
        let base = vars.millis("ALM_RETRY_BASE_MS", defaults.base)?;
        let max = vars.millis("ALM_RETRY_MAX_MS", defaults.max)?;
        let max_attempts = vars.positive(
            "ALM_MAX_ATTEMPTS",
            defaults.max_attempts,
            "number of attempts",
        )?;
        let kept = KeptLimits::new()
            .with_max_dead_letters(vars.positive(
                "ALM_MAX_DEAD_LETTERS",
                DEFAULT_MAX_DEAD_LETTERS,
                "number of dead letters",
            )?)
            .with_max_quarantined(vars.positive(
                "ALM_MAX_QUARANTINED",
                DEFAULT_MAX_QUARANTINED,
                "number of bodies",
            )?)
            .with_max_quarantined_bytes(vars.positive(
                "ALM_MAX_QUARANTINED_BYTES",
                DEFAULT_MAX_QUARANTINED_BYTES,
                "number of bytes",
            )?)
            .with_max_dead_letters_per_account(vars.positive(
                "ALM_MAX_DEAD_LETTERS_PER_ACCOUNT",
                DEFAULT_MAX_DEAD_LETTERS_PER_ACCOUNT,
                "number of dead letters",
            )?)
            .with_max_quarantined_per_account(vars.positive(
                "ALM_MAX_QUARANTINED_PER_ACCOUNT",
                DEFAULT_MAX_QUARANTINED_PER_ACCOUNT,
                "number of bodies",
            )?)
            .with_max_quarantined_bytes_per_account(vars.positive(
                "ALM_MAX_QUARANTINED_BYTES_PER_ACCOUNT",
                DEFAULT_MAX_QUARANTINED_BYTES_PER_ACCOUNT,
                "number of bytes",
            )?);
        Ok(Self {
            mode,
            url: vars.string("ALM_INBOX"),
            workers: vars.positive("ALM_WORKERS", DEFAULT_WORKERS, "number of workers")?,
            retry: RetryPolicy {
                max_attempts,
                base,
                max: max.max(base),
            },
            handler_timeout: vars.millis("ALM_HANDLER_TIMEOUT_MS", DEFAULT_HANDLER_TIMEOUT)?,
            on_malformed,
            kept,
            rate_limit: vars
                .positive_opt::<u32>("ALM_RATE_LIMIT", "number of events a second")?
                .and_then(NonZeroU32::new),
            account_rate_limit: vars
                .positive_opt::<u32>("ALM_ACCOUNT_RATE_LIMIT", "number of events a second")?
                .and_then(NonZeroU32::new),
            archive: archive_days(vars)?,
        })
    }

    /// The workers' options: their count, retries, handler timeout and
    /// rate limits, and `lease`.
    pub(super) fn worker_options(&self, lease: Duration) -> WorkerOptions {
        let mut options = WorkerOptions::new()
            .with_count(self.workers)
            .with_delivery_lease(lease)
            .with_retry(self.retry)
            .with_handler_timeout(self.handler_timeout);
        if let Some(per_second) = self.rate_limit {
            options = options.with_rate_limit(per_second);
        }
        if let Some(per_second) = self.account_rate_limit {
            options = options.with_account_rate_limit(per_second);
        }
        options.with_archive(self.archive)
    }

    /// Opens the inbox: `ALM_INBOX`, or beside `store`.
    pub(super) async fn open(&self, store: &AnyStore) -> Result<Arc<AnyInbox>, ConfigError> {
        let inbox = match &self.url {
            Some(url) => AnyInbox::from_url(url).await,
            None => AnyInbox::from_store(store).await,
        };
        inbox
            .map(Arc::new)
            .map_err(|e| ConfigError::unavailable("ALM_INBOX", e))
    }
}

/// `ALM_ARCHIVE_DAYS`: whole days, `0` for none (the archive off).
fn archive_days(vars: &Vars) -> Result<Duration, ConfigError> {
    let Some(value) = vars.get("ALM_ARCHIVE_DAYS") else {
        return Ok(DEFAULT_ARCHIVE_RETENTION);
    };
    value
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|days| *days <= 36_500)
        .map(|days| Duration::from_secs(u64::from(days) * 86_400))
        .ok_or_else(|| {
            ConfigError::invalid(
                "ALM_ARCHIVE_DAYS",
                format!("{value:?} is not a number of days from 0 to 36500"),
            )
        })
}
