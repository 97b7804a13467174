//! What an inbox holds ([`InboxStats`], [`KeptCounts`]) and why it could
//! not answer ([`InboxError`]).

use std::time::Duration;

use http::StatusCode;

/// What an inbox holds at one moment.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use alm_webhooks::inbox::{Inbox, InboxStats, MemoryInbox};
/// let now = time::OffsetDateTime::now_utc();
/// let stats = MemoryInbox::new().stats(now).await.unwrap();
/// assert_eq!(stats, InboxStats::default());
/// assert_eq!(stats.oldest_pending_age, None);
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct InboxStats {
    /// Deliveries waiting to be taken (including those whose retry is due
    /// and those whose lease ran out).
    pub pending: u64,
    /// Deliveries under a live lease.
    pub in_flight: u64,
    /// Deliveries waiting for a retry time still to come.
    pub retrying: u64,
    /// Dead letters kept.
    pub dead_letters: u64,
    /// Quarantined bodies kept.
    pub quarantined: u64,
    /// Their bytes, all together.
    pub quarantined_bytes: u64,
    /// How long the oldest delivery still in the inbox (pending, in flight
    /// or retrying) has waited; `None` when the inbox is empty.
    pub oldest_pending_age: Option<Duration>,
}

/// What an inbox keeps of one account for a person: its dead letters and
/// its quarantined bodies ([`Inbox::kept_of`](super::Inbox::kept_of)), or,
/// from [`Inbox::most_kept_of_one_account`](super::Inbox::most_kept_of_one_account),
/// the most any one account keeps of each.
/// A quarantined body whose `accountId` could not be read belongs to no
/// account: it counts only in the inbox's totals.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use alm_webhooks::AccountId;
/// use alm_webhooks::inbox::{Inbox, KeptCounts, MemoryInbox, NewQuarantined};
/// let inbox = MemoryInbox::new();
/// let now = time::OffsetDateTime::now_utc();
/// let kept = |account_id, body| NewQuarantined { account_id, body, error: "no events", received_at: now };
/// inbox.quarantine(kept(Some(AccountId(7)), b"{\"accountId\":7}")).await.unwrap();
/// inbox.quarantine(kept(None, b"not json")).await.unwrap();
/// assert_eq!(inbox.kept_of(AccountId(7)).await.unwrap(), KeptCounts::new(0, 1, 15));
/// assert_eq!(inbox.kept_of(AccountId(8)).await.unwrap(), KeptCounts::default());
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeptCounts {
    /// Dead letters kept.
    pub dead_letters: u64,
    /// Quarantined bodies kept.
    pub quarantined: u64,
    /// Their bytes, all together.
    pub quarantined_bytes: u64,
}

impl KeptCounts {
    /// Counts from their parts, as a backend counts them.
    ///
    /// ```
    /// let counts = alm_webhooks::inbox::KeptCounts::new(2, 1, 4096);
    /// assert_eq!((counts.dead_letters, counts.quarantined, counts.quarantined_bytes), (2, 1, 4096));
    /// ```
    pub fn new(dead_letters: u64, quarantined: u64, quarantined_bytes: u64) -> Self {
        Self {
            dead_letters,
            quarantined,
            quarantined_bytes,
        }
    }

    /// Each count, the larger of the two.
    ///
    /// ```
    /// use alm_webhooks::inbox::KeptCounts;
    /// let most = KeptCounts::new(5, 0, 10).most(KeptCounts::new(1, 2, 3));
    /// assert_eq!(most, KeptCounts::new(5, 2, 10));
    /// ```
    #[must_use]
    pub fn most(self, other: Self) -> Self {
        Self {
            dead_letters: self.dead_letters.max(other.dead_letters),
            quarantined: self.quarantined.max(other.quarantined),
            quarantined_bytes: self.quarantined_bytes.max(other.quarantined_bytes),
        }
    }

