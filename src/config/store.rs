//! The engine's store: `ALM_STORE`, `ALM_PROJECTION`, `ALM_LEASE_SECS`,
//! `ALM_COMMIT_BATCH`, and its outbox: `ALM_FORWARD`.

use std::fmt;
use std::time::Duration;

use super::ConfigError;
use super::vars::{Vars, scheme};
use crate::Engine;
use crate::store::AnyStore;

/// Where the engine keeps its decisions, and how it claims events. Its
/// `Debug` shows the store URL's scheme alone (the URL may hold a
/// password).
///
/// ```
/// use alm_webhooks::config::Config;
/// let config = Config::from_vars([("ALM_STORE", "postgres://alm:hunter2@db/alm"), ("ALM_LEASE_SECS", "120")])
///     .unwrap();
/// assert_eq!(config.store.lease.as_secs(), 120);
/// assert!(config.store.projection, "the learner table is kept by default");
/// let shown = format!("{:?}", config.store);
/// assert!(shown.contains("postgres") && !shown.contains("hunter2"), "{shown}");
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreConfig {
    /// `ALM_STORE`: a URL for [`AnyStore::from_url`] (default `memory`).
    pub url: String,
    /// `ALM_PROJECTION`: keep the learner table in the store (default
    /// on; Redis does not keep it yet).
    pub projection: bool,
    /// `ALM_LEASE_SECS`: the engine's claim lease, and the inbox
    /// workers' delivery lease (default
    /// [`DEFAULT_CLAIM_LEASE`](crate::engine::DEFAULT_CLAIM_LEASE)).
    pub lease: Duration,
    /// `ALM_COMMIT_BATCH`: events per commit (default `None`, the
    /// engine's: the whole delivery).
    pub commit_batch: Option<usize>,
    /// `ALM_FORWARD`: the sinks every processed event is forwarded to,
    /// space-separated URLs (see [`AnySink`](crate::outbox::AnySink));
    /// `None` (the default) forwards nothing. With it, the store keeps an
    /// outbox and the endpoint runs a relay. `Debug` shows only their
    /// schemes.
    pub forward: Option<String>,
}

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreConfig")
            .field("url", &scheme(&self.url))
            .field("projection", &self.projection)
            .field("lease", &self.lease)
            .field("commit_batch", &self.commit_batch)
            .field(
                "forward",
                &self
                    .forward
                    .as_deref()
                    .map(|urls| urls.split_whitespace().map(scheme).collect::<Vec<_>>()),
            )
            .finish()
    }
}

impl StoreConfig {
    pub(super) fn read(vars: &Vars) -> Result<Self, ConfigError> {
        let lease = vars.positive_opt::<u64>("ALM_LEASE_SECS", "number of seconds")?;
        Ok(Self {
            url: vars
                .string("ALM_STORE")
                .unwrap_or_else(|| "memory".to_owned()),
            projection: vars.choice("ALM_PROJECTION", true, &[("on", true), ("off", false)])?,
            lease: lease.map_or(crate::engine::DEFAULT_CLAIM_LEASE, Duration::from_secs),
            commit_batch: vars.positive_opt("ALM_COMMIT_BATCH", "number of events")?,
            forward: forward(vars)?,
        })
    }

    /// Opens the store, with the learner projection when asked, and builds
    /// the engine on it.
    pub(super) async fn engine(&self) -> Result<Engine<AnyStore>, ConfigError> {
        let store = AnyStore::from_url(&self.url)
            .await
            .map_err(|e| ConfigError::unavailable("ALM_STORE", e))?;
        let store = if self.projection {
            let failed = |e| ConfigError::unavailable("ALM_PROJECTION", e);
            store.with_learner_projection().await.map_err(failed)?
        } else {
            store
        };
        let store = if self.forward.is_some() {
            let failed = |e| ConfigError::unavailable("ALM_FORWARD", e);
            store.with_outbox().await.map_err(failed)?
        } else {
            store
        };
        let mut engine = Engine::builder(store).claim_lease(self.lease);
        if let Some(events) = self.commit_batch {
            engine = engine.commit_batch(events);
        }
        Ok(engine.build())
    }
}

/// `ALM_FORWARD`, its schemes checked (the sinks are opened later).
fn forward(vars: &Vars) -> Result<Option<String>, ConfigError> {
    let Some(urls) = vars.string("ALM_FORWARD").filter(|u| !u.trim().is_empty()) else {
        return Ok(None);
    };
    for url in urls.split_whitespace() {
        match scheme(url) {
            "nats" | "tls" | "amqp" | "amqps" | "kafka" => {}
            other => {
                return Err(ConfigError::invalid(
                    "ALM_FORWARD",
                    format!(
                        "{other:?} is not a sink URL (nats://HOST:PORT/PREFIX?stream=NAME, amqp://USER:PASS@HOST:PORT/VHOST?exchange=NAME, kafka://HOST:PORT/TOPIC)"
                    ),
                ));
            }
        }
    }
    Ok(Some(urls))
}
