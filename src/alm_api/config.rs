//! How to reach one account's API: host, credentials, budget, cache.

use std::fmt;
use std::time::Duration;

use secrecy::SecretString;

use super::{ApiError, WhenOverBudget};

/// ALM's limit for `GET /users` and `GET /learningObjects`: 500 requests an
/// hour ([`REFERENCE.md`], "Enrichment through ALM's admin API is
/// rate-limited").
///
/// [`REFERENCE.md`]: https://experienceleague.adobe.com/en/docs/learning-manager/using/integration/webhooks
pub const ALM_REQUESTS_PER_HOUR: u32 = 500;

/// The default budget: 10 % of [`ALM_REQUESTS_PER_HOUR`], leaving the rest
/// of the account's limit to its other integrations.
pub const DEFAULT_BUDGET_PER_HOUR: u32 = ALM_REQUESTS_PER_HOUR / 10;

/// The default host (ALM's US data centre). Other regions have their own
/// host (for example `https://learningmanagereu.adobe.com`): it is
/// configuration, never code.
pub const DEFAULT_BASE: &str = "https://learningmanager.adobe.com";

/// One account's API configuration.
///
/// `Debug` prints the client id and the host but never the client secret
/// or the refresh token (they are [`SecretString`]s).
///
/// ```
/// use std::time::Duration;
/// use alm_webhooks::alm_api::ApiConfig;
/// let config = ApiConfig::new("https://learningmanagereu.adobe.com", "my-app", "s3cret", "r3fresh")
///     .with_budget(100, Duration::from_secs(3600))
///     .with_cache(10_000, Duration::from_secs(600));
/// let printed = format!("{config:?}");
/// assert!(printed.contains("learningmanagereu") && printed.contains("my-app"));
/// assert!(!printed.contains("s3cret") && !printed.contains("r3fresh"));
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct ApiConfig {
    /// The account's API host, e.g. `https://learningmanager.adobe.com`;
    /// requests go to `{base}/primeapi/v2/…` and the token refresh to
    /// `{base}/oauth/token/refresh`.
    pub base: String,
    /// The application's client id (Integration Admin → Applications).
    pub client_id: String,
    /// The application's client secret.
    pub client_secret: SecretString,
    /// The refresh token the OAuth flow gave for this application.
    pub refresh_token: SecretString,
    /// Requests allowed per [`budget_window`](Self::budget_window) on the
    /// rate-limited endpoints (default [`DEFAULT_BUDGET_PER_HOUR`]).
    pub budget: u32,
    /// The window of the budget (default one hour; tests shorten it).
    pub budget_window: Duration,
    /// Most answers kept in the cache (default 10,000).
    pub cache_capacity: u64,
    /// How long a cached answer is used (default 15 minutes).
    pub cache_ttl: Duration,
    /// The bound of every request (default 30 s).
    pub request_timeout: Duration,
    /// The access token is renewed this long before it expires (default
    /// 1 hour; ALM's tokens live 7 days), or halfway through its life when
    /// it lives less than twice this.
    pub refresh_margin: Duration,
    /// How often a request is tried when ALM answers `429` and the caller
    /// chose to wait (default 3). Every try takes a token from the budget.
    pub max_attempts: u32,
    /// What [`Event::user`](crate::Event::user) and the other enrichment
    /// calls do when the budget has no room (default: wait up to 10 s,
    /// then fail with [`ApiError::OverBudget`]).
    pub when_over_budget: WhenOverBudget,
}

impl ApiConfig {
    /// A configuration with the defaults for everything but the host and
    /// the credentials.
    pub fn new(
        base: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        refresh_token: impl Into<String>,
    ) -> Self {
        Self {
            base: base.into().trim_end_matches('/').to_owned(),
            client_id: client_id.into(),
            client_secret: SecretString::from(client_secret.into()),
            refresh_token: SecretString::from(refresh_token.into()),
            budget: DEFAULT_BUDGET_PER_HOUR,
            budget_window: Duration::from_secs(3600),
            cache_capacity: 10_000,
            cache_ttl: Duration::from_secs(15 * 60),
            request_timeout: Duration::from_secs(30),
            refresh_margin: Duration::from_secs(3600),
            max_attempts: 3,
            when_over_budget: WhenOverBudget::Wait(Duration::from_secs(10)),
        }
    }

