//! What a store answers when it fails, and whether trying again can help.

use http::StatusCode;

/// Whether a [`StoreError`] can go away by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The store is down, slow, overloaded, or a transaction lost a race
    /// (connection refused or dropped, a timeout, a pool wait that ran out,
    /// a serialization failure or a deadlock). The same call later can
    /// succeed: answer `503` and let ALM redeliver.
    Transient,
    /// The store refused the data itself (a value it cannot hold, a
    /// constraint on an id, a stored state it cannot read): the same call
    /// with the same data fails again. About one event, it is that event's
    /// failure, not a reason to refuse the delivery for the 7 days ALM
    /// retries.
    Permanent,
}

impl StoreErrorKind {
    /// How an error of this kind begins its message.
    fn label(self) -> &'static str {
        match self {
            Self::Transient => "store unavailable",
            Self::Permanent => "store refused the data",
        }
    }
}

/// A store could not be reached or answered wrongly. Its
/// [`kind`](StoreError::kind) says whether trying again can help: a
/// transient error is answered `503`, so ALM redelivers and nothing is
/// lost.
///
/// ```
/// use alm_webhooks::store::{StoreError, StoreErrorKind};
/// let down = StoreError::new("redis: connection refused");
/// assert!(down.is_transient());
/// assert_eq!(down.status(), http::StatusCode::SERVICE_UNAVAILABLE);
/// let bad = StoreError::new("postgres: the id cannot be stored").with_kind(StoreErrorKind::Permanent);
/// assert!(!bad.is_transient());
/// ```
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", .kind.label())]
pub struct StoreError {
    message: String,
    kind: StoreErrorKind,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StoreError {
    /// A transient error with a message (no secrets: connection strings
    /// must be stripped of passwords before they get here).
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            kind: StoreErrorKind::Transient,
            source: None,
        }
    }

    /// A transient error caused by another.
    pub fn with_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            message: message.into(),
            kind: StoreErrorKind::Transient,
            source: Some(Box::new(source)),
        }
    }

    /// The same error, of another kind.
    #[must_use]
    pub fn with_kind(mut self, kind: StoreErrorKind) -> Self {
        self.kind = kind;
        self
    }

    /// Whether trying again can help.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }

    /// Whether trying again later can help (the store is down, slow, or a
    /// transaction lost a race); `false` when the store refused the data
    /// itself.
    pub fn is_transient(&self) -> bool {
        self.kind == StoreErrorKind::Transient
    }

    /// The HTTP status this means: `503 Service Unavailable` for a
    /// transient error, `500 Internal Server Error` for a permanent one
    /// (which the engine reports as the failure of the event it is about).
    pub fn status(&self) -> StatusCode {
        match self.kind {
            StoreErrorKind::Transient => StatusCode::SERVICE_UNAVAILABLE,
            StoreErrorKind::Permanent => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}
