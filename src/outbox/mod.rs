//! Forwarding processed events to a broker through a transactional outbox.
//!
//! A store that keeps an outbox (`with_outbox` on
//! [`MemoryStore`](crate::store::MemoryStore), `SqliteStore`,
//! `PostgresStore`, `RedisStore`) writes an entry for every processed event in the
//! commit that decides it ([`crate::store::OutboxEntry`]); a [`Relay`]
//! publishes the entries to a [`Sink`] in each account's decision order,
//! waits for the broker's acknowledgement, then deletes them. ALM's
//! deliveries never wait for the broker: a broker outage holds the
//! outbox (see `alm_webhooks_outbox_oldest_age_seconds`) and nothing is
//! dead-lettered.
//!
//! | sink | feature | deduplication by the broker |
//! |---|---|---|
//! | [`NatsSink`] (JetStream) | `nats` | yes: `Nats-Msg-Id` within the stream's duplicate window |
//! | [`RabbitSink`] | `rabbitmq` | no: consumers drop repeats by `message_id` |
//! | [`KafkaSink`] (idempotent producer, `acks=all`) | `kafka` | the producer's own retries only: consumers drop a relay's re-publish by `alm-account-id` + `alm-event-id` |
//! | your [`Sink`] | | yours |
//!
//! The receivers configured by environment forward with `ALM_FORWARD`
//! ([`Forwarding`]); docs/forwarding.md has the guarantees per sink.

mod forward;
#[cfg(feature = "kafka")]
#[cfg_attr(docsrs, doc(cfg(feature = "kafka")))]
mod kafka;
#[cfg(feature = "nats")]
#[cfg_attr(docsrs, doc(cfg(feature = "nats")))]
mod nats;
#[cfg(feature = "rabbitmq")]
#[cfg_attr(docsrs, doc(cfg(feature = "rabbitmq")))]
mod rabbit;
mod relay;
mod sink;

pub use forward::{AnySink, Forwarding};
#[cfg(feature = "kafka")]
#[cfg_attr(docsrs, doc(cfg(feature = "kafka")))]
pub use kafka::KafkaSink;
#[cfg(feature = "nats")]
#[cfg_attr(docsrs, doc(cfg(feature = "nats")))]
pub use nats::NatsSink;
#[cfg(feature = "rabbitmq")]
#[cfg_attr(docsrs, doc(cfg(feature = "rabbitmq")))]
pub use rabbit::RabbitSink;
pub use relay::{
    DEFAULT_OUTBOX_STORE_TIMEOUT, DEFAULT_PUBLISH_TIMEOUT, DEFAULT_RELAY_BATCH,
    DEFAULT_RELAY_LEASE, DEFAULT_RELAY_POLL, Relay, RelayError,
};
pub use sink::{Sink, SinkError, headers};