    /// The largest share of a cap these counts take: 1 at a cap (a cap of
    /// zero is always reached), 0.8 at 80 % of one.
    ///
    /// ```
    /// use alm_webhooks::inbox::KeptCounts;
    /// let caps = KeptCounts::new(10, 4, 1_000);
    /// assert_eq!(KeptCounts::new(5, 3, 100).share_of(caps), 0.75);
    /// assert_eq!(KeptCounts::default().share_of(KeptCounts::new(0, 1, 1)), 1.0);
    /// ```
    #[allow(clippy::cast_precision_loss)] // a share, not a count
    pub fn share_of(self, caps: Self) -> f64 {
        let one = |n: u64, cap: u64| if cap == 0 { 1.0 } else { n as f64 / cap as f64 };
        one(self.dead_letters, caps.dead_letters)
            .max(one(self.quarantined, caps.quarantined))
            .max(one(self.quarantined_bytes, caps.quarantined_bytes))
    }

    /// Sets the `alm_webhooks_kept_fullest_account_ratio` gauge (feature
    /// `metrics`) to these counts' [share](KeptCounts::share_of) of `caps`:
    /// these being what [`Inbox::most_kept_of_one_account`](super::Inbox::most_kept_of_one_account)
    /// gives, and `caps` the per-account caps. The endpoint's
    /// [`refresh_inbox_gauges`](crate::Endpoint::refresh_inbox_gauges) and
    /// its workers call it beside [`InboxStats::set_gauges`].
    ///
    /// ```
    /// use alm_webhooks::inbox::KeptCounts;
    /// KeptCounts::new(20_000, 0, 0).set_fullest_account_gauge(KeptCounts::new(25_000, 2_500, 1 << 28));
    /// ```
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    pub fn set_fullest_account_gauge(&self, caps: Self) {
        let ratio = self.share_of(caps);
        metrics::gauge!(crate::metrics::names::KEPT_FULLEST_ACCOUNT_RATIO).set(ratio);
    }
}

impl InboxStats {
    /// Stats from their parts, as a backend counts them.
    ///
    /// ```
    /// use std::time::Duration;
    /// use alm_webhooks::inbox::InboxStats;
    /// // How a backend of your own reports its counts.
    /// let stats = InboxStats::new(3, 1, 0, 2, 0, Some(Duration::from_secs(40)));
    /// assert_eq!((stats.pending, stats.dead_letters), (3, 2));
    /// ```
    pub fn new(
        pending: u64,
        in_flight: u64,
        retrying: u64,
        dead_letters: u64,
        quarantined: u64,
        oldest_pending_age: Option<Duration>,
    ) -> Self {
        Self {
            pending,
            in_flight,
            retrying,
            dead_letters,
            quarantined,
            quarantined_bytes: 0,
            oldest_pending_age,
        }
    }

    /// The stats with the quarantined bodies' bytes, all together.
    ///
    /// ```
    /// use alm_webhooks::inbox::InboxStats;
    /// let stats = InboxStats::new(0, 0, 0, 0, 2, None).with_quarantined_bytes(4096);
    /// assert_eq!(stats.quarantined_bytes, 4096);
    /// ```
    #[must_use]
    pub fn with_quarantined_bytes(mut self, bytes: u64) -> Self {
        self.quarantined_bytes = bytes;
        self
    }

    /// Sets the inbox gauges (`alm_webhooks_inbox_pending` and the others
    /// in [`metrics`](crate::metrics)) to these stats; the workers and
    /// `/readyz` do it on their own, so a custom inbox only needs it when it
    /// runs without them.
    ///
    /// ```
    /// use std::time::Duration;
    /// use alm_webhooks::inbox::InboxStats;
    /// InboxStats::new(3, 1, 0, 2, 0, Some(Duration::from_secs(40))).set_gauges();
    /// ```
    #[cfg(feature = "metrics")]
    #[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    pub fn set_gauges(&self) {
        use crate::metrics::names;
        metrics::gauge!(names::INBOX_PENDING).set(self.pending as f64);
        metrics::gauge!(names::INBOX_IN_FLIGHT).set(self.in_flight as f64);
        metrics::gauge!(names::INBOX_RETRYING).set(self.retrying as f64);
        metrics::gauge!(names::DEAD_LETTERS).set(self.dead_letters as f64);
        metrics::gauge!(names::QUARANTINED).set(self.quarantined as f64);
        metrics::gauge!(names::QUARANTINED_BYTES).set(self.quarantined_bytes as f64);
        let age = self.oldest_pending_age.unwrap_or_default();
        metrics::gauge!(names::INBOX_OLDEST_PENDING_AGE_SECONDS).set(age.as_secs_f64());
    }
}

