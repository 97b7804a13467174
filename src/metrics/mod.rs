//! Metrics through the [`metrics`](https://docs.rs/metrics) facade (feature
//! `metrics`): the application installs the exporter it wants (for
//! Prometheus, `metrics-exporter-prometheus`), and the crate records into it.
//!
//! Every label takes a bounded set of values: known event names (anything
//! else is `unknown`), decision and reason codes, event families, outcome and
//! operation names. Event ids, learner ids and account numbers never are.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `alm_webhooks_deliveries_total` | counter | `outcome`: [`DeliveryOutcome`] |
//! | `alm_webhooks_events_total` | counter | `decision`, `reason`, `event` |
//! | `alm_webhooks_ack_seconds` | histogram | |
//! | `alm_webhooks_handler_seconds` | histogram, one sample per delivery and `event` (its longest) | `event` |
//! | `alm_webhooks_event_lag_seconds` | histogram, one sample per delivery and `family` (its largest) | `family` |
//! | `alm_webhooks_inbox_pending` | gauge | |
//! | `alm_webhooks_inbox_in_flight` | gauge | |
//! | `alm_webhooks_inbox_retrying` | gauge | |
//! | `alm_webhooks_dead_letters` | gauge | |
//! | `alm_webhooks_quarantined` | gauge | |
//! | `alm_webhooks_quarantined_bytes` | gauge | |
//! | `alm_webhooks_kept_fullest_account_ratio` | gauge | |
//! | `alm_webhooks_inbox_oldest_pending_age_seconds` | gauge | |
//! | `alm_webhooks_inbox_paused` | gauge | |
//! | `alm_webhooks_inbox_paused_longest_seconds` | gauge | |
//! | `alm_webhooks_rate_limit_backlog` | gauge | |
//! | `alm_webhooks_rate_limit_wait_seconds` | histogram | `limit`: `receiver`, `account` |
//! | `alm_webhooks_outbox_pending` | gauge | |
//! | `alm_webhooks_outbox_oldest_age_seconds` | gauge | |
//! | `alm_webhooks_store_round_trips_total` | counter | `op` |
//! | `alm_webhooks_store_errors_total` | counter | `op` |
//!
//! `alm_webhooks_handler_seconds` and `alm_webhooks_event_lag_seconds`
//! take one sample per delivery and label, not per event: the longest
//! handler run of the delivery's events of one name, the largest lag of
//! its events of one family. A sample costs the exporter as much whatever
//! it stands for (`metrics-exporter-prometheus` pushes each into an atomic
//! bucket), and two per event cost the whole pipeline 2.7–3.9 % at 100
//! events per delivery (`BENCHMARKS.md`). Their quantiles, which the alert
//! and the dashboard read, weigh deliveries, not events: a delivery counts
//! at its worst event, but one late large delivery among many timely small
//! ones counts once. Their `_count` counts deliveries per label
//! (`alm_webhooks_events_total` counts events).
//!
//! `deploy/prometheus/alerts.yml` holds alerting rules over these names and
//! `deploy/grafana/alm-webhooks.json` a dashboard; both use nothing else.
//!
//! **For the rules to read them**, the exporter must render the histograms
//! as histograms (with `_bucket` series: the rules and the dashboard take
//! quantiles of them; `metrics-exporter-prometheus` renders a histogram it
//! has no buckets for as a summary) and the counters the rules read must
//! exist before their first increment ([`start_at_zero`]).
//! [`install_prometheus`] (feature `prometheus`) does both in one call, with
//! the boundaries of [`buckets`]; an application with another exporter uses
//! [`buckets::ALL`] and calls [`describe`] and [`start_at_zero`] itself.
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

mod handles;
#[cfg(feature = "prometheus")]
#[cfg_attr(docsrs, doc(cfg(feature = "prometheus")))]
mod prometheus;

use std::time::Duration;

#[cfg(feature = "prometheus")]
#[cfg_attr(docsrs, doc(cfg(feature = "prometheus")))]
pub use prometheus::{
    PrometheusError, UPKEEP_EVERY, install_prometheus, installed_prometheus, prometheus_builder,
};

use crate::Decision;
use crate::{EventFamily, EventName};

pub mod names;

