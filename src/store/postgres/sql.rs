//! The SQL: the schema's tables and every statement, with the schema's name
//! spelled out (it is validated first, so it can be quoted as is).

use super::{CLAIMED, DECIDED};

/// The statements, with the schema's tables spelled out.
#[derive(Clone)]
pub(super) struct Sql {
    pub(super) claim_and_load: String,
    pub(super) renew: String,
    pub(super) renew_many: String,
    pub(super) claim_many: String,
    pub(super) commit_many: String,
    pub(super) load: String,
    pub(super) decide: String,
    pub(super) commit_insert_state: String,
    pub(super) commit_update_state: String,
    pub(super) release: String,
    /// Lets go of many claims of one holder's lease (set-based `release`).
    pub(super) release_many: String,
    pub(super) sweep_events: String,
    pub(super) sweep_states: String,
    /// Reads no row, but names every column the store uses.
    pub(super) check: String,
}

impl Sql {
    pub(super) fn new(schema: &str) -> Self {
        let events = format!("\"{schema}\".alm_events");
        let states = format!("\"{schema}\".alm_states");
        let (live_x, live_e) = (live("x"), live("e"));
        let (mine_x, mine_e) = (mine("x"), mine("e"));
        Self {
            // One statement: the row as it was (what a lost claim means);
            // the claim, attempted only when that row is missing or expired
            // (so a duplicate or an event in flight locks and writes
            // nothing, and costs no WAL flush); and the state. Every part
            // reads the same snapshot; `ON CONFLICT` settles a race with a
            // claim made after it.
            renew: format!(
                "UPDATE {events} SET expires_at = {LEASE_END} \
                 WHERE account_id = $1 AND event_id = $2 AND status = {CLAIMED} AND token = $3"
            ),
            renew_many: format!(
                "UPDATE {events} e SET expires_at = {LEASE_END} \
                 FROM unnest($1::bigint[], $2::text[], $3::bytea[]) AS i(account_id, event_id, token) \
                 WHERE e.account_id = i.account_id AND e.event_id = i.event_id \
                   AND e.status = {CLAIMED} AND e.token = i.token \
                 RETURNING e.account_id, e.event_id, e.token"
            ),
            claim_and_load: format!(
                "WITH existing AS (\
                   SELECT status, expires_at, token FROM {events} \
                   WHERE account_id = $1 AND event_id = $2), \
                 claimed AS (\
                   INSERT INTO {events} AS e (account_id, event_id, status, token, expires_at) \
                   SELECT $1, $2, {CLAIMED}, $3, {LEASE_END} \
                   WHERE NOT EXISTS (SELECT 1 FROM existing x WHERE {live_x} AND NOT {mine_x}) \
                   ON CONFLICT (account_id, event_id) DO UPDATE \
                   SET status = {CLAIMED}, token = EXCLUDED.token, \
                       expires_at = EXCLUDED.expires_at \
                   WHERE NOT ({live_e}) OR {mine_e} \
                   RETURNING e.token) \
                 SELECT EXISTS (SELECT 1 FROM claimed), (SELECT status FROM existing), \
                   s.version, s.state \
                 FROM (SELECT 1) AS one LEFT JOIN {states} AS s ON s.state_key = $6"
            ),
            claim_many: claim_many(&events, &states),
            commit_many: commit_many(&events, &states),
            load: format!("SELECT version, state FROM {states} WHERE state_key = $1"),
            decide: format!(
                "UPDATE {events} SET status = {DECIDED}, token = NULL, expires_at = $4 \
                 WHERE account_id = $1 AND event_id = $2 AND status = {CLAIMED} AND token = $3"
            ),
            commit_insert_state: commit_with_state(
                &events,
                &format!(
                    "INSERT INTO {states} (state_key, version, state, expires_at) \
                     SELECT $5, 1, $6, $7 WHERE EXISTS (SELECT 1 FROM ev) \
                     ON CONFLICT (state_key) DO NOTHING RETURNING 1"
                ),
            ),
            commit_update_state: commit_with_state(
                &events,
                &format!(
                    "UPDATE {states} SET version = version + 1, state = $6, expires_at = $7 \
                     WHERE state_key = $5 AND version = $8 AND EXISTS (SELECT 1 FROM ev) \
                     RETURNING 1"
                ),
            ),
            release: format!(
                "DELETE FROM {events} \
                 WHERE account_id = $1 AND event_id = $2 AND status = {CLAIMED} AND token = $3"
            ),
            release_many: format!(
                "DELETE FROM {events} e \
                 USING unnest($1::bigint[], $2::text[]) AS i(account_id, event_id) \
                 WHERE e.account_id = i.account_id AND e.event_id = i.event_id \
                   AND e.status = {CLAIMED} AND e.token = $3"
            ),
            sweep_events: format!(
                "DELETE FROM {events} WHERE ctid IN \
                 (SELECT ctid FROM {events} WHERE expires_at <= $1 \
                  AND (status = {DECIDED} OR expires_at <= clock_timestamp()) LIMIT $2)"
            ),
            check: format!(
                "SELECT account_id, event_id, status, token, expires_at FROM {events} LIMIT 0; \
                 SELECT state_key, version, state, expires_at FROM {states} LIMIT 0"
            ),
            sweep_states: format!(
                "DELETE FROM {states} WHERE ctid IN \
                 (SELECT ctid FROM {states} WHERE expires_at <= $1 LIMIT $2)"
            ),
        }
    }
}

