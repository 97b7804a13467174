//! The guard as an actix-web middleware (feature `actix`): the same caps,
//! header checks, byte budget and body read timeout as the tower layer.

use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
use futures_core::Stream;

use super::Guard;
use super::budget::Held;
use super::core::{Refused, Shared};
use super::read::BodyBuffer;
use super::summary::Refusal;
use crate::adapters::actix::convert_headers;

/// The [`Guard`] as an actix-web middleware, from [`Guard::actix`]: wrap
/// the webhook resource with it. Clones share the caps, so build it once,
/// outside `HttpServer::new`'s closure, and clone it into each worker's
/// `App`.
///
/// ```no_run
/// use actix_web::{App, HttpRequest, HttpServer, web};
/// use alm_webhooks::endpoint::Guard;
/// use alm_webhooks::{Answer, Authentication, Endpoint};
///
/// async fn webhooks(request: HttpRequest, payload: web::Payload,
///                   endpoint: web::Data<Endpoint>) -> Answer {
///     endpoint.handle_actix(&request, payload).await
/// }
///
/// # async fn run() -> std::io::Result<()> {
/// let auth = alm_webhooks::auth::BasicAuth::new("alm", "s3cret");
/// let endpoint = Endpoint::builder(Authentication::Basic(auth))
///     .handler(|_event| async { Ok(()) })
///     .build()
///     .unwrap();
/// let guard = Guard::new(endpoint.receiver()).with_summary(|summary| eprintln!("{summary}"));
/// let middleware = guard.actix();
/// let endpoint = web::Data::new(endpoint);
/// HttpServer::new(move || {
///     App::new().app_data(endpoint.clone()).service(
///         web::resource("/webhooks")
///             .wrap(middleware.clone())
///             .route(web::post().to(webhooks)),
///     )
/// })
/// // The headers' read timeout and the connection cap are the server's.
/// .client_request_timeout(guard.read_timeout())
/// .max_connections(guard.max_connections())
/// .bind("0.0.0.0:8080")?
/// .run()
/// .await
/// # }
/// ```
#[derive(Clone)]
pub struct GuardMiddleware {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for GuardMiddleware {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardMiddleware")
            .field("requests_available", &self.shared.places_left())
            .finish_non_exhaustive()
    }
}

impl Guard {
    /// The actix-web middleware that applies these bounds to the resource
    /// it wraps (whatever the headers allow checked before the body, the
    /// body within the read timeout and the byte budget, `503` with
    /// `Retry-After` past the caps). Each call makes a middleware with its
    /// own caps: build it once and clone it. actix-web reads the headers
    /// itself: give `HttpServer::client_request_timeout` the
    /// [`Guard::read_timeout`] and `HttpServer::max_connections` the
    /// [`Guard::max_connections`].
    ///
    /// ```
    /// use alm_webhooks::endpoint::Guard;
    /// use alm_webhooks::{Authentication, DeliveryReceiver};
    /// let middleware = Guard::new(&DeliveryReceiver::new(Authentication::None)).actix();
    /// let app = actix_web::App::new().service(
    ///     actix_web::web::resource("/webhooks")
    ///         .wrap(middleware)
    ///         .route(actix_web::web::post().to(|| async { "ok" })),
    /// );
    /// # let _ = app;
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "actix")))]
    pub fn actix(&self) -> GuardMiddleware {
        GuardMiddleware {
            shared: Arc::new(Shared::new(self)),
        }
    }
}

impl<S, B> Transform<S, ServiceRequest> for GuardMiddleware
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = actix_web::Error;
    type Transform = GuardActixService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(GuardActixService {
            service: Rc::new(service),
            shared: Arc::clone(&self.shared),
        }))
    }
}

/// The service [`GuardMiddleware`] wraps around the resource's own.
pub struct GuardActixService<S> {
    service: Rc<S>,
    shared: Arc<Shared>,
}

impl<S> std::fmt::Debug for GuardActixService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardActixService").finish_non_exhaustive()
    }
}

impl<S, B> Service<ServiceRequest> for GuardActixService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>>>>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let service = Rc::clone(&self.service);
        let shared = Arc::clone(&self.shared);
        Box::pin(async move { guarded(&shared, &*service, request).await })
    }
}

/// One request through the guard, as in the tower layer.
async fn guarded<S, B>(
    shared: &Shared,
    service: &S,
    request: ServiceRequest,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody + 'static,
{
    let started = Instant::now();
    let headers = convert_headers(request.headers());
    let (request, payload) = request.into_parts();
    let mut admitted = match shared.admit(&headers) {
        Ok(admitted) => admitted,
        Err(refusal) => return Ok(refuse(request, shared.refuse(refusal, started))),
    };
    let limit = shared.receiver.max_body_bytes();
    let read = read_body(payload, &headers, limit, &mut admitted.held);
    let bytes = match tokio::time::timeout(shared.read_timeout, read).await {
        Err(_elapsed) => {
            return Ok(refuse(request, shared.refuse(Refusal::TimedOut, started)));
        }
        Ok(Err(refusal)) => return Ok(refuse(request, shared.refuse(refusal, started))),
        Ok(Ok(bytes)) => bytes,
    };
    let request = ServiceRequest::from_parts(request, Payload::from(bytes));
    let mut response = service.call(request).await?.map_into_boxed_body();
    drop(admitted);
    let status = http::StatusCode::from_u16(response.status().as_u16())
        .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    if let Some(challenge) = shared.answered(status) {
        response.headers_mut().insert(
            actix_web::http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        );
    }
    Ok(response)
}

/// Reads an actix-web payload whole, within the limit and the budget.
async fn read_body(
    mut payload: Payload,
    headers: &http::HeaderMap,
    limit: usize,
    held: &mut Held,
) -> Result<Vec<u8>, Refusal> {
    let mut buffer = BodyBuffer::start(headers, limit, held)?;
    while let Some(chunk) = std::future::poll_fn(|cx| Pin::new(&mut payload).poll_next(cx)).await {
        let chunk = chunk.map_err(|_| Refusal::Malformed)?;
        buffer.push(&chunk)?;
    }
    buffer.finish()
}

/// A refusal as an actix-web response, closing the connection.
fn refuse(request: HttpRequest, refused: Refused) -> ServiceResponse<BoxBody> {
    let status = actix_web::http::StatusCode::from_u16(refused.status.as_u16())
        .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status);
    response.content_type("application/json").force_close();
    if let Some(seconds) = refused.retry_after {
        response.insert_header((
            HeaderName::from_static("retry-after"),
            HeaderValue::from(seconds),
        ));
    }
    if let Some(challenge) = refused.challenge {
        response.insert_header((
            actix_web::http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        ));
    }
    ServiceResponse::new(request, response.body(refused.body))
}
