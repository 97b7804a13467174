//! The axum side of the example receiver: the route and its state.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use alm_webhooks::endpoint::Guard;

use super::App;

/// The router's state: the shared [`App`].
#[derive(Clone, Debug)]
pub struct AppState(pub Arc<App>);

/// `POST /webhooks` (other methods get 405 from axum), the operator's
/// endpoints (`/healthz`, `/readyz`, `/metrics`) and the admin API.
///
/// `POST /webhooks` is behind the library's guard (credentials checked
/// before the body, read timeouts, caps; see `guard_env.rs`), outside the
/// capture, so only what passed the header checks is captured.
pub fn router(app: Arc<App>, guard: &Guard) -> axum::Router {
    let webhooks = axum::routing::post(super::axum_inbox::webhooks);
    let webhooks = match app.capture.clone() {
        Some(capture) => webhooks.route_layer(axum::middleware::from_fn_with_state(
            capture,
            super::capture::axum_layer,
        )),
        None => webhooks,
    };
    // On POST only: other methods still get 405.
    let routes = axum::Router::new().route("/webhooks", webhooks.route_layer(guard.layer()));
    routes
        .route("/healthz", axum::routing::get(super::axum_inbox::healthz))
        .route("/readyz", axum::routing::get(super::axum_inbox::readyz))
        .route("/metrics", axum::routing::get(super::axum_inbox::metrics))
        .route("/admin", axum::routing::get(super::axum_inbox::admin_page))
        .route(
            "/admin/{*rest}",
            axum::routing::any(super::axum_inbox::admin),
        )
        .with_state(AppState(app))
}

/// Binds `listen` and serves until the process ends, with the guard's
/// header read timeout and connection cap; returns the bound address once
/// listening.
pub async fn serve(
    app: Arc<App>,
    listen: std::net::SocketAddr,
) -> Result<std::net::SocketAddr, String> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let guard = app.guard.guard(app.endpoint().receiver());
    let router = router(app, &guard);
    tokio::spawn(async move { guard.serve(listener, router).await });
    Ok(addr)
}
