//! Configuration from the environment (feature `env`): every `ALM_*`
//! variable of the [environment table](crate::guides::environment), read
//! once by [`Config::from_env`] and turned into the library's objects.
//! The defaults are the library's own constants; a bad value is a
//! [`ConfigError`] naming the variable; `Debug` shows no secret and no
//! store URL (only its scheme).
//!
//! A whole service on axum, configured like the example receivers:
//!
//! ```no_run
//! use alm_webhooks::config::Config;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), alm_webhooks::BoxError> {
//!     let config = Config::from_env()?;
//!     let endpoint = config
//!         .endpoint(|event| async move {
//!             println!("{} {}", event.event_name, event.event_id);
//!             Ok(())
//!         })
//!         .await?;
//!     let addr = config.serve(&endpoint, config.guard(&endpoint)).await?;
//!     eprintln!("listening on http://{addr}/webhooks");
//!     tokio::signal::ctrl_c().await?;
//!     endpoint.shutdown(std::time::Duration::from_secs(7)).await;
//!     Ok(())
//! }
//! ```

mod auth;
mod capture;
#[cfg(any(feature = "axum", feature = "actix"))]
mod capture_http;
mod error;
mod guard;
mod inbox;
mod open;
#[cfg(feature = "alm-api")]
mod reconcile;
#[cfg(feature = "axum")]
mod serve;
mod store;
#[cfg(test)]
mod tests;
mod vars;

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use crate::admin::AdminToken;
use crate::{Authentication, DEFAULT_MAX_BODY_BYTES};

pub use capture::{Capture, CaptureConfig, DEFAULT_CAPTURE_MAX_BYTES, DEFAULT_CAPTURE_MAX_FILES};
#[cfg(feature = "actix")]
#[cfg_attr(docsrs, doc(cfg(feature = "actix")))]
pub use capture_http::capture_actix;
pub use error::ConfigError;
pub use guard::GuardConfig;
pub use inbox::InboxConfig;
pub use open::Opened;
#[cfg(feature = "alm-api")]
#[cfg_attr(docsrs, doc(cfg(feature = "alm-api")))]
pub use reconcile::{DEFAULT_RECONCILE_EVERY, ReconcileConfig};
pub use store::StoreConfig;
use vars::Vars;

/// Where a receiver listens by default.
///
/// ```
/// assert_eq!(alm_webhooks::config::DEFAULT_LISTEN, "127.0.0.1:8080");
/// ```
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// How often the endpoint built from a configuration sweeps its store
/// ([`EndpointBuilder::sweep_every`](crate::endpoint::EndpointBuilder::sweep_every)):
/// hourly.
///
/// ```
/// assert_eq!(alm_webhooks::config::DEFAULT_SWEEP_EVERY.as_secs(), 3600);
/// ```
pub const DEFAULT_SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// A receiver's configuration, read once at start from `ALM_*` variables
/// ([`Config::from_env`], or [`Config::from_vars`] for any other source);
/// every field starts at the library's default and may be changed before
/// use. [`Config::endpoint`] builds the endpoint in one call.
///
/// `Debug` never shows a secret (credentials, keys, the admin token, the
/// API's secrets) nor a store or inbox URL beyond its scheme.
///
/// ```
/// use alm_webhooks::config::Config;
/// use alm_webhooks::endpoint::Mode;
/// let config = Config::from_vars([
///     ("ALM_AUTH", "basic"), ("ALM_BASIC_USER", "alm"), ("ALM_BASIC_PASSWORD", "hunter2"),
///     ("ALM_STORE", "redis://:pa55@cache.internal/?prefix=alm"),
/// ]).unwrap();
/// assert_eq!(config.inbox.mode, Mode::Inbox);
/// assert_eq!(config.max_body_bytes, alm_webhooks::DEFAULT_MAX_BODY_BYTES);
/// let shown = format!("{config:?}");
/// assert!(!shown.contains("hunter2") && !shown.contains("pa55") && !shown.contains("cache.internal"));
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct Config {
    /// `ALM_LISTEN` (default [`DEFAULT_LISTEN`]; port 0 picks a free one).
    pub listen: SocketAddr,
    /// `ALM_AUTH` and the variables of its method (default `none`).
    pub auth: Authentication,
    /// `ALM_MAX_BODY_BYTES` (default [`DEFAULT_MAX_BODY_BYTES`]).
    pub max_body_bytes: usize,
    /// The engine's store.
    pub store: StoreConfig,
    /// The inbox and its workers.
    pub inbox: InboxConfig,
    /// The front door's bounds.
    pub guard: GuardConfig,
    /// `ALM_CAPTURE_DIR` and its caps (default: no capture).
    pub capture: Option<CaptureConfig>,
    /// `ALM_ADMIN_TOKEN` (at least 32 characters): turns on the admin API
    /// (default: off).
    pub admin_token: Option<AdminToken>,
    /// Reconciliation with ALM's API.
    #[cfg(feature = "alm-api")]
    #[cfg_attr(docsrs, doc(cfg(feature = "alm-api")))]
    pub reconcile: ReconcileConfig,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Config");
        s.field("listen", &self.listen)
            .field("auth", &self.auth)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("store", &self.store)
            .field("inbox", &self.inbox)
            .field("guard", &self.guard)
            .field("capture", &self.capture)
            .field("admin_token", &self.admin_token);
        #[cfg(feature = "alm-api")]
        s.field("reconcile", &self.reconcile);
        s.finish()
    }
}

