//! The axum extractor: a verified, parsed delivery from a request.
//!
//! Built on `axum-core`, so it works with any axum 0.8 application. The
//! extractor owns the raw body: it enforces the size limit while reading,
//! authenticates the exact bytes, then parses them.
//!
//! ```no_run
//! use std::sync::Arc;
//! use alm_webhooks::{Authentication, DeliveryReceiver};
//! use alm_webhooks::adapters::axum::AlmDelivery;
//!
//! async fn webhook(AlmDelivery(envelope): AlmDelivery) -> http::StatusCode {
//!     for event in envelope.parsed() {
//!         println!("{} {}", event.event_name, event.event_id);
//!     }
//!     http::StatusCode::ACCEPTED
//! }
//!
//! # async fn run() {
//! let receiver = Arc::new(DeliveryReceiver::new(Authentication::None));
//! let app = axum::Router::new()
//!     .route("/webhooks", axum::routing::post(webhook))
//!     .with_state(receiver);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await.unwrap();
//! axum::serve(listener, app).await.unwrap();
//! # }
//! ```

use std::sync::Arc;

use axum_core::body::Body;
use axum_core::extract::{FromRef, FromRequest, Request};
use axum_core::response::{IntoResponse, Response};

use crate::{DeliveryReceiver, DeliveryRejection, Envelope};

/// Extracts a delivery that passed the [`DeliveryReceiver`]'s checks.
///
/// The receiver comes from the router's state: any state `S` with
/// `Arc<DeliveryReceiver>: FromRef<S>` (an `Arc<DeliveryReceiver>` itself, or a field of your
/// state with a `FromRef` impl).
#[derive(Debug)]
pub struct AlmDelivery(pub Envelope);

/// The extractor's rejection: answers with the [`DeliveryRejection`]'s status and
/// JSON body.
#[derive(Debug)]
pub struct AlmRejection(pub DeliveryRejection);

impl IntoResponse for AlmRejection {
    fn into_response(self) -> Response {
        self.0.to_response().map(Body::from)
    }
}

impl<S> FromRequest<S> for AlmDelivery
where
    Arc<DeliveryReceiver>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AlmRejection;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let receiver = Arc::<DeliveryReceiver>::from_ref(state);
        let (parts, body) = request.into_parts();
        let bytes = read_body(&receiver, &parts.headers, body)
            .await
            .map_err(AlmRejection)?;
        receiver
            .receive(&parts.headers, bytes.as_ref())
            .map(AlmDelivery)
            .map_err(AlmRejection)
    }
}

/// Reads a request's body within the receiver's limit (see
/// `body::read_body`).
pub(crate) async fn read_body(
    receiver: &DeliveryReceiver,
    headers: &http::HeaderMap,
    body: Body,
) -> Result<impl AsRef<[u8]> + use<>, DeliveryRejection> {
    crate::body::read_body(receiver, headers, body).await
}
