//! The axum side of the example receiver: the route and its state.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use super::App;

/// The router's state: the shared [`App`].
#[derive(Clone, Debug)]
pub struct AppState(pub Arc<App>);

/// `POST /webhooks` (other methods get 405 from axum), the operator's
/// endpoints (`/healthz`, `/readyz`, `/metrics`) and the admin API.
pub fn router(app: Arc<App>) -> axum::Router {
    let routes = axum::Router::new().route(
        "/webhooks",
        axum::routing::post(super::axum_inbox::webhooks),
    );
    let routes = match app.capture.clone() {
        Some(capture) => routes.layer(axum::middleware::from_fn_with_state(
            capture,
            super::capture::axum_layer,
        )),
        None => routes,
    };
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

/// Binds `listen` and serves until the process ends; returns the bound
/// address once listening.
pub async fn serve(
    app: Arc<App>,
    listen: std::net::SocketAddr,
) -> Result<std::net::SocketAddr, String> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router(app)).await {
            eprintln!("error: server stopped: {e}");
        }
    });
    Ok(addr)
}
