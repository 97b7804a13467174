//! The admin API: the library's [`alm_webhooks::admin::AdminApi`] over the
//! example's inbox, mounted under `/admin`, only when `ALM_ADMIN_TOKEN` is
//! set (otherwise every `/admin/…` path is `404`). Every call but the page
//! must carry `Authorization: Bearer TOKEN` (else `401`, one body for every
//! failure). The calls and their answers: see [`alm_webhooks::admin`].
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use alm_webhooks::admin::AdminApi;
pub use alm_webhooks::admin::AdminToken;
use http::{HeaderMap, Method, StatusCode};

use super::App;

impl App {
    /// The admin page, when the admin API is on.
    pub fn admin_page(&self) -> Option<&'static str> {
        self.queue
            .config
            .admin_token
            .as_ref()
            .map(|_| alm_webhooks::admin::PAGE_HTML)
    }

    /// Answers one admin request: `path` is the request's path (from
    /// `/admin`) and query.
    pub async fn admin(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
    ) -> (StatusCode, String) {
        let response = self.admin_response(method, path, headers).await;
        let status = response.status();
        (
            status,
            String::from_utf8_lossy(response.body()).into_owned(),
        )
    }

    /// The whole answer to one admin request (the page for `/admin`), with
    /// the headers the library sets: the security headers on every answer,
    /// `WWW-Authenticate` on a `401`, `Retry-After` on a `429`.
    pub async fn admin_response(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
    ) -> http::Response<Vec<u8>> {
        let Some(token) = &self.queue.config.admin_token else {
            let mut response = http::Response::new(br#"{"error":"not found"}"#.to_vec());
            *response.status_mut() = StatusCode::NOT_FOUND;
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            return response;
        };
        let mut api =
            AdminApi::new(Arc::clone(&self.queue.inbox), token.clone()).counting(&self.engine);
        if let Some(waker) = self.queue.pool.waker() {
            api = api.waking(waker);
        }
        let below = path.strip_prefix("/admin").unwrap_or(path);
        api.handle(method, below, headers).await
    }
}
