//! What can go wrong talking to ALM's API.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A foreign error kept as a `source` (reqwest's, serde's), never as a
/// public type of another crate. Shared so that one failed lookup can be
/// handed to every caller that was waiting on it.
pub(crate) type Source = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// An error from [`AlmApi`](super::AlmApi).
///
/// No variant carries a secret: the client secret, the refresh token and
/// the access token never reach an error message (nor the URL of a
/// request, which carries none).
///
/// ```
/// use std::time::Duration;
/// use alm_webhooks::alm_api::ApiError;
/// let error = ApiError::OverBudget { retry_after: Duration::from_secs(72) };
/// assert_eq!(error.to_string(),
///     "the API budget for this account is spent; the next request fits in 72 s");
/// assert_eq!(error.retry_after(), Some(Duration::from_secs(72)));
/// ```
#[derive(Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The lookup would exceed the account's budget and the caller chose
    /// [`WhenOverBudget::Fail`](super::WhenOverBudget::Fail), or waiting
    /// would take longer than the caller allowed.
    #[error("the API budget for this account is spent; the next request fits in {} s", retry_after.as_secs())]
    OverBudget {
        /// When a request would fit again.
        retry_after: Duration,
    },
    /// ALM answered `429 Too Many Requests` (and the client gave up
    /// retrying, or the caller chose not to wait).
    #[error("ALM answered 429 Too Many Requests; retry after {} s", retry_after.as_secs())]
    RateLimited {
        /// ALM's `Retry-After` (or the client's default when it sent none).
        retry_after: Duration,
    },
    /// The user, learning object or job does not exist (`404`).
    #[error("ALM has no {what}")]
    NotFound {
        /// What was looked up, e.g. `user 123`.
        what: String,
    },
    /// The token endpoint refused the refresh token or client credentials,
    /// or ALM refused the access token twice in a row.
    #[error("ALM refused the API credentials ({status})")]
    Unauthorized {
        /// The HTTP status ALM answered.
        status: u16,
    },
    /// Another answer than `2xx`, `401`, `404` or `429`.
    #[error("ALM answered HTTP {status} to {endpoint}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The endpoint family (`users`, `learningObjects`, …).
        endpoint: &'static str,
    },
    /// The request did not complete (connect, TLS, timeout).
    #[error("the request to ALM's {endpoint} did not complete")]
    Transport {
        /// The endpoint family.
        endpoint: &'static str,
        /// What failed.
        #[source]
        source: Source,
    },
    /// The answer was not the document the API reference describes.
    #[error("ALM's answer from {endpoint} is not the expected document")]
    Decode {
        /// The endpoint family.
        endpoint: &'static str,
        /// What did not parse.
        #[source]
        source: Source,
    },
    /// A report job ended as failed, or did not finish in the time allowed.
    #[error("report job {job_id} {state}")]
    Job {
        /// The job's id.
        job_id: String,
        /// `failed` or `did not finish in time`.
        state: &'static str,
    },
    /// The configuration cannot be used (a base URL that does not parse, a
    /// budget of 0, a missing variable).
    #[error("invalid ALM API configuration: {0}")]
    Config(String),
}

impl ApiError {
    /// How long to wait before trying again, for the errors that say.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::OverBudget { retry_after } | Self::RateLimited { retry_after } => {
                Some(*retry_after)
            }
            _ => None,
        }
    }

    pub(crate) fn transport(
        endpoint: &'static str,
        error: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Transport {
            endpoint,
            source: Arc::new(error),
        }
    }

    pub(crate) fn decode(
        endpoint: &'static str,
        error: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Decode {
            endpoint,
            source: Arc::new(error),
        }
    }
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The Display text (no secret in any variant) and the source chain.
        write!(f, "ApiError({self})")?;
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}
