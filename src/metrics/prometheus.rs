//! The one-call Prometheus setup (feature `prometheus`): the recorder of
//! `metrics-exporter-prometheus` with the crate's bucket boundaries, so that
//! every histogram is exported with the `_bucket` series the shipped alert
//! rules and dashboard take quantiles of.

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::buckets;

/// How often the installed recorder's upkeep runs (it drains histogram
/// samples and trims what was recorded).
pub const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Why the Prometheus recorder could not be installed.
#[derive(Debug, thiserror::Error)]
#[error("cannot install the Prometheus recorder")]
#[non_exhaustive]
pub struct PrometheusError {
    #[source]
    source: Box<dyn std::error::Error + Send + Sync + 'static>,
}

/// A [`PrometheusBuilder`] with the crate's bucket boundaries
/// ([`buckets::ALL`]) set, for an application that adds its own settings
/// (more buckets for its own histograms, global labels) before it installs
/// it. Most applications call [`install_prometheus`] instead.
///
/// ```
/// let builder = alm_webhooks::metrics::prometheus_builder();
/// // Add the application's own settings, then `builder.install_recorder()`.
/// let builder = builder.add_global_label("service", "alm-receiver");
/// # drop(builder);
/// ```
pub fn prometheus_builder() -> PrometheusBuilder {
    buckets::ALL
        .iter()
        .fold(PrometheusBuilder::new(), |builder, (name, bounds)| {
            builder
                .set_buckets_for_metric(Matcher::Full((*name).to_owned()), bounds)
                .expect("the crate's bucket lists are not empty")
        })
}

/// The handle of the recorder [`install_prometheus`] installed, once it has.
static INSTALLED: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder as the process's global recorder, with
/// the crate's bucket boundaries, its metric descriptions ([`describe`](super::describe))
/// and every counter the shipped rules read at zero ([`start_at_zero`](super::start_at_zero)),
/// and runs its upkeep every [`UPKEEP_EVERY`] on a thread of its own. Serve
/// [`PrometheusHandle::render`] as `GET /metrics`
/// ([`Endpoint::router`](crate::Endpoint::router) does, feature `axum`).
/// Call it once, at start; a later call returns the same handle.
///
/// ```no_run
/// let handle = alm_webhooks::metrics::install_prometheus().expect("no other recorder installed");
/// // In the `/metrics` route:
/// let text: String = handle.render();
/// assert!(text.contains("alm_webhooks_deliveries_total"));
/// ```
///
/// # Errors
///
/// When another global recorder is installed already.
pub fn install_prometheus() -> Result<PrometheusHandle, PrometheusError> {
    // One installation at a time: a second caller waits, then gets the
    // first one's handle.
    static INSTALLING: Mutex<()> = Mutex::new(());
    let _one = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(handle) = INSTALLED.get() {
        return Ok(handle.clone());
    }
    let handle = prometheus_builder()
        .install_recorder()
        .map_err(|e| PrometheusError {
            source: Box::new(e),
        })?;
    super::describe();
    super::start_at_zero();
    let upkeep = handle.clone();
    // A thread, not a task: the recorder may be installed before (or
    // outside) the application's runtime. It sleeps between upkeeps.
    let spawned = std::thread::Builder::new()
        .name("alm-webhooks-prometheus-upkeep".to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                upkeep.run_upkeep();
            }
        });
    if let Err(e) = spawned {
        return Err(PrometheusError {
            source: Box::new(e),
        });
    }
    Ok(INSTALLED.get_or_init(|| handle).clone())
}

/// The handle of the recorder [`install_prometheus`] installed, or `None`
/// before it is called (or when another recorder was installed instead).
///
/// ```
/// // Nothing installed in this program.
/// assert!(alm_webhooks::metrics::installed_prometheus().is_none());
/// ```
pub fn installed_prometheus() -> Option<PrometheusHandle> {
    INSTALLED.get().cloned()
}
