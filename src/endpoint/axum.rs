//! The axum side of [`Endpoint`] and [`Answer`] (feature `axum`).

use axum_core::body::Body;
use axum_core::extract::Request;
use axum_core::response::{IntoResponse, Response};

use super::{Answer, Endpoint};

impl Endpoint {
    /// [`Endpoint::handle`] for an axum request: reads the body within the
    /// limit (`413` as soon as it is over), then handles it. A whole axum
    /// receiver:
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use alm_webhooks::{Answer, Authentication, Endpoint};
    /// use axum::extract::{Request, State};
    ///
    /// async fn webhooks(State(endpoint): State<Arc<Endpoint>>, request: Request) -> Answer {
    ///     endpoint.handle_axum(request).await
    /// }
    ///
    /// # async fn run() {
    /// let endpoint = Endpoint::builder(Authentication::None)
    ///     .handler(|event| async move {
    ///         println!("{} {}", event.event_name, event.event_id);
    ///         Ok(())
    ///     })
    ///     .build()
    ///     .unwrap();
    /// let app = axum::Router::new()
    ///     .route("/webhooks", axum::routing::post(webhooks))
    ///     .with_state(Arc::new(endpoint));
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await.unwrap();
    /// axum::serve(listener, app).await.unwrap();
    /// # }
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
    pub async fn handle_axum(&self, request: Request) -> Answer {
        self.handle_body(request).await
    }
}

/// The answer as an axum response: its status, `Content-Type:
/// application/json`, its `Retry-After` if it has one, and its body.
///
/// ```
/// use alm_webhooks::{Answer, DeliveryRejection};
/// use axum::response::IntoResponse;
/// let response = Answer::Refused(DeliveryRejection::UnreadableBody).into_response();
/// assert_eq!(response.status(), 400);
/// assert_eq!(response.headers()["content-type"], "application/json");
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        self.into_http().map(Body::from)
    }
}
