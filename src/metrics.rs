//! Metrics through the [`metrics`](https://docs.rs/metrics) facade (feature
//! `metrics`): the application installs the exporter it wants (for
//! Prometheus, `metrics-exporter-prometheus`), and the crate records into it.
//!
//! Every label takes a bounded set of values: known event names (anything
//! else is `unknown`), decision and reason codes, event families, outcome
//! and operation names. Event ids, learner ids and account numbers are never
//! labels.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `alm_webhooks_deliveries_total` | counter | `outcome`: [`DeliveryOutcome`] |
//! | `alm_webhooks_events_total` | counter | `decision`, `reason`, `event` |
//! | `alm_webhooks_ack_seconds` | histogram | |
//! | `alm_webhooks_handler_seconds` | histogram | `event` |
//! | `alm_webhooks_event_lag_seconds` | histogram | `family` |
//! | `alm_webhooks_inbox_pending` | gauge | |
//! | `alm_webhooks_inbox_in_flight` | gauge | |
//! | `alm_webhooks_inbox_retrying` | gauge | |
//! | `alm_webhooks_dead_letters` | gauge | |
//! | `alm_webhooks_quarantined` | gauge | |
//! | `alm_webhooks_inbox_oldest_pending_age_seconds` | gauge | |
//! | `alm_webhooks_store_round_trips_total` | counter | `op` |
//! | `alm_webhooks_store_errors_total` | counter | `op` |
//!
//! `deploy/prometheus/alerts.yml` holds alerting rules over these names and
//! `deploy/grafana/alm-webhooks.json` a dashboard; both use nothing else.
//!
//! ```
//! use alm_webhooks::metrics::{self, DeliveryOutcome};
//! use std::time::Duration;
//!
//! // Once, at start, after installing an exporter: names, units, help texts.
//! metrics::describe();
//! // What a front door records for each delivery it answers.
//! metrics::record_delivery(DeliveryOutcome::Accepted, Duration::from_millis(3));
//! ```

use std::time::Duration;

use crate::rules::Decision;
use crate::{EventFamily, EventName};

/// The metric names, as exported.
pub mod names {
    /// Deliveries answered, by outcome.
    pub const DELIVERIES_TOTAL: &str = "alm_webhooks_deliveries_total";
    /// Events decided, by decision, reason and event name.
    pub const EVENTS_TOTAL: &str = "alm_webhooks_events_total";
    /// From a delivery's arrival to its answer.
    pub const ACK_SECONDS: &str = "alm_webhooks_ack_seconds";
    /// How long the handler ran, per event name.
    pub const HANDLER_SECONDS: &str = "alm_webhooks_handler_seconds";
    /// Decision time minus the event's `timestamp`, per family.
    pub const EVENT_LAG_SECONDS: &str = "alm_webhooks_event_lag_seconds";
    /// Deliveries acknowledged and waiting for a worker.
    pub const INBOX_PENDING: &str = "alm_webhooks_inbox_pending";
    /// Deliveries a worker holds under a lease.
    pub const INBOX_IN_FLIGHT: &str = "alm_webhooks_inbox_in_flight";
    /// Deliveries waiting for a retry after a handler failure.
    pub const INBOX_RETRYING: &str = "alm_webhooks_inbox_retrying";
    /// Events kept after their last failed attempt.
    pub const DEAD_LETTERS: &str = "alm_webhooks_dead_letters";
    /// Bodies kept because they were not a valid envelope.
    pub const QUARANTINED: &str = "alm_webhooks_quarantined";
    /// Age of the oldest delivery still pending.
    pub const INBOX_OLDEST_PENDING_AGE_SECONDS: &str =
        "alm_webhooks_inbox_oldest_pending_age_seconds";
    /// Calls to the store, by operation.
    pub const STORE_ROUND_TRIPS_TOTAL: &str = "alm_webhooks_store_round_trips_total";
    /// Failed calls to the store, by operation.
    pub const STORE_ERRORS_TOTAL: &str = "alm_webhooks_store_errors_total";

