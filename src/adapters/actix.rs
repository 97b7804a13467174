//! The actix-web extractor: a verified, parsed delivery from a request.
//!
//! actix-web 4 still uses the `http` 0.2 types; this adapter converts the
//! headers to the `http` 1 types of the core, so no second `http` version
//! reaches the crate's API.
//!
//! ```no_run
//! use actix_web::{App, HttpResponse, HttpServer, web};
//! use alm_webhooks::{Authentication, DeliveryReceiver};
//! use alm_webhooks::adapters::actix::AlmDelivery;
//!
//! async fn webhook(delivery: AlmDelivery) -> HttpResponse {
//!     for event in delivery.0.parsed() {
//!         println!("{} {}", event.event_name, event.event_id);
//!     }
//!     HttpResponse::Accepted().finish()
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let receiver = web::Data::new(DeliveryReceiver::new(Authentication::None));
//! HttpServer::new(move || {
//!     App::new()
//!         .app_data(receiver.clone())
//!         .route("/webhooks", web::post().to(webhook))
//! })
//! .bind("127.0.0.1:8080")?
//! .run()
//! .await
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};

use crate::{DeliveryReceiver, DeliveryRejection, Envelope};

/// Extracts a delivery that passed the [`DeliveryReceiver`]'s checks. The receiver is
/// taken from the app data as `web::Data<DeliveryReceiver>`.
#[derive(Debug)]
pub struct AlmDelivery(pub Envelope);

/// The extractor's error: answers with the [`DeliveryRejection`]'s status and JSON
/// body, or 500 when no `web::Data<DeliveryReceiver>` was registered.
#[derive(Debug)]
pub enum AlmRejection {
    /// The delivery was refused.
    Rejected(DeliveryRejection),
    /// The application has no `web::Data<DeliveryReceiver>`: a setup mistake.
    MissingReceiver,
}

impl fmt::Display for AlmRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rejected(r) => fmt::Display::fmt(r, f),
            Self::MissingReceiver => f.write_str(
                "no web::Data<alm_webhooks::DeliveryReceiver> registered with App::app_data",
            ),
        }
    }
}

impl ResponseError for AlmRejection {
    fn status_code(&self) -> actix_web::http::StatusCode {
        let code = match self {
            Self::Rejected(r) => r.status().as_u16(),
            Self::MissingReceiver => 500,
        };
        actix_web::http::StatusCode::from_u16(code)
            .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let body = match self {
            Self::Rejected(r) => r.body(),
            Self::MissingReceiver => r#"{"error":"receiver not configured"}"#.to_owned(),
        };
        HttpResponse::build(self.status_code())
            .content_type("application/json")
            .body(body)
    }
}

/// Converts actix's `http` 0.2 headers into the core's `http` 1 map. Names
/// and values are bytes in both, so nothing is lost.
pub fn convert_headers(headers: &actix_web::http::header::HeaderMap) -> http::HeaderMap {
    let mut out = http::HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_str().as_bytes()),
            http::HeaderValue::from_bytes(value.as_bytes()),
        ) {
            out.append(name, value);
        }
    }
    out
}

impl FromRequest for AlmDelivery {
    type Error = AlmRejection;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let receiver = req.app_data::<web::Data<DeliveryReceiver>>().cloned();
        let headers = convert_headers(req.headers());
        let payload = web::Payload::from_request(req, payload).into_inner();
        Box::pin(async move {
            let receiver = receiver.ok_or(AlmRejection::MissingReceiver)?;
            let payload =
                payload.map_err(|_| AlmRejection::Rejected(DeliveryRejection::UnreadableBody))?;
            let bytes = read_body(&receiver, &headers, payload)
                .await
                .map_err(AlmRejection::Rejected)?;
            receiver
                .receive(&headers, &bytes)
                .map(AlmDelivery)
                .map_err(AlmRejection::Rejected)
        })
    }
}

/// Reads a request's body within the receiver's limit: `413` before reading
/// when `Content-Length` is already over it, or as soon as the body is;
/// `400` when the body cannot be read to the length it declared.
pub(crate) async fn read_body(
    receiver: &DeliveryReceiver,
    headers: &http::HeaderMap,
    payload: web::Payload,
) -> Result<web::Bytes, DeliveryRejection> {
    receiver.check_declared_length(headers)?;
    let limit = receiver.max_body_bytes();
    let bytes = match payload.to_bytes_limited(limit).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => return Err(DeliveryRejection::UnreadableBody),
        Err(_) => return Err(DeliveryRejection::PayloadTooLarge { limit }),
    };
    receiver.check_read_length(headers, bytes.len())?;
    Ok(bytes)
}
