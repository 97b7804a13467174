//! An ALM webhook receiver on actix-web, configured from the environment
//! exactly like `axum_receiver` (the library's `Config`,
//! `docs/environment.md`): the library's `Endpoint` serves `POST
//! /webhooks`, `/healthz`, `/readyz`, `/metrics` and the admin API as one
//! scope (`Endpoint::actix_scope_guarded`). Run:
//!
//! ```sh
//! ALM_AUTH=basic ALM_BASIC_USER=alm ALM_BASIC_PASSWORD=s3cret cargo run --example actix_receiver --features actix,env
//! ```

#[path = "common/mod.rs"]
mod common;

#[actix_web::main]
async fn main() {
    let (config, knobs) = common::config_or_exit();
    let started = async {
        let app = common::App::new(config, knobs).await?;
        let (addr, server) = common::serve::actix(&app)?;
        Ok::<_, String>((app, addr, server))
    };
    let (app, server) = match started.await {
        Ok((app, addr, server)) => {
            eprintln!("listening on http://{addr}/webhooks");
            (app, server)
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    // actix stops on SIGTERM or Ctrl-C by itself (within 5 s).
    if let Err(e) = server.await {
        eprintln!("error: server stopped: {e}");
        std::process::exit(1);
    }
    app.shutdown(std::time::Duration::from_secs(4)).await;
    std::process::exit(0);
}