    /// Every name above (what the deploy files may use).
    pub const ALL: &[&str] = &[
        DELIVERIES_TOTAL,
        EVENTS_TOTAL,
        ACK_SECONDS,
        HANDLER_SECONDS,
        EVENT_LAG_SECONDS,
        INBOX_PENDING,
        INBOX_IN_FLIGHT,
        INBOX_RETRYING,
        DEAD_LETTERS,
        QUARANTINED,
        INBOX_OLDEST_PENDING_AGE_SECONDS,
        STORE_ROUND_TRIPS_TOTAL,
        STORE_ERRORS_TOTAL,
    ];
}

/// How a delivery was answered: the `outcome` label of
/// `alm_webhooks_deliveries_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeliveryOutcome {
    /// Taken: `202` (inbox) or every event decided (inline).
    Accepted,
    /// Authentication failed: `401`.
    Unauthorized,
    /// Not a valid envelope, refused: `400`.
    Malformed,
    /// Not a valid envelope, kept in quarantine and acknowledged: `202`.
    Quarantined,
    /// Over the body limit: `413`.
    TooLarge,
    /// The store or the inbox could not take it: `503` (or `500` inline when
    /// a handler failed).
    Unavailable,
}

impl DeliveryOutcome {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Unauthorized => "unauthorized",
            Self::Malformed => "malformed",
            Self::Quarantined => "quarantined",
            Self::TooLarge => "too_large",
            Self::Unavailable => "unavailable",
        }
    }

    /// The outcome of a delivery the front door refused.
    pub fn of_rejection(rejection: &crate::Rejection) -> Self {
        match rejection {
            crate::Rejection::PayloadTooLarge { .. } => Self::TooLarge,
            crate::Rejection::Unauthorized(_) => Self::Unauthorized,
            _ => Self::Malformed,
        }
    }
}

/// The `event` label: a known event name as sent, `unknown` for any other
/// (so that a sender cannot grow the label set).
pub fn event_label(name: &EventName) -> &'static str {
    EventName::KNOWN
        .iter()
        .find(|known| *known == name)
        .map_or("unknown", EventName::as_str)
}

/// The `family` label.
pub fn family_label(family: EventFamily) -> &'static str {
    match family {
        EventFamily::Enrollment => "enrollment",
        EventFamily::Unenrollment => "unenrollment",
        EventFamily::Completion => "completion",
        EventFamily::CompletionRollback => "completion_rollback",
        EventFamily::LearnerProgress => "learner_progress",
        EventFamily::LearningObject => "learning_object",
        EventFamily::LearningObjectInstance => "learning_object_instance",
        EventFamily::InstanceStats => "instance_stats",
        _ => "unknown",
    }
}

/// Registers every metric's unit and help text with the installed recorder.
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    use names::*;
    describe_counter!(DELIVERIES_TOTAL, "Deliveries answered, by outcome.");
    describe_counter!(
        EVENTS_TOTAL,
        "Events decided, by decision, ignore reason and event name."
    );
    describe_histogram!(
        ACK_SECONDS,
        Unit::Seconds,
        "From a delivery's arrival to its answer."
    );
    describe_histogram!(
        HANDLER_SECONDS,
        Unit::Seconds,
        "How long the handler ran for one event."
    );
    describe_histogram!(
        EVENT_LAG_SECONDS,
        Unit::Seconds,
        "Decision time minus the event's timestamp."
    );
    describe_gauge!(INBOX_PENDING, "Deliveries waiting for a worker.");
    describe_gauge!(INBOX_IN_FLIGHT, "Deliveries held by a worker.");
    describe_gauge!(INBOX_RETRYING, "Deliveries waiting for a retry.");
    describe_gauge!(DEAD_LETTERS, "Events kept after their last failed attempt.");
    describe_gauge!(QUARANTINED, "Bodies kept because they did not parse.");
    describe_gauge!(
        INBOX_OLDEST_PENDING_AGE_SECONDS,
        Unit::Seconds,
        "Age of the oldest pending delivery."
    );
    describe_counter!(STORE_ROUND_TRIPS_TOTAL, "Calls to the store, by operation.");
    describe_counter!(
        STORE_ERRORS_TOTAL,
        "Failed calls to the store, by operation."
    );
}

/// Counts one answered delivery and how long its answer took.
pub fn record_delivery(outcome: DeliveryOutcome, took: Duration) {
    handles::counter(names::DELIVERIES_TOTAL, [("outcome", outcome.as_str())], 1);
    handles::histogram(names::ACK_SECONDS, [], took.as_secs_f64());
}

