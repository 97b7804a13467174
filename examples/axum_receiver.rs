//! An ALM webhook receiver on axum, configured from the environment (see
//! `examples/common/mod.rs`): the library's router (`Endpoint::router`)
//! serves `POST /webhooks` behind the guard, `/healthz`, `/readyz`,
//! `/metrics` and the admin API; `examples/common` reads the
//! configuration and prints the decisions. Run:
//!
//! ```sh
//! ALM_AUTH=signature ALM_SIGNING_SECRET=s3cret cargo run --example axum_receiver --features axum
//! ```
//!
//! `POST /webhooks` answers 202 once the delivery is in the inbox (the
//! default `ALM_MODE=inbox`; workers process it behind) or, with
//! `ALM_MODE=inline`, once its events are decided; 401 for any
//! authentication failure; 202 for a body that is not an envelope (kept in
//! quarantine; 400 with `ALM_ON_MALFORMED=refuse`); 413 over the size limit;
//! 503 when the inbox (or, inline, the store) is unavailable; 405 for other
//! methods. Each decision is printed on stdout as one JSON line; logs go to
//! stderr. `SIGTERM` or Ctrl-C: the workers stop within 7 s, what is
//! unfinished stays in the inbox, and the process exits 0.

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;

use common::App;

#[tokio::main]
async fn main() {
    let config = common::config_or_exit();
    let listen = config.listen;
    let started = async {
        let app = App::new(config).await?;
        let addr = common::axum_app::serve(Arc::clone(&app), listen).await?;
        Ok::<_, String>((app, addr))
    };
    let app = match started.await {
        Ok((app, addr)) => {
            eprintln!("listening on http://{addr}/webhooks");
            app
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    common::inbox::terminated().await;
    app.shutdown(common::inbox::SHUTDOWN_GRACE).await;
    std::process::exit(0);
}
