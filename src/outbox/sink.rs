//! What a broker client implements to receive the outbox's entries.

use std::future::Future;

use crate::store::OutboxEntry;

/// A broker the relay hands entries to.
///
/// [`Sink::publish`] gets the entries of **one account**, in decision
/// order (`seq`), and returns once the broker **acknowledged every one**
/// (stored it durably: a JetStream publish ack, a RabbitMQ publisher
/// confirm, a Kafka `acks=all`). An error means some may not be stored: the
/// relay publishes the same entries again later, so a sink must accept a
/// re-publish (brokers that deduplicate drop it by
/// [`OutboxEntry::message_id`]). Every I/O of a publish must be bounded:
/// the relay also bounds the whole call by its
/// [`publish_timeout`](super::Relay::publish_timeout). A relay publishes
/// the accounts of one round together: calls for different accounts may
/// run at the same time (never two for one account).
///
/// Check an implementation with the conformance suite
/// (`conformance::sink`, feature `sink-conformance`).
///
/// ```
/// use std::sync::Mutex;
/// use alm_webhooks::outbox::{Sink, SinkError};
/// use alm_webhooks::store::OutboxEntry;
///
/// /// Keeps what it is given, in memory (a test double).
/// #[derive(Debug, Default)]
/// struct Kept(Mutex<Vec<OutboxEntry>>);
///
/// impl Sink for Kept {
///     async fn publish(&self, entries: &[OutboxEntry]) -> Result<(), SinkError> {
///         self.0.lock().unwrap().extend_from_slice(entries);
///         Ok(())
///     }
/// }
/// ```
pub trait Sink: Send + Sync + 'static {
    /// Publishes one account's entries, in order, and waits for the
    /// broker's acknowledgement of each.
    fn publish(
        &self,
        entries: &[OutboxEntry],
    ) -> impl Future<Output = Result<(), SinkError>> + Send;
}

impl<S: Sink> Sink for std::sync::Arc<S> {
    async fn publish(&self, entries: &[OutboxEntry]) -> Result<(), SinkError> {
        S::publish(self, entries).await
    }
}

/// The headers every message carries, in this order: `alm-account-id`,
/// `alm-event-id`, `alm-event-name`, `alm-timestamp` (RFC 3339, when the
/// event has a time) and `content-type: application/json`.
///
/// ```
/// # use alm_webhooks::Envelope;
/// # use alm_webhooks::store::OutboxEntry;
/// # let body = br#"{"accountId":7,"events":[{"eventId":"e1","eventName":"NEW_THING"}]}"#;
/// # let envelope = Envelope::from_slice(body).unwrap();
/// let entry = OutboxEntry::of(envelope.events[0].as_ref().unwrap()).unwrap();
/// let headers = alm_webhooks::outbox::headers(&entry);
/// assert_eq!(headers[0], ("alm-account-id", "7".to_owned()));
/// assert!(headers.contains(&("content-type", "application/json".to_owned())));
/// ```
pub fn headers(entry: &OutboxEntry) -> Vec<(&'static str, String)> {
    let mut out = vec![
        ("alm-account-id", entry.account_id.to_string()),
        ("alm-event-id", entry.event_id.as_str().to_owned()),
        ("alm-event-name", entry.event_name.as_str().to_owned()),
    ];
    if let Some(time) = entry.timestamp_rfc3339() {
        out.push(("alm-timestamp", time));
    }
    out.push(("content-type", "application/json".to_owned()));
    out
}

/// A publish the broker did not acknowledge (refused, timed out,
/// disconnected). The entries stay in the outbox and are published again.
///
/// ```
/// use alm_webhooks::outbox::SinkError;
/// let e = SinkError::new("nats: no publish ack");
/// assert_eq!(e.to_string(), "nats: no publish ack");
/// ```
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SinkError {
    message: String,
    #[source]
    source: Option<crate::BoxError>,
}

impl SinkError {
    /// An error with a message (which must name no secret).
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// An error with a message and its cause.
    pub fn with_source(message: impl Into<String>, source: impl Into<crate::BoxError>) -> Self {
        Self {
            message: message.into(),
            source: Some(source.into()),
        }
    }
}