/// Counts one decided event.
pub fn record_event(decision: Decision, name: Option<&EventName>) {
    let reason = match decision {
        Decision::Ignored(reason) => reason.code(),
        _ => "",
    };
    let labels = [
        ("decision", decision.as_str()),
        ("reason", reason),
        ("event", name.map_or("unknown", event_label)),
    ];
    handles::counter(names::EVENTS_TOTAL, labels, 1);
}

/// Records how long the handler ran for one event.
pub fn record_handler(name: &EventName, took: Duration) {
    let labels = [("event", event_label(name))];
    handles::histogram(names::HANDLER_SECONDS, labels, took.as_secs_f64());
}

/// Records an event's lag: the decision time minus its `timestamp`, in
/// seconds (negative for a time ahead of the receiver's clock).
pub fn record_event_lag(family: EventFamily, seconds: f64) {
    let labels = [("family", family_label(family))];
    handles::histogram(names::EVENT_LAG_SECONDS, labels, seconds);
}

/// Counts one call to the store, and whether it failed.
pub fn record_store_call(op: &'static str, failed: bool) {
    handles::counter(names::STORE_ROUND_TRIPS_TOTAL, [("op", op)], 1);
    if failed {
        handles::counter(names::STORE_ERRORS_TOTAL, [("op", op)], 1);
    }
}

/// The recorder's handles of the series recorded on this thread, so that a
/// record costs a table lookup and an atomic add rather than the recorder's
/// registry lookup (its key built, hashed and compared under a lock): that
/// lookup cost a Prometheus recorder about 80 ns per call, 13–30 % of the
/// pipeline (see `BENCHMARKS.md`).
///
/// Handles are kept only for the global recorder (`metrics::set_global_recorder`):
/// it is installed once and lives as long as the process, so the handles it
/// gave stay its own. A local recorder (`metrics::with_local_recorder`, as
/// tests use) is asked at every record, with a key built once per thread:
/// another local recorder may later stand at the same address, and handles
/// kept from the first would send its records astray. The global recorder
/// is recognised by its address, read once from a thread that has no local
/// recorder. Handles are taken only for the series actually recorded (a
/// series appears in the recorder at its first record, as with the
/// `metrics` macros).
mod handles {
    use std::cell::RefCell;
    use std::collections::{HashMap, HashSet};
    use std::sync::OnceLock;

    use metrics::{Counter, Histogram, Key, Label, Level, Metadata, Recorder};

    /// A series: the metric name and up to three label values, each by the
    /// address and length of its `'static` text. The same text at another
    /// address is another slot of the same series (the recorder gives the
    /// same handle), so a slot never mixes two series.
    type Slot = [(usize, usize); 4];

    /// What the `metrics` macros pass as metadata.
    static METADATA: Metadata<'static> =
        Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

    #[derive(Default)]
    struct Table {
        /// The global recorder's handles, once it is known.
        counters: HashMap<Slot, Counter, foldhash::fast::FixedState>,
        histograms: HashMap<Slot, Histogram, foldhash::fast::FixedState>,
        /// Keys, whatever the recorder (they do not depend on it).
        keys: HashMap<Slot, Key, foldhash::fast::FixedState>,
        /// Addresses of recorders found not to be the global one while no
        /// global recorder was known (so they are not looked at again).
        local: HashSet<usize, foldhash::fast::FixedState>,
    }

    thread_local! {
        static TABLE: RefCell<Table> = RefCell::new(Table::default());
    }

    /// The global recorder's address, once one is installed (a global
    /// recorder cannot be replaced).
    static GLOBAL: OnceLock<usize> = OnceLock::new();

    fn address(recorder: &dyn Recorder) -> Option<usize> {
        // A recorder without state has no address of its own.
        (std::mem::size_of_val(recorder) != 0)
            .then(|| std::ptr::from_ref(recorder).cast::<()>() as usize)
    }

