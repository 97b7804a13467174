//! Sinks picked at run time from URLs (`ALM_FORWARD`), and the relay
//! tasks a receiver runs.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::{Relay, Sink, SinkError};
use crate::Engine;
use crate::store::{OutboxEntry, OutboxStats, OutboxStore, Store, StoreError};

/// One or more sinks named by URL, each entry published to every one of
/// them (in the order given; an entry is acknowledged when all
/// acknowledged it, so a sink that is down holds the others, which then
/// get re-publishes).
///
/// | URL | sink | feature |
/// |---|---|---|
/// | `nats://HOST:PORT/SUBJECT_PREFIX?stream=STREAM` | [`NatsSink`](super::NatsSink) | `nats` |
/// | `amqp://USER:PASS@HOST:PORT/VHOST?exchange=EXCHANGE` | [`RabbitSink`](super::RabbitSink) | `rabbitmq` |
/// | `kafka://HOST:PORT[,HOST:PORT]/TOPIC[?partitions=N]` | [`KafkaSink`](super::KafkaSink) | `kafka` |
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use alm_webhooks::outbox::AnySink;
/// let refused = AnySink::from_urls("ftp://example.org/x").await.unwrap_err();
/// assert!(refused.to_string().contains("ftp"));
/// # }
/// ```
pub struct AnySink {
    sinks: Vec<One>,
}

enum One {
    #[cfg(feature = "nats")]
    Nats(Box<super::NatsSink>),
    #[cfg(feature = "rabbitmq")]
    Rabbit(Box<super::RabbitSink>),
    #[cfg(feature = "kafka")]
    Kafka(Box<super::KafkaSink>),
}

impl std::fmt::Debug for AnySink {
    // Without a sink feature `One` has no variant and `sinks` is always
    // empty, so the loop's body is unreachable.
    #[cfg_attr(
        not(any(feature = "nats", feature = "rabbitmq", feature = "kafka")),
        allow(clippy::never_loop)
    )]
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut list = f.debug_list();
        for sink in &self.sinks {
            match *sink {
                #[cfg(feature = "nats")]
                One::Nats(ref s) => list.entry(s),
                #[cfg(feature = "rabbitmq")]
                One::Rabbit(ref s) => list.entry(s),
                #[cfg(feature = "kafka")]
                One::Kafka(ref s) => list.entry(s),
            };
        }
        list.finish()
    }
}

impl AnySink {
    /// The sinks of space-separated URLs (see the table above).
    ///
    /// # Errors
    ///
    /// When a URL is of no sink this build has, or does not parse (the
    /// error names no password), or none is given.
    pub async fn from_urls(urls: &str) -> Result<Self, SinkError> {
        let mut sinks = Vec::new();
        for url in urls.split_whitespace() {
            sinks.push(one(url).await?);
        }
        if sinks.is_empty() {
            return Err(SinkError::new("no sink URL given"));
        }
        Ok(Self { sinks })
    }

    /// How many sinks.
    pub fn len(&self) -> usize {
        self.sinks.len()
    }

    /// Whether there is none (never, for one built by [`AnySink::from_urls`]).
    pub fn is_empty(&self) -> bool {
        self.sinks.is_empty()
    }
}

async fn one(url: &str) -> Result<One, SinkError> {
    let scheme = url.split_once("://").map_or("", |(s, _)| s);
    match scheme {
        "nats" | "tls" => nats(url).await,
        "amqp" | "amqps" => rabbit(url),
        "kafka" => kafka(url),
        _ => Err(SinkError::new(format!(
            "ALM_FORWARD: {scheme:?} is not a sink URL (nats://, amqp://, kafka://)"
        ))),
    }
}

#[cfg(feature = "nats")]
async fn nats(url: &str) -> Result<One, SinkError> {
    Ok(One::Nats(Box::new(super::NatsSink::connect(url).await?)))
}

#[cfg(not(feature = "nats"))]
async fn nats(_: &str) -> Result<One, SinkError> {
    Err(SinkError::new(
        "ALM_FORWARD: nats:// needs the feature `nats`",
    ))
}

