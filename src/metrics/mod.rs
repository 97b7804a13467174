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
//! | `alm_webhooks_handler_seconds` | histogram | `event` |
//! | `alm_webhooks_event_lag_seconds` | histogram | `family` |
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
    /// The bytes of the quarantined bodies, all together.
    pub const QUARANTINED_BYTES: &str = "alm_webhooks_quarantined_bytes";
    /// The fullest account's share of its caps on what is kept (1 at a
    /// cap): one gauge, with no account label.
    ///
    /// ```
    /// use alm_webhooks::metrics::names;
    /// assert!(names::ALL.contains(&names::KEPT_FULLEST_ACCOUNT_RATIO));
    /// ```
    pub const KEPT_FULLEST_ACCOUNT_RATIO: &str = "alm_webhooks_kept_fullest_account_ratio";
    /// Age of the oldest delivery still pending.
    pub const INBOX_OLDEST_PENDING_AGE_SECONDS: &str =
        "alm_webhooks_inbox_oldest_pending_age_seconds";
    /// Pauses in force (an account, or every account).
    pub const INBOX_PAUSED: &str = "alm_webhooks_inbox_paused";
    /// How long the oldest pause in force has been (0 without one).
    pub const INBOX_PAUSED_LONGEST_SECONDS: &str = "alm_webhooks_inbox_paused_longest_seconds";
    /// Events of taken deliveries waiting for the rate limit towards the handler.
    pub const RATE_LIMIT_BACKLOG: &str = "alm_webhooks_rate_limit_backlog";
    /// How long an event waited for the rate limit towards the handler, by limit.
    pub const RATE_LIMIT_WAIT_SECONDS: &str = "alm_webhooks_rate_limit_wait_seconds";
    /// Processed events in the outbox not yet acknowledged by the broker.
    pub const OUTBOX_PENDING: &str = "alm_webhooks_outbox_pending";
    /// Age of the oldest outbox entry not yet acknowledged by the broker.
    pub const OUTBOX_OLDEST_AGE_SECONDS: &str = "alm_webhooks_outbox_oldest_age_seconds";
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
        QUARANTINED_BYTES,
        KEPT_FULLEST_ACCOUNT_RATIO,
        INBOX_OLDEST_PENDING_AGE_SECONDS,
        INBOX_PAUSED,
        INBOX_PAUSED_LONGEST_SECONDS,
        RATE_LIMIT_BACKLOG,
        RATE_LIMIT_WAIT_SECONDS,
        OUTBOX_PENDING,
        OUTBOX_OLDEST_AGE_SECONDS,
        STORE_ROUND_TRIPS_TOTAL,
        STORE_ERRORS_TOTAL,
    ];
}

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
    handles::histogram(names::ACK_SECONDS, [], took.as_secs_f64(), 1);
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

/// Records how long the handler ran for one event.
pub fn record_handler(name: &EventName, took: Duration) {
    let labels = [("event", event_label(name))];
    handles::histogram(names::HANDLER_SECONDS, labels, took.as_secs_f64(), 1);
}

/// Records an event's lag: the decision time minus its `timestamp`, in
/// seconds (negative for a time ahead of the receiver's clock).
pub fn record_event_lag(family: EventFamily, seconds: f64) {
    record_event_lags(family, seconds, 1);
}

/// Records `count` equal lags of one family (the engine records a
/// delivery's run of equal lags at once).
pub(crate) fn record_event_lags(family: EventFamily, seconds: f64, count: usize) {
    let labels = [("family", family_label(family))];
    handles::histogram(names::EVENT_LAG_SECONDS, labels, seconds, count);
}

/// Counts one call to the store, and whether it failed.
pub fn record_store_call(op: &'static str, failed: bool) {
    handles::counter(names::STORE_ROUND_TRIPS_TOTAL, [("op", op)], 1);
    if failed {
        handles::counter(names::STORE_ERRORS_TOTAL, [("op", op)], 1);
    }
}
