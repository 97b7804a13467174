//! The guard as a tower layer and service over axum's request and
//! response types.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum_core::body::Body;
use axum_core::extract::Request;
use axum_core::response::Response;
use http::{HeaderValue, StatusCode, header};
use time::OffsetDateTime;
use tokio::sync::Semaphore;
use tower::{Layer, Service, ServiceExt};

use super::Guard;
use super::budget::{Budget, Held};
use super::read::read_body;
use super::summary::{Refusal, Tally};
use crate::auth::UNAUTHORIZED_BODY;
use crate::{Authentication, Receiver, Rejection};

/// What every request through one layer shares: its caps and counts.
struct Shared {
    receiver: Receiver,
    read_timeout: Duration,
    retry_after: Duration,
    requests: Arc<Semaphore>,
    budget: Arc<Budget>,
    tally: Arc<Tally>,
}

/// The [`Guard`] as a tower layer, from [`Guard::layer`]: put it on the
/// webhook route. Clones share the caps.
#[derive(Clone)]
pub struct GuardLayer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for GuardLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardLayer")
            .field(
                "requests_available",
                &self.shared.requests.available_permits(),
            )
            .finish_non_exhaustive()
    }
}

impl Guard {
    /// The tower layer that applies these bounds to the route it wraps.
    /// Each call makes a layer with its own caps: build it once and clone
    /// it (clones share them).
    ///
    /// ```
    /// # use alm_webhooks::{Authentication, Receiver};
    /// use alm_webhooks::endpoint::Guard;
    /// let layer = Guard::new(&Receiver::new(Authentication::None)).layer();
    /// let app: axum::Router = axum::Router::new()
    ///     .route("/webhooks", axum::routing::post(|| async { "ok" }))
    ///     .layer(layer);
    /// # let _ = app;
    /// ```
    pub fn layer(&self) -> GuardLayer {
        GuardLayer {
            shared: Arc::new(Shared {
                receiver: self.receiver.clone(),
                read_timeout: self.read_timeout,
                retry_after: self.retry_after,
                requests: Arc::new(Semaphore::new(self.max_requests)),
                budget: Budget::new(self.max_buffered_bytes),
                tally: Tally::new(self.summary_every, self.reporter.clone()),
            }),
        }
    }
}

impl<S> Layer<S> for GuardLayer {
    type Service = GuardService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GuardService {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The service [`GuardLayer`] wraps around the route's own.
#[derive(Clone)]
pub struct GuardService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> std::fmt::Debug for GuardService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardService").finish_non_exhaustive()
    }
}

impl<S> Service<Request> for GuardService<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The inner service is made ready per request (`oneshot`).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let inner = self.inner.clone();
        let shared = Arc::clone(&self.shared);
        Box::pin(async move { Ok(guarded(&shared, inner, request).await) })
    }
}

/// One request through the guard: a place among the requests in
/// progress, the header checks, the body within the deadline and the
/// budget, then the inner service.
async fn guarded<S>(shared: &Shared, inner: S, request: Request) -> Response
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    let started = Instant::now();
    let Ok(_place) = Arc::clone(&shared.requests).try_acquire_owned() else {
        return shared.refuse(Refusal::Busy, started);
    };
    let (parts, body) = request.into_parts();
    // The size first, as the receiver does: over the limit is `413`
    // whatever the credentials.
    if shared
        .receiver
        .check_declared_length(&parts.headers)
        .is_err()
    {
        return shared.refuse(Refusal::TooLarge, started);
    }
    let auth = shared.receiver.authentication();
    if auth
        .verify_headers_at(&parts.headers, OffsetDateTime::now_utc())
        .is_err()
    {
        return shared.refuse(Refusal::Unauthorized, started);
    }
    let mut held = Held::none(&shared.budget);
    let limit = shared.receiver.max_body_bytes();
    let read = read_body(body, &parts.headers, limit, &mut held);
    let bytes = match tokio::time::timeout(shared.read_timeout, read).await {
        Err(_elapsed) => return shared.refuse(Refusal::TimedOut, started),
        Ok(Err(refusal)) => return shared.refuse(refusal, started),
        Ok(Ok(bytes)) => bytes,
    };
    let request = Request::from_parts(parts, Body::from(bytes));
    let Ok(mut response) = inner.oneshot(request).await;
    drop(held);
    match response.status() {
        StatusCode::UNAUTHORIZED => {
            shared.tally.count(Refusal::Unauthorized);
            challenge(auth, &mut response);
        }
        StatusCode::PAYLOAD_TOO_LARGE => shared.tally.count(Refusal::TooLarge),
        StatusCode::BAD_REQUEST => shared.tally.count(Refusal::Malformed),
        _ => {}
    }
    response
}

impl Shared {
    /// Counts a refusal (in the summary, and with the `metrics` feature in
    /// `alm_webhooks_deliveries_total`: a `503` as `unavailable`, a `408`
    /// as `malformed`) and answers it; the connection is closed after the
    /// answer, as the body may be unread.
    fn refuse(&self, refusal: Refusal, started: Instant) -> Response {
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
                let rejection = Rejection::PayloadTooLarge {
                    limit: self.receiver.max_body_bytes(),
                };
                (rejection.status(), rejection.body())
            }
            Refusal::Malformed => (
                Rejection::UnreadableBody.status(),
                Rejection::UnreadableBody.body(),
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
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        if refusal == Refusal::Busy {
            let seconds = self.retry_after.as_secs().max(1);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if refusal == Refusal::Unauthorized {
            challenge(self.receiver.authentication(), &mut response);
        }
        response
    }
}

/// Adds `WWW-Authenticate` to a `401` under Basic authentication (RFC
/// 9110 asks for it; clients wait for it before they send credentials).
fn challenge(auth: &Authentication, response: &mut Response) {
    if matches!(auth, Authentication::Basic(_)) {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Basic realm="alm-webhooks", charset="UTF-8""#),
        );
    }
}
