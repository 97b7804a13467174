//! The Kafka sink (feature `kafka`, on `rdkafka` with its bundled
//! librdkafka).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use tokio::sync::Mutex as AsyncMutex;

use super::{Sink, SinkError, headers};
use crate::store::OutboxEntry;

/// How long librdkafka keeps trying to deliver a message before it fails
/// it: below the relay's publish timeout (10 s), so a publish fails with
/// librdkafka's own error rather than the relay's timeout.
const MESSAGE_TIMEOUT: Duration = Duration::from_secs(8);
/// How long a metadata request or a topic creation may take.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Publishes to a Kafka topic with an idempotent producer
/// (`enable.idempotence=true`, `acks=all`): key = the account id (so an
/// account's events stay in one partition, in decision order, with the
/// `murmur2_random` partitioner of Kafka's Java clients), the headers of
/// [`headers`], the event's JSON as the value; a publish returns once the
/// broker acknowledged every message (the in-sync replicas stored it).
///
/// The topic is created on the first publish if the broker does not have
/// it (with the URL's `partitions`, 1 by default, and the broker's default
/// replication factor); after a failed publish, the next one looks again.
/// librdkafka reconnects by itself; while the broker is away, publishes
/// fail after 8 s and the entries wait in the outbox. Kafka does not drop
/// a re-publish by the relay (its idempotence covers only the producer's
/// own retries): consumers drop repeats by `alm-account-id` +
/// `alm-event-id`.
///
/// ```no_run
/// # fn run() -> Result<(), alm_webhooks::outbox::SinkError> {
/// use alm_webhooks::outbox::KafkaSink;
/// let sink = KafkaSink::new("kafka://127.0.0.1:9092/alm-events?partitions=6")?;
/// # Ok(()) }
/// ```
pub struct KafkaSink {
    config: ClientConfig,
    producer: Mutex<Arc<FutureProducer>>,
    topic: String,
    partitions: i32,
    /// Whether the topic was seen (or created) since the last failure.
    ensured: AsyncMutex<bool>,
    target: String,
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink")
            .field("brokers", &self.target)
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl KafkaSink {
    /// A sink for `kafka://HOST:PORT[,HOST:PORT…]/TOPIC[?partitions=N]`
    /// (`partitions`: for a topic this sink creates, 1 by default). The
    /// producer connects in the background; the broker may be down.
    ///
    /// # Errors
    ///
    /// When the URL is not of that form, or librdkafka refuses the
    /// configuration.
    pub fn new(url: &str) -> Result<Self, SinkError> {
        let (brokers, topic, partitions) = parse(url)?;
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &brokers);
        Self::with_config(config, topic, partitions)
    }

    /// A sink with a librdkafka configuration of your own (TLS, SASL:
    /// enable `rdkafka`'s `ssl` or `sasl` feature in your own dependency
    /// on it). This sink sets `enable.idempotence=true`, `acks=all`,
    /// `partitioner=murmur2_random` and `message.timeout.ms` (8 s) over
    /// what `config` says.
    ///
    /// # Errors
    ///
    /// When librdkafka refuses the configuration (the error shows no value
    /// of it).
    ///
    /// ```no_run
    /// # fn run() -> Result<(), alm_webhooks::outbox::SinkError> {
    /// use alm_webhooks::outbox::KafkaSink;
    /// let mut config = rdkafka::ClientConfig::new();
    /// config.set("bootstrap.servers", "kafka-1:9092,kafka-2:9092");
    /// config.set("client.id", "alm-webhooks");
    /// let sink = KafkaSink::with_config(config, "alm-events", 6)?;
    /// # Ok(()) }
    /// ```
    pub fn with_config(
        mut config: ClientConfig,
        topic: impl Into<String>,
        partitions: i32,
    ) -> Result<Self, SinkError> {
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("partitioner", "murmur2_random")
            .set(
                "message.timeout.ms",
                MESSAGE_TIMEOUT.as_millis().to_string(),
            );
        let target = config
            .get("bootstrap.servers")
            .unwrap_or_default()
            .to_owned();
        let producer = create(&config)?;
        Ok(Self {
            config,
            producer: Mutex::new(Arc::new(producer)),
            topic: topic.into(),
            partitions: partitions.max(1),
            ensured: AsyncMutex::new(false),
            target,
        })
    }

    /// The topic messages go to.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The key of an entry: its account id, in decimal.
    pub fn key(entry: &OutboxEntry) -> String {
        entry.account_id.to_string()
    }