/// The bucket boundaries (upper bounds, in seconds) of each histogram the
/// crate records: give them to the exporter so that the histograms are
/// exported with `_bucket` series ([`install_prometheus`] does).
///
/// ```
/// use alm_webhooks::metrics::{buckets, names};
/// // The lag alert fires above 15 minutes: a bucket ends exactly there.
/// assert!(buckets::EVENT_LAG_SECONDS.contains(&900.0));
/// assert!(buckets::ALL.iter().any(|(name, _)| *name == names::ACK_SECONDS));
/// ```
pub mod buckets {
    use super::names;

    /// `alm_webhooks_ack_seconds`: from 1 ms to ALM's 5 s hang-up and past it.
    pub const ACK_SECONDS: &[f64] = &[
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ];
    /// `alm_webhooks_handler_seconds`: from 1 ms to the 5-minute longest
    /// retry backoff.
    pub const HANDLER_SECONDS: &[f64] = &[
        0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0,
    ];
    /// `alm_webhooks_event_lag_seconds`: from a second to ALM's 7-day
    /// retention; 900 s is `LEARNER_PROGRESS`'s documented delay, which the
    /// lag alert compares with.
    pub const EVENT_LAG_SECONDS: &[f64] = &[
        1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 21_600.0, 86_400.0, 604_800.0,
    ];

    /// Every histogram with its boundaries.
    pub const ALL: &[(&str, &[f64])] = &[
        (names::ACK_SECONDS, ACK_SECONDS),
        (names::HANDLER_SECONDS, HANDLER_SECONDS),
        (names::EVENT_LAG_SECONDS, EVENT_LAG_SECONDS),
        (names::RATE_LIMIT_WAIT_SECONDS, HANDLER_SECONDS),
    ];
}

/// The `op` label values of the store counters: one per store call the
/// engine makes.
pub const STORE_OPS: &[&str] = &[
    "claim",
    "claim_many",
    "commit",
    "commit_many",
    "load",
    "release",
    "renew",
];

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
    pub fn of_rejection(rejection: &crate::DeliveryRejection) -> Self {
        match rejection {
            crate::DeliveryRejection::PayloadTooLarge { .. } => Self::TooLarge,
            crate::DeliveryRejection::Unauthorized(_) => Self::Unauthorized,
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
        "The longest handler run of a delivery's events of one name."
    );
    describe_histogram!(
        EVENT_LAG_SECONDS,
        Unit::Seconds,
        "Decision time minus the event's timestamp, the largest of a delivery's events of one family."
    );
    describe_gauge!(INBOX_PENDING, "Deliveries waiting for a worker.");
    describe_gauge!(INBOX_IN_FLIGHT, "Deliveries held by a worker.");
    describe_gauge!(INBOX_RETRYING, "Deliveries waiting for a retry.");
    describe_gauge!(DEAD_LETTERS, "Events kept after their last failed attempt.");
    describe_gauge!(QUARANTINED, "Bodies kept because they did not parse.");
    describe_gauge!(
        QUARANTINED_BYTES,
        "The bytes of the quarantined bodies, all together."
    );
    describe_gauge!(
        KEPT_FULLEST_ACCOUNT_RATIO,
        "The fullest account's share of its caps on dead letters and quarantined bodies (1 at a cap)."
    );
    describe_gauge!(
        INBOX_OLDEST_PENDING_AGE_SECONDS,
        Unit::Seconds,
        "Age of the oldest pending delivery."
    );
    describe_gauge!(INBOX_PAUSED, "Pauses in force (an account or all).");
    let longest = "How long the oldest pause in force has been.";
    describe_gauge!(INBOX_PAUSED_LONGEST_SECONDS, Unit::Seconds, longest);
    describe_gauge!(
        RATE_LIMIT_BACKLOG,
        "Events in hand waiting for the rate limit."
    );
    describe_histogram!(
        RATE_LIMIT_WAIT_SECONDS,
        Unit::Seconds,
        "How long an event waited for the rate limit towards the handler (not in the handler's time)."
    );
    describe_gauge!(
        OUTBOX_PENDING,
        "Processed events waiting for a broker's acknowledgement."
    );
    describe_gauge!(
        OUTBOX_OLDEST_AGE_SECONDS,
        Unit::Seconds,
        "Age of the oldest event waiting for a broker's acknowledgement."
    );
    describe_counter!(STORE_ROUND_TRIPS_TOTAL, "Calls to the store, by operation.");
    describe_counter!(
        STORE_ERRORS_TOTAL,
        "Failed calls to the store, by operation."
    );
}

