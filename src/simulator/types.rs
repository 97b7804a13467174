//! What the simulator sends and counts: the retry schedule, one delivery,
//! and the outcomes of its attempts.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// ALM's retry schedule: 5 s, doubling, capped at 5 minutes.
///
/// ```
/// use std::time::Duration;
/// use alm_webhooks::simulator::Backoff;
/// let fast = Backoff { time_scale: 0.001, ..Backoff::default() };
/// assert_eq!(fast.delay(0), Duration::from_millis(5));
/// assert_eq!(fast.delay(20), Duration::from_millis(300), "capped at 5 minutes, scaled");
/// ```
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
///
/// ```
/// use alm_webhooks::simulator::AttemptOutcome;
/// assert_eq!(AttemptOutcome::Status(202).to_string(), "HTTP 202");
/// assert_eq!(AttemptOutcome::TimedOut.to_string(), "timed out");
/// ```
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
///
/// ```
/// use alm_webhooks::simulator::{AttemptOutcome, Summary};
/// let mut total = Summary::default();
/// let mut one = Summary { sent: 1, acknowledged: 1, ..Summary::default() };
/// one.outcomes.insert(AttemptOutcome::Status(202), 1);
/// total.merge(&one);
/// total.merge(&one);
/// assert_eq!((total.sent, total.acknowledged), (2, 2));
/// assert_eq!(total.outcomes[&AttemptOutcome::Status(202)], 2);
/// ```
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
    ///
    /// ```
    /// use alm_webhooks::simulator::Summary;
    /// let mut total = Summary { sent: 2, ..Summary::default() };
    /// total.merge(&Summary { sent: 3, abandoned: 1, ..Summary::default() });
    /// assert_eq!((total.sent, total.abandoned), (5, 1));
    /// ```
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
///
/// ```
/// use alm_webhooks::simulator::Delivery;
/// let delivery = Delivery::from(br#"{"accountId":1,"events":[]}"#.to_vec());
/// assert!(delivery.drop_attempts.is_empty());
/// ```
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