    /// Whether the recorder at `address` is the global one: asked of a
    /// fresh thread (which has no local recorder) until one is installed.
    fn is_global(table: &mut Table, address: usize) -> bool {
        if let Some(global) = GLOBAL.get() {
            return *global == address;
        }
        if table.local.contains(&address) {
            return false;
        }
        let seen = std::thread::spawn(|| metrics::with_recorder(self::address))
            .join()
            .ok()
            .flatten();
        if let Some(global) = seen {
            let _ = GLOBAL.set(global);
        }
        if seen == Some(address) {
            true
        } else {
            table.local.insert(address);
            false
        }
    }

    fn slot<const N: usize>(
        name: &'static str,
        labels: &[(&'static str, &'static str); N],
    ) -> Slot {
        let mut slot = [(name.as_ptr() as usize, name.len()), (0, 0), (0, 0), (0, 0)];
        for (i, (_, value)) in labels.iter().take(3).enumerate() {
            slot[i + 1] = (value.as_ptr() as usize, value.len());
        }
        slot
    }

    fn key<const N: usize>(name: &'static str, labels: &[(&'static str, &'static str); N]) -> Key {
        let labels: Vec<Label> = labels
            .iter()
            .map(|(k, v)| Label::from_static_parts(k, v))
            .collect();
        Key::from_parts(name, labels)
    }

    /// Runs `f` with the table and whether the handles it keeps are those
    /// of `recorder` (the global recorder's).
    fn with_table<T>(recorder: &dyn Recorder, f: impl FnOnce(&mut Table, bool) -> T) -> T {
        TABLE.with(|table| {
            let mut table = table.borrow_mut();
            let keep = address(recorder).is_some_and(|at| is_global(&mut table, at));
            f(&mut table, keep)
        })
    }

    /// Adds `n` to the counter `name{labels}`.
    pub(super) fn counter<const N: usize>(
        name: &'static str,
        labels: [(&'static str, &'static str); N],
        n: u64,
    ) {
        metrics::with_recorder(|recorder| {
            with_table(recorder, |table, keep| {
                let slot = slot(name, &labels);
                if keep {
                    if let Some(counter) = table.counters.get(&slot) {
                        counter.increment(n);
                        return;
                    }
                }
                let key = table.keys.entry(slot).or_insert_with(|| key(name, &labels));
                let counter = recorder.register_counter(key, &METADATA);
                counter.increment(n);
                if keep {
                    table.counters.insert(slot, counter);
                }
            });
        });
    }

    /// Records `value` in the histogram `name{labels}`.
    pub(super) fn histogram<const N: usize>(
        name: &'static str,
        labels: [(&'static str, &'static str); N],
        value: f64,
    ) {
        metrics::with_recorder(|recorder| {
            with_table(recorder, |table, keep| {
                let slot = slot(name, &labels);
                if keep {
                    if let Some(histogram) = table.histograms.get(&slot) {
                        histogram.record(value);
                        return;
                    }
                }
                let key = table.keys.entry(slot).or_insert_with(|| key(name, &labels));
                let histogram = recorder.register_histogram(key, &METADATA);
                histogram.record(value);
                if keep {
                    table.histograms.insert(slot, histogram);
                }
            });
        });
    }
}

/// The inbox's figures, as its gauges show them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct InboxFigures {
    /// Deliveries waiting for a worker.
    pub pending: u64,
    /// Deliveries held by a worker.
    pub in_flight: u64,
    /// Deliveries waiting for a retry.
    pub retrying: u64,
    /// Dead letters kept.
    pub dead_letters: u64,
    /// Quarantined bodies kept.
    pub quarantined: u64,
    /// Age of the oldest pending delivery (zero when none).
    pub oldest_pending_age: Duration,
}

/// Sets the inbox gauges.
#[allow(clippy::cast_precision_loss)] // counts far below 2^52
pub fn set_inbox(figures: &InboxFigures) {
    metrics::gauge!(names::INBOX_PENDING).set(figures.pending as f64);
    metrics::gauge!(names::INBOX_IN_FLIGHT).set(figures.in_flight as f64);
    metrics::gauge!(names::INBOX_RETRYING).set(figures.retrying as f64);
    metrics::gauge!(names::DEAD_LETTERS).set(figures.dead_letters as f64);
    metrics::gauge!(names::QUARANTINED).set(figures.quarantined as f64);
    metrics::gauge!(names::INBOX_OLDEST_PENDING_AGE_SECONDS)
        .set(figures.oldest_pending_age.as_secs_f64());
}