#[cfg(feature = "rabbitmq")]
fn rabbit(url: &str) -> Result<One, SinkError> {
    Ok(One::Rabbit(Box::new(super::RabbitSink::new(url)?)))
}

#[cfg(not(feature = "rabbitmq"))]
fn rabbit(_: &str) -> Result<One, SinkError> {
    Err(SinkError::new(
        "ALM_FORWARD: amqp:// needs the feature `rabbitmq`",
    ))
}

#[cfg(feature = "kafka")]
fn kafka(url: &str) -> Result<One, SinkError> {
    Ok(One::Kafka(Box::new(super::KafkaSink::new(url)?)))
}

#[cfg(not(feature = "kafka"))]
fn kafka(_: &str) -> Result<One, SinkError> {
    Err(SinkError::new(
        "ALM_FORWARD: kafka:// needs the feature `kafka`",
    ))
}

impl Sink for AnySink {
    // Without a sink feature `One` has no variant and `sinks` is always
    // empty, so the loop's body is unreachable.
    #[cfg_attr(
        not(any(feature = "nats", feature = "rabbitmq", feature = "kafka")),
        allow(clippy::never_loop)
    )]
    async fn publish(&self, entries: &[OutboxEntry]) -> Result<(), SinkError> {
        for sink in &self.sinks {
            match *sink {
                #[cfg(feature = "nats")]
                One::Nats(ref s) => s.publish(entries).await?,
                #[cfg(feature = "rabbitmq")]
                One::Rabbit(ref s) => s.publish(entries).await?,
                #[cfg(feature = "kafka")]
                One::Kafka(ref s) => s.publish(entries).await?,
            }
        }
        let _ = entries;
        Ok(())
    }
}

/// An engine's store's outbox (for a relay over an engine's store).
impl<S: Store + OutboxStore> OutboxStore for Engine<S> {
    fn keeps_outbox(&self) -> bool {
        self.store().keeps_outbox()
    }

    async fn lease_outbox(
        &self,
        relay: &str,
        max: usize,
        lease: Duration,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        self.store().lease_outbox(relay, max, lease).await
    }

    async fn mark_sent(&self, relay: &str, sent: &[OutboxEntry]) -> Result<(), StoreError> {
        self.store().mark_sent(relay, sent).await
    }

    async fn outbox_stats(&self) -> Result<OutboxStats, StoreError> {
        self.store().outbox_stats().await
    }

    async fn written(&self) {
        self.written_signal().notified().await;
    }
}

/// A relay running as a task of the receiver: restarted if it panics,
/// stopped when this is dropped.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::sync::Arc;
/// use alm_webhooks::Engine;
/// use alm_webhooks::outbox::{Forwarding, Relay, Sink, SinkError};
/// use alm_webhooks::store::{MemoryStore, OutboxEntry};
/// # #[derive(Debug)] struct Nowhere;
/// # impl Sink for Nowhere {
/// #     async fn publish(&self, _: &[OutboxEntry]) -> Result<(), SinkError> { Ok(()) }
/// # }
/// let engine = Engine::builder(MemoryStore::new().with_outbox()).build();
/// let forwarding = Forwarding::start(Relay::new(engine.clone(), Nowhere));
/// drop(forwarding); // stops the relay
/// # }
/// ```
#[derive(Debug)]
pub struct Forwarding {
    task: JoinHandle<()>,
}

impl Forwarding {
    /// Runs `relay` on the current tokio runtime until dropped.
    pub fn start<O: OutboxStore, S: Sink>(relay: Relay<O, S>) -> Self {
        let relay = Arc::new(relay);
        let task = tokio::spawn(async move {
            loop {
                let running = Arc::clone(&relay);
                let run = tokio::spawn(async move { running.run().await });
                match run.await {
                    Err(e) if e.is_panic() => {
                        #[cfg(feature = "tracing")]
                        tracing::error!(relay = %relay.name(), "the relay panicked; restarting it");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    _ => return,
                }
            }
        });
        Self { task }
    }
}

impl Drop for Forwarding {
    fn drop(&mut self) {
        self.task.abort();
    }
}
