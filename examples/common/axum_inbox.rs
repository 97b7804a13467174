//! The axum routes of both modes: `POST /webhooks` is the library's
//! `Endpoint::handle_axum`; the admin API under `/admin/`; the operator's
//! endpoints.
#![allow(dead_code, unreachable_pub)]

use alm_webhooks::Answer;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method, StatusCode, Uri, header};

use super::axum_app::AppState;
use super::ops::{METRICS_OFF, METRICS_TYPE};

fn json(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// `POST /webhooks`: the library's endpoint reads the body within the
/// limit and answers; the decisions are printed.
pub async fn webhooks(State(state): State<AppState>, request: Request) -> Answer {
    let answer = state.0.endpoint().handle_axum(request).await;
    state.0.report(&answer);
    answer
}

/// Every method under `/admin/`.
pub async fn admin(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    // With its query: a listing's page is `?after=ID`.
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let response = state.0.admin_response(&method, path, &headers).await;
    let (parts, body) = response.into_parts();
    Response::from_parts(parts, axum::body::Body::from(body))
}

/// `GET /admin`: the operator's page, when the admin API is on (with the
/// library's security headers).
pub async fn admin_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let response = state
        .0
        .admin_response(&Method::GET, "/admin", &headers)
        .await;
    let (parts, body) = response.into_parts();
    Response::from_parts(parts, axum::body::Body::from(body))
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
