//! Time, injectable so that tests never sleep.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime};

use time::OffsetDateTime;

/// Where the engine and stores get "now" from.
///
/// A clock of your own implements [`Clock::now`]; the engine reads
/// [`Clock::system_now`], which by default converts it.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time.
    fn now(&self) -> OffsetDateTime;

    /// The current time as a [`SystemTime`], which is what the engine
    /// reads once or twice per delivery (for the claims' leases, an
    /// event's lag and the decisions' expiries) and hands to its store.
    /// The default converts [`Clock::now`]; a clock that has a
    /// `SystemTime` at hand returns it without the calendar arithmetic an
    /// [`OffsetDateTime`] costs (about a tenth of a one-event delivery's
    /// instructions in the engine, with [`SystemClock`]).
    ///
    /// ```
    /// use alm_webhooks::engine::{Clock, ManualClock};
    /// use std::time::{Duration, SystemTime};
    /// let clock = ManualClock::at_unix(1_700_000_000);
    /// assert_eq!(
    ///     clock.system_now(),
    ///     SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    /// );
    /// assert_eq!(SystemTime::from(clock.now()), clock.system_now());
    /// ```
    fn system_now(&self) -> SystemTime {
        self.now().into()
    }
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    fn system_now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that moves only when told, for tests. Clones share the time.
///
/// ```
/// use alm_webhooks::engine::{Clock, ManualClock};
/// use std::time::Duration;
/// let clock = ManualClock::at_unix(1_700_000_000);
/// clock.advance(Duration::from_secs(60));
/// assert_eq!(clock.now().unix_timestamp(), 1_700_000_060);
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock standing at `seconds` since the Unix epoch.
    pub fn at_unix(seconds: i64) -> Self {
        Self(Arc::new(AtomicI64::new(seconds.saturating_mul(1000))))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let millis = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.0.fetch_add(millis, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        let millis = self.0.load(Ordering::SeqCst);
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    fn system_now(&self) -> SystemTime {
        let millis = self.0.load(Ordering::SeqCst);
        let since = Duration::from_millis(millis.unsigned_abs());
        if millis >= 0 {
            SystemTime::UNIX_EPOCH + since
        } else {
            SystemTime::UNIX_EPOCH - since
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_now_is_now_as_a_system_time() {
        for seconds in [1_700_000_000, 0, -86_400] {
            let clock = ManualClock::at_unix(seconds);
            clock.advance(Duration::from_millis(1_250));
            assert_eq!(
                clock.system_now(),
                SystemTime::from(clock.now()),
                "{seconds}"
            );
        }
        let (before, now, after) = (
            SystemTime::now(),
            SystemClock.system_now(),
            SystemTime::now(),
        );
        assert!(before <= now && now <= after);
        let converted = SystemTime::from(SystemClock.now());
        assert!(converted >= now, "the calendar form is read after it");
    }
}
