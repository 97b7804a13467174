//! The NATS JetStream sink (feature `nats`, on `async-nats`).

use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage};
use tokio::sync::OnceCell;

use super::{Sink, SinkError, headers};
use crate::store::OutboxEntry;

/// How long a connection attempt and a request (a publish ack) may take.
const NATS_TIMEOUT: Duration = Duration::from_secs(10);
/// The duplicate window of a stream this sink creates: a re-publish within
/// it (a relay that died after the ack) is dropped by JetStream.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(10 * 60);

/// Publishes to a JetStream stream: subject `{prefix}.{accountId}.{family}`
/// (family as [`OutboxEntry::family_token`]), header `Nats-Msg-Id` =
/// [`OutboxEntry::message_id`] (JetStream drops a re-publish within the
/// stream's duplicate window), the headers of [`headers`], the event's
/// JSON as the body; each publish acknowledged by the stream.
///
/// The stream is created on the first publish if missing, covering
/// `{prefix}.>`, with a 10-minute duplicate window. The connection
/// reconnects by itself; while the server is away, publishes fail and the
/// entries wait in the outbox.
///
/// ```no_run
/// # async fn run() -> Result<(), alm_webhooks::outbox::SinkError> {
/// use alm_webhooks::outbox::NatsSink;
/// let sink = NatsSink::connect("nats://127.0.0.1:4222/alm?stream=ALM").await?;
/// # Ok(()) }
/// ```
pub struct NatsSink {
    context: jetstream::Context,
    prefix: String,
    stream: String,
    ensured: OnceCell<()>,
    target: String,
}

impl std::fmt::Debug for NatsSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsSink")
            .field("server", &self.target)
            .field("prefix", &self.prefix)
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

impl NatsSink {
    /// Connects to `nats://[USER:PASS@]HOST:PORT/SUBJECT_PREFIX?stream=STREAM`
    /// (`tls://` for TLS). The server may be down: the client connects
    /// (and reconnects) in the background.
    ///
    /// # Errors
    ///
    /// When the URL is not of that form (the error names no password).
    pub async fn connect(url: &str) -> Result<Self, SinkError> {
        let parsed = url::Url::parse(url).map_err(|e| {
            SinkError::with_source(
                "nats: the URL does not parse (nats://HOST:PORT/PREFIX?stream=NAME)",
                e,
            )
        })?;
        let prefix = parsed.path().trim_matches('/').to_owned();
        if prefix.is_empty() || prefix.contains(['*', '>', ' ']) {
            return Err(SinkError::new(
                "nats: the URL needs a subject prefix as its path (nats://HOST:PORT/PREFIX?stream=NAME)",
            ));
        }
        let stream = parsed
            .query_pairs()
            .find(|(k, _)| k == "stream")
            .map(|(_, v)| v.into_owned())
            .ok_or_else(|| SinkError::new("nats: the URL needs ?stream=NAME"))?;
        let host = parsed.host_str().unwrap_or("127.0.0.1");
        let port = parsed.port().unwrap_or(4222);
        let scheme = if parsed.scheme() == "tls" {
            "tls"
        } else {
            "nats"
        };
        let server = format!("{scheme}://{host}:{port}");
        let mut options = async_nats::ConnectOptions::new()
            .connection_timeout(NATS_TIMEOUT)
            .request_timeout(Some(NATS_TIMEOUT))
            .retry_on_initial_connect();
        if !parsed.username().is_empty() {
            let user = url_decode(parsed.username());
            let password = url_decode(parsed.password().unwrap_or(""));
            options = options.user_and_password(user, password);
        }
        let client = options
            .connect(server.as_str())
            .await
            .map_err(|e| SinkError::with_source(format!("nats: cannot connect to {server}"), e))?;
        Ok(Self::new(jetstream::new(client), prefix, stream).target(server))
    }

    /// A sink on a JetStream context of your own.
    pub fn new(
        context: jetstream::Context,
        prefix: impl Into<String>,
        stream: impl Into<String>,
    ) -> Self {
        Self {
            context,
            prefix: prefix.into(),
            stream: stream.into(),
            ensured: OnceCell::new(),
            target: String::new(),
        }
    }

    fn target(mut self, server: String) -> Self {
        self.target = server;
        self
    }

    /// The subject of an entry: `{prefix}.{accountId}.{family}`.
    pub fn subject(&self, entry: &OutboxEntry) -> String {
        format!(
            "{}.{}.{}",
            self.prefix,
            entry.account_id,
            entry.family_token()
        )
    }

    async fn ensure_stream(&self) -> Result<(), SinkError> {
        self.ensured
            .get_or_try_init(|| async {
                let config = jetstream::stream::Config {
                    name: self.stream.clone(),
                    subjects: vec![format!("{}.>", self.prefix)],
                    duplicate_window: DUPLICATE_WINDOW,
                    ..Default::default()
                };
                self.context
                    .get_or_create_stream(config)
                    .await
                    .map(|_| ())
                    .map_err(|e| {
                        SinkError::with_source(
                            format!("nats: cannot create stream {}", self.stream),
                            e,
                        )
                    })
            })
            .await
            .map(|_| ())
    }
}

fn url_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={text}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

impl Sink for NatsSink {
    /// Sends every entry, then awaits their acks in order.
    async fn publish(&self, entries: &[OutboxEntry]) -> Result<(), SinkError> {
        self.ensure_stream().await?;
        let mut acks = Vec::with_capacity(entries.len());
        for entry in entries {
            let mut map = async_nats::HeaderMap::new();
            for (name, value) in headers(entry) {
                map.insert(name, value.as_str());
            }
            let message = PublishMessage::build()
                .payload(entry.body.clone().into())
                .headers(map)
                .message_id(entry.message_id());
            let ack = self
                .context
                .send_publish(self.subject(entry), message)
                .await
                .map_err(|e| SinkError::with_source("nats: publish failed", e))?;
            acks.push(ack);
        }
        for ack in acks {
            ack.await
                .map_err(|e| SinkError::with_source("nats: no publish ack", e))?;
        }
        Ok(())
    }
}
