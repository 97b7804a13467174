//! The actix-web side of the example receiver.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use actix_web::{App as ActixApp, HttpServer, web};

use super::App;

/// Binds `listen` and runs the server; returns the bound address and the
/// running server (await it to serve).
pub fn server(
    app: Arc<App>,
    listen: std::net::SocketAddr,
) -> std::io::Result<(std::net::SocketAddr, actix_web::dev::Server)> {
    let capture = app.capture.clone().map(web::Data::from);
    // The front door's guard (credentials checked before the body, the
    // body within the read timeout, caps answered `503`), built once so
    // every worker shares its caps.
    let guard = app.guard.guard(app.endpoint().receiver());
    let middleware = guard.actix();
    let app = web::Data::new(app);
    let server = HttpServer::new(move || {
        let mut actix_app = ActixApp::new().app_data(app.clone());
        if let Some(capture) = &capture {
            actix_app = actix_app.app_data(capture.clone());
        }
        actix_app
            .service(
                // The guard outermost, on the POST route only (other
                // methods still get actix's 405), then the capture.
                web::resource("/webhooks").route(
                    web::post()
                        .to(super::actix_inbox::webhooks)
                        .wrap(actix_web::middleware::from_fn(super::capture::actix_layer))
                        .wrap(middleware.clone()),
                ),
            )
            .route("/healthz", web::get().to(super::actix_inbox::healthz))
            .route("/readyz", web::get().to(super::actix_inbox::readyz))
            .route("/metrics", web::get().to(super::actix_inbox::metrics))
            .route("/admin", web::get().to(super::actix_inbox::admin_page))
            .route(
                "/admin/{rest:.*}",
                web::route().to(super::actix_inbox::admin),
            )
    })
    .workers(2)
    .shutdown_timeout(5)
    // Headers within the guard's read timeout (or `408` and closed), and
    // at most its connection cap open (per worker).
    .client_request_timeout(guard.read_timeout())
    .max_connections(guard.max_connections())
    .bind(listen)?;
    let addr = server.addrs().first().copied().unwrap_or(listen);
    Ok((addr, server.run()))
}