/// A commit with a state change as one statement, atomic on its own: `ev`
/// locks the event row if the token still holds; `st` (`write_state`) writes
/// the state only then, and only at the expected version; the event is
/// marked decided only if the state was written. Answers (token held, done).
/// Parameters: $1 account, $2 event, $3 token, $4 until, $5 state key, $6
/// state, $7 the state's expiry, $8 expected version (updates only).
fn commit_with_state(events: &str, write_state: &str) -> String {
    format!(
        "WITH ev AS (\
           SELECT 1 FROM {events} \
           WHERE account_id = $1 AND event_id = $2 AND status = {CLAIMED} AND token = $3 \
           FOR UPDATE), \
         st AS ({write_state}), \
         done AS (\
           UPDATE {events} SET status = {DECIDED}, token = NULL, expires_at = $4 \
           WHERE account_id = $1 AND event_id = $2 AND EXISTS (SELECT 1 FROM st) \
           RETURNING 1) \
         SELECT EXISTS (SELECT 1 FROM ev), EXISTS (SELECT 1 FROM done)"
    )
}

/// [`Sql::claim_and_load`] for a whole run of events (no event twice) in
/// one statement. Parameters: $1 accounts, $2 event ids, $3 the owner, $4 lease
/// in milliseconds, $5 now, $6 state keys (NULL: none). One row per event, in input
/// order: (won, earlier status, state version, state). The inserts go in
/// key order, so two overlapping claims lock rows in the same order.
///
/// What it costs does not grow with the tables: `existing` keeps one row
/// per event (the input, with its row as it was: one index probe each),
/// and a state is read only for a claim won (`loaded`), by one index probe
/// (`OFFSET 0` keeps the planner from joining the whole state table, which
/// it did, guessing from the estimate of the `INSERT`'s rows, for every
/// delivery, redeliveries included). A redelivery of decided events costs
/// one probe per event and the sort of its answers.
fn claim_many(events: &str, states: &str) -> String {
    let (live_x, live_e) = (live("x"), live("e"));
    let (mine_x, mine_e) = (mine("x"), mine("e"));
    format!(
        "WITH input AS (\
           SELECT * FROM unnest($1::bigint[], $2::text[], $6::text[]) \
             WITH ORDINALITY AS i(account_id, event_id, state_key, ord)), \
         existing AS (\
           SELECT i.ord, i.account_id, i.event_id, i.state_key, x.status, \
             {live_x} AND NOT {mine_x} AS live \
           FROM input i LEFT JOIN {events} x \
             ON x.account_id = i.account_id AND x.event_id = i.event_id), \
         claimed AS (\
           INSERT INTO {events} AS e (account_id, event_id, status, token, expires_at) \
           SELECT x.account_id, x.event_id, {CLAIMED}, $3::bytea, {LEASE_END} \
           FROM existing x WHERE x.live IS NOT TRUE \
           ORDER BY x.account_id, x.event_id \
           ON CONFLICT (account_id, event_id) DO UPDATE \
           SET status = {CLAIMED}, token = EXCLUDED.token, expires_at = EXCLUDED.expires_at \
           WHERE NOT ({live_e}) OR {mine_e} \
           RETURNING e.account_id, e.event_id), \
         loaded AS (\
           SELECT x.ord, s.version, s.state FROM claimed c \
           JOIN existing x ON x.account_id = c.account_id AND x.event_id = c.event_id \
           LEFT JOIN LATERAL (\
             SELECT version, state FROM {states} WHERE state_key = x.state_key OFFSET 0) s \
             ON true) \
         SELECT l.ord IS NOT NULL, x.status, l.version, l.state \
         FROM existing x LEFT JOIN loaded l ON l.ord = x.ord \
         ORDER BY x.ord"
    )
}

