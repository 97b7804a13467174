//! The schema and the statements that are not part of a claim or a commit.

pub(super) const STATUS_CLAIMED: i64 = 0;
pub(super) const STATUS_DECIDED: i64 = 1;

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS alm_events (
    account_id INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    status INTEGER NOT NULL,
    token BLOB,
    lease_until_ms INTEGER,
    remember_until_ms INTEGER,
    PRIMARY KEY (account_id, event_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alm_states (
    state_key TEXT PRIMARY KEY NOT NULL,
    version INTEGER NOT NULL,
    state TEXT NOT NULL,
    expires_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS alm_events_remember_until ON alm_events (remember_until_ms);
CREATE INDEX IF NOT EXISTS alm_events_lease_until ON alm_events (lease_until_ms);
CREATE INDEX IF NOT EXISTS alm_states_expires ON alm_states (expires_ms);
";

/// Renews a claim. Parameters: account, event, claimed, token, lease end.
pub(super) const RENEW: &str = "UPDATE alm_events SET lease_until_ms = ?5 WHERE account_id = ?1 \
     AND event_id = ?2 AND status = ?3 AND token = ?4";

/// The most rows one step of [`Store::sweep`] deletes: each step is its own
/// short transaction, so claims and commits get the write lock between
/// steps.
pub(super) const SWEEP_CHUNK: i64 = 1_000;

/// The sweep's steps: decided events past their window (only decided rows
/// have `remember_until_ms`), claims past their lease (only claims have
/// `lease_until_ms`), states past their expiry. Each finds its rows through
/// its index. Parameters: now, chunk size.
pub(super) const SWEEP_STEPS: [&str; 3] = [
    "DELETE FROM alm_events WHERE (account_id, event_id) IN \
     (SELECT account_id, event_id FROM alm_events WHERE remember_until_ms <= ?1 LIMIT ?2)",
    "DELETE FROM alm_events WHERE (account_id, event_id) IN \
     (SELECT account_id, event_id FROM alm_events WHERE lease_until_ms <= ?1 LIMIT ?2)",
    "DELETE FROM alm_states WHERE rowid IN \
     (SELECT rowid FROM alm_states WHERE expires_ms <= ?1 LIMIT ?2)",
];
