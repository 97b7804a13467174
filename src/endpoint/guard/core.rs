//! What the guard decides, whatever the framework in front: a place among
//! the requests in progress, the checks the headers allow, the answer to a
//! refusal and the counts. The axum layer and the actix-web middleware
//! only move bytes and build responses.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderMap, StatusCode};
use time::OffsetDateTime;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::Guard;
use super::budget::{Budget, Held};
use super::summary::{Refusal, Tally};
use crate::auth::UNAUTHORIZED_BODY;
use crate::{Authentication, DeliveryReceiver, DeliveryRejection};

/// The `WWW-Authenticate` of a `401` under Basic authentication.
pub(super) const BASIC_CHALLENGE: &str = r#"Basic realm="alm-webhooks", charset="UTF-8""#;

/// What every request through one layer (or middleware) shares: its caps
/// and counts.
pub(super) struct Shared {
    pub(super) receiver: DeliveryReceiver,
    pub(super) read_timeout: Duration,
    retry_after: Duration,
    requests: Arc<Semaphore>,
    budget: Arc<Budget>,
    tally: Arc<Tally>,
}

/// A request let in: its place among the requests in progress and what
/// its body holds of the byte budget, both given back when dropped.
pub(super) struct Admitted {
    _place: OwnedSemaphorePermit,
    pub(super) held: Held,
}

/// A refusal as an answer: status, JSON body, and the headers it needs.
/// The connection is closed after it, as the body may be unread.
pub(super) struct Refused {
    pub(super) status: StatusCode,
    pub(super) body: String,
    /// `Retry-After`, in seconds (a `503`).
    pub(super) retry_after: Option<u64>,
    /// `WWW-Authenticate` (a `401` under Basic).
    pub(super) challenge: Option<&'static str>,
}

impl Shared {
    pub(super) fn new(guard: &Guard) -> Self {
        Self {
            receiver: guard.receiver.clone(),
            read_timeout: guard.read_timeout,
            retry_after: guard.retry_after,
            requests: Arc::new(Semaphore::new(guard.max_requests)),
            budget: Budget::new(guard.max_buffered_bytes),
            tally: Tally::new(guard.summary_every, guard.reporter.clone()),
        }
    }

    /// Requests that may still start now.
    pub(super) fn places_left(&self) -> usize {
        self.requests.available_permits()
    }

    /// Lets a request in, or says why not, from its headers alone: a
    /// place among the requests in progress, a declared size within the
    /// limit (`413` whatever the credentials, as the receiver does), and
    /// whatever of the authentication the headers can settle.
    pub(super) fn admit(&self, headers: &HeaderMap) -> Result<Admitted, Refusal> {
        let place = Arc::clone(&self.requests)
            .try_acquire_owned()
            .map_err(|_| Refusal::Busy)?;
        if self.receiver.check_declared_length(headers).is_err() {
            return Err(Refusal::TooLarge);
        }
        let auth = self.receiver.authentication();
        if auth
            .verify_headers_at(headers, OffsetDateTime::now_utc())
            .is_err()
        {
            return Err(Refusal::Unauthorized);
        }
        Ok(Admitted {
            _place: place,
            held: Held::none(&self.budget),
        })
    }

    /// Counts a refusal (in the summary, and with the `metrics` feature in
    /// `alm_webhooks_deliveries_total`: a `503` as `unavailable`, a `408`
    /// as `malformed`) and says how to answer it.
    pub(super) fn refuse(&self, refusal: Refusal, started: Instant) -> Refused {
        self.tally.count(refusal);
        #[cfg(feature = "metrics")]
        {
            use crate::metrics::DeliveryOutcome;
            let outcome = match refusal {
                Refusal::Unauthorized => DeliveryOutcome::Unauthorized,
                Refusal::TooLarge => DeliveryOutcome::TooLarge,
                Refusal::Malformed | Refusal::TimedOut => DeliveryOutcome::Malformed,
                Refusal::Busy => DeliveryOutcome::Unavailable,
            };
            crate::metrics::record_delivery(outcome, started.elapsed());
        }
        #[cfg(not(feature = "metrics"))]
        let _ = started;
        let (status, body) = match refusal {
            Refusal::Unauthorized => (StatusCode::UNAUTHORIZED, UNAUTHORIZED_BODY.to_owned()),
            Refusal::TooLarge => {
                let rejection = DeliveryRejection::PayloadTooLarge {
                    limit: self.receiver.max_body_bytes(),
                };
                (rejection.status(), rejection.body())
            }
            Refusal::Malformed => (
                DeliveryRejection::UnreadableBody.status(),
                DeliveryRejection::UnreadableBody.body(),
            ),
            Refusal::Busy => (
                StatusCode::SERVICE_UNAVAILABLE,
                r#"{"error":"busy, retry later"}"#.to_owned(),
            ),
            Refusal::TimedOut => (
                StatusCode::REQUEST_TIMEOUT,
                r#"{"error":"the request was not received in time"}"#.to_owned(),
            ),
        };
        Refused {
            status,
            body,
            retry_after: (refusal == Refusal::Busy).then(|| self.retry_after.as_secs().max(1)),
            challenge: if refusal == Refusal::Unauthorized {
                self.challenge()
            } else {
                None
            },
        }
    }

    /// Counts the endpoint's own refusal, from the status it answered;
    /// returns the `WWW-Authenticate` a `401` needs.
    pub(super) fn answered(&self, status: StatusCode) -> Option<&'static str> {
        match status {
            StatusCode::UNAUTHORIZED => {
                self.tally.count(Refusal::Unauthorized);
                return self.challenge();
            }
            StatusCode::PAYLOAD_TOO_LARGE => self.tally.count(Refusal::TooLarge),
            StatusCode::BAD_REQUEST => self.tally.count(Refusal::Malformed),
            _ => {}
        }
        None
    }

    /// RFC 9110 asks a `401` for `WWW-Authenticate`; clients wait for it
    /// before they send Basic credentials.
    fn challenge(&self) -> Option<&'static str> {
        matches!(self.receiver.authentication(), Authentication::Basic(_))
            .then_some(BASIC_CHALLENGE)
    }
}
