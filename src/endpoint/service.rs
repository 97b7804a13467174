//! [`Endpoint`] as a tower [`Service`] over [`http::Request`] (feature
//! `tower`), for any body type: hyper's, axum's, a test's `String`.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use http::{Request, Response};
use tower::Service;

use super::Endpoint;
use crate::BoxError;
use crate::body::read_body;

impl Endpoint {
    /// [`Endpoint::handle`] for a request with any body: reads it within
    /// the limit (`413` as soon as it is over), then handles it. What the
    /// [`Service`] impl calls.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use alm_webhooks::{Authentication, Endpoint};
    /// let endpoint = Endpoint::builder(Authentication::None)
    ///     .max_body_bytes(10)
    ///     .handler(|_event| async { Ok(()) })
    ///     .build()
    ///     .unwrap();
    /// let request = http::Request::post("/webhooks")
    ///     .body(r#"{"accountId":7,"events":[]}"#.to_owned())
    ///     .unwrap();
    /// assert_eq!(endpoint.handle_body(request).await.status(), 413);
    /// # }
    /// ```
    pub async fn handle_body<B>(&self, request: Request<B>) -> super::Answer
    where
        B: http_body::Body,
        B::Error: Into<BoxError>,
    {
        let started = Instant::now();
        let (parts, body) = request.into_parts();
        match read_body(&self.inner.receiver, &parts.headers, body).await {
            Ok(bytes) => {
                self.handle_since(&parts.headers, bytes.as_ref(), started)
                    .await
            }
            Err(rejection) => self.refuse(rejection, started),
        }
    }
}

/// The endpoint as a tower service: each request is read within the body
/// limit and handled ([`Endpoint::handle_body`]); the response is the
/// [`Answer`](super::Answer)'s status, `Content-Type: application/json`
/// and body. Never fails, and is always ready; clones share the endpoint.
/// It answers every method and path: route `POST` to it
/// ([`Endpoint::router`](Endpoint::router) does, feature `axum`).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use alm_webhooks::{Authentication, Endpoint};
/// use tower::ServiceExt;
///
/// let endpoint = Endpoint::builder(Authentication::None)
///     .handler(|_event| async { Ok(()) })
///     .build()
///     .unwrap();
/// let request = http::Request::post("/webhooks")
///     .body(r#"{"accountId":7,"events":[]}"#.to_owned())
///     .unwrap();
/// let response = endpoint.oneshot(request).await.unwrap();
/// assert_eq!(response.status(), 202);
/// assert_eq!(response.body(), r#"{"decisions":{},"events":0}"#);
/// # }
/// ```
impl<B> Service<Request<B>> for Endpoint
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<String>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<String>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let endpoint = self.clone();
        Box::pin(async move {
            let answer = endpoint.handle_body(request).await;
            Ok(answer
                .into_http()
                .map(|body| String::from_utf8_lossy(&body).into_owned()))
        })
    }
}
