//! A delivery's metrics (feature `metrics`), gathered while it runs and
//! recorded when it ends: `alm_webhooks_events_total` once per decision
//! and event name (with the count), and `alm_webhooks_event_lag_seconds`
//! once per run of equal samples of a family (ALM's timestamps are in
//! seconds, and a delivery's events are decided at one `now`, so the
//! events of a delivery often share their lag). Each series is looked up
//! once per delivery, whatever the recorder (a local one too), and the
//! buffers are kept with the delivery's others. Without the feature, this
//! is empty and does nothing.

use crate::rules::Decision;
use crate::{EventFamily, EventName};

/// What a delivery has to record.
#[derive(Default)]
pub(super) struct Tally {
    /// Decided events, by decision and `event` label.
    #[cfg(feature = "metrics")]
    events: Vec<(Decision, &'static str, u64)>,
    /// Lag samples, in seconds: runs of equal ones, in order.
    #[cfg(feature = "metrics")]
    lags: Vec<(EventFamily, f64, usize)>,
}

impl Tally {
    /// Counts one decided event.
    pub(super) fn event(&mut self, decision: Decision, name: Option<&EventName>) {
        #[cfg(feature = "metrics")]
        {
            let label = name.map_or("unknown", crate::metrics::event_label);
            match self
                .events
                .iter_mut()
                .find(|(d, l, _)| *d == decision && *l == label)
            {
                Some((_, _, count)) => *count += 1,
                None => self.events.push((decision, label, 1)),
            }
        }
        #[cfg(not(feature = "metrics"))]
        let _ = (decision, name);
    }

    /// Notes an event's lag, in milliseconds.
    pub(super) fn lag(&mut self, family: EventFamily, lag_ms: Option<i64>) {
        #[cfg(feature = "metrics")]
        if let Some(lag_ms) = lag_ms {
            #[allow(clippy::cast_precision_loss)] // lags far below 2^52 ms
            let seconds = lag_ms as f64 / 1000.0;
            match self.lags.last_mut() {
                Some((f, s, count)) if *f == family && s.to_bits() == seconds.to_bits() => {
                    *count += 1;
                }
                _ => self.lags.push((family, seconds, 1)),
            }
        }
        #[cfg(not(feature = "metrics"))]
        let _ = (family, lag_ms);
    }

    /// Records what was gathered, and forgets it.
    pub(super) fn record(&mut self) {
        #[cfg(feature = "metrics")]
        {
            for (decision, label, count) in self.events.drain(..) {
                crate::metrics::record_events(decision, label, count);
            }
            for (family, seconds, count) in self.lags.drain(..) {
                crate::metrics::record_event_lags(family, seconds, count);
            }
        }
    }

    /// Room for how many entries.
    pub(super) fn capacity(&self) -> usize {
        #[cfg(feature = "metrics")]
        return self.events.capacity().max(self.lags.capacity());
        #[cfg(not(feature = "metrics"))]
        0
    }
}
