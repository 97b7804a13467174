//! [`Answer`]: what [`Endpoint::handle`](super::Endpoint::handle) gives for
//! one request, with its HTTP status and JSON body.

use std::collections::BTreeMap;
use std::fmt;

use http::{HeaderValue, Response, StatusCode, header};

use crate::inbox::{DeliveryId, InboxError, QuarantineId};
use crate::store::StoreError;
use crate::{AccountId, DeliveryRejection, DeliveryReport};

/// The one outcome of a request to an [`Endpoint`](super::Endpoint): it
/// knows its [`status`](Answer::status) and its JSON [`body`](Answer::body),
/// and turns into a response with [`Answer::into_http`], axum's
/// `IntoResponse` (feature `axum`) or actix-web's `Responder` (feature
/// `actix`).
///
/// | case | status | body |
/// |---|---|---|
/// | [`Accepted`](Answer::Accepted) into the inbox | `202` | `{"accepted":true,"delivery":ID}` |
/// | [`Processed`](Answer::Processed) inline | [`DeliveryReport::status`]: `202`, `500` (a handler failed), `503` (in flight elsewhere) | `{"events":N,"decisions":{"processed":N,…}}` |
/// | [`Quarantined`](Answer::Quarantined) malformed body | `202` | `{"error":"…","quarantined":ID}` |
/// | [`Refused`](Answer::Refused) | `401`, `400` or `413` ([`DeliveryRejection::status`]) | [`DeliveryRejection::body`] |
/// | [`StoreUnavailable`](Answer::StoreUnavailable) | `503` | `{"error":"store unavailable"}` |
/// | [`InboxUnavailable`](Answer::InboxUnavailable) | `503` (with `Retry-After` at a cap on what is kept) | `{"error":"inbox unavailable"}` |
///
/// A `405` for another method than `POST` is the web framework's.
/// Bodies never quote a secret, nor which authentication check failed; the
/// errors inside `Refused`, `StoreUnavailable` and `InboxUnavailable` are
/// for the server's logs.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use alm_webhooks::{Answer, Authentication, Endpoint};
/// use http::StatusCode;
///
/// let endpoint = Endpoint::builder(Authentication::None)
///     .handler(|_event| async { Ok(()) })
///     .build()
///     .unwrap();
/// let answer = endpoint.handle(&http::HeaderMap::new(), b"not json").await;
/// assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
/// assert!(matches!(answer, Answer::Refused(_)));
/// assert!(answer.body().starts_with(r#"{"detail":"#));
///
/// let response = answer.into_http();
/// assert_eq!(response.headers()["content-type"], "application/json");
/// # }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Answer {
    /// Inbox mode: the delivery was appended; workers process it behind.
    Accepted {
        /// Its account.
        account_id: AccountId,
        /// Its place in the inbox.
        delivery: DeliveryId,
    },
    /// Inline mode: every event was decided inside the request.
    Processed {
        /// The delivery's account.
        account_id: AccountId,
        /// One decision per event; a failed handler's message (with its
        /// whole `source()` chain) is in [`EventOutcome::error`](crate::engine::EventOutcome::error).
        report: DeliveryReport,
    },
    /// The body passed authentication but is not an envelope: it was kept in
    /// the inbox's quarantine and acknowledged.
    Quarantined {
        /// Its account, when it could be read from the broken body.
        account_id: Option<AccountId>,
        /// Its number in the quarantine.
        id: QuarantineId,
        /// Why it is not an envelope.
        error: String,
    },
    /// A replay of a delivery accepted a moment ago, under a scheme that
    /// signs a timestamp (still within its tolerance): acknowledged, not
    /// kept or processed again.
    Replayed {
        /// Its account, when it could be read.
        account_id: Option<AccountId>,
    },
    /// Refused as a whole: too large, not authenticated, or (when malformed
    /// bodies are refused) not an envelope.
    Refused(DeliveryRejection),
    /// Inline mode: the store failed; ALM sends the delivery again.
    StoreUnavailable(StoreError),
    /// The inbox could not take the delivery (or the quarantined body); ALM
    /// sends it again.
    InboxUnavailable(InboxError),
}