    fn producer(&self) -> Arc<FutureProducer> {
        Arc::clone(&self.producer.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Looks the topic up (once, then again after a failure) and creates
    /// it when the broker has none of that name.
    async fn ensure_topic(&self) -> Result<(), SinkError> {
        let mut ensured = self.ensured.lock().await;
        if *ensured {
            return Ok(());
        }
        let producer = self.producer();
        let topic = self.topic.clone();
        let missing = tokio::task::spawn_blocking(move || {
            let metadata = producer
                .client()
                .fetch_metadata(Some(&topic), ADMIN_TIMEOUT)?;
            Ok::<_, KafkaError>(metadata.topics().iter().all(|t| {
                t.name() != topic
                    || t.partitions().is_empty()
                    || t.error().is_some_and(|e| {
                        RDKafkaErrorCode::from(e) == RDKafkaErrorCode::UnknownTopicOrPartition
                    })
            }))
        })
        .await
        .map_err(|e| SinkError::with_source("kafka: the metadata lookup stopped", e))?
        .map_err(|e| {
            SinkError::with_source(format!("kafka: no metadata from {}", self.target), e)
        })?;
        if missing {
            self.create_topic().await?;
        }
        *ensured = true;
        Ok(())
    }

    async fn create_topic(&self) -> Result<(), SinkError> {
        let admin: AdminClient<DefaultClientContext> = self
            .config
            .create()
            .map_err(|e| SinkError::with_source("kafka: no admin client", e))?;
        let new = NewTopic::new(&self.topic, self.partitions, TopicReplication::Fixed(-1));
        let options = AdminOptions::new().request_timeout(Some(ADMIN_TIMEOUT));
        let results = admin.create_topics([&new], &options).await.map_err(|e| {
            SinkError::with_source(format!("kafka: cannot create topic {}", self.topic), e)
        })?;
        for result in results {
            match result {
                Ok(_) => {}
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => {
                    return Err(SinkError::new(format!(
                        "kafka: cannot create topic {}: {code}",
                        self.topic
                    )));
                }
            }
        }
        Ok(())
    }

    async fn send(&self, entries: &[OutboxEntry]) -> Result<(), SinkError> {
        let producer = self.producer();
        let mut deliveries = Vec::with_capacity(entries.len());
        for entry in entries {
            let key = Self::key(entry);
            let mut kafka_headers = OwnedHeaders::new_with_capacity(5);
            for (name, value) in headers(entry) {
                kafka_headers = kafka_headers.insert(Header {
                    key: name,
                    value: Some(value.as_bytes()),
                });
            }
            let record = FutureRecord::to(&self.topic)
                .key(key.as_bytes())
                .payload(entry.body.as_slice())
                .headers(kafka_headers);
            let delivery = producer.send_result(record).map_err(|(e, _)| {
                SinkError::with_source("kafka: the producer refused a message", e)
            })?;
            deliveries.push(delivery);
        }
        for delivery in deliveries {
            match delivery.await {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => {
                    return Err(SinkError::with_source(
                        "kafka: a message was not acknowledged",
                        e,
                    ));
                }
                Err(_) => return Err(SinkError::new("kafka: the producer was dropped")),
            }
        }
        Ok(())
    }

    /// After messages were not acknowledged: look the topic up again on
    /// the next publish, and start a fresh producer. The
    /// idempotent producer's state (its producer id and sequence numbers)
    /// may be one the broker no longer knows (a broker that lost it in a
    /// restart answers every produce with an error librdkafka retries until
    /// the messages time out), or librdkafka declared it unusable (a fatal
    /// error); a fresh producer gets a new id. The old one
    /// is dropped off the runtime (its drop waits up to 500 ms).
    async fn recover(&self) {
        *self.ensured.lock().await = false;
        if let Ok(fresh) = create(&self.config) {
            let old = std::mem::replace(
                &mut *self.producer.lock().unwrap_or_else(|p| p.into_inner()),
                Arc::new(fresh),
            );
            tokio::task::spawn_blocking(move || drop(old));
        }
    }
}

fn create(config: &ClientConfig) -> Result<FutureProducer, SinkError> {
    config.create().map_err(|e| {
        SinkError::with_source("kafka: librdkafka refused the producer's configuration", e)
    })
}

/// `kafka://BROKERS/TOPIC[?partitions=N]` → (brokers, topic, partitions).
fn parse(url: &str) -> Result<(String, String, i32), SinkError> {
    const FORM: &str = "kafka://HOST:PORT[,HOST:PORT]/TOPIC[?partitions=N]";
    let rest = url
        .strip_prefix("kafka://")
        .ok_or_else(|| SinkError::new(format!("kafka: the URL is not of the form {FORM}")))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (brokers, topic) = path
        .split_once('/')
        .ok_or_else(|| SinkError::new(format!("kafka: the URL needs a topic ({FORM})")))?;
    if brokers.is_empty() || brokers.contains('@') {
        return Err(SinkError::new(format!(
            "kafka: the URL needs brokers and no credentials ({FORM}; SASL through KafkaSink::with_config)"
        )));
    }
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if topic.is_empty() || topic.len() > 249 || !topic.chars().all(valid) {
        return Err(SinkError::new(format!(
            "kafka: the topic must be 1 to 249 of a-z A-Z 0-9 . _ - ({FORM})"
        )));
    }
    let mut partitions = 1;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("partitions", n)) => {
                partitions =
                    n.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                        SinkError::new("kafka: partitions must be a number from 1")
                    })?;
            }
            _ => {
                return Err(SinkError::new(format!(
                    "kafka: unknown URL parameter {pair:?} ({FORM})"
                )));
            }
        }
    }
    Ok((brokers.to_owned(), topic.to_owned(), partitions))
}

impl Sink for KafkaSink {
    /// Sends every entry, then awaits their acknowledgements in order.
    async fn publish(&self, entries: &[OutboxEntry]) -> Result<(), SinkError> {
        if entries.is_empty() {
            return Ok(());
        }
        // A failed lookup leaves the topic to be looked up next time.
        self.ensure_topic().await?;
        let sent = self.send(entries).await;
        if sent.is_err() {
            self.recover().await;
        }
        sent
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn the_url_names_brokers_topic_and_partitions() {
        assert_eq!(
            parse("kafka://a:9092,b:9093/alm.events?partitions=6").unwrap(),
            ("a:9092,b:9093".to_owned(), "alm.events".to_owned(), 6)
        );
        assert_eq!(parse("kafka://a:9092/alm").unwrap().2, 1);
        for bad in [
            "kafka://a:9092",
            "kafka://a:9092/",
            "kafka:///alm",
            "kafka://a:9092/al m",
            "kafka://u:hunter2@a:9092/alm",
            "kafka://a:9092/alm?partitions=0",
            "kafka://a:9092/alm?acks=1",
            "nats://a:4222/alm",
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(!e.contains("hunter2"), "{e}");
        }
    }
}
