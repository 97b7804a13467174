//! The axum side of the example receiver: the library's router.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use super::App;

/// The library's router (`Endpoint::router`): `POST /webhooks` behind the
/// library's guard (credentials checked before the body, read timeouts,
/// caps; see `guard_env.rs`), `/healthz`, `/readyz`, `/metrics` and, with
/// `ALM_ADMIN_TOKEN`, the admin API. The capture (`ALM_CAPTURE_DIR`) sits
/// inside the guard, so only what passed the header checks is captured.
pub fn router(app: &App, guard: alm_webhooks::endpoint::Guard) -> axum::Router {
    let routes = app.endpoint().routes().guard(guard);
    let routes = match app.capture.clone() {
        Some(capture) => routes.map_webhook(move |webhook| {
            webhook.route_layer(axum::middleware::from_fn_with_state(
                capture,
                super::capture::axum_layer,
            ))
        }),
        None => routes,
    };
    routes.into_router()
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
    let router = router(&app, guard.clone());
    tokio::spawn(async move { guard.serve(listener, router).await });
    Ok(addr)
}