impl Answer {
    /// The HTTP status to answer with.
    ///
    /// ```
    /// use alm_webhooks::{Answer, DeliveryRejection};
    /// let answer = Answer::Refused(DeliveryRejection::PayloadTooLarge { limit: 10 });
    /// assert_eq!(answer.status(), http::StatusCode::PAYLOAD_TOO_LARGE);
    /// ```
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Accepted { .. } | Self::Quarantined { .. } | Self::Replayed { .. } => {
                StatusCode::ACCEPTED
            }
            Self::Processed { report, .. } => report.status(),
            Self::Refused(rejection) => rejection.status(),
            Self::StoreUnavailable(_) | Self::InboxUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    /// The JSON body to answer with (see the table on [`Answer`]).
    ///
    /// ```
    /// use alm_webhooks::{AccountId, Answer};
    /// use alm_webhooks::inbox::DeliveryId;
    /// let answer = Answer::Accepted { account_id: AccountId(7), delivery: DeliveryId(42) };
    /// assert_eq!(answer.body(), r#"{"accepted":true,"delivery":42}"#);
    /// ```
    pub fn body(&self) -> String {
        match self {
            Self::Accepted { delivery, .. } => {
                format!(r#"{{"accepted":true,"delivery":{delivery}}}"#)
            }
            Self::Processed { report, .. } => summary(report),
            Self::Quarantined { id, error, .. } => {
                serde_json::json!({"quarantined": id.get(), "error": error}).to_string()
            }
            Self::Replayed { .. } => r#"{"accepted":true,"replay":true}"#.to_owned(),
            Self::Refused(rejection) => rejection.body(),
            Self::StoreUnavailable(_) => r#"{"error":"store unavailable"}"#.to_owned(),
            Self::InboxUnavailable(_) => r#"{"error":"inbox unavailable"}"#.to_owned(),
        }
    }

    /// Whether ALM may consider the delivery delivered: a `2xx` answer.
    ///
    /// ```
    /// use alm_webhooks::{Answer, DeliveryRejection};
    /// assert!(!Answer::Refused(DeliveryRejection::UnreadableBody).is_acknowledged());
    /// ```
    pub fn is_acknowledged(&self) -> bool {
        self.status().is_success()
    }

    /// The account the answer is about, when known.
    ///
    /// ```
    /// use alm_webhooks::{AccountId, Answer, DeliveryReport};
    /// let answer = Answer::Processed { account_id: AccountId(7), report: DeliveryReport::default() };
    /// assert_eq!(answer.account_id(), Some(AccountId(7)));
    /// ```
    pub fn account_id(&self) -> Option<AccountId> {
        match self {
            Self::Accepted { account_id, .. } | Self::Processed { account_id, .. } => {
                Some(*account_id)
            }
            Self::Quarantined { account_id, .. } | Self::Replayed { account_id } => *account_id,
            _ => None,
        }
    }

    /// The inline decisions, for [`Answer::Processed`].
    ///
    /// ```
    /// use alm_webhooks::{AccountId, Answer, DeliveryReport};
    /// let answer = Answer::Processed { account_id: AccountId(7), report: DeliveryReport::default() };
    /// assert_eq!(answer.report().map(|r| r.outcomes.len()), Some(0));
    /// ```
    pub fn report(&self) -> Option<&DeliveryReport> {
        match self {
            Self::Processed { report, .. } => Some(report),
            _ => None,
        }
    }

    /// Why the delivery was refused, for [`Answer::Refused`].
    ///
    /// ```
    /// use alm_webhooks::{Answer, DeliveryRejection};
    /// let answer = Answer::Refused(DeliveryRejection::UnreadableBody);
    /// assert!(matches!(answer.rejection(), Some(DeliveryRejection::UnreadableBody)));
    /// ```
    pub fn rejection(&self) -> Option<&DeliveryRejection> {
        match self {
            Self::Refused(rejection) => Some(rejection),
            _ => None,
        }
    }

    /// The store's or the inbox's error, for the `503` cases.
    ///
    /// ```
    /// use alm_webhooks::Answer;
    /// use alm_webhooks::inbox::InboxError;
    /// let answer = Answer::InboxUnavailable(InboxError::new("connection refused"));
    /// assert_eq!(answer.error().unwrap().to_string(), "inbox unavailable: connection refused");
    /// ```
    pub fn error(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::StoreUnavailable(e) => Some(e),
            Self::InboxUnavailable(e) => Some(e),
            _ => None,
        }
    }

