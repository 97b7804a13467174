//! The relay: leases accounts' outbox entries, hands them to a sink, waits
//! for the broker's acknowledgement, then deletes them.

use std::time::{Duration, Instant, SystemTime};

use super::Sink;
use crate::store::{OutboxEntry, OutboxStore, StoreError};

/// How many entries one lease takes, by default.
pub const DEFAULT_RELAY_BATCH: usize = 1000;
/// How long an account stays leased to a relay, by default (longer than
/// the publish timeout, so a live relay keeps its accounts).
pub const DEFAULT_RELAY_LEASE: Duration = Duration::from_secs(30);
/// The bound on one publish (a batch of one account's entries), by default.
pub const DEFAULT_PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);
/// The bound on one call to the store, by default.
pub const DEFAULT_OUTBOX_STORE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an idle relay waits before looking again, by default.
pub const DEFAULT_RELAY_POLL: Duration = Duration::from_millis(20);
/// The longest pause after failures (a broker or store outage).
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often the relay sets the outbox gauges.
const STATS_EVERY: Duration = Duration::from_secs(2);

/// Forwards a store's outbox to a sink: tasks in the receiver process, any
/// number of them and of processes sharing the store.
///
/// Each round leases accounts with pending entries (one relay per account
/// at a time, see [`OutboxStore`]), publishes each account's entries in
/// decision order with one [`Sink::publish`] (the accounts' publishes run
/// together), and deletes those the broker acknowledged. An idle relay
/// looks again after its [`poll`](Self::poll), or at once when its store
/// says entries were written ([`OutboxStore::written`]: an
/// [`Engine`](crate::Engine) does after each commit of this process). A publish that fails or times out leaves its entries in
/// the outbox: they are published again (at-least-once), after a pause
/// that grows to 5 s while the broker stays away. Nothing is dead-lettered
/// and nothing here touches ALM's deliveries: their `202` and `/readyz` do
/// not depend on the broker.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::sync::{Arc, Mutex};
/// use alm_webhooks::{Engine, Envelope};
/// use alm_webhooks::outbox::{Relay, Sink, SinkError};
/// use alm_webhooks::store::{MemoryStore, OutboxEntry};
///
/// #[derive(Debug, Default)]
/// struct Kept(Mutex<Vec<OutboxEntry>>);
/// impl Sink for Kept {
///     async fn publish(&self, entries: &[OutboxEntry]) -> Result<(), SinkError> {
///         self.0.lock().unwrap().extend_from_slice(entries);
///         Ok(())
///     }
/// }
///
/// let engine = Engine::builder(Arc::new(MemoryStore::new().with_outbox())).build();
/// let body = br#"{"accountId":1,"events":[{"eventId":"e1","eventName":"NEW_THING"}]}"#;
/// engine.process(Envelope::from_slice(body).unwrap(), |_event| async { Ok(()) }).await.unwrap();
///
/// let sink = Arc::new(Kept::default());
/// let relay = Relay::new(Arc::clone(engine.store()), Arc::clone(&sink));
/// assert_eq!(relay.relay_once().await.unwrap(), 1);
/// assert_eq!(sink.0.lock().unwrap()[0].event_id.as_str(), "e1");
/// assert_eq!(relay.relay_once().await.unwrap(), 0, "acknowledged entries are gone");
/// # }
/// ```
#[derive(Debug)]
pub struct Relay<O, S> {
    store: O,
    sink: S,
    name: String,
    batch: usize,
    lease: Duration,
    publish_timeout: Duration,
    store_timeout: Duration,
    poll: Duration,
}

/// Why a round of the relay did not hand everything over.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// The store failed or timed out.
    #[error("outbox: the store failed")]
    Store(#[source] StoreError),
    /// A sink did not acknowledge a publish (or timed out).
    #[error("outbox: the broker did not acknowledge {entries} entries")]
    Sink {
        /// How many entries stay in the outbox.
        entries: usize,
        /// The first failure.
        #[source]
        source: super::SinkError,
    },
}

impl<O: OutboxStore, S: Sink> Relay<O, S> {
    /// A relay from `store`'s outbox to `sink`, with the defaults above and
    /// a random name (its leases' owner).
    pub fn new(store: O, sink: S) -> Self {
        let mut id = [0u8; 8];
        // A name collision only lets two relays share an account's lease.
        let _ = getrandom::fill(&mut id);
        Self {
            store,
            sink,
            name: format!("relay-{}", base16ct::lower::encode_string(&id)),
            batch: DEFAULT_RELAY_BATCH,
            lease: DEFAULT_RELAY_LEASE,
            publish_timeout: DEFAULT_PUBLISH_TIMEOUT,
            store_timeout: DEFAULT_OUTBOX_STORE_TIMEOUT,
            poll: DEFAULT_RELAY_POLL,
        }
    }

    /// How many entries one round leases, at most (at least 1).
    pub fn batch(mut self, entries: usize) -> Self {
        self.batch = entries.max(1);
        self
    }