/// Creates, at zero, every counter series (and the outbox's gauges) the
/// shipped alert rules and dashboard read, so that a rule over a rate
/// (`alm_webhooks_store_errors_total`, the duplicate and stale ratios,
/// authentication failures) has a series to read on a healthy receiver,
/// before the first error. Call it once, after installing the exporter
/// ([`install_prometheus`] does).
///
/// ```
/// # let recorder = metrics_util::debugging::DebuggingRecorder::new();
/// # let snapshotter = recorder.snapshotter();
/// # metrics::with_local_recorder(&recorder, || {
/// alm_webhooks::metrics::start_at_zero();
/// # });
/// # let names: Vec<String> = snapshotter.snapshot().into_vec().into_iter()
/// #     .map(|(key, ..)| key.key().name().to_owned()).collect();
/// # assert!(names.iter().any(|n| n == "alm_webhooks_store_errors_total"));
/// ```
pub fn start_at_zero() {
    use crate::IgnoreReason;
    use DeliveryOutcome::*;
    for outcome in [
        Accepted,
        Unauthorized,
        Malformed,
        Quarantined,
        TooLarge,
        Unavailable,
    ] {
        handles::counter(names::DELIVERIES_TOTAL, [("outcome", outcome.as_str())], 0);
    }
    let decisions = [
        Decision::Processed,
        Decision::Duplicate,
        Decision::Ignored(IgnoreReason::EnrollmentAfterProgress),
        Decision::Ignored(IgnoreReason::ProgressAfterCompletion),
        Decision::Ignored(IgnoreReason::Stale),
        Decision::Malformed,
        Decision::Failed,
        Decision::InFlight,
        Decision::Deferred,
    ];
    for decision in decisions {
        let reason = match decision {
            Decision::Ignored(reason) => reason.code(),
            _ => "",
        };
        let labels = [
            ("decision", decision.as_str()),
            ("reason", reason),
            ("event", "unknown"),
        ];
        handles::counter(names::EVENTS_TOTAL, labels, 0);
    }
    for op in STORE_OPS {
        handles::counter(names::STORE_ROUND_TRIPS_TOTAL, [("op", op)], 0);
        handles::counter(names::STORE_ERRORS_TOTAL, [("op", op)], 0);
    }
    // Set by the outbox's relay only: 0 before it runs, or without one.
    metrics::gauge!(names::OUTBOX_PENDING).set(0.0);
    metrics::gauge!(names::OUTBOX_OLDEST_AGE_SECONDS).set(0.0);
}

/// Counts one answered delivery and how long its answer took.
pub fn record_delivery(outcome: DeliveryOutcome, took: Duration) {
    handles::counter(names::DELIVERIES_TOTAL, [("outcome", outcome.as_str())], 1);
    handles::histogram(names::ACK_SECONDS, [], took.as_secs_f64());
}

/// Counts one decided event.
pub fn record_event(decision: Decision, name: Option<&EventName>) {
    record_events(decision, name.map_or("unknown", event_label), 1);
}

/// Counts `count` decided events of one decision and `event` label (an
/// [`event_label`]): the engine counts a delivery's events once per label
/// set.
pub(crate) fn record_events(decision: Decision, event: &'static str, count: u64) {
    let reason = match decision {
        Decision::Ignored(reason) => reason.code(),
        _ => "",
    };
    let labels = [
        ("decision", decision.as_str()),
        ("reason", reason),
        ("event", event),
    ];
    handles::counter(names::EVENTS_TOTAL, labels, count);
}

/// Records one sample of `alm_webhooks_handler_seconds` (the engine
/// records one per delivery and event name: its longest handler run).
pub fn record_handler(name: &EventName, took: Duration) {
    record_handler_label(event_label(name), took);
}

/// [`record_handler`] for an [`event_label`].
pub(crate) fn record_handler_label(event: &'static str, took: Duration) {
    let labels = [("event", event)];
    handles::histogram(names::HANDLER_SECONDS, labels, took.as_secs_f64());
}

/// Records one sample of `alm_webhooks_event_lag_seconds`: a decision time
/// minus an event's `timestamp`, in seconds (negative for a time ahead of
/// the receiver's clock). The engine records one per delivery and family:
/// its largest lag.
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
