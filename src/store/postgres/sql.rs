//! The SQL: the schema's tables and every statement, with the schema's name
//! spelled out (it is validated first, so it can be quoted as is).

use super::{CLAIMED, DECIDED};

/// The statements, with the schema's tables spelled out.
#[derive(Clone)]
pub(super) struct Sql {
    pub(super) claim_and_load: String,
    pub(super) load: String,
    pub(super) decide: String,
    pub(super) commit_insert_state: String,
    pub(super) commit_update_state: String,
    pub(super) release: String,
    pub(super) sweep_events: String,
    pub(super) sweep_states: String,
}

impl Sql {
    pub(super) fn new(schema: &str) -> Self {
        let events = format!("\"{schema}\".alm_events");
        let states = format!("\"{schema}\".alm_states");
        Self {
            // One statement: the row as it was (what a lost claim means);
            // the claim, attempted only when that row is missing or expired
            // (so a duplicate or an event in flight locks and writes
            // nothing, and costs no WAL flush); and the state. Every part
            // reads the same snapshot; `ON CONFLICT` settles a race with a
            // claim made after it.
            claim_and_load: format!(
                "WITH existing AS (\
                   SELECT status, expires_at FROM {events} \
                   WHERE account_id = $1 AND event_id = $2), \
                 claimed AS (\
                   INSERT INTO {events} AS e (account_id, event_id, status, token, expires_at) \
                   SELECT $1, $2, {CLAIMED}, $3, $4 \
                   WHERE NOT EXISTS (SELECT 1 FROM existing WHERE expires_at > $5) \
                   ON CONFLICT (account_id, event_id) DO UPDATE \
                   SET status = {CLAIMED}, token = EXCLUDED.token, \
                       expires_at = EXCLUDED.expires_at \
                   WHERE e.expires_at <= $5 \
                   RETURNING e.token) \
                 SELECT EXISTS (SELECT 1 FROM claimed), (SELECT status FROM existing), \
                   s.version, s.state \
                 FROM (SELECT 1) AS one LEFT JOIN {states} AS s ON s.state_key = $6"
            ),
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
            sweep_events: format!(
                "DELETE FROM {events} WHERE ctid IN \
                 (SELECT ctid FROM {events} WHERE expires_at <= $1 LIMIT $2)"
            ),
            sweep_states: format!(
                "DELETE FROM {states} WHERE ctid IN \
                 (SELECT ctid FROM {states} WHERE expires_at <= $1 LIMIT $2)"
            ),
        }
    }

    pub(super) fn create(schema: &str) -> String {
        let create_schema = if schema == "public" {
            String::new()
        } else {
            format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\";")
        };
        format!(
            "{create_schema}
             CREATE TABLE IF NOT EXISTS \"{schema}\".alm_events (
                 account_id BIGINT      NOT NULL,
                 event_id   TEXT        NOT NULL,
                 status     SMALLINT    NOT NULL,
                 token      BYTEA,
                 expires_at TIMESTAMPTZ NOT NULL,
                 PRIMARY KEY (account_id, event_id)
             );
             CREATE INDEX IF NOT EXISTS alm_events_expires_at
                 ON \"{schema}\".alm_events (expires_at);
             CREATE TABLE IF NOT EXISTS \"{schema}\".alm_states (
                 state_key  TEXT        PRIMARY KEY,
                 version    BIGINT      NOT NULL,
                 state      JSONB       NOT NULL,
                 expires_at TIMESTAMPTZ NOT NULL
             );
             CREATE INDEX IF NOT EXISTS alm_states_expires_at
                 ON \"{schema}\".alm_states (expires_at);"
        )
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
