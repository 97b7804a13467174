//! The axum routes of both modes: `POST /webhooks` reads the raw body (the
//! inbox keeps its exact bytes) and hands it to [`App::deliver`]; the admin
//! API under `/admin/`.
#![allow(dead_code, unreachable_pub)]

use std::time::Instant;

use alm_webhooks::Rejection;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method, StatusCode, Uri, header};
use http_body_util::{BodyExt, Limited};

use super::axum_app::AppState;
use super::ops::{METRICS_OFF, METRICS_TYPE};

fn json(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Refuses a delivery before [`App::deliver`](super::App::deliver), and
/// counts it.
fn refuse(rejection: &Rejection, started: Instant) -> Response {
    eprintln!("{rejection}");
    super::ops::record_delivery(rejection.status(), false, started);
    json(rejection.status(), rejection.body())
}

/// `POST /webhooks`: the size limit while reading, then [`App::deliver`].
pub async fn webhooks(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let started = Instant::now();
    let app = &state.0;
    if let Err(rejection) = app.receiver.check_declared_length(&headers) {
        return refuse(&rejection, started);
    }
    let limit = app.receiver.max_body_bytes();
    let bytes = match Limited::new(body, limit.saturating_add(1)).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return refuse(&Rejection::PayloadTooLarge { limit }, started);
        }
        Err(_) => return refuse(&Rejection::UnreadableBody, started),
    };
    if let Err(rejection) = app.receiver.check_read_length(&headers, bytes.len()) {
        return refuse(&rejection, started);
    }
    let (status, body) = app.deliver(&headers, &bytes, started).await;
    json(status, body)
}

/// Every method under `/admin/`.
pub async fn admin(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let (status, body) = state.0.admin(&method, uri.path(), &headers).await;
    json(status, body)
}

/// `GET /admin`: the operator's page, when the admin API is on.
pub async fn admin_page(State(state): State<AppState>) -> Response {
    match state.0.admin_page() {
        Some(page) => ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response(),
        None => json(StatusCode::NOT_FOUND, r#"{"error":"not found"}"#.to_owned()),
    }
}

/// `GET /healthz`.
pub async fn healthz(State(state): State<AppState>) -> Response {
    let (status, body) = state.0.healthz();
    json(status, body)
}

/// `GET /readyz`.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let (status, body) = state.0.readyz().await;
    json(status, body)
}

/// `GET /metrics`: the Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    match state.0.metrics_text().await {
        Some(text) => ([(header::CONTENT_TYPE, METRICS_TYPE)], text).into_response(),
        None => json(StatusCode::NOT_FOUND, METRICS_OFF.to_owned()),
    }
}
