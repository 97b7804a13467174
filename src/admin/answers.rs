//! The admin API's answers: the headers every answer carries, and the
//! usual JSON bodies.

use http::{HeaderValue, Response, StatusCode, header};
use serde_json::{Value, json};

use crate::inbox::InboxError;

/// Every answer, the page's and the API's, with headers that keep it out
/// of frames, caches and content sniffing, and run only the page's own
/// script and styles.
pub(super) fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: Vec<u8>,
) -> Response<Vec<u8>> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, super::policy::csp());
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if status != StatusCode::NO_CONTENT {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    response
}

pub(super) fn answer(status: StatusCode, body: Value) -> Response<Vec<u8>> {
    respond(status, "application/json", body.to_string().into_bytes())
}

pub(super) fn bad_query() -> Response<Vec<u8>> {
    answer(
        StatusCode::BAD_REQUEST,
        json!({"error": "expected ?after=ID (a number), or no query"}),
    )
}

pub(super) fn not_found() -> Response<Vec<u8>> {
    answer(StatusCode::NOT_FOUND, json!({"error": "not found"}))
}

pub(super) fn method_not_allowed() -> Response<Vec<u8>> {
    let mut response = answer(
        StatusCode::METHOD_NOT_ALLOWED,
        json!({"error": "method not allowed"}),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    response
}

pub(super) fn unavailable(error: &InboxError) -> Response<Vec<u8>> {
    #[cfg(feature = "tracing")]
    tracing::warn!(%error, "admin API: the inbox did not answer");
    #[cfg(not(feature = "tracing"))]
    let _ = error;
    answer(error.status(), json!({"error": "inbox unavailable"}))
}

/// The learner table did not answer: `503`, the cause only in the log.
pub(super) fn unavailable_table(error: &crate::store::StoreError) -> Response<Vec<u8>> {
    #[cfg(feature = "tracing")]
    tracing::warn!(%error, "admin API: the learner table did not answer");
    #[cfg(not(feature = "tracing"))]
    let _ = error;
    answer(
        StatusCode::SERVICE_UNAVAILABLE,
        json!({"error": "learner table unavailable"}),
    )
}

/// The CSV export failed before it was collected: `503`.
pub(super) fn unavailable_export(error: &std::io::Error) -> Response<Vec<u8>> {
    #[cfg(feature = "tracing")]
    tracing::warn!(%error, "admin API: the CSV export failed");
    #[cfg(not(feature = "tracing"))]
    let _ = error;
    answer(
        StatusCode::SERVICE_UNAVAILABLE,
        json!({"error": "learner table unavailable"}),
    )
}

/// The one body of every refused call, whatever was wrong with the token.
const UNAUTHORIZED: &str = r#"{"error":"unauthorized"}"#;

/// `401` with `WWW-Authenticate: Bearer`, one body for every refusal.
pub(super) fn unauthorized() -> Response<Vec<u8>> {
    let mut response = respond(
        StatusCode::UNAUTHORIZED,
        "application/json",
        UNAUTHORIZED.as_bytes().to_vec(),
    );
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// `429` with `Retry-After: 1`: too many failed attempts this second.
pub(super) fn too_many() -> Response<Vec<u8>> {
    let mut response = answer(
        StatusCode::TOO_MANY_REQUESTS,
        json!({"error": "too many failed attempts, retry later"}),
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}
