//! An ALM webhook receiver on actix-web, configured from the environment
//! exactly like `axum_receiver` (see `examples/common/mod.rs`): the
//! library's `Endpoint` serves `POST /webhooks`, `/healthz`, `/readyz`,
//! `/metrics` and the admin API as one scope (`Endpoint::actix_scope`).
//! Run:
//!
//! ```sh
//! ALM_AUTH=basic ALM_BASIC_USER=alm ALM_BASIC_PASSWORD=s3cret cargo run --example actix_receiver --features actix
//! ```

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;

use common::App;

#[actix_web::main]
async fn main() {
    let config = common::config_or_exit();
    let listen = config.listen;
    let app = App::new(config).await.unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(2);
    });
    let (addr, server) = common::actix_app::server(Arc::clone(&app), listen).unwrap_or_else(|e| {
        eprintln!("error: cannot listen on {listen}: {e}");
        std::process::exit(2);
    });
    eprintln!("listening on http://{addr}/webhooks");
    // actix stops on SIGTERM or Ctrl-C by itself (within 5 s).
    if let Err(e) = server.await {
        eprintln!("error: server stopped: {e}");
        std::process::exit(1);
    }
    app.shutdown(std::time::Duration::from_secs(4)).await;
    std::process::exit(0);
}
