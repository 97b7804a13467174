//! The README's first receiver: ALM webhooks into PostgreSQL over TLS, with
//! dedup that survives restarts, health, readiness and `/metrics`, in 17
//! lines (`tests/newcomer.rs` runs the same code against a real server).
//!
//! ```sh
//! DATABASE_URL='postgres://alm@db.internal/alm?sslmode=require&migrate=true' \
//! ALM_SIGNING_SECRET=s3cret cargo run --example newcomer --features axum,postgres,prometheus
//! ```
use alm_webhooks::prelude::*;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    alm_webhooks::metrics::install_prometheus()?;
    let url = std::env::var("DATABASE_URL")?; // postgres://…?sslmode=require&migrate=true
    let endpoint = Endpoint::builder(SignatureAuth::new(std::env::var("ALM_SIGNING_SECRET")?))
        .storage(&url, WorkerOptions::new()) // store and inbox, one pool
        .await?
        .handler(|event| async move {
            println!("{} {}", event.event_name, event.event_id);
            Ok(())
        })
        .build()?;
    let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
    axum::serve(listener, endpoint.router()).await?;
    Ok(())
}
