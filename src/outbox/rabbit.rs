//! The RabbitMQ sink (feature `rabbitmq`, on `lapin`).

use std::time::Duration;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use tokio::sync::Mutex;

use super::{Sink, SinkError, headers};
use crate::store::OutboxEntry;

/// How long connecting and declaring may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Publishes to a durable topic exchange (declared if missing) with
/// publisher confirms: routing key `{accountId}.{family}` (family as
/// [`OutboxEntry::family_token`]), persistent messages (delivery mode 2),
/// `message_id` = [`OutboxEntry::message_id`], the headers of [`headers`]
/// (`content-type` as the message's content type), the event's JSON as the
/// body. Messages are published `mandatory`: one that no queue takes is
/// returned, counted as not acknowledged, and stays in the outbox, so bind
/// a queue before forwarding.
///
/// The connection is opened on the first publish and again after any
/// failure; while the broker is away, publishes fail and the entries wait
/// in the outbox. RabbitMQ does not deduplicate: a consumer drops a
/// re-publish by `message_id` (or `alm-account-id` + `alm-event-id`).
///
/// ```no_run
/// # fn run() -> Result<(), alm_webhooks::outbox::SinkError> {
/// use alm_webhooks::outbox::RabbitSink;
/// let sink = RabbitSink::new("amqp://guest:guest@127.0.0.1:5672/%2f?exchange=alm")?;
/// # Ok(()) }
/// ```
pub struct RabbitSink {
    /// The URL without `exchange=` (it holds the password: never shown).
    url: String,
    exchange: String,
    target: String,
    name: String,
    channel: Mutex<Option<(Connection, Channel)>>,
}

impl std::fmt::Debug for RabbitSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RabbitSink")
            .field("server", &self.target)
            .field("exchange", &self.exchange)
            .finish_non_exhaustive()
    }
}

impl RabbitSink {
    /// A sink for `amqp://USER:PASS@HOST:PORT/VHOST?exchange=EXCHANGE`
    /// (`amqps://` for TLS). It connects on the first publish.
    ///
    /// # Errors
    ///
    /// When the URL is not of that form (the error names no password).
    pub fn new(url: &str) -> Result<Self, SinkError> {
        let mut parsed = url::Url::parse(url).map_err(|e| {
            SinkError::with_source(
                "amqp: the URL does not parse (amqp://USER:PASS@HOST:PORT/VHOST?exchange=NAME)",
                e,
            )
        })?;
        let exchange = parsed
            .query_pairs()
            .find(|(k, _)| k == "exchange")
            .map(|(_, v)| v.into_owned())
            .filter(|e| !e.is_empty())
            .ok_or_else(|| SinkError::new("amqp: the URL needs ?exchange=NAME"))?;
        let rest: Vec<(String, String)> = parsed
            .query_pairs()
            .filter(|(k, _)| k != "exchange")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        parsed.set_query(None);
        if !rest.is_empty() {
            parsed.query_pairs_mut().extend_pairs(rest);
        }
        let target = format!(
            "{}://{}:{}{}",
            parsed.scheme(),
            parsed.host_str().unwrap_or(""),
            parsed.port().unwrap_or(5672),
            parsed.path()
        );
        Ok(Self {
            url: parsed.into(),
            exchange,
            target,
            name: "alm-webhooks".to_owned(),
            channel: Mutex::new(None),
        })
    }

    /// The connection's name as the broker shows it (`alm-webhooks` by
    /// default): `rabbitmqctl list_connections user_provided_name`.
    pub fn connection_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The routing key of an entry: `{accountId}.{family}`.
    pub fn routing_key(entry: &OutboxEntry) -> String {
        format!("{}.{}", entry.account_id, entry.family_token())
    }

    async fn open(&self) -> Result<(Connection, Channel), SinkError> {
        let failed = |what: &str, e: lapin::Error| {
            SinkError::with_source(format!("amqp: {what} ({})", self.target), e)
        };
        let connect = async {
            let conn = Connection::connect(
                &self.url,
                ConnectionProperties::default().with_connection_name(self.name.clone().into()),
            )
            .await
            .map_err(|e| failed("cannot connect", e))?;
            let channel = conn
                .create_channel()
                .await
                .map_err(|e| failed("cannot open a channel", e))?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await
                .map_err(|e| failed("publisher confirms refused", e))?;
            let durable = ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            };
            channel
                .exchange_declare(
                    &self.exchange,
                    ExchangeKind::Topic,
                    durable,
                    FieldTable::default(),
                )
                .await
                .map_err(|e| failed("cannot declare the exchange", e))?;
            Ok((conn, channel))
        };
        tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .unwrap_or_else(|_| {
                Err(SinkError::new(format!(
                    "amqp: no connection within {CONNECT_TIMEOUT:?} ({})",
                    self.target
                )))
            })
    }

    async fn send(
        channel: &Channel,
        exchange: &str,
        entries: &[OutboxEntry],
    ) -> Result<(), SinkError> {
        let options = BasicPublishOptions {
            mandatory: true,
            ..Default::default()
        };
        let mut confirms = Vec::with_capacity(entries.len());
        for entry in entries {
            let mut table = FieldTable::default();
            for (name, value) in headers(entry) {
                if name != "content-type" {
                    table.insert(name.into(), AMQPValue::LongString(value.into()));
                }
            }
            let properties = BasicProperties::default()
                .with_message_id(entry.message_id().into())
                .with_content_type("application/json".into())
                .with_delivery_mode(2)
                .with_headers(table);
            let confirm = channel
                .basic_publish(
                    exchange,
                    &Self::routing_key(entry),
                    options,
                    &entry.body,
                    properties,
                )
                .await
                .map_err(|e| SinkError::with_source("amqp: publish failed", e))?;
            confirms.push(confirm);
        }
        for confirm in confirms {
            let confirmation = confirm
                .await
                .map_err(|e| SinkError::with_source("amqp: no publisher confirm", e))?;
            match confirmation {
                lapin::publisher_confirm::Confirmation::Ack(None) => {}
                lapin::publisher_confirm::Confirmation::Ack(Some(_)) => {
                    return Err(SinkError::new(format!(
                        "amqp: a message was returned: no queue is bound to exchange {exchange} for its routing key"
                    )));
                }
                _ => return Err(SinkError::new("amqp: the broker refused a message (nack)")),
            }
        }
        Ok(())
    }
}

impl Sink for RabbitSink {
    async fn publish(&self, entries: &[OutboxEntry]) -> Result<(), SinkError> {
        let mut held = self.channel.lock().await;
        if held
            .as_ref()
            .is_none_or(|(conn, ch)| !conn.status().connected() || !ch.status().connected())
        {
            *held = Some(self.open().await?);
        }
        let Some((_, channel)) = held.as_ref() else {
            return Err(SinkError::new("amqp: no channel"));
        };
        let sent = Self::send(channel, &self.exchange, entries).await;
        if sent.is_err() {
            // A fresh connection for the next attempt.
            if let Some((conn, _)) = held.take() {
                let _ = tokio::time::timeout(Duration::from_secs(1), conn.close(0, "reconnecting"))
                    .await;
            }
        }
        sent
    }
}