impl Default for Config {
    /// Every default: what [`Config::from_vars`] gives with no variable.
    fn default() -> Self {
        Self::read(&Vars::new(std::iter::empty::<(String, String)>()))
            .unwrap_or_else(|e| unreachable!("the defaults are valid: {e}"))
    }
}

impl Config {
    /// Reads the process's environment. Variables not named `ALM_*` are
    /// ignored; an empty one is unset.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first variable whose value cannot be
    /// used (or that another one needs), or an `ALM_*` variable that is
    /// not valid UTF-8.
    ///
    /// ```
    /// let config = alm_webhooks::config::Config::from_env().unwrap();
    /// println!("{config:?}");
    /// ```
    pub fn from_env() -> Result<Self, ConfigError> {
        let mut vars = Vec::new();
        for (name, value) in std::env::vars_os() {
            let Some(name) = name.to_str().filter(|n| n.starts_with("ALM_")) else {
                continue;
            };
            let Some(name) = VARIABLES.iter().find(|known| **known == name) else {
                continue;
            };
            let value = value
                .into_string()
                .map_err(|_| ConfigError::invalid(name, "is not valid UTF-8"))?;
            vars.push((*name, value));
        }
        Self::read(&Vars::new(vars))
    }

    /// Reads `vars` (name, value) instead of the process's environment:
    /// tests, a file of your own, a secret manager.
    ///
    /// # Errors
    ///
    /// As [`Config::from_env`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use alm_webhooks::config::Config;
    /// let config = Config::from_vars([("ALM_LISTEN", "0.0.0.0:9000"), ("ALM_HANDLER_TIMEOUT_MS", "5000")]).unwrap();
    /// assert_eq!(config.listen.port(), 9000);
    /// assert_eq!(config.inbox.handler_timeout, Duration::from_secs(5));
    /// let error = Config::from_vars([("ALM_LISTEN", "nowhere")]).unwrap_err();
    /// assert_eq!(error.to_string(), r#"ALM_LISTEN: "nowhere" is not an address like 127.0.0.1:8080"#);
    /// ```
    pub fn from_vars<K: Into<String>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, ConfigError> {
        Self::read(&Vars::new(vars))
    }

    fn read(vars: &Vars) -> Result<Self, ConfigError> {
        let listen = vars.get("ALM_LISTEN").unwrap_or(DEFAULT_LISTEN);
        let listen = listen.trim().parse().map_err(|_| {
            ConfigError::invalid(
                "ALM_LISTEN",
                format!("{listen:?} is not an address like {DEFAULT_LISTEN}"),
            )
        })?;
        let admin_token = vars
            .get("ALM_ADMIN_TOKEN")
            .map(|t| {
                AdminToken::parse(t)
                    .map_err(|e| ConfigError::invalid("ALM_ADMIN_TOKEN", e.to_string()))
            })
            .transpose()?;
        #[cfg(not(feature = "alm-api"))]
        if let Some(mode) = vars.get("ALM_RECONCILE").filter(|mode| *mode != "off") {
            return Err(ConfigError::invalid(
                "ALM_RECONCILE",
                format!("{mode:?} needs a build with the feature alm-api"),
            ));
        }
        Ok(Self {
            listen,
            auth: auth::authentication(vars)?,
            max_body_bytes: vars.positive(
                "ALM_MAX_BODY_BYTES",
                DEFAULT_MAX_BODY_BYTES,
                "number of bytes",
            )?,
            store: StoreConfig::read(vars)?,
            inbox: InboxConfig::read(vars)?,
            guard: GuardConfig::read(vars)?,
            capture: CaptureConfig::read(vars)?,
            admin_token,
            #[cfg(feature = "alm-api")]
            reconcile: ReconcileConfig::read(vars)?,
        })
    }

