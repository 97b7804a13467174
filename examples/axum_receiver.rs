//! An ALM webhook receiver on axum, configured from the environment (see
//! `examples/common/mod.rs`). Run:
//!
//! ```sh
//! ALM_AUTH=signature ALM_SIGNING_SECRET=s3cret cargo run --example axum_receiver --features axum
//! ```
//!
//! `POST /webhooks` answers 202 once the events are decided, 401 for any
//! authentication failure, 400 for a body that is not an envelope, 413 over
//! the size limit, 503 when the store is unavailable or an event is in
//! flight elsewhere, 405 for other methods. Each decision is printed on
//! stdout as one JSON line; logs go to stderr.

#[path = "common/mod.rs"]
mod common;

use common::App;

#[tokio::main]
async fn main() {
    let config = common::config_or_exit();
    let listen = config.listen;
    let started = async {
        let app = App::new(config).await?;
        common::axum_app::serve(app, listen).await
    };
    match started.await {
        Ok(addr) => eprintln!("listening on http://{addr}/webhooks"),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