    /// How long an account stays leased (renewed every round); keep it
    /// above the publish timeout.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// The bound on one publish to the sink.
    pub fn publish_timeout(mut self, timeout: Duration) -> Self {
        self.publish_timeout = timeout;
        self
    }

    /// How long an idle relay waits before it looks again.
    pub fn poll(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// The relay's name, the owner of its leases.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// One round: leases up to a batch of entries, publishes each account's,
    /// deletes those acknowledged. Returns how many were handed over.
    ///
    /// # Errors
    ///
    /// When the store fails, or a publish is not acknowledged (the entries
    /// of the other accounts are still handed over).
    pub async fn relay_once(&self) -> Result<usize, RelayError> {
        let store = |e| RelayError::Store(e);
        let leased = bounded(
            self.store_timeout,
            self.store.lease_outbox(&self.name, self.batch, self.lease),
        )
        .await
        .map_err(store)?;
        let mut sent: Vec<OutboxEntry> = Vec::with_capacity(leased.len());
        let mut failed: Option<(usize, super::SinkError)> = None;
        // Each account's entries are one publish; the accounts' publishes
        // wait for their acknowledgements together.
        let runs: Vec<&[OutboxEntry]> = leased
            .chunk_by(|a, b| a.account_id == b.account_id)
            .collect();
        let published =
            futures_util::future::join_all(runs.iter().map(|run| self.publish(run))).await;
        for (run, publish) in runs.into_iter().zip(published) {
            match publish {
                Ok(()) => sent.extend_from_slice(run),
                Err(e) => note(&mut failed, run.len(), e),
            }
        }
        if !sent.is_empty() {
            bounded(self.store_timeout, self.store.mark_sent(&self.name, &sent))
                .await
                .map_err(store)?;
        }
        match failed {
            None => Ok(sent.len()),
            Some((entries, source)) => Err(RelayError::Sink { entries, source }),
        }
    }

    /// Publishes one account's entries, within the publish timeout.
    async fn publish(&self, run: &[OutboxEntry]) -> Result<(), super::SinkError> {
        match tokio::time::timeout(self.publish_timeout, self.sink.publish(run)).await {
            Ok(published) => published,
            Err(_) => Err(super::SinkError::new(format!(
                "no acknowledgement within {:?}",
                self.publish_timeout
            ))),
        }
    }

    /// Runs rounds for ever: at once while there is work, every
    /// [`poll`](Self::poll) when idle (or at once when the store says
    /// entries were written: [`OutboxStore::written`]), after a growing pause (up to 5 s)
    /// when the broker or the store fails; sets the outbox gauges every
    /// 2 s (feature `metrics`).
    pub async fn run(&self) {
        let mut backoff = Duration::ZERO;
        let mut stats_at: Option<Instant> = None;
        loop {
            if stats_at.is_none_or(|at| at.elapsed() >= STATS_EVERY) {
                self.report().await;
                stats_at = Some(Instant::now());
            }
            match self.relay_once().await {
                Ok(0) => {
                    backoff = Duration::ZERO;
                    tokio::select! {
                        () = tokio::time::sleep(self.poll) => {}
                        () = self.store.written() => {}
                    }
                }
                Ok(_) => backoff = Duration::ZERO,
                #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
                Err(error) => {
                    backoff = (backoff * 2).clamp(Duration::from_millis(100), MAX_BACKOFF);
                    #[cfg(feature = "tracing")]
                    tracing::warn!(%error, relay = %self.name,
                        "forwarding held; the entries stay in the outbox");
                    tokio::time::sleep(backoff).await;
                }
            }
        }
    }

    /// Sets `alm_webhooks_outbox_pending` and
    /// `alm_webhooks_outbox_oldest_age_seconds` (feature `metrics`).
    async fn report(&self) {
        let Ok(Ok(stats)) =
            tokio::time::timeout(self.store_timeout, self.store.outbox_stats()).await
        else {
            return;
        };
        let age = stats
            .oldest
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .unwrap_or_default();
        #[cfg(feature = "metrics")]
        {
            use crate::metrics::names;
            #[allow(clippy::cast_precision_loss)] // counts far below 2^52
            metrics::gauge!(names::OUTBOX_PENDING).set(stats.pending as f64);
            metrics::gauge!(names::OUTBOX_OLDEST_AGE_SECONDS).set(age.as_secs_f64());
        }
        let _ = age;
    }
}

fn note(failed: &mut Option<(usize, super::SinkError)>, entries: usize, e: super::SinkError) {
    match failed {
        Some((n, _)) => *n += entries,
        None => *failed = Some((entries, e)),
    }
}

async fn bounded<T>(
    limit: Duration,
    call: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(limit, call).await.unwrap_or_else(|_| {
        Err(StoreError::new(format!(
            "outbox: the store did not answer within {limit:?}"
        )))
    })
}
