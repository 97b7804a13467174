//! How often and how soon a failed delivery is tried again.

use std::time::Duration;

/// Exponential backoff for failed events: the `n`-th retry waits
/// `base × 2ⁿ⁻¹`, at most `max`; after `max_attempts` attempts the failed
/// events are dead-lettered.
///
/// While a delivery waits for its retry, the account's later deliveries wait
/// behind it ([`Inbox::take`](super::Inbox::take)): at most
/// [`RetryPolicy::longest_wait`], the sum of every backoff.
///
/// ```
/// use std::time::Duration;
/// use alm_webhooks::inbox::RetryPolicy;
///
/// let policy = RetryPolicy::default(); // 10 attempts, 1 s doubling up to 5 min
/// assert_eq!(policy.backoff(1), Duration::from_secs(1));
/// assert_eq!(policy.backoff(3), Duration::from_secs(4));
/// assert_eq!(policy.backoff(20), Duration::from_secs(300));
/// assert_eq!(policy.longest_wait(), Duration::from_secs(511));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts before the failed events are dead-lettered (at least 1).
    pub max_attempts: u32,
    /// The first retry's wait.
    pub base: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            base: Duration::from_secs(1),
            max: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// The wait after the `attempt`-th failed attempt (1-based).
    ///
    /// ```
    /// use std::time::Duration;
    /// use alm_webhooks::inbox::RetryPolicy;
    /// let policy = RetryPolicy { max_attempts: 5, base: Duration::from_millis(100), max: Duration::from_secs(1) };
    /// let waits: Vec<_> = (1..=5).map(|n| policy.backoff(n).as_millis()).collect();
    /// assert_eq!(waits, [100, 200, 400, 800, 1000]);
    /// ```
    pub fn backoff(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(63);
        self.base
            .checked_mul(1u32.checked_shl(doublings).unwrap_or(u32::MAX))
            .unwrap_or(self.max)
            .min(self.max)
    }

    /// The longest an account's later deliveries can wait behind one that
    /// keeps failing: the sum of the waits between its attempts.
    ///
    /// ```
    /// use std::time::Duration;
    /// use alm_webhooks::inbox::RetryPolicy;
    /// assert_eq!(RetryPolicy::default().longest_wait(), Duration::from_secs(511));
    /// ```
    pub fn longest_wait(&self) -> Duration {
        (1..self.max_attempts.max(1))
            .map(|attempt| self.backoff(attempt))
            .sum()
    }

    /// Whether the `attempt`-th attempt (1-based) is the last.
    ///
    /// ```
    /// use alm_webhooks::inbox::RetryPolicy;
    /// let policy = RetryPolicy::default();
    /// assert!(!policy.is_last(9) && policy.is_last(10));
    /// ```
    pub fn is_last(&self, attempt: u32) -> bool {
        attempt >= self.max_attempts.max(1)
    }
}
