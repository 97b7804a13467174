//! The framework glue: the library's routes (`POST /webhooks` behind the
//! front door's guard, `/healthz`, `/readyz`, `/metrics`, the admin API
//! with `ALM_ADMIN_TOKEN`) with the capture of `ALM_CAPTURE_DIR`; refused
//! requests summarised on stderr.

use super::App;

/// The configured guard, its refusals summarised on stderr.
#[cfg(any(feature = "axum", feature = "actix"))]
fn guard(app: &App) -> alm_webhooks::endpoint::Guard {
    app.config
        .guard(&app.endpoint)
        .with_summary(|summary| eprintln!("{summary}"))
}

/// axum: binds `ALM_LISTEN` and serves on a task of its own; the bound
/// address.
#[cfg(feature = "axum")]
pub async fn axum(app: &App) -> Result<std::net::SocketAddr, String> {
    let served = app.config.serve(&app.endpoint, guard(app)).await;
    served.map_err(|e| e.to_string())
}

/// actix-web: binds `ALM_LISTEN`; the bound address and the server (await
/// it to serve; it stops on `SIGTERM` or Ctrl-C within 5 s).
#[cfg(feature = "actix")]
pub fn actix(app: &App) -> Result<(std::net::SocketAddr, actix_web::dev::Server), String> {
    use actix_web::{App as ActixApp, HttpServer, middleware, web};
    let capture = app.config.capture().map_err(|e| e.to_string())?;
    let capture = capture.map(web::Data::from);
    let endpoint = app.endpoint.clone();
    // Built once, so that every worker shares its caps.
    let guard = guard(app);
    let (read_timeout, max_connections) = (guard.read_timeout(), guard.max_connections());
    let door = guard.actix();
    let listen = app.config.listen;
    let server = HttpServer::new(move || {
        let actix_app = ActixApp::new();
        let actix_app = match &capture {
            Some(capture) => actix_app.app_data(capture.clone()),
            None => actix_app,
        };
        actix_app.service(
            endpoint
                .actix_scope_guarded("", &door)
                .wrap(middleware::from_fn(alm_webhooks::config::capture_actix)),
        )
    })
    .workers(2)
    .shutdown_timeout(5)
    // Headers within the guard's read timeout (or `408` and closed), and
    // at most its connection cap open (per worker).
    .client_request_timeout(read_timeout)
    .max_connections(max_connections)
    .bind(listen)
    .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = server.addrs().first().copied().unwrap_or(listen);
    Ok((addr, server.run()))
}

/// Waits for Ctrl-C or (on Unix) `SIGTERM`.
pub async fn terminated() {
    #[cfg(unix)]
    if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        return;
    }
    let _ = tokio::signal::ctrl_c().await;
}