/// The inbox could not be reached or answered wrongly. The front door then
/// answers `503`, so ALM redelivers; nothing is lost.
///
/// ```
/// use std::error::Error;
/// use alm_webhooks::inbox::InboxError;
/// let cause = std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer in 2 s");
/// let err = InboxError::with_source("append failed", cause);
/// assert_eq!(err.to_string(), "inbox unavailable: append failed");
/// assert_eq!(err.source().unwrap().to_string(), "no answer in 2 s");
/// assert_eq!(err.status(), http::StatusCode::SERVICE_UNAVAILABLE);
/// assert_eq!(InboxError::new("down").to_string(), "inbox unavailable: down");
/// ```
#[derive(Debug, thiserror::Error)]
#[error("inbox unavailable: {message}")]
pub struct InboxError {
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
    permanent: bool,
    retry_after: Option<Duration>,
}

impl InboxError {
    /// An error with a message (never a password or a body).
    ///
    /// ```
    /// use std::error::Error;
    /// let err = alm_webhooks::inbox::InboxError::new("the inbox table is missing");
    /// assert_eq!(err.to_string(), "inbox unavailable: the inbox table is missing");
    /// assert!(err.source().is_none());
    /// ```
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
            permanent: false,
            retry_after: None,
        }
    }

    /// An error caused by another.
    ///
    /// ```
    /// use std::error::Error;
    /// use alm_webhooks::inbox::InboxError;
    /// let err = InboxError::with_source("take failed", std::fmt::Error);
    /// assert!(err.source().is_some());
    /// ```
    pub fn with_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            message: message.into(),
            source: Some(Box::new(source)),
            permanent: false,
            retry_after: None,
        }
    }

    /// The same error, marked permanent: the backend refused what it was
    /// given (a value it cannot store, a row too large), so trying again
    /// gives the same answer. A worker that cannot complete a delivery for
    /// such a reason quarantines it rather than taking it again forever.
    ///
    /// ```
    /// use alm_webhooks::inbox::InboxError;
    /// let err = InboxError::new("the dead letter cannot be stored").permanent();
    /// assert!(err.is_permanent());
    /// assert!(!InboxError::new("connection reset").is_permanent());
    /// ```
    #[must_use]
    pub fn permanent(mut self) -> Self {
        self.permanent = true;
        self
    }

    /// Whether trying again cannot help (see [`InboxError::permanent`]);
    /// `false` for an unavailable or timed-out backend.
    pub fn is_permanent(&self) -> bool {
        self.permanent
    }

    /// The same error, telling the sender to try again after `wait`: the
    /// answer's `Retry-After` ([`Answer::into_http`](crate::Answer::into_http)
    /// and the adapters send it). What the endpoint gives when the inbox
    /// keeps as much as its caps allow ([`KeptLimits`](crate::endpoint::KeptLimits)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use alm_webhooks::inbox::InboxError;
    /// let err = InboxError::new("full").with_retry_after(Duration::from_secs(60));
    /// assert_eq!(err.retry_after(), Some(Duration::from_secs(60)));
    /// assert_eq!(InboxError::new("down").retry_after(), None);
    /// ```
    #[must_use]
    pub fn with_retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

    /// How long the sender should wait before trying again, when the
    /// error says ([`InboxError::with_retry_after`]).
    ///
    /// ```
    /// use alm_webhooks::inbox::InboxError;
    /// assert_eq!(InboxError::new("connection reset").retry_after(), None);
    /// ```
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The HTTP status this means: `503 Service Unavailable`.
    ///
    /// ```
    /// use alm_webhooks::inbox::InboxError;
    /// assert_eq!(InboxError::new("down").status().as_u16(), 503);
    /// ```
    pub fn status(&self) -> StatusCode {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

impl From<crate::store::StoreError> for InboxError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::with_source("the store failed", e)
    }
}
