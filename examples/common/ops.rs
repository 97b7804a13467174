//! The operator's endpoints, framework-free and without authentication
//! (keep them off the public internet: a load balancer, Kubernetes and
//! Prometheus reach them on the private network):
//!
//! - `GET /healthz`: `200 {"status":"up"}` while the process serves
//! - `GET /readyz`: `200 {"status":"ready"}` when the store and the inbox
//!   answer (each within 2 s) and the inbox's workers keep alive
//!   (`Endpoint::ready`), else `503 {"status":"unavailable",
//!   "store":…,"inbox":…,"workers":…}` naming what failed
//! - `GET /metrics`: the Prometheus text format of the crate's metrics
//!   (built with the `metrics` feature; `404` otherwise), the inbox gauges
//!   refreshed from the inbox's counts at each scrape
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use alm_webhooks::AccountId;
use alm_webhooks::inbox::Inbox;
use alm_webhooks::rules::StateKey;
use alm_webhooks::store::Store;
use http::StatusCode;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::App;

/// The content type of `/metrics` (Prometheus text format 0.0.4).
pub const METRICS_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The `/metrics` answer when built without the `metrics` feature.
pub const METRICS_OFF: &str = r#"{"error":"built without the metrics feature"}"#;

/// How long a readiness check waits for the store or the inbox.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The Prometheus recorder, installed once per process, with the crate's
/// buckets and counters at zero (`alm_webhooks::metrics::install_prometheus`).
#[cfg(feature = "prometheus")]
fn prometheus() -> Option<&'static metrics_exporter_prometheus::PrometheusHandle> {
    use std::sync::OnceLock;
    static HANDLE: OnceLock<Option<metrics_exporter_prometheus::PrometheusHandle>> =
        OnceLock::new();
    HANDLE
        .get_or_init(|| {
            alm_webhooks::metrics::install_prometheus()
                .map_err(|e| eprintln!("metrics: no Prometheus recorder: {e}"))
                .ok()
        })
        .as_ref()
}

/// Installs the Prometheus recorder (with the `prometheus` feature); call
/// once at start.
pub fn start_metrics() {
    #[cfg(feature = "prometheus")]
    let _ = prometheus();
}

/// What a check's failure says in the `/readyz` body.
fn failure(result: Result<Result<(), String>, tokio::time::error::Elapsed>) -> Option<String> {
    match result {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e),
        Err(_) => Some(format!("no answer within {} s", CHECK_TIMEOUT.as_secs())),
    }
}

impl App {
    /// `GET /healthz`: the process is up.
    pub fn healthz(&self) -> (StatusCode, String) {
        (StatusCode::OK, json!({"status": "up"}).to_string())
    }

    /// `GET /readyz`: whether the store and the inbox answer and the
    /// workers keep alive.
    pub async fn readyz(&self) -> (StatusCode, String) {
        // A read of a record no event names: it exists in no store.
        let probe = StateKey::LearningObject {
            account_id: AccountId(0),
            lo_id: "readiness:probe"
                .parse()
                .expect("a constant learning object id"),
        };
        let store = async {
            self.engine
                .store()
                .load(&probe)
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        };
        let inbox = async {
            self.queue
                .inbox
                .stats(OffsetDateTime::now_utc())
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        };
        let (store, inbox) = tokio::join!(
            tokio::time::timeout(CHECK_TIMEOUT, store),
            tokio::time::timeout(CHECK_TIMEOUT, inbox),
        );
        let (store, inbox) = (failure(store), failure(inbox));
        let workers = (!self.endpoint().ready())
            .then(|| "stopped, or panicking more often than their restart limit".to_owned());
        if store.is_none() && inbox.is_none() && workers.is_none() {
            return (StatusCode::OK, json!({"status": "ready"}).to_string());
        }
        let reason = |f: Option<String>| f.map_or(Value::from("ok"), Value::from);
        eprintln!("readyz: store {store:?}, inbox {inbox:?}, workers {workers:?}");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({
                "status": "unavailable",
                "store": reason(store),
                "inbox": reason(inbox),
                "workers": reason(workers),
            })
            .to_string(),
        )
    }

    /// `GET /metrics`: the Prometheus text format, or `None` (answer 404)
    /// when built without the `metrics` feature.
    pub async fn metrics_text(&self) -> Option<String> {
        #[cfg(feature = "prometheus")]
        {
            let handle = prometheus()?;
            let now = OffsetDateTime::now_utc();
            match tokio::time::timeout(CHECK_TIMEOUT, self.queue.inbox.stats(now)).await {
                Ok(Ok(stats)) => alm_webhooks::metrics::set_inbox(&(&stats).into()),
                Ok(Err(e)) => eprintln!("metrics: inbox counts: {e}"),
                Err(_) => eprintln!("metrics: inbox counts: no answer"),
            }
            Some(handle.render())
        }
        #[cfg(not(feature = "prometheus"))]
        None
    }
}
