//! The admin API: the library's [`alm_webhooks::admin::AdminApi`] over the
//! example's inbox, mounted under `/admin`, only when `ALM_ADMIN_TOKEN` is
//! set (otherwise every `/admin/…` path is `404`). Every call but the page
//! must carry `Authorization: Bearer TOKEN` (else `401`, one body for every
//! failure). The calls and their answers: see [`alm_webhooks::admin`];
//! `POST /admin/reconcile` and `GET /admin/reconcile/{id}` when
//! reconciliation is on (`reconcile.rs`).
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
    /// `/admin`).
    pub async fn admin(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
    ) -> (StatusCode, String) {
        let Some(token) = &self.queue.config.admin_token else {
            return (StatusCode::NOT_FOUND, r#"{"error":"not found"}"#.to_owned());
        };
        let mut api =
            AdminApi::new(Arc::clone(&self.queue.inbox), token.clone()).counting(&self.engine);
        if let Some(waker) = self.queue.pool.waker() {
            api = api.waking(waker);
        }
        #[cfg(feature = "alm-api")]
        if let Some(runs) = &self.reconcile {
            api = api.reconciling(runs.clone());
        }
        let below = path.strip_prefix("/admin").unwrap_or(path);
        let response = api.handle(method, below, headers).await;
        let status = response.status();
        (
            status,
            String::from_utf8_lossy(response.body()).into_owned(),
        )
    }
}