    /// Reads the example receivers' variables: `ALM_API_BASE` (default
    /// [`DEFAULT_BASE`]), `ALM_API_CLIENT_ID`, `ALM_API_CLIENT_SECRET`,
    /// `ALM_API_REFRESH_TOKEN` (or `ALM_API_SECRET_FILE`, a JSON file with
    /// `client_secret` and `refresh_token`), `ALM_API_BUDGET_PER_HOUR`.
    ///
    /// `Ok(None)` when `ALM_API_CLIENT_ID` is not set (no API configured).
    pub fn from_env() -> Result<Option<Self>, ApiError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) over any lookup (tests, other sources).
    ///
    /// ```
    /// use alm_webhooks::alm_api::ApiConfig;
    /// let vars = [("ALM_API_CLIENT_ID", "app"), ("ALM_API_CLIENT_SECRET", "s"),
    ///             ("ALM_API_REFRESH_TOKEN", "r"), ("ALM_API_BUDGET_PER_HOUR", "25")];
    /// let lookup = |name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string());
    /// let config = ApiConfig::from_lookup(lookup).unwrap().unwrap();
    /// assert_eq!(config.budget, 25);
    /// assert_eq!(config.base, "https://learningmanager.adobe.com");
    /// ```
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, ApiError> {
        let Some(client_id) = lookup("ALM_API_CLIENT_ID") else {
            return Ok(None);
        };
        let base = lookup("ALM_API_BASE").unwrap_or_else(|| DEFAULT_BASE.to_owned());
        let (secret, refresh) = match lookup("ALM_API_SECRET_FILE") {
            Some(path) => secrets_from_file(&path)?,
            None => (
                lookup("ALM_API_CLIENT_SECRET")
                    .ok_or_else(|| ApiError::Config("ALM_API_CLIENT_SECRET is not set".into()))?,
                lookup("ALM_API_REFRESH_TOKEN")
                    .ok_or_else(|| ApiError::Config("ALM_API_REFRESH_TOKEN is not set".into()))?,
            ),
        };
        let mut config = Self::new(base, client_id, secret, refresh);
        if let Some(budget) = lookup("ALM_API_BUDGET_PER_HOUR") {
            config.budget = budget.trim().parse().map_err(|_| {
                ApiError::Config("ALM_API_BUDGET_PER_HOUR is not a whole number".into())
            })?;
        }
        config.validate()?;
        Ok(Some(config))
    }

    /// `requests` per `window` on the rate-limited endpoints.
    pub fn with_budget(mut self, requests: u32, window: Duration) -> Self {
        self.budget = requests;
        self.budget_window = window;
        self
    }

    /// At most `capacity` answers, each used for `ttl`.
    pub fn with_cache(mut self, capacity: u64, ttl: Duration) -> Self {
        self.cache_capacity = capacity;
        self.cache_ttl = ttl;
        self
    }

    /// Renew the access token `margin` before it expires.
    pub fn with_refresh_margin(mut self, margin: Duration) -> Self {
        self.refresh_margin = margin;
        self
    }

    /// What enrichment does when the budget has no room.
    pub fn with_when_over_budget(mut self, when: WhenOverBudget) -> Self {
        self.when_over_budget = when;
        self
    }

    /// The bound of every request.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), ApiError> {
        if self.budget == 0 || self.budget_window.is_zero() {
            return Err(ApiError::Config(
                "the budget must allow at least one request".into(),
            ));
        }
        if !(self.base.starts_with("https://") || self.base.starts_with("http://")) {
            return Err(ApiError::Config("the base must be an http(s) URL".into()));
        }
        url::Url::parse(&self.base)
            .map_err(|_| ApiError::Config("the base is not a URL".into()))?;
        Ok(())
    }
}

fn secrets_from_file(path: &str) -> Result<(String, String), ApiError> {
    #[derive(serde::Deserialize)]
    struct File {
        client_secret: String,
        refresh_token: String,
    }
    // The error names the file, never its content.
    let text = std::fs::read_to_string(path)
        .map_err(|e| ApiError::Config(format!("ALM_API_SECRET_FILE {path}: {}", e.kind())))?;
    let file: File = serde_json::from_str(&text).map_err(|_| {
        ApiError::Config(format!(
            "ALM_API_SECRET_FILE {path}: not a JSON object with client_secret and refresh_token"
        ))
    })?;
    Ok((file.client_secret, file.refresh_token))
}

impl fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiConfig")
            .field("base", &self.base)
            .field("client_id", &self.client_id)
            .field("budget", &self.budget)
            .field("budget_window", &self.budget_window)
            .field("cache_capacity", &self.cache_capacity)
            .field("cache_ttl", &self.cache_ttl)
            .finish_non_exhaustive()
    }
}
