//! A sender that behaves like ALM towards a listener URL, for tests, demos
//! and load checks.
//!
//! It posts envelopes over HTTP/1.1, signs them with any scheme, waits for the
//! acknowledgement with ALM's timeouts (connect 10 s, read 5 s), and retries
//! unacknowledged deliveries with ALM's backoff (5 s doubling to a 5-minute
//! cap), scaled by a time factor so tests do not wait minutes. Like ALM, it
//! sends an account's next delivery only after the previous one was
//! acknowledged (or given up on). [`scenario`] builds envelopes and injects
//! duplicates, reordering and dropped connections.

pub mod scenario;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue, Uri};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Makes the authentication headers for a body (Basic, a signature, …).
pub type Signer = Arc<dyn Fn(&[u8]) -> Vec<(HeaderName, HeaderValue)> + Send + Sync>;

/// ALM's retry schedule: 5 s, doubling, capped at 5 minutes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The first wait (ALM: 5 s).
    pub initial: Duration,
    /// The longest wait (ALM: 5 minutes).
    pub cap: Duration,
    /// Multiplies every wait and timeout: `0.001` turns 5 s into 5 ms.
    pub time_scale: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(5),
            cap: Duration::from_secs(300),
            time_scale: 1.0,
        }
    }
}

impl Backoff {
    /// The wait before retry number `retry` (0 for the first retry), scaled.
    ///
    /// ```
    /// use alm_webhooks::simulator::Backoff;
    /// use std::time::Duration;
    /// let b = Backoff::default();
    /// let waits: Vec<_> = (0..8).map(|n| b.delay(n).as_secs()).collect();
    /// assert_eq!(waits, [5, 10, 20, 40, 80, 160, 300, 300]);
    /// ```
    pub fn delay(&self, retry: u32) -> Duration {
        let unscaled = self
            .initial
            .checked_mul(1u32.checked_shl(retry).unwrap_or(u32::MAX))
            .map_or(self.cap, |d| d.min(self.cap));
        unscaled.mul_f64(self.time_scale.max(0.0))
    }
}

/// What one attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AttemptOutcome {
    /// The listener answered with this status.
    Status(u16),
    /// The simulator dropped the connection mid-request on purpose.
    Dropped,
    /// No answer within the read timeout.
    TimedOut,
    /// The connection failed.
    ConnectionError,
}

impl fmt::Display for AttemptOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status(s) => write!(f, "HTTP {s}"),
            Self::Dropped => f.write_str("dropped"),
            Self::TimedOut => f.write_str("timed out"),
            Self::ConnectionError => f.write_str("connection error"),
        }
    }
}

/// Counts over a simulator run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Deliveries (envelopes) sent, each counted once however often retried.
    pub sent: usize,
    /// Deliveries acknowledged with a 2xx status.
    pub acknowledged: usize,
    /// Attempts after the first, over all deliveries.
    pub retried: usize,
    /// Deliveries given up on after the last attempt.
    pub abandoned: usize,
    /// Every attempt's outcome, counted.
    pub outcomes: BTreeMap<AttemptOutcome, usize>,
}

impl Summary {
    /// Adds another summary's counts to this one.
    pub fn merge(&mut self, other: &Summary) {
        self.sent += other.sent;
        self.acknowledged += other.acknowledged;
        self.retried += other.retried;
        self.abandoned += other.abandoned;
        for (outcome, n) in &other.outcomes {
            *self.outcomes.entry(*outcome).or_default() += n;
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sent {}, acknowledged {}, retried {}, abandoned {}",
            self.sent, self.acknowledged, self.retried, self.abandoned
        )?;
        for (outcome, n) in &self.outcomes {
            write!(f, "; {outcome}: {n}")?;
        }
        Ok(())
    }
}

/// One delivery to make: a body, and which attempts to drop on purpose.
#[derive(Debug, Clone, Default)]
pub struct Delivery {
    /// The envelope's JSON.
    pub body: Vec<u8>,
    /// Attempt numbers (0 = the first) whose connection is cut mid-body.
    pub drop_attempts: Vec<u32>,
}

impl From<Vec<u8>> for Delivery {
    fn from(body: Vec<u8>) -> Self {
        Self {
            body,
            drop_attempts: Vec::new(),
        }
    }
}

/// Posts deliveries to one listener the way ALM does.
#[derive(Clone)]
pub struct Simulator {
    uri: Uri,
    signer: Option<Signer>,
    backoff: Backoff,
    max_attempts: u32,
    connect_timeout: Duration,
    read_timeout: Duration,
}

impl fmt::Debug for Simulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulator")
            .field("uri", &self.uri)
            .field("signed", &self.signer.is_some())
            .field("backoff", &self.backoff)
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

/// Why a simulator could not be built.
#[derive(Debug, thiserror::Error)]
#[error("invalid listener URL: {0}")]
pub struct UrlError(String);

impl Simulator {
    /// A simulator posting to `url` (`http://host:port/path`), unsigned, with
    /// ALM's timing and at most 10 attempts per delivery.
    ///
    /// # Errors
    ///
    /// When the URL is not `http://` with a host.
    pub fn new(url: &str) -> Result<Self, UrlError> {
        let uri: Uri = url.parse().map_err(|_| UrlError(url.to_owned()))?;
        if uri.scheme_str() != Some("http") || uri.host().is_none() {
            return Err(UrlError(url.to_owned()));
        }
        Ok(Self {
            uri,
            signer: None,
            backoff: Backoff::default(),
            max_attempts: 10,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(5),
        })
    }

