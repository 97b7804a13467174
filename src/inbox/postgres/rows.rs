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

pub(super) fn dead_letter(row: &Row) -> Result<DeadLetter, InboxError> {
    let get = |e| pg_error("unexpected dead letter row", e);
    Ok(DeadLetter::new(
        DeadLetterId(column_u64(row, 0)?),
        NewDeadLetter {
            account_id: AccountId(column_u64(row, 1)?),
            event_id: row.try_get(2).map_err(get)?,
            event_name: row.try_get(3).map_err(get)?,
            event: row.try_get(4).map_err(get)?,
            error: row.try_get(5).map_err(get)?,
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
        row.try_get(3).map_err(get)?,
        row.try_get(4).map_err(get)?,
    ))
}

pub(super) const DEAD_LETTER_COLUMNS: &str =
    "id, account_id, event_id, event_name, event, error, attempts, at";
pub(super) const QUARANTINE_COLUMNS: &str = "id, account_id, body, error, received_at";
