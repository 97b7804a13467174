//! Counters per decision and reason, readable as a snapshot.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::rules::{Decision, IgnoreReason};

/// Live counters, shared by every delivery an engine processes.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    processed: AtomicU64,
    duplicate: AtomicU64,
    enrollment_after_progress: AtomicU64,
    progress_after_completion: AtomicU64,
    stale: AtomicU64,
    older_progress: AtomicU64,
    rejected: AtomicU64,
    failed: AtomicU64,
    busy: AtomicU64,
    deferred: AtomicU64,
    future_times: AtomicU64,
}

impl Counters {
    pub(crate) fn record(&self, decision: Decision) {
        let counter = match decision {
            Decision::Processed => &self.processed,
            Decision::Duplicate => &self.duplicate,
            Decision::Ignored(IgnoreReason::EnrollmentAfterProgress) => {
                &self.enrollment_after_progress
            }
            Decision::Ignored(IgnoreReason::ProgressAfterCompletion) => {
                &self.progress_after_completion
            }
            Decision::Ignored(IgnoreReason::Stale) => &self.stale,
            Decision::Ignored(IgnoreReason::OlderProgress) => &self.older_progress,
            Decision::Malformed => &self.rejected,
            Decision::Failed => &self.failed,
            Decision::InFlight => &self.busy,
            Decision::Deferred => &self.deferred,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an event decided with "now" for its time, because its
    /// `timestamp` was too far ahead.
    pub(crate) fn record_future_time(&self) {
        self.future_times.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> CounterSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CounterSnapshot {
            processed: get(&self.processed),
            duplicate: get(&self.duplicate),
            ignored_enrollment_after_progress: get(&self.enrollment_after_progress),
            ignored_progress_after_completion: get(&self.progress_after_completion),
            ignored_stale: get(&self.stale),
            ignored_older_progress: get(&self.older_progress),
            rejected: get(&self.rejected),
            failed: get(&self.failed),
            busy: get(&self.busy),
            deferred: get(&self.deferred),
            future_times: get(&self.future_times),
        }
    }
}

/// How many events got each decision since the engine was built. Alert on
/// `duplicate` and `ignored_stale` to watch for redeliveries and
/// out-of-order sequences, as ALM advises.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct CounterSnapshot {
    /// Handler ran and succeeded.
    pub processed: u64,
    /// Already decided before.
    pub duplicate: u64,
    /// Ignored by rule 1.
    pub ignored_enrollment_after_progress: u64,
    /// Ignored by rule 2.
    pub ignored_progress_after_completion: u64,
    /// Ignored by rule 3.
    pub ignored_stale: u64,
    /// Ignored by rule 4 (a progress older than one processed).
    pub ignored_older_progress: u64,
    /// Did not parse.
    pub rejected: u64,
    /// Handler failed (not recorded; ALM will redeliver).
    pub failed: u64,
    /// Still in flight elsewhere after the wait (ALM will redeliver).
    pub busy: u64,
    /// Held back behind an earlier event of the same entity that failed or
    /// was busy (ALM will redeliver).
    pub deferred: u64,
    /// Decided with the receiver's "now" for their time, because their
    /// `timestamp` was more than the allowed skew ahead of it (see
    /// [`EngineBuilder::future_skew`](super::EngineBuilder::future_skew)).
    /// Counted besides their decision.
    pub future_times: u64,
}

impl CounterSnapshot {
    /// Every ignored event, whatever the rule.
    pub fn ignored(&self) -> u64 {
        self.ignored_enrollment_after_progress
            + self.ignored_progress_after_completion
            + self.ignored_stale
            + self.ignored_older_progress
    }
}

/// Counts a store call and whether it failed (feature `metrics`), and
/// passes its result on.
pub(super) fn counted<T>(
    op: &'static str,
    result: Result<T, crate::store::StoreError>,
) -> Result<T, crate::store::StoreError> {
    #[cfg(feature = "metrics")]
    crate::metrics::record_store_call(op, result.is_err());
    #[cfg(not(feature = "metrics"))]
    let _ = op;
    result
}
