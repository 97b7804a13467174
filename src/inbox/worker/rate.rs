//! The rate limit towards the handler: events per second for the whole
//! receiver and for each account, as token buckets (governor's GCRA). An
//! event waits for its account's token, then for the receiver's, before
//! its handler runs; the delivery is already acknowledged, so a bulk
//! delivery drains at the set rate without holding ALM.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota};

use crate::AccountId;
use crate::engine::RATE_WAITED;

/// A quota of `per_second` events a second, with a burst of a tenth of a
/// second's worth (at least 1): even pacing that a late timer does not
/// slow down.
fn quota(per_second: NonZeroU32) -> Quota {
    let burst = NonZeroU32::new(per_second.get().div_ceil(10)).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(per_second).allow_burst(burst)
}

/// The limits a pool's workers share.
pub(super) struct RateLimits {
    receiver: Option<(NonZeroU32, DefaultDirectRateLimiter)>,
    account: Option<(NonZeroU32, DefaultKeyedRateLimiter<AccountId>)>,
    clock: DefaultClock,
    /// Events of deliveries in hand not yet past the limits.
    backlog: AtomicI64,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("per_second", &self.receiver.as_ref().map(|r| r.0))
            .field(
                "per_account_per_second",
                &self.account.as_ref().map(|a| a.0),
            )
            .finish_non_exhaustive()
    }
}

impl RateLimits {
    pub(super) fn new(receiver: Option<NonZeroU32>, account: Option<NonZeroU32>) -> Self {
        Self {
            receiver: receiver.map(|n| (n, governor::RateLimiter::direct(quota(n)))),
            account: account.map(|n| (n, governor::RateLimiter::keyed(quota(n)))),
            clock: DefaultClock::default(),
            backlog: AtomicI64::new(0),
        }
    }

    pub(super) fn per_second(&self) -> Option<NonZeroU32> {
        self.receiver.as_ref().map(|r| r.0)
    }

    pub(super) fn per_account_per_second(&self) -> Option<NonZeroU32> {
        self.account.as_ref().map(|a| a.0)
    }

    /// Waits until an event of `account` may run; adds the wait to
    /// `RATE_WAITED` (the engine takes it off the handler's time) and to
    /// the wait histogram.
    pub(super) async fn wait(&self, account: AccountId) {
        let mut waited = Duration::ZERO;
        if let Some((_, limiter)) = &self.account {
            let wait = self.until(|| limiter.check_key(&account)).await;
            record_wait("account", wait);
            waited += wait;
        }
        if let Some((_, limiter)) = &self.receiver {
            let wait = self.until(|| limiter.check()).await;
            record_wait("receiver", wait);
            waited += wait;
        }
        let _ = RATE_WAITED.try_with(|w| w.set(w.get() + waited));
    }

    /// Sleeps until `check` lets an event through; how long that took.
    async fn until<N: governor::clock::Reference>(
        &self,
        check: impl Fn() -> Result<(), governor::NotUntil<N>>,
    ) -> Duration
    where
        DefaultClock: Clock<Instant = N>,
    {
        let started = tokio::time::Instant::now();
        while let Err(not_until) = check() {
            tokio::time::sleep(not_until.wait_time_from(self.clock.now())).await;
        }
        started.elapsed()
    }

    /// Counts `events` more (or fewer) waiting in deliveries in hand.
    pub(super) fn add_backlog(&self, events: i64) {
        let now = self.backlog.fetch_add(events, Ordering::Relaxed) + events;
        #[cfg(feature = "metrics")]
        metrics::gauge!(crate::metrics::names::RATE_LIMIT_BACKLOG).set(now.max(0) as f64);
        #[cfg(not(feature = "metrics"))]
        let _ = now;
    }
}

#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
fn record_wait(limit: &'static str, wait: Duration) {
    #[cfg(feature = "metrics")]
    metrics::histogram!(crate::metrics::names::RATE_LIMIT_WAIT_SECONDS, "limit" => limit)
        .record(wait.as_secs_f64());
}

/// The events of one delivery counted in the backlog until they pass the
/// limits, or the delivery ends (those that never reached the handler).
pub(super) struct Backlog<'a> {
    limits: &'a RateLimits,
    left: AtomicI64,
}

impl<'a> Backlog<'a> {
    pub(super) fn new(limits: &'a RateLimits, events: usize) -> Self {
        let left = i64::try_from(events).unwrap_or(i64::MAX);
        limits.add_backlog(left);
        Self {
            limits,
            left: AtomicI64::new(left),
        }
    }

    /// Waits until an event of `account` may run, and counts it off.
    pub(super) async fn pass(&self, account: AccountId) {
        self.limits.wait(account).await;
        if self.left.fetch_sub(1, Ordering::Relaxed) > 0 {
            self.limits.add_backlog(-1);
        }
    }
}

impl Drop for Backlog<'_> {
    fn drop(&mut self) {
        self.limits
            .add_backlog(-self.left.load(Ordering::Relaxed).max(0));
    }
}
