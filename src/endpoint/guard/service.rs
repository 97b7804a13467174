//! The guard as a tower layer and service over axum's request and
//! response types.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum_core::body::Body;
use axum_core::extract::Request;
use axum_core::response::Response;
use http::{HeaderMap, HeaderValue, header};
use http_body_util::BodyExt;
use tower::{Layer, Service, ServiceExt};

use super::Guard;
use super::budget::Held;
use super::core::{Refused, Shared};
use super::read::BodyBuffer;
use super::summary::Refusal;

/// The [`Guard`] as a tower layer, from [`Guard::layer`]: put it on the
/// webhook route. Clones share the caps. A whole axum receiver:
///
/// ```no_run
/// use std::sync::Arc;
/// use alm_webhooks::endpoint::Guard;
/// use alm_webhooks::{Answer, Authentication, Endpoint};
/// use axum::extract::{Request, State};
///
/// async fn webhooks(State(endpoint): State<Arc<Endpoint>>, request: Request) -> Answer {
///     endpoint.handle_axum(request).await
/// }
///
/// # async fn run() {
/// let auth = alm_webhooks::auth::BasicAuth::new("alm", "s3cret");
/// let endpoint = Endpoint::builder(Authentication::Basic(auth))
///     .handler(|_event| async { Ok(()) })
///     .build()
///     .unwrap();
/// let guard = Guard::new(endpoint.receiver())
///     .with_summary(|summary| eprintln!("{summary}"));
/// let app = axum::Router::new()
///     .route("/webhooks", axum::routing::post(webhooks))
///     .layer(guard.layer())
///     .with_state(Arc::new(endpoint));
/// let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await.unwrap();
/// guard.serve(listener, app).await;
/// # }
/// ```
///
#[derive(Clone)]
pub struct GuardLayer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for GuardLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardLayer")
            .field("requests_available", &self.shared.places_left())
            .finish_non_exhaustive()
    }
}

impl Guard {
    /// The tower layer that applies these bounds to the route it wraps.
    /// Each call makes a layer with its own caps: build it once and clone
    /// it (clones share them).
    ///
    /// ```
    /// # use alm_webhooks::{Authentication, DeliveryReceiver};
    /// use alm_webhooks::endpoint::Guard;
    /// let layer = Guard::new(&DeliveryReceiver::new(Authentication::None)).layer();
    /// let app: axum::Router = axum::Router::new()
    ///     .route("/webhooks", axum::routing::post(|| async { "ok" }))
    ///     .layer(layer);
    /// # let _ = app;
    /// ```
    pub fn layer(&self) -> GuardLayer {
        GuardLayer {
            shared: Arc::new(Shared::new(self)),
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
    let (parts, body) = request.into_parts();
    let mut admitted = match shared.admit(&parts.headers) {
        Ok(admitted) => admitted,
        Err(refusal) => return response(shared.refuse(refusal, started)),
    };
    let limit = shared.receiver.max_body_bytes();
    let read = read_body(body, &parts.headers, limit, &mut admitted.held);
    let bytes = match tokio::time::timeout(shared.read_timeout, read).await {
        Err(_elapsed) => return response(shared.refuse(Refusal::TimedOut, started)),
        Ok(Err(refusal)) => return response(shared.refuse(refusal, started)),
        Ok(Ok(bytes)) => bytes,
    };
    let request = Request::from_parts(parts, Body::from(bytes));
    let Ok(mut response) = inner.oneshot(request).await;
    drop(admitted);
    if let Some(challenge) = shared.answered(response.status()) {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        );
    }
    response
}

/// Reads an axum body whole, within the limit and the budget.
async fn read_body(
    mut body: Body,
    headers: &HeaderMap,
    limit: usize,
    held: &mut Held,
) -> Result<Vec<u8>, Refusal> {
    let mut buffer = BodyBuffer::start(headers, limit, held)?;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| Refusal::Malformed)?;
        if let Ok(data) = frame.into_data() {
            buffer.push(&data)?;
        } // else trailers
    }
    buffer.finish()
}

/// A refusal as an axum response, closing the connection.
fn response(refused: Refused) -> Response {
    let mut response = Response::new(Body::from(refused.body));
    *response.status_mut() = refused.status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    if let Some(seconds) = refused.retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    if let Some(challenge) = refused.challenge {
        headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        );
    }
    response
}
