//! The actix-web routes of both modes: `POST /webhooks` is the library's
//! `Endpoint::handle_actix`; the admin API under `/admin/`; the operator's
//! endpoints.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use alm_webhooks::Answer;
use alm_webhooks::adapters::actix::convert_headers;

use super::App;

fn json(status: http::StatusCode, body: String) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(status.as_u16())
        .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status);
    if body.is_empty() {
        return response.finish();
    }
    response.content_type("application/json").body(body)
}

/// `POST /webhooks`: the library's endpoint reads the body within the
/// limit and answers; the decisions are printed.
pub async fn webhooks(
    request: HttpRequest,
    payload: web::Payload,
    app: web::Data<Arc<App>>,
) -> Answer {
    let answer = app.endpoint().handle_actix(&request, payload).await;
    app.report(&answer);
    if let Answer::Refused(rejection) = &answer {
        eprintln!("{rejection}");
    }
    answer
}

/// Every method under `/admin/`.
pub async fn admin(request: HttpRequest, app: web::Data<Arc<App>>) -> HttpResponse {
    let headers = convert_headers(request.headers());
    let method =
        http::Method::from_bytes(request.method().as_str().as_bytes()).unwrap_or(http::Method::GET);
    // With its query: a listing's page is `?after=ID`.
    let path = request
        .uri()
        .path_and_query()
        .map_or(request.path(), |p| p.as_str());
    actix_response(app.admin_response(&method, path, &headers).await)
}

/// `GET /admin`: the operator's page, when the admin API is on (with the
/// library's security headers).
pub async fn admin_page(request: HttpRequest, app: web::Data<Arc<App>>) -> HttpResponse {
    let headers = convert_headers(request.headers());
    actix_response(
        app.admin_response(&http::Method::GET, "/admin", &headers)
            .await,
    )
}

/// The library's answer as an actix-web response, every header kept.
fn actix_response(response: http::Response<Vec<u8>>) -> HttpResponse {
    let (parts, body) = response.into_parts();
    let status = actix_web::http::StatusCode::from_u16(parts.status.as_u16())
        .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
    let mut out = HttpResponse::build(status);
    for (name, value) in &parts.headers {
        out.append_header((name.as_str(), value.as_bytes()));
    }
    out.body(body)
}

/// `GET /healthz`.
pub async fn healthz(app: web::Data<Arc<App>>) -> HttpResponse {
    let (status, body) = app.healthz();
    json(status, body)
}

/// `GET /readyz`.
pub async fn readyz(app: web::Data<Arc<App>>) -> HttpResponse {
    let (status, body) = app.readyz().await;
    json(status, body)
}

/// `GET /metrics`: the Prometheus text format.
pub async fn metrics(app: web::Data<Arc<App>>) -> HttpResponse {
    match app.metrics_text().await {
        Some(text) => HttpResponse::Ok()
            .content_type(super::ops::METRICS_TYPE)
            .body(text),
        None => json(
            http::StatusCode::NOT_FOUND,
            super::ops::METRICS_OFF.to_owned(),
        ),
    }
}
