//! A delivery's metrics (feature `metrics`), gathered while it runs and
//! recorded when it ends, each series once per delivery:
//! `alm_webhooks_events_total` once per decision and event name (with the
//! count), and one sample per label of each histogram: the longest
//! handler run of each event name (`alm_webhooks_handler_seconds`) and the
//! largest lag of each family (`alm_webhooks_event_lag_seconds`). A sample
//! costs the Prometheus exporter a push into its atomic bucket (23–70 ns
//! on the machines in `BENCHMARKS.md`), whatever the value: two per event
//! cost the pipeline 2.7–3.9 % at 100 events, two per delivery and label
//! under 1 %. Keeping the largest means a delivery counts at its worst
//! event in the quantiles the alert and the dashboard take. Each series is looked up once per delivery, whatever the
//! recorder (a local one too), and the buffers are kept with the
//! delivery's others. Without the feature, this is empty and does
//! nothing.

#[cfg(feature = "metrics")]
use std::time::Duration;

use crate::rules::Decision;
use crate::{EventFamily, EventName};

/// What a delivery has to record.
#[derive(Default)]
pub(super) struct Tally {
    /// Decided events, by decision and `event` label.
    #[cfg(feature = "metrics")]
    events: Vec<(Decision, &'static str, u64)>,
    /// The largest lag of each family, in milliseconds.
    #[cfg(feature = "metrics")]
    lags: Vec<(EventFamily, i64)>,
    /// The longest handler run of each `event` label.
    #[cfg(feature = "metrics")]
    handlers: Vec<(&'static str, Duration)>,
}

/// Keeps `value` for `key` if it is the first or the largest so far.
#[cfg(feature = "metrics")]
fn keep_largest<K: PartialEq, V: PartialOrd>(entries: &mut Vec<(K, V)>, key: K, value: V) {
    match entries.iter_mut().find(|(k, _)| *k == key) {
        Some((_, largest)) if value > *largest => *largest = value,
        Some(_) => {}
        None => entries.push((key, value)),
    }
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
            keep_largest(&mut self.lags, family, lag_ms);
        }
        #[cfg(not(feature = "metrics"))]
        let _ = (family, lag_ms);
    }

    /// Notes how long the handler ran for an event with the `event` label
    /// `label` (an [`event_label`](crate::metrics::event_label)).
    #[cfg(feature = "metrics")]
    pub(super) fn handler(&mut self, label: &'static str, took: Duration) {
        keep_largest(&mut self.handlers, label, took);
    }

    /// Records what was gathered, and forgets it.
    pub(super) fn record(&mut self) {
        #[cfg(feature = "metrics")]
        {
            for (decision, label, count) in self.events.drain(..) {
                crate::metrics::record_events(decision, label, count);
            }
            for (label, took) in self.handlers.drain(..) {
                crate::metrics::record_handler_label(label, took);
            }
            for (family, lag_ms) in self.lags.drain(..) {
                #[allow(clippy::cast_precision_loss)] // lags far below 2^52 ms
                let seconds = lag_ms as f64 / 1000.0;
                crate::metrics::record_event_lag(family, seconds);
            }
        }
    }

    /// Room for how many entries.
    pub(super) fn capacity(&self) -> usize {
        #[cfg(feature = "metrics")]
        return self
            .events
            .capacity()
            .max(self.lags.capacity())
            .max(self.handlers.capacity());
        #[cfg(not(feature = "metrics"))]
        0
    }
}

#[cfg(all(test, feature = "metrics"))]
mod tests {
    use super::*;

    #[test]
    fn each_label_keeps_its_largest_value_in_the_order_first_seen() {
        let mut tally = Tally::default();
        for (family, lag_ms) in [
            (EventFamily::Enrollment, 2_000),
            (EventFamily::Completion, 500),
            (EventFamily::Enrollment, 9_000),
            (EventFamily::Enrollment, 3_000),
            (EventFamily::Completion, -100),
        ] {
            tally.lag(family, Some(lag_ms));
        }
        tally.lag(EventFamily::Completion, None);
        assert_eq!(
            tally.lags,
            [
                (EventFamily::Enrollment, 9_000),
                (EventFamily::Completion, 500)
            ]
        );
        let ms = Duration::from_millis;
        tally.handler("COURSE_ENROLLMENT", ms(3));
        tally.handler("COURSE_COMPLETED", ms(1));
        tally.handler("COURSE_ENROLLMENT", ms(40));
        tally.handler("COURSE_ENROLLMENT", ms(7));
        assert_eq!(
            tally.handlers,
            [("COURSE_ENROLLMENT", ms(40)), ("COURSE_COMPLETED", ms(1))]
        );
        // Recorded (with no recorder installed: nothing to see) and forgotten.
        tally.record();
        assert!(tally.lags.is_empty() && tally.handlers.is_empty());
        assert!(tally.capacity() >= 2);
    }
}
