//! The actix-web side of the example receiver: the library's scope.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use actix_web::{App as ActixApp, HttpServer, web};

use super::App;

/// Binds `listen` and runs the server; returns the bound address and the
/// running server (await it to serve). The library's scope
/// (`Endpoint::actix_scope_guarded`) serves `POST /webhooks` behind the
/// front door's guard, `/healthz`,
/// `/readyz`, `/metrics` and, with `ALM_ADMIN_TOKEN`, the admin API; the
/// capture (`ALM_CAPTURE_DIR`) sees `POST /webhooks` only.
pub fn server(
    app: Arc<App>,
    listen: std::net::SocketAddr,
) -> std::io::Result<(std::net::SocketAddr, actix_web::dev::Server)> {
    let capture = app.capture.clone().map(web::Data::from);
    let endpoint = app.endpoint().clone();
    // The front door's guard (credentials checked before the body, the
    // body within the read timeout, caps answered `503`), built once so
    // every worker shares its caps.
    let guard = app.guard.guard(endpoint.receiver());
    let (read_timeout, max_connections) = (guard.read_timeout(), guard.max_connections());
    let middleware = guard.actix();
    let server = HttpServer::new(move || {
        let mut actix_app = ActixApp::new();
        if let Some(capture) = &capture {
            actix_app = actix_app.app_data(capture.clone());
        }
        actix_app.service(
            endpoint
                .actix_scope_guarded("", &middleware)
                .wrap(actix_web::middleware::from_fn(super::capture::actix_layer)),
        )
    })
    .workers(2)
    .shutdown_timeout(5)
    // Headers within the guard's read timeout (or `408` and closed), and
    // at most its connection cap open (per worker).
    .client_request_timeout(read_timeout)
    .max_connections(max_connections)
    .bind(listen)?;
    let addr = server.addrs().first().copied().unwrap_or(listen);
    Ok((addr, server.run()))
}
