//! The operator's endpoints, served by the library's `Endpoint::router`
//! (axum) and `Endpoint::actix_scope` (actix-web), without authentication
//! (keep them off the public internet: a load balancer, Kubernetes and
//! Prometheus reach them on the private network):
//!
//! - `GET /healthz`: `200 {"status":"up"}` while the process serves
//! - `GET /readyz`: `200 {"status":"ready"}` when the store and the inbox
//!   answer (each within 2 s) and the inbox's workers keep alive
//!   (`Endpoint::ready`), else `503 {"status":"unavailable",
//!   "store":…,"inbox":…,"workers":…}` naming what failed
//! - `GET /metrics`: the Prometheus text format of the crate's metrics
//!   (built with the `prometheus` feature; `404` otherwise), the inbox
//!   gauges refreshed from the inbox's counts at each scrape
#![allow(dead_code, unreachable_pub)]

/// Installs the Prometheus recorder (with the `prometheus` feature), with
/// the crate's buckets and counters at zero; call once at start.
pub fn start_metrics() {
    #[cfg(feature = "prometheus")]
    if let Err(e) = alm_webhooks::metrics::install_prometheus() {
        eprintln!("metrics: no Prometheus recorder: {e}");
    }
}
