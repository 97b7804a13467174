//! One account's request budget: a token bucket (governor's GCRA) sized so
//! that no window of the configured length holds more requests than the
//! budget, and a gate that keeps every request back until ALM's
//! `Retry-After` has passed.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{Quota, RateLimiter};

use super::{ApiError, metrics};

/// What a lookup does when the budget has no room for it now.
///
/// ```
/// use std::time::Duration;
/// use alm_webhooks::alm_api::WhenOverBudget;
/// // A handler that can wait up to a minute (the inbox retries it otherwise):
/// let patient = WhenOverBudget::Wait(Duration::from_secs(60));
/// // A handler that would rather skip the name than wait:
/// let hasty = WhenOverBudget::Fail;
/// assert_ne!(patient, hasty);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WhenOverBudget {
    /// Wait for room, at most this long; past it, fail with
    /// [`ApiError::OverBudget`].
    Wait(Duration),
    /// Fail at once with [`ApiError::OverBudget`].
    Fail,
}

type Limiter = RateLimiter<
    governor::state::NotKeyed,
    governor::state::InMemoryState,
    DefaultClock,
    governor::middleware::NoOpMiddleware<<DefaultClock as Clock>::Instant>,
>;

/// The budget of one account.
pub(crate) struct Budget {
    limiter: Limiter,
    clock: DefaultClock,
    /// No request before this instant (ALM's last `Retry-After`).
    not_before: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Budget").finish_non_exhaustive()
    }
}

/// The quota for `requests` per `window`: a burst of a fifth of the budget
/// and the rest spread evenly, so that any window of that length holds at
/// most `requests` (GCRA allows `burst + window / period` in a window).
pub(crate) fn quota(requests: u32, window: Duration) -> Quota {
    let requests = requests.max(1);
    let burst = if requests == 1 {
        1
    } else {
        (requests / 5).clamp(1, requests - 1)
    };
    let spread = (requests - burst).max(1);
    let period = window / spread;
    Quota::with_period(period.max(Duration::from_nanos(1)))
        .expect("a period above zero")
        .allow_burst(NonZeroU32::new(burst).expect("burst of at least 1"))
}

impl Budget {
    pub(crate) fn new(requests: u32, window: Duration) -> Self {
        let clock = DefaultClock::default();
        Self {
            limiter: RateLimiter::direct_with_clock(quota(requests, window), clock.clone()),
            clock,
            not_before: Mutex::new(None),
        }
    }

    /// Takes one request's room, waiting as `when` allows.
    pub(crate) async fn acquire(
        &self,
        endpoint: &'static str,
        when: WhenOverBudget,
    ) -> Result<(), ApiError> {
        let started = Instant::now();
        loop {
            // ALM's own `Retry-After` first: nothing goes out before it,
            // and waiting for it takes no room from the bucket.
            if let Some(gate) = self.gate_remaining() {
                self.wait_or_fail(endpoint, when, started, gate).await?;
                continue;
            }
            match self.limiter.check() {
                Ok(()) => {
                    metrics::budget_used(endpoint);
                    return Ok(());
                }
                Err(not_until) => {
                    let wait = not_until.wait_time_from(self.clock.now());
                    self.wait_or_fail(endpoint, when, started, wait).await?;
                }
            }
        }
    }

    /// Waits for ALM's `Retry-After` only (for the endpoints outside the
    /// budget: report jobs).
    pub(crate) async fn wait_gate(
        &self,
        endpoint: &'static str,
        when: WhenOverBudget,
    ) -> Result<(), ApiError> {
        let started = Instant::now();
        while let Some(gate) = self.gate_remaining() {
            self.wait_or_fail(endpoint, when, started, gate).await?;
        }
        Ok(())
    }

    async fn wait_or_fail(
        &self,
        endpoint: &'static str,
        when: WhenOverBudget,
        started: Instant,
        wait: Duration,
    ) -> Result<(), ApiError> {
        match when {
            WhenOverBudget::Wait(limit) if started.elapsed() + wait <= limit => {
                metrics::budget_wait(endpoint, wait);
                tokio::time::sleep(wait).await;
                Ok(())
            }
            _ => {
                metrics::budget_refused(endpoint);
                Err(ApiError::OverBudget { retry_after: wait })
            }
        }
    }

    /// Keeps every request back for `retry_after` (ALM's `429`).
    pub(crate) fn hold_for(&self, retry_after: Duration) {
        let until = Instant::now() + retry_after;
        let mut gate = self.not_before.lock().unwrap_or_else(|e| e.into_inner());
        if gate.is_none_or(|current| current < until) {
            *gate = Some(until);
        }
    }

    fn gate_remaining(&self) -> Option<Duration> {
        let gate = self.not_before.lock().unwrap_or_else(|e| e.into_inner());
        gate.and_then(|until| until.checked_duration_since(Instant::now()))
            .filter(|d| !d.is_zero())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_window_holds_more_than_the_budget() {
        for (requests, window) in [(50u32, 3600u64), (500, 3600), (2, 10), (1, 10), (10, 2)] {
            let quota = quota(requests, Duration::from_secs(window));
            let burst = quota.burst_size().get();
            let in_window = burst as f64
                + Duration::from_secs(window).as_secs_f64()
                    / quota.replenish_interval().as_secs_f64();
            assert!(
                in_window <= requests as f64 + 1.0,
                "{requests}/{window}s: burst {burst} + refills = {in_window}"
            );
            assert!(burst >= 1 && burst <= requests.max(1));
        }
        let default = quota(50, Duration::from_secs(3600));
        assert_eq!(default.burst_size().get(), 10);
        assert_eq!(default.replenish_interval(), Duration::from_secs(90));
    }

    #[tokio::test]
    async fn fail_refuses_at_once_and_wait_waits() {
        let budget = Budget::new(2, Duration::from_millis(400));
        budget.acquire("users", WhenOverBudget::Fail).await.unwrap();
        let refused = budget
            .acquire("users", WhenOverBudget::Fail)
            .await
            .unwrap_err();
        assert!(
            matches!(refused, ApiError::OverBudget { .. }),
            "{refused:?}"
        );
        let started = Instant::now();
        budget
            .acquire("users", WhenOverBudget::Wait(Duration::from_secs(2)))
            .await
            .unwrap();
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn retry_after_holds_every_request_back() {
        let budget = Budget::new(100, Duration::from_secs(1));
        budget.hold_for(Duration::from_millis(300));
        let refused = budget
            .acquire("users", WhenOverBudget::Fail)
            .await
            .unwrap_err();
        assert!(refused.retry_after().unwrap() <= Duration::from_millis(300));
        let started = Instant::now();
        budget
            .acquire("users", WhenOverBudget::Wait(Duration::from_secs(1)))
            .await
            .unwrap();
        assert!(started.elapsed() >= Duration::from_millis(250));
    }
}
