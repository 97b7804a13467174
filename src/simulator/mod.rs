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

pub mod alm_api;
pub mod scenario;
pub mod signers;
mod types;

pub use types::{AttemptOutcome, Backoff, Delivery, Summary};

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue, Uri};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Makes the authentication headers for a body (Basic, a signature, …).
///
/// ```
/// use std::sync::Arc;
/// use alm_webhooks::simulator::{signers, Signer};
/// let basic = signers::basic("alm", "pw");
/// assert_eq!(basic(b"{}")[0].0, http::header::AUTHORIZATION);
/// // Your own: any function of the body to headers.
/// let custom: Signer = Arc::new(|body| vec![(
///     http::HeaderName::from_static("x-length"),
///     http::HeaderValue::from(body.len()),
/// )]);
/// assert_eq!(custom(b"{}")[0].1, "2");
/// ```
pub type Signer = Arc<dyn Fn(&[u8]) -> Vec<(HeaderName, HeaderValue)> + Send + Sync>;

/// Posts deliveries to one listener the way ALM does.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # // A listener that answers every request with `status` (a stand-in
/// # // for your receiver).
/// # async fn listener(status: u16) -> std::net::SocketAddr {
/// #     use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// #     let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
/// #     let addr = listener.local_addr().unwrap();
/// #     tokio::spawn(async move {
/// #         while let Ok((mut socket, _)) = listener.accept().await {
/// #             tokio::spawn(async move {
/// #                 let mut request = Vec::new();
/// #                 let mut buffer = [0u8; 4096];
/// #                 loop {
/// #                     let Ok(n) = socket.read(&mut buffer).await else { return };
/// #                     if n == 0 { return; }
/// #                     request.extend_from_slice(&buffer[..n]);
/// #                     let text = String::from_utf8_lossy(&request).to_lowercase();
/// #                     if let Some(end) = text.find("\r\n\r\n") {
/// #                         let length = text.lines()
/// #                             .find_map(|l| l.strip_prefix("content-length:"))
/// #                             .and_then(|v| v.trim().parse::<usize>().ok())
/// #                             .unwrap_or(0);
/// #                         if request.len() >= end + 4 + length { break; }
/// #                     }
/// #                 }
/// #                 let answer = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
/// #                 let _ = socket.write_all(answer.as_bytes()).await;
/// #             });
/// #         }
/// #     });
/// #     addr
/// # }
/// use std::time::Duration;
/// use alm_webhooks::auth::SignatureAuth;
/// use alm_webhooks::simulator::scenario::{bulk_enrollments, deliveries, Faults};
/// use alm_webhooks::simulator::{signers, AttemptOutcome, Backoff, Simulator};
///
/// let addr = listener(202).await; // your receiver's address
/// let simulator = Simulator::new(&format!("http://{addr}/webhooks"))
///     .unwrap()
///     .with_signer(signers::signature(SignatureAuth::new("signing secret")))
///     .with_backoff(Backoff { time_scale: 0.001, ..Backoff::default() })
///     .with_max_attempts(3)
///     .with_read_timeout(Duration::from_secs(5));
/// // 10 enrollments in deliveries of 4, the first connection of each cut.
/// let faults = Faults { drop_every: Some(1), ..Faults::default() };
/// let plan = deliveries(1234, bulk_enrollments("e", 10, 1725524713), 4, faults);
/// let summary = simulator.run(plan).await;
/// assert_eq!((summary.sent, summary.acknowledged, summary.retried), (3, 3, 3));
/// assert_eq!(summary.outcomes[&AttemptOutcome::Dropped], 3);
/// assert_eq!(summary.outcomes[&AttemptOutcome::Status(202)], 3);
///
/// // A listener that keeps failing: retried, then abandoned.
/// let failing = Simulator::new(&format!("http://{}/", listener(500).await)).unwrap()
///     .with_backoff(Backoff { time_scale: 0.001, ..Backoff::default() })
///     .with_max_attempts(2);
/// assert_eq!(failing.attempt(b"{}", false).await, AttemptOutcome::Status(500));
/// let summary = failing.deliver(&b"{}".to_vec().into()).await;
/// assert_eq!((summary.abandoned, summary.retried), (1, 1));
/// # }
/// ```
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
///
/// ```
/// use alm_webhooks::simulator::Simulator;
/// assert!(Simulator::new("https://example.com/webhooks").is_err(), "http:// only");
/// assert!(Simulator::new("http:///no-host").is_err());
/// ```
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
    ///
    /// ```
    /// use alm_webhooks::simulator::Simulator;
    /// assert!(Simulator::new("http://127.0.0.1:8080/webhooks").is_ok());
    /// let err = Simulator::new("127.0.0.1:8080").unwrap_err();
    /// assert!(!err.to_string().is_empty());
    /// ```
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
    ///
    /// ```
    /// use alm_webhooks::auth::BasicAuth;
    /// use alm_webhooks::simulator::{signers, Simulator};
    /// let simulator = Simulator::new("http://127.0.0.1:8080/webhooks").unwrap()
    ///     .with_signer(signers::basic("alm", "pw"));
    /// # let _ = (simulator, BasicAuth::new("alm", "pw"));
    /// ```
    #[must_use]
    pub fn with_signer(mut self, signer: Signer) -> Self {
        self.signer = Some(signer);
        self
    }

    /// Sets the retry schedule (its `time_scale` scales the waits between
    /// attempts, not the timeouts).
    ///
    /// ```
    /// use alm_webhooks::simulator::{Backoff, Simulator};
    /// // ALM's schedule a thousand times faster: 5 ms, 10 ms, … up to 300 ms.
    /// let fast = Backoff { time_scale: 0.001, ..Backoff::default() };
    /// let simulator = Simulator::new("http://127.0.0.1:8080/webhooks").unwrap().with_backoff(fast);
    /// # let _ = simulator;
    /// ```
    #[must_use]
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Sets the number of attempts per delivery before giving up (at least 1).
    ///
    /// ```
    /// use alm_webhooks::simulator::Simulator;
    /// let simulator = Simulator::new("http://127.0.0.1:8080/webhooks").unwrap().with_max_attempts(1); // no retry
    /// # let _ = simulator;
    /// ```
    #[must_use]
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Sets the read (socket) timeout, unscaled. ALM's is 5 s.
    ///
    /// ```
    /// use alm_webhooks::simulator::Simulator;
    /// let simulator = Simulator::new("http://127.0.0.1:8080/webhooks").unwrap()
    ///     .with_read_timeout(std::time::Duration::from_millis(500)); // ALM's is 5 s
    /// # let _ = simulator;
    /// ```
    #[must_use]
    pub fn with_read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// Sends deliveries one after another, each retried until acknowledged
    /// or abandoned, as ALM does for one account.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use alm_webhooks::simulator::{AttemptOutcome, Simulator};
    /// // A port nothing listens on (bound, then closed).
    /// let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    /// let simulator = Simulator::new(&format!("http://127.0.0.1:{port}/webhooks")).unwrap().with_max_attempts(1);
    /// use alm_webhooks::simulator::scenario::envelope;
    /// let deliveries = (1..=3).map(|n| envelope(n, &[]));
    /// let summary = simulator.run(deliveries).await;
    /// assert_eq!((summary.sent, summary.abandoned), (3, 3));
    /// # }
    /// ```
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
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use alm_webhooks::simulator::{AttemptOutcome, Simulator};
    /// // A port nothing listens on (bound, then closed).
    /// let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    /// let simulator = Simulator::new(&format!("http://127.0.0.1:{port}/webhooks")).unwrap().with_max_attempts(1);
    /// let summary = simulator.deliver(&b"{}".to_vec().into()).await;
    /// assert_eq!((summary.sent, summary.acknowledged, summary.abandoned), (1, 0, 1));
    /// assert_eq!(summary.outcomes[&AttemptOutcome::ConnectionError], 1);
    /// # }
    /// ```
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
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use alm_webhooks::simulator::{AttemptOutcome, Simulator};
    /// // A port nothing listens on (bound, then closed).
    /// let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    /// let simulator = Simulator::new(&format!("http://127.0.0.1:{port}/webhooks")).unwrap().with_max_attempts(1);
    /// assert_eq!(simulator.attempt(b"{}", false).await, AttemptOutcome::ConnectionError);
    /// # }
    /// ```
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
