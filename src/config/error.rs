//! [`ConfigError`]: what a variable's value cannot be, named.

use crate::BoxError;
use crate::endpoint::EndpointError;

/// Why a configuration could not be read or opened. Every message names
/// the variable; none quotes a secret or a store URL (a URL is named by
/// its scheme alone).
///
/// ```
/// use alm_webhooks::config::{Config, ConfigError};
/// let error = Config::from_vars([("ALM_WORKERS", "0")]).unwrap_err();
/// assert_eq!(error.variable(), Some("ALM_WORKERS"));
/// assert_eq!(error.to_string(), r#"ALM_WORKERS: "0" is not a positive number of workers"#);
/// assert!(matches!(error, ConfigError::Invalid { .. }));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A variable's value cannot be used, or a variable it needs is unset.
    #[error("{name}: {problem}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// What is wrong with it (its value is quoted only when it is
        /// neither a secret nor a URL).
        problem: String,
    },
    /// What a variable names could not be opened or reached: a store, an
    /// inbox, a folder, ALM's API.
    #[error("{name}: {source}")]
    Unavailable {
        /// The variable.
        name: &'static str,
        /// Why.
        source: BoxError,
    },
    /// The endpoint refused the combination (for instance, no tokio
    /// runtime to run its workers on).
    #[error("the endpoint: {0}")]
    Endpoint(#[from] EndpointError),
}

impl ConfigError {
    /// The variable at fault, when there is one.
    ///
    /// ```
    /// use alm_webhooks::config::Config;
    /// let error = Config::from_vars([("ALM_MODE", "fast")]).unwrap_err();
    /// assert_eq!(error.variable(), Some("ALM_MODE"));
    /// ```
    pub fn variable(&self) -> Option<&'static str> {
        match self {
            Self::Invalid { name, .. } | Self::Unavailable { name, .. } => Some(name),
            Self::Endpoint(_) => None,
        }
    }

    pub(super) fn invalid(name: &'static str, problem: impl Into<String>) -> Self {
        Self::Invalid {
            name,
            problem: problem.into(),
        }
    }

    pub(super) fn unavailable(name: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Unavailable {
            name,
            source: source.into(),
        }
    }

    /// An error from a parser whose message starts with the variable's
    /// name (`ALM_X=… is not …`, `ALM_X: …`), among `names`; the first
    /// of them when none matches.
    pub(super) fn from_message(message: String, names: &[&'static str]) -> Self {
        let name = names
            .iter()
            .filter(|name| message.starts_with(**name))
            .max_by_key(|name| name.len())
            .copied()
            .unwrap_or(names[0]);
        let rest = message[if message.starts_with(name) {
            name.len()
        } else {
            0
        }..]
            .trim_start_matches(['=', ':', ' ']);
        Self::invalid(name, rest)
    }
}
