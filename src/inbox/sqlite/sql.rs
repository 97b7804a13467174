//! The inbox's tables and the statements that hand deliveries out and take
//! them back.

/// The tables, created if missing (an `abandoned` column is added to an
/// older `alm_inbox` by [`ADD_ABANDONED`]).
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS alm_inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id INTEGER NOT NULL,
    body BLOB NOT NULL,
    received_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    abandoned INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    not_before_ms INTEGER,
    lease_token BLOB,
    lease_until_ms INTEGER
);
CREATE INDEX IF NOT EXISTS alm_inbox_account ON alm_inbox (account_id, id);
CREATE TABLE IF NOT EXISTS alm_dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id INTEGER NOT NULL,
    event_id TEXT,
    event_name TEXT,
    event TEXT NOT NULL,
    error TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS alm_quarantine (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id INTEGER,
    body BLOB NOT NULL,
    error TEXT NOT NULL,
    received_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS alm_inbox_paused (
    every INTEGER NOT NULL,
    account_id INTEGER NOT NULL,
    since_ms INTEGER NOT NULL,
    PRIMARY KEY (every, account_id)
);
CREATE INDEX IF NOT EXISTS alm_dead_letters_account ON alm_dead_letters (account_id);
CREATE INDEX IF NOT EXISTS alm_quarantine_account ON alm_quarantine (account_id);
CREATE TABLE IF NOT EXISTS alm_archive (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL,
    body BLOB NOT NULL,
    received_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS alm_archive_received ON alm_archive (received_ms, id);
CREATE TABLE IF NOT EXISTS alm_archive_events (
    archive_id INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    account_id INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    event_id TEXT,
    event_name TEXT,
    user_id INTEGER,
    lo_instance_id TEXT,
    timestamp_ms INTEGER,
    decision TEXT NOT NULL,
    reason TEXT,
    attempts INTEGER NOT NULL,
    error TEXT,
    PRIMARY KEY (archive_id, idx)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS alm_archive_events_event_id
    ON alm_archive_events (event_id, received_ms) WHERE event_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS alm_archive_events_user
    ON alm_archive_events (user_id, received_ms) WHERE user_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS alm_archive_events_instance
    ON alm_archive_events (lo_instance_id, received_ms) WHERE lo_instance_id IS NOT NULL;
";

/// What is kept of account `?1`: dead letters, quarantined bodies, their
/// bytes (through the `account_id` indexes).
pub(super) const KEPT_OF: &str = "
SELECT (SELECT count(*) FROM alm_dead_letters WHERE account_id = ?1),
       (SELECT count(*) FROM alm_quarantine WHERE account_id = ?1),
       (SELECT coalesce(sum(length(body)), 0) FROM alm_quarantine WHERE account_id = ?1)";

/// For each count, the most that one account keeps.
pub(super) const MOST_KEPT_OF_ONE_ACCOUNT: &str = "
SELECT (SELECT coalesce(max(n), 0) FROM
    (SELECT count(*) AS n FROM alm_dead_letters GROUP BY account_id)),
(SELECT coalesce(max(n), 0) FROM
    (SELECT count(*) AS n FROM alm_quarantine WHERE account_id IS NOT NULL GROUP BY account_id)),
(SELECT coalesce(max(b), 0) FROM
    (SELECT sum(length(body)) AS b FROM alm_quarantine WHERE account_id IS NOT NULL
     GROUP BY account_id))";

/// Takes the oldest account head that is neither leased nor waiting. The
/// heads are found by walking the `(account_id, id)` index one account at a
/// time, so a take costs one probe per account however long the backlog.
/// Takes the oldest head that is neither leased, waiting nor paused, counting the
/// attempt; a lease that ran out (a token still there) counts as an
/// abandoned attempt and records `?4` as the last error.
pub(super) const TAKE: &str = "
UPDATE alm_inbox SET lease_token = ?2, lease_until_ms = ?3, not_before_ms = NULL,
    attempts = attempts + 1,
    abandoned = abandoned + (lease_token IS NOT NULL),
    last_error = CASE WHEN lease_token IS NOT NULL THEN ?4 ELSE last_error END
WHERE id = (
    WITH RECURSIVE accounts(a) AS (
        SELECT min(account_id) FROM alm_inbox
        UNION ALL
        SELECT (SELECT min(account_id) FROM alm_inbox WHERE account_id > a)
        FROM accounts WHERE a IS NOT NULL),
    heads(id) AS (
        SELECT (SELECT min(id) FROM alm_inbox WHERE account_id = a)
        FROM accounts WHERE a IS NOT NULL)
    SELECT d.id FROM alm_inbox d
    WHERE d.id IN (SELECT id FROM heads)
      AND (d.lease_until_ms IS NULL OR d.lease_until_ms <= ?1)
      AND (d.not_before_ms IS NULL OR d.not_before_ms <= ?1)
      AND NOT EXISTS (SELECT 1 FROM alm_inbox_paused p
                      WHERE p.every = 1 OR p.account_id = d.account_id)
    ORDER BY d.id LIMIT 1)
RETURNING id, account_id, body, received_ms, attempts, abandoned, last_error";

/// Adds `abandoned` to an `alm_inbox` created before it existed.
pub(super) const ADD_ABANDONED: &str =
    "ALTER TABLE alm_inbox ADD COLUMN abandoned INTEGER NOT NULL DEFAULT 0";

/// Ends the lease `?2` holds on delivery `?1`: waiting until `?3` (or
/// not), with `?4` as the last error (or the one it had), and `?5`
/// attempts taken back (1 for a postponement or a release).
pub(super) const GIVE_BACK: &str = "
UPDATE alm_inbox SET lease_token = NULL, lease_until_ms = NULL, not_before_ms = ?3,
    last_error = coalesce(?4, last_error), attempts = max(attempts - ?5, 0)
WHERE id = ?1 AND lease_token = ?2";