    /// The whole response, `Content-Type: application/json`, for a framework
    /// without its own conversion.
    ///
    /// ```
    /// use alm_webhooks::{Answer, DeliveryRejection};
    /// let response = Answer::Refused(DeliveryRejection::UnreadableBody).into_http();
    /// assert_eq!(response.status(), 400);
    /// assert_eq!(response.body(), br#"{"error":"the body could not be read"}"#);
    /// ```
    pub fn into_http(self) -> Response<Vec<u8>> {
        let mut response = Response::new(self.body().into_bytes());
        *response.status_mut() = self.status();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(wait) = self.retry_after() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(wait.as_secs()));
        }
        response
    }

    /// How long the sender should wait before sending again, when the
    /// answer says (its `Retry-After`, in whole seconds): a `503` because
    /// the inbox keeps as much as its caps allow
    /// ([`KeptLimits`](crate::endpoint::KeptLimits)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use alm_webhooks::Answer;
    /// use alm_webhooks::inbox::InboxError;
    /// let full = InboxError::new("full").with_retry_after(Duration::from_secs(60));
    /// let response = Answer::InboxUnavailable(full).into_http();
    /// assert_eq!(response.status(), 503);
    /// assert_eq!(response.headers()["retry-after"], "60");
    /// assert_eq!(Answer::InboxUnavailable(InboxError::new("down")).retry_after(), None);
    /// ```
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::InboxUnavailable(e) => e.retry_after(),
            _ => None,
        }
    }

    /// How the `alm_webhooks_deliveries_total` counter labels this answer.
    #[cfg(feature = "metrics")]
    pub(super) fn delivery_outcome(&self) -> crate::metrics::DeliveryOutcome {
        use crate::metrics::DeliveryOutcome;
        match self {
            Self::Quarantined { .. } => DeliveryOutcome::Quarantined,
            Self::Refused(rejection) => DeliveryOutcome::of_rejection(rejection),
            other if other.status().is_success() => DeliveryOutcome::Accepted,
            _ => DeliveryOutcome::Unavailable,
        }
    }
}

/// The `Processed` body: how many events, and how many per decision.
fn summary(report: &DeliveryReport) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for o in &report.outcomes {
        *counts.entry(o.decision.as_str()).or_default() += 1;
    }
    serde_json::json!({ "events": report.outcomes.len(), "decisions": counts }).to_string()
}

impl fmt::Display for Answer {
    /// A line for the server's log: the status and what happened, with the
    /// error (never a secret) when there is one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.status().as_u16();
        match self {
            Self::Accepted { delivery, .. } => {
                write!(f, "{status}: appended as delivery {delivery}")
            }
            Self::Processed { report, .. } => {
                write!(f, "{status}: {} events decided", report.outcomes.len())
            }
            Self::Quarantined { id, error, .. } => {
                write!(f, "{status}: quarantined as {id}: {error}")
            }
            Self::Replayed { .. } => write!(f, "{status}: a replay, not kept again"),
            Self::Refused(rejection) => write!(f, "{status}: {rejection}"),
            Self::StoreUnavailable(e) => write!(f, "{status}: {e}"),
            Self::InboxUnavailable(e) => write!(f, "{status}: {e}"),
        }
    }
}
