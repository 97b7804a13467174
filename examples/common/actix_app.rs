//! The actix-web side of the example receiver.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use actix_web::{App as ActixApp, HttpResponse, HttpServer, ResponseError, web};
use alm_webhooks::Receiver;
use alm_webhooks::adapters::actix::{AlmDelivery, AlmRejection};

use super::App;

async fn webhooks(
    app: web::Data<Arc<App>>,
    delivery: Result<AlmDelivery, AlmRejection>,
) -> HttpResponse {
    match delivery {
        Ok(AlmDelivery(envelope)) => {
            let (status, body) = app.handle(envelope).await;
            let status = actix_web::http::StatusCode::from_u16(status.as_u16())
                .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
            HttpResponse::build(status)
                .content_type("application/json")
                .body(body)
        }
        Err(rejection) => {
            eprintln!("{rejection}");
            rejection.error_response()
        }
    }
}

/// Binds `listen` and runs the server; returns the bound address and the
/// running server (await it to serve).
pub fn server(
    app: Arc<App>,
    listen: std::net::SocketAddr,
) -> std::io::Result<(std::net::SocketAddr, actix_web::dev::Server)> {
    let receiver = web::Data::from(Arc::clone(&app.receiver) as Arc<Receiver>);
    let capture = app.capture.clone().map(web::Data::from);
    let app = web::Data::new(app);
    let server = HttpServer::new(move || {
        let mut actix_app = ActixApp::new()
            .app_data(receiver.clone())
            .app_data(app.clone());
        if let Some(capture) = &capture {
            actix_app = actix_app.app_data(capture.clone());
        }
        actix_app
            .wrap(actix_web::middleware::from_fn(super::capture::actix_layer))
            .service(web::resource("/webhooks").route(web::post().to(webhooks)))
    })
    .workers(2)
    .bind(listen)?;
    let addr = server.addrs().first().copied().unwrap_or(listen);
    Ok((addr, server.run()))
}
