//! The metric names, as exported.

/// Deliveries answered, by outcome.
pub const DELIVERIES_TOTAL: &str = "alm_webhooks_deliveries_total";
/// Events decided, by decision, reason and event name.
pub const EVENTS_TOTAL: &str = "alm_webhooks_events_total";
/// From a delivery's arrival to its answer.
pub const ACK_SECONDS: &str = "alm_webhooks_ack_seconds";
/// How long the handler ran: the longest run of a delivery's events
/// of one name (one sample per delivery and name).
pub const HANDLER_SECONDS: &str = "alm_webhooks_handler_seconds";
/// Decision time minus the event's `timestamp`: the largest of a
/// delivery's events of one family (one sample per delivery and family).
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
pub const INBOX_OLDEST_PENDING_AGE_SECONDS: &str = "alm_webhooks_inbox_oldest_pending_age_seconds";
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