    /// What a receiver should say at start: no authentication, deliveries
    /// captured in full.
    ///
    /// ```
    /// use alm_webhooks::config::Config;
    /// let warnings = Config::from_vars([("ALM_AUTH", "none")]).unwrap().warnings();
    /// assert!(warnings[0].starts_with("ALM_AUTH=none"));
    /// ```
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if matches!(self.auth, Authentication::None) {
            warnings.push("ALM_AUTH=none: anyone who knows the URL can post deliveries".to_owned());
        }
        if let Some(capture) = &self.capture {
            warnings.push(capture.warning());
        }
        warnings
    }
}

/// Every variable a configuration reads, in the order of the table in
/// [`guides::environment`](crate::guides::environment).
///
/// ```
/// assert!(alm_webhooks::config::VARIABLES.contains(&"ALM_STORE"));
/// ```
pub const VARIABLES: &[&str] = &[
    "ALM_LISTEN",
    "ALM_AUTH",
    "ALM_BASIC_USER",
    "ALM_BASIC_PASSWORD",
    "ALM_SIGNING_SECRET",
    "ALM_SECRET_FILE",
    "ALM_SECRET_FIELD",
    "ALM_SIGNATURE_HEADER",
    "ALM_SIGNATURE_ALGORITHM",
    "ALM_SIGNATURE_PREFIX",
    "ALM_SIGNED_CONTENT",
    "ALM_TIMESTAMP_HEADER",
    "ALM_TIMESTAMP_TOLERANCE_SECS",
    "ALM_SECRET_ENCODING",
    "ALM_MAX_BODY_BYTES",
    "ALM_READ_TIMEOUT_MS",
    "ALM_MAX_CONCURRENT_REQUESTS",
    "ALM_MAX_BUFFERED_BYTES",
    "ALM_REFUSAL_SUMMARY_MS",
    "ALM_CAPTURE_DIR",
    "ALM_CAPTURE_MAX_FILES",
    "ALM_CAPTURE_MAX_BYTES",
    "ALM_STORE",
    "ALM_PROJECTION",
    "ALM_LEASE_SECS",
    "ALM_COMMIT_BATCH",
    "ALM_FORWARD",
    "ALM_MODE",
    "ALM_INBOX",
    "ALM_WORKERS",
    "ALM_MAX_ATTEMPTS",
    "ALM_RETRY_BASE_MS",
    "ALM_RETRY_MAX_MS",
    "ALM_HANDLER_TIMEOUT_MS",
    "ALM_ON_MALFORMED",
    "ALM_MAX_DEAD_LETTERS",
    "ALM_MAX_QUARANTINED",
    "ALM_MAX_QUARANTINED_BYTES",
    "ALM_MAX_DEAD_LETTERS_PER_ACCOUNT",
    "ALM_MAX_QUARANTINED_PER_ACCOUNT",
    "ALM_MAX_QUARANTINED_BYTES_PER_ACCOUNT",
    "ALM_RATE_LIMIT",
    "ALM_ACCOUNT_RATE_LIMIT",
    "ALM_ARCHIVE_DAYS",
    "ALM_ADMIN_TOKEN",
    "ALM_API_BASE",
    "ALM_API_CLIENT_ID",
    "ALM_API_CLIENT_SECRET",
    "ALM_API_REFRESH_TOKEN",
    "ALM_API_SECRET_FILE",
    "ALM_API_BUDGET_PER_HOUR",
    "ALM_RECONCILE",
    "ALM_RECONCILE_EVERY",
    "ALM_ACCOUNT_ID",
];
