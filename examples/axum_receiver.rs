//! An ALM webhook receiver on axum, configured from the environment by
//! the library's `Config` (every variable and its default:
//! `docs/environment.md`); the library's router serves `POST /webhooks`
//! behind the guard, `/healthz`, `/readyz`, `/metrics` and the admin API.
//! Run:
//!
//! ```sh
//! ALM_AUTH=signature ALM_SIGNING_SECRET=s3cret cargo run --example axum_receiver --features axum,env
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

#[tokio::main]
async fn main() {
    let (config, knobs) = common::config_or_exit();
    let started = async {
        let app = common::App::new(config, knobs).await?;
        let addr = common::serve::axum(&app).await?;
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
    common::serve::terminated().await;
    app.shutdown(common::SHUTDOWN_GRACE).await;
    std::process::exit(0);
}