    /// Signs every request with `signer`.
    #[must_use]
    pub fn with_signer(mut self, signer: Signer) -> Self {
        self.signer = Some(signer);
        self
    }

    /// Sets the retry schedule (its `time_scale` scales the waits between
    /// attempts, not the timeouts).
    #[must_use]
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Sets the number of attempts per delivery before giving up (at least 1).
    #[must_use]
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Sets the read (socket) timeout, unscaled. ALM's is 5 s.
    #[must_use]
    pub fn with_read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// Sends deliveries one after another, each retried until acknowledged
    /// or abandoned, as ALM does for one account.
    pub async fn run<I>(&self, deliveries: I) -> Summary
    where
        I: IntoIterator,
        I::Item: Into<Delivery>,
    {
        let mut summary = Summary::default();
        for delivery in deliveries {
            summary.merge(&self.deliver(&delivery.into()).await);
        }
        summary
    }

    /// Sends one delivery, retrying with backoff until a 2xx or the last
    /// attempt.
    pub async fn deliver(&self, delivery: &Delivery) -> Summary {
        let mut summary = Summary {
            sent: 1,
            ..Summary::default()
        };
        for attempt in 0..self.max_attempts {
            if attempt > 0 {
                summary.retried += 1;
                tokio::time::sleep(self.backoff.delay(attempt - 1)).await;
            }
            let drop = delivery.drop_attempts.contains(&attempt);
            let outcome = self.attempt(&delivery.body, drop).await;
            *summary.outcomes.entry(outcome).or_default() += 1;
            if matches!(outcome, AttemptOutcome::Status(s) if (200..300).contains(&s)) {
                summary.acknowledged = 1;
                return summary;
            }
        }
        summary.abandoned = 1;
        summary
    }

    /// One HTTP attempt.
    pub async fn attempt(&self, body: &[u8], drop_connection: bool) -> AttemptOutcome {
        let host = self.uri.host().unwrap_or("127.0.0.1");
        let port = self.uri.port_u16().unwrap_or(80);
        let connect = TcpStream::connect((host, port));
        let Ok(Ok(mut stream)) = tokio::time::timeout(self.connect_timeout, connect).await else {
            return AttemptOutcome::ConnectionError;
        };
        let path = self.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut head = format!(
            "POST {path} HTTP/1.1\r\nhost: {host}:{port}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\nuser-agent: alm-webhooks-simulator\r\n",
            body.len()
        );
        if let Some(signer) = &self.signer {
            for (name, value) in signer(body) {
                head.push_str(name.as_str());
                head.push_str(": ");
                head.push_str(&String::from_utf8_lossy(value.as_bytes()));
                head.push_str("\r\n");
            }
        }
        head.push_str("\r\n");
        if drop_connection {
            let half = body.get(..body.len() / 2).unwrap_or_default();
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(half).await;
            return AttemptOutcome::Dropped;
        }
        let write = async {
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(body).await?;
            stream.flush().await
        };
        if write.await.is_err() {
            return AttemptOutcome::ConnectionError;
        }
        match tokio::time::timeout(self.read_timeout, read_status(&mut stream)).await {
            Ok(Some(status)) => AttemptOutcome::Status(status),
            Ok(None) => AttemptOutcome::ConnectionError,
            Err(_) => AttemptOutcome::TimedOut,
        }
    }
}

/// Reads the status line of an HTTP/1.1 response.
async fn read_status(stream: &mut TcpStream) -> Option<u16> {
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 256];
    loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(chunk.get(..n)?);
        if buf.windows(2).any(|w| w == b"\r\n") || buf.len() > 4096 {
            break;
        }
    }
    let line = buf.split(|&b| b == b'\n').next()?;
    let text = std::str::from_utf8(line).ok()?;
    let mut parts = text.split_whitespace();
    let version = parts.next()?;
    if !version.starts_with("HTTP/") {
        return None;
    }
    parts.next()?.parse().ok()
}

/// Ready-made [`Signer`]s for each of ALM's authentication methods.
pub mod signers {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use http::{HeaderName, HeaderValue, header};

    use super::Signer;
    use crate::auth::{BasicAuth, SignatureAuth, StandardWebhooksAuth};

    /// `Authorization: Basic …` with `user` and `password`.
    pub fn basic(user: &str, password: &str) -> Signer {
        let value = BasicAuth::header_value(user, password);
        Arc::new(move |_| vec![(header::AUTHORIZATION, value.clone())])
    }

    /// An HMAC of the body in `auth`'s header, as lowercase hex.
    pub fn signature(auth: SignatureAuth) -> Signer {
        Arc::new(move |body| {
            let mut value =
                HeaderValue::from_str(&auth.sign(body)).unwrap_or(HeaderValue::from_static(""));
            value.set_sensitive(true);
            vec![(auth.header_name().clone(), value)]
        })
    }

    /// Standard Webhooks headers: a fresh `webhook-id` per request, the
    /// current time, and the signature.
    pub fn standard(auth: StandardWebhooksAuth) -> Signer {
        let counter = Arc::new(AtomicU64::new(0));
        Arc::new(move |body| {
            let id = format!("msg_sim_{}", counter.fetch_add(1, Ordering::Relaxed));
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let signature = auth.sign(&id, now, body);
            let value = |s: &str| HeaderValue::from_str(s).unwrap_or(HeaderValue::from_static(""));
            vec![
                (HeaderName::from_static("webhook-id"), value(&id)),
                (
                    HeaderName::from_static("webhook-timestamp"),
                    value(&now.to_string()),
                ),
                (
                    HeaderName::from_static("webhook-signature"),
                    value(&signature),
                ),
            ]
        })
    }
}