/// Many commits (no event and no state twice) in one statement, each as
/// [`commit_with_state`] or [`Sql::decide`] would do it alone: the event
/// rows whose token holds are locked (in key order), states are written at
/// their expected version (inserted at 0, in key order; updated after), and
/// an event is marked decided only if it has no state or its state was
/// written. Parameters: $1 accounts, $2 event ids, $3 tokens, $4 ends of the
/// window, $5 state keys (NULL: no state), $6 states, $7 expected versions,
/// $8 the states' expiries, $9 whether an earlier run of the same
/// transaction updated the state (a chain): such an update is made only if
/// that earlier update was (the state row was last written by this
/// transaction, `xmin`), so a chain whose commit was refused writes nothing
/// over the version another delivery wrote.
/// One row per commit, in input order: (token held, done).
fn commit_many(events: &str, states: &str) -> String {
    format!(
        "WITH input AS (\
           SELECT * FROM unnest($1::bigint[], $2::text[], $3::bytea[], $4::timestamptz[], \
             $5::text[], $6::jsonb[], $7::bigint[], $8::timestamptz[], $9::bool[]) \
             WITH ORDINALITY AS i(account_id, event_id, token, until, state_key, state, expected, \
               state_until, chained, ord)), \
         ev AS (\
           SELECT i.ord FROM input i JOIN {events} e \
             ON e.account_id = i.account_id AND e.event_id = i.event_id \
           WHERE e.status = {CLAIMED} AND e.token = i.token \
           ORDER BY e.account_id, e.event_id \
           FOR UPDATE OF e), \
         held AS (SELECT i.* FROM input i JOIN ev ON ev.ord = i.ord), \
         inserted AS (\
           INSERT INTO {states} (state_key, version, state, expires_at) \
           SELECT h.state_key, 1, h.state, h.state_until FROM held h \
           WHERE h.state_key IS NOT NULL AND h.expected = 0 \
           ORDER BY h.state_key \
           ON CONFLICT (state_key) DO NOTHING RETURNING state_key), \
         updated AS (\
           UPDATE {states} s SET version = s.version + 1, state = h.state, \
             expires_at = h.state_until \
           FROM held h \
           WHERE s.state_key = h.state_key AND h.expected > 0 AND s.version = h.expected \
             AND (NOT h.chained OR s.xmin = pg_current_xact_id()::xid) \
           RETURNING s.state_key), \
         done AS (\
           UPDATE {events} e SET status = {DECIDED}, token = NULL, expires_at = h.until \
           FROM held h \
           WHERE e.account_id = h.account_id AND e.event_id = h.event_id \
             AND (h.state_key IS NULL \
               OR h.state_key IN (SELECT state_key FROM inserted) \
               OR h.state_key IN (SELECT state_key FROM updated)) \
           RETURNING h.ord) \
         SELECT EXISTS (SELECT 1 FROM ev WHERE ev.ord = i.ord), \
           EXISTS (SELECT 1 FROM done WHERE done.ord = i.ord) \
         FROM input i ORDER BY i.ord"
    )
}

/// The lease's end on the database's clock. Parameter $4: the lease in
/// milliseconds.
const LEASE_END: &str = "clock_timestamp() + $4::bigint * interval '1 millisecond'";

/// Whether the event row `row` is live: a claim whose lease has not ended
/// by the database's clock, or a decided event whose window has not ended
/// by the caller's (`$5`).
fn live(row: &str) -> String {
    format!(
        "{row}.expires_at > CASE WHEN {row}.status = {CLAIMED} THEN clock_timestamp() ELSE $5 END"
    )
}

/// Whether the event row `row` is a live claim's of the same holder as
/// `$3` under another lease: an earlier attempt's, which the claim takes
/// over. (A token is the holder's 16 bytes, then the lease's.)
fn mine(row: &str) -> String {
    format!(
        "({row}.status = {CLAIMED} AND {row}.token <> $3::bytea \
         AND substring({row}.token from 1 for 16) = substring($3::bytea from 1 for 16))"
    )
}

/// Whether `schema` is a plain lower-case identifier: `[a-z_][a-z0-9_]*`, at
/// most 63 bytes (PostgreSQL's limit).
pub(crate) fn valid_schema(schema: &str) -> bool {
    let mut bytes = schema.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'_'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
        && schema.len() <= 63
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names() {
        for ok in ["public", "_x", "alm_test_1_2", "a9"] {
            assert!(valid_schema(ok), "{ok}");
        }
        for bad in ["", "9a", "A", "a-b", "a\"b", "a b", &"a".repeat(64)] {
            assert!(!valid_schema(bad), "{bad}");
        }
    }
}
