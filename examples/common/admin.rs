//! The admin API: the library's, over the example's inbox, mounted under
//! `/admin` by `Endpoint::router` / `Endpoint::actix_scope` only when
//! `ALM_ADMIN_TOKEN` is set (otherwise every `/admin/…` path is `404`).
//! Every call but the page must carry `Authorization: Bearer TOKEN` (else
//! `401`, one body for every failure). The calls and their answers: see
//! [`alm_webhooks::admin`]; `POST /admin/reconcile` and
//! `GET /admin/reconcile/{id}` when reconciliation is on (`reconcile.rs`).
#![allow(dead_code, unreachable_pub)]

pub use alm_webhooks::admin::AdminToken;
use http::{HeaderMap, Method, StatusCode};

use super::App;

impl App {
    /// Answers one admin request without HTTP (the demo): `path` is the
    /// request's path (from `/admin`).
    pub async fn admin(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
    ) -> (StatusCode, String) {
        let Some(admin) = self.endpoint().admin() else {
            return (StatusCode::NOT_FOUND, r#"{"error":"not found"}"#.to_owned());
        };
        let below = path.strip_prefix("/admin").unwrap_or(path);
        let response = admin.handle(method, below, headers).await;
        (
            response.status(),
            String::from_utf8_lossy(response.body()).into_owned(),
        )
    }
}
