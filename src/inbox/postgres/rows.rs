//! The inbox's tables and how their rows are read.

use tokio_postgres::Row;

use super::pg_error;
use crate::AccountId;
use crate::inbox::{
    DeadLetter, DeadLetterId, InboxError, NewDeadLetter, QuarantineId, Quarantined,
};

pub(super) fn column_u64(row: &Row, column: usize) -> Result<u64, InboxError> {
    row.try_get::<_, i64>(column)
        .map(|v| v as u64)
        .map_err(|e| pg_error("unexpected row", e))
}

/// A text kept as UTF-8 bytes, or `NULL`.
pub(super) fn column_text(row: &Row, column: usize) -> Result<Option<String>, InboxError> {
    row.try_get::<_, Option<Vec<u8>>>(column)
        .map_err(|e| pg_error("unexpected row", e))?
        .map(|bytes| String::from_utf8(bytes).map_err(|e| pg_error("a kept text is not UTF-8", e)))
        .transpose()
}

fn required_text(row: &Row, column: usize) -> Result<String, InboxError> {
    column_text(row, column)?.ok_or_else(|| InboxError::new("postgres: unexpected NULL"))
}

pub(super) fn dead_letter(row: &Row) -> Result<DeadLetter, InboxError> {
    let get = |e| pg_error("unexpected dead letter row", e);
    Ok(DeadLetter::new(
        DeadLetterId(column_u64(row, 0)?),
        NewDeadLetter {
            account_id: AccountId(column_u64(row, 1)?),
            event_id: column_text(row, 2)?,
            event_name: column_text(row, 3)?,
            event: required_text(row, 4)?,
            error: required_text(row, 5)?,
            attempts: u32::try_from(row.try_get::<_, i32>(6).map_err(get)?).unwrap_or(0),
            at: row.try_get(7).map_err(get)?,
        },
    ))
}

pub(super) fn quarantined(row: &Row) -> Result<Quarantined, InboxError> {
    let get = |e| pg_error("unexpected quarantine row", e);
    Ok(Quarantined::new(
        QuarantineId(column_u64(row, 0)?),
        row.try_get::<_, Option<i64>>(1)
            .map_err(get)?
            .map(|a| AccountId(a as u64)),
        row.try_get(2).map_err(get)?,
        required_text(row, 3)?,
        row.try_get(4).map_err(get)?,
    ))
}

pub(super) const DEAD_LETTER_COLUMNS: &str =
    "id, account_id, event_id, event_name, event, error, attempts, at";
pub(super) const QUARANTINE_COLUMNS: &str = "id, account_id, body, error, received_at";

/// Whether PostgreSQL refused a value for good: a data exception (class
/// 22, such as a NUL in a text) or a program limit (class 54, such as a
/// row too large). Trying again gives the same answer.
pub(super) fn refused(e: &tokio_postgres::Error) -> bool {
    e.code()
        .is_some_and(|c| c.code().starts_with("22") || c.code().starts_with("54"))
}

/// The statement that takes the oldest head of `inbox` that is neither
/// leased (on the server's clock), paused (in `paused`) nor waiting
/// (`not_before` against the caller's `$1`), and the deliveries that
/// follow it in its account, up to `$5` in all, stopping before one that
/// is leased or waiting: under token `$2` for `$3` milliseconds of the
/// server's clock, each attempt counted; a lease that ran out (a token
/// still there) counts as an abandoned attempt and records `$4` as the
/// last error. Only the head is locked with `SKIP LOCKED`: the
/// deliveries behind a head are taken by no one else.
pub(super) fn take(inbox: &str, paused: &str) -> String {
    format!(
        "WITH RECURSIVE heads AS (
             (SELECT account_id, id FROM {inbox} ORDER BY account_id, id LIMIT 1)
             UNION ALL
             SELECT n.account_id, n.id FROM heads h, LATERAL (
                 SELECT i.account_id, i.id FROM {inbox} i WHERE i.account_id > h.account_id
                 ORDER BY i.account_id, i.id LIMIT 1) n),
         head AS (
             SELECT c.id, c.account_id FROM {inbox} c
             WHERE c.id = ANY (ARRAY(SELECT id FROM heads))
               AND (c.lease_until IS NULL OR c.lease_until <= clock_timestamp())
               AND (c.not_before IS NULL OR c.not_before <= $1)
               AND NOT EXISTS (SELECT 1 FROM {paused} p
                               WHERE p.every OR p.account_id = c.account_id)
             ORDER BY c.id LIMIT 1
             FOR UPDATE SKIP LOCKED),
         run AS (
             SELECT id FROM head
             UNION ALL
             (SELECT r.id FROM {inbox} r, head h
              WHERE r.account_id = h.account_id AND r.id > h.id
                AND r.id < coalesce((
                    SELECT min(b.id) FROM {inbox} b
                    WHERE b.account_id = h.account_id AND b.id > h.id
                      AND (b.lease_until > clock_timestamp() OR b.not_before > $1)),
                    9223372036854775807)
              ORDER BY r.id LIMIT greatest($5::bigint - 1, 0)))
         UPDATE {inbox} d SET lease_token = $2,
             lease_until = clock_timestamp() + $3::float8 * interval '1 millisecond',
             not_before = NULL,
             attempts = d.attempts + 1,
             abandoned = d.abandoned + CASE WHEN d.lease_token IS NULL THEN 0 ELSE 1 END,
             last_error = CASE WHEN d.lease_token IS NULL THEN d.last_error ELSE $4 END
         WHERE d.id IN (SELECT id FROM run)
         RETURNING d.id, d.account_id, d.body, d.received_at, d.attempts, d.abandoned, d.last_error"
    )
}

/// The statement that ends the lease `$2` holds on delivery `$1` of
/// `inbox`: waiting until `$3` (or not), with `$4` as the last error (or
/// the one it had), and `$5` attempts taken back.
pub(super) fn give_back(inbox: &str) -> String {
    format!(
        "UPDATE {inbox} SET lease_token = NULL, lease_until = NULL, not_before = $3, \
         last_error = coalesce($4, last_error), attempts = greatest(attempts - $5, 0) \
         WHERE id = $1 AND lease_token = $2"
    )
}
