//! Refused requests, counted and reported once per interval instead of
//! once per request (a flood of refusals must not become a flood of log
//! lines).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Why the guard (or the endpoint behind it) refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    Unauthorized,
    TooLarge,
    Malformed,
    Busy,
    TimedOut,
}

const KINDS: usize = 5;

impl Refusal {
    fn index(self) -> usize {
        self as usize
    }
}

/// The requests refused over one interval, by reason; given to the
/// reporter of [`Guard::with_summary`](super::Guard::with_summary). Its
/// `Display` is one line.
///
/// ```
/// use alm_webhooks::endpoint::RefusalSummary;
/// let summary = RefusalSummary::default();
/// assert_eq!(summary.total(), 0);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefusalSummary {
    /// The interval counted.
    pub over: Duration,
    /// `401`: missing, malformed or wrong credentials or signature.
    pub unauthorized: u64,
    /// `413`: a body over the limit.
    pub too_large: u64,
    /// `400`: a body that could not be read or is not an envelope.
    pub malformed: u64,
    /// `503`: over the cap on concurrent requests or buffered bytes.
    pub busy: u64,
    /// `408`: a body not received within the read timeout.
    pub timed_out: u64,
}

impl RefusalSummary {
    /// Every request refused over the interval.
    ///
    /// ```
    /// let summary = alm_webhooks::endpoint::RefusalSummary::default();
    /// assert_eq!(summary.total(), 0);
    /// ```
    pub fn total(&self) -> u64 {
        self.unauthorized + self.too_large + self.malformed + self.busy + self.timed_out
    }
}

impl fmt::Display for RefusalSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "refused {} requests in the last {}s:",
            self.total(),
            self.over.as_secs_f64()
        )?;
        let parts = [
            (self.unauthorized, "unauthorized"),
            (self.too_large, "too large"),
            (self.malformed, "malformed"),
            (self.busy, "busy (503)"),
            (self.timed_out, "timed out"),
        ];
        let mut first = true;
        for (count, what) in parts.into_iter().filter(|(n, _)| *n > 0) {
            write!(f, "{} {count} {what}", if first { "" } else { "," })?;
            first = false;
        }
        Ok(())
    }
}

/// Who hears of the summaries.
pub(super) type Reporter = Arc<dyn Fn(&RefusalSummary) + Send + Sync>;

/// The counts of the current interval.
pub(super) struct Tally {
    every: Duration,
    reporter: Option<Reporter>,
    counts: [AtomicU64; KINDS],
    /// An interval is open: its report is scheduled.
    open: AtomicBool,
}

impl Tally {
    pub(super) fn new(every: Duration, reporter: Option<Reporter>) -> Arc<Self> {
        Arc::new(Self {
            every,
            reporter,
            counts: Default::default(),
            open: AtomicBool::new(false),
        })
    }

    /// Counts one refusal; the first of an interval schedules its report
    /// (on the running tokio runtime) at the interval's end.
    pub(super) fn count(self: &Arc<Self>, refusal: Refusal) {
        self.counts[refusal.index()].fetch_add(1, Ordering::Relaxed);
        if self.open.swap(true, Ordering::AcqRel) {
            return;
        }
        let tally = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(tally.every).await;
            tally.open.store(false, Ordering::Release);
            let summary = tally.take();
            if summary.total() > 0 {
                tally.report(&summary);
            }
        });
    }

    /// The counts so far, reset to zero.
    fn take(&self) -> RefusalSummary {
        let take = |r: Refusal| self.counts[r.index()].swap(0, Ordering::AcqRel);
        RefusalSummary {
            over: self.every,
            unauthorized: take(Refusal::Unauthorized),
            too_large: take(Refusal::TooLarge),
            malformed: take(Refusal::Malformed),
            busy: take(Refusal::Busy),
            timed_out: take(Refusal::TimedOut),
        }
    }

    fn report(&self, summary: &RefusalSummary) {
        match &self.reporter {
            Some(reporter) => reporter(summary),
            None => {
                #[cfg(feature = "tracing")]
                tracing::warn!(refused = summary.total(), "{summary}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn one_report_per_interval_whatever_the_count() {
        let heard = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&heard);
        let tally = Tally::new(
            Duration::from_secs(10),
            Some(Arc::new(move |s: &RefusalSummary| {
                sink.lock().unwrap().push(s.to_string());
            })),
        );
        for _ in 0..1_000 {
            tally.count(Refusal::Unauthorized);
        }
        tally.count(Refusal::Busy);
        tokio::time::sleep(Duration::from_secs(11)).await;
        tally.count(Refusal::TimedOut);
        tokio::time::sleep(Duration::from_secs(11)).await;
        assert_eq!(
            *heard.lock().unwrap(),
            [
                "refused 1001 requests in the last 10s: 1000 unauthorized, 1 busy (503)",
                "refused 1 requests in the last 10s: 1 timed out",
            ]
        );
    }
}
