//! The capture on the webhook route: reads the body, lets the endpoint
//! answer, and keeps what passed authentication (axum and actix-web).

use std::sync::Arc;

use super::Capture;
use crate::DeliveryRejection;

/// `METHOD TARGET VERSION`.
fn request_line(method: &str, target: &str, version: http::Version) -> String {
    let version = match version {
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2",
        _ => "HTTP/1.1",
    };
    format!("{method} {target} {version}")
}

/// The axum middleware (`axum::middleware::from_fn_with_state`).
#[cfg(feature = "axum")]
pub(super) async fn axum_layer(
    axum::extract::State(capture): axum::extract::State<Arc<Capture>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, capture.limit()).await else {
        let rejection = DeliveryRejection::PayloadTooLarge {
            limit: capture.limit(),
        };
        let (parts, body) = rejection.to_response().into_parts();
        return (parts.status, parts.headers, body).into_response();
    };
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let line = request_line(parts.method.as_str(), target, parts.version);
    let headers = parts.headers.clone();
    let request = axum::extract::Request::from_parts(parts, bytes.clone().into());
    let response = next.run(request).await;
    // Only what passed authentication is kept.
    if response.status() != http::StatusCode::UNAUTHORIZED {
        let headers = headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes()));
        capture.write_or_warn(&line, headers, &bytes);
    }
    response
}

/// The capture as an actix-web middleware
/// (`actix_web::middleware::from_fn(alm_webhooks::config::capture_actix)`),
/// for a scope from [`Endpoint::actix_scope_guarded`](crate::Endpoint::actix_scope_guarded):
/// it captures `POST` on the webhook path, with the [`Capture`] the app
/// holds as `web::Data<Capture>`, and lets every other request pass.
///
/// ```no_run
/// use actix_web::{App, HttpServer, middleware, web};
/// use alm_webhooks::config::{Config, capture_actix};
///
/// # async fn run() -> Result<(), alm_webhooks::BoxError> {
/// let config = Config::from_env()?;
/// let endpoint = config.endpoint(|_event| async { Ok(()) }).await?;
/// let capture = config.capture()?.map(web::Data::from);
/// let guard = config.guard(&endpoint).actix();
/// HttpServer::new(move || {
///     let app = App::new();
///     let app = match &capture {
///         Some(capture) => app.app_data(capture.clone()),
///         None => app,
///     };
///     app.service(
///         endpoint
///             .actix_scope_guarded("", &guard)
///             .wrap(middleware::from_fn(capture_actix)),
///     )
/// })
/// .bind(config.listen)?
/// .run()
/// .await?;
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// The inner service's, or the payload's when it cannot be read.
#[cfg(feature = "actix")]
pub async fn capture_actix(
    mut request: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    use actix_web::web;
    let capture = request.app_data::<web::Data<Capture>>().cloned();
    let delivery = request.method() == actix_web::http::Method::POST
        && request.path() == crate::endpoint::DEFAULT_WEBHOOK_PATH;
    let Some(capture) = capture.filter(|_| delivery) else {
        return next.call(request).await.map(|r| r.map_into_boxed_body());
    };
    let capture: Arc<Capture> = capture.into_inner();
    let payload = request.extract::<web::Payload>().await?;
    let Ok(Ok(bytes)) = payload.to_bytes_limited(capture.limit()).await else {
        let (parts, body) = DeliveryRejection::PayloadTooLarge {
            limit: capture.limit(),
        }
        .to_response()
        .into_parts();
        let status = actix_web::http::StatusCode::from_u16(parts.status.as_u16())
            .unwrap_or(actix_web::http::StatusCode::PAYLOAD_TOO_LARGE);
        let response = actix_web::HttpResponse::build(status)
            .content_type("application/json")
            .body(body);
        return Ok(request.into_response(response));
    };
    let line = request_line(
        request.method().as_str(),
        request.uri().path_and_query().map_or("/", |p| p.as_str()),
        match request.version() {
            actix_web::http::Version::HTTP_10 => http::Version::HTTP_10,
            actix_web::http::Version::HTTP_2 => http::Version::HTTP_2,
            _ => http::Version::HTTP_11,
        },
    );
    let headers: Vec<(String, Vec<u8>)> = request
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect();
    request.set_payload(actix_web::dev::Payload::from(bytes.clone()));
    let response = next.call(request).await.map(|r| r.map_into_boxed_body())?;
    // Only what passed authentication is kept.
    if response.status() != actix_web::http::StatusCode::UNAUTHORIZED {
        let headers = headers.iter().map(|(n, v)| (n.as_str(), v.as_slice()));
        capture.write_or_warn(&line, headers, &bytes);
    }
    Ok(response)
}
