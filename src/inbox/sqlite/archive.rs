//! The SQLite inbox's archive: `alm_archive` (a completed delivery's
//! bytes, copied from `alm_inbox` in the transaction that completes it)
//! and `alm_archive_events` (one row per event, indexed by `eventId`,
//! learner and instance, each with the time received).

use rusqlite::types::Value;
use rusqlite::{Connection, Row, Transaction, TransactionBehavior, params, params_from_iter};
use time::OffsetDateTime;

use super::{SqliteInbox, token_bytes};
use crate::inbox::types::{from_millis, unix_millis};
use crate::inbox::{
    ArchiveCursor, ArchiveFilter, ArchivedDelivery, ArchivedEvent, DeliveryId, FoundEvent,
    InboxError, LeaseToken, NewDeadLetter,
};
use crate::{AccountId, UserId};

/// The columns of an event row, in the order [`event_row`] reads them.
const EVENT_COLUMNS: &str = "archive_id, account_id, received_ms, idx, event_id, event_name, \
     user_id, lo_instance_id, timestamp_ms, decision, reason, attempts, error";

/// Completes delivery `id` if `token` holds it: keeps `letters`, and with
/// `events` moves its row to the archive (the body copied inside SQLite),
/// else deletes it. One transaction.
pub(super) fn complete(
    conn: &mut Connection,
    id: DeliveryId,
    token: LeaseToken,
    letters: &[NewDeadLetter],
    events: Option<&[ArchivedEvent]>,
) -> rusqlite::Result<bool> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let (delivery, token) = (id.0 as i64, token_bytes(token));
    if let Some(events) = events {
        let kept: Option<(i64, i64)> = tx
            .query_row(
                "INSERT INTO alm_archive (id, account_id, body, received_ms) \
                 SELECT id, account_id, body, received_ms FROM alm_inbox \
                 WHERE id = ?1 AND lease_token = ?2 RETURNING account_id, received_ms",
                params![delivery, token],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })?;
        let Some((account, received)) = kept else {
            return Ok(false);
        };
        insert_events(&tx, delivery, account, received, events)?;
    }
    let n = tx.execute(
        "DELETE FROM alm_inbox WHERE id = ?1 AND lease_token = ?2",
        params![delivery, token],
    )?;
    if n != 1 {
        return Ok(false);
    }
    for l in letters {
        tx.execute(
            "INSERT INTO alm_dead_letters (account_id, event_id, event_name, event, error, \
             attempts, at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                l.account_id.get() as i64,
                l.event_id,
                l.event_name,
                l.event,
                l.error,
                i64::from(l.attempts),
                unix_millis(l.at)
            ],
        )?;
    }
    tx.commit()?;
    Ok(true)
}

fn insert_events(
    tx: &Transaction<'_>,
    delivery: i64,
    account: i64,
    received: i64,
    events: &[ArchivedEvent],
) -> rusqlite::Result<()> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO alm_archive_events (archive_id, account_id, received_ms, idx, event_id, \
         event_name, user_id, lo_instance_id, timestamp_ms, decision, reason, attempts, error) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?;
    for e in events {
        insert.execute(params![
            delivery,
            account,
            received,
            i64::from(e.index),
            e.event_id.as_ref().map(|i| i.as_str()),
            e.event_name.as_ref().map(|n| n.as_str()),
            e.user_id.map(|u| u.get() as i64),
            e.lo_instance_id.as_ref().map(|i| i.as_str()),
            e.timestamp.map(unix_millis),
            e.decision,
            e.reason,
            i64::from(e.attempts),
            e.error,
        ])?;
    }
    Ok(())
}

/// Reads an event row ([`EVENT_COLUMNS`]).
fn event_row(row: &Row<'_>) -> rusqlite::Result<FoundEvent> {
    let text = |i: usize| row.get::<_, Option<String>>(i);
    let event = ArchivedEvent {
        index: u32::try_from(row.get::<_, i64>(3)?).unwrap_or(u32::MAX),
        event_id: text(4)?.and_then(|s| s.parse().ok()),
        event_name: text(5)?.map(|s| s.as_str().into()),
        user_id: row.get::<_, Option<i64>>(6)?.map(|u| UserId(u as u64)),
        lo_instance_id: text(7)?.and_then(|s| s.parse().ok()),
        timestamp: row.get::<_, Option<i64>>(8)?.map(from_millis),
        decision: row.get(9)?,
        reason: text(10)?,
        attempts: u32::try_from(row.get::<_, i64>(11)?).unwrap_or(u32::MAX),
        error: text(12)?,
    };
    Ok(FoundEvent::new(
        DeliveryId(row.get::<_, i64>(0)? as u64),
        AccountId(row.get::<_, i64>(1)? as u64),
        from_millis(row.get(2)?),
        event,
    ))
}

/// `filter`'s conditions on the columns of `table` (`alm_archive_events`
/// holds them all; `alm_archive` the time and account), joined by `AND`,
/// with their values.
fn conditions(filter: &ArchiveFilter, on_events: bool, values: &mut Vec<Value>) -> Vec<String> {
    let mut push = |sql: &str, value: Value| {
        values.push(value);
        sql.replace('#', &format!("?{}", values.len()))
    };
    let mut out = Vec::new();
    if let Some(from) = filter.from {
        out.push(push("received_ms >= #", Value::Integer(unix_millis(from))));
    }
    if let Some(to) = filter.to {
        out.push(push("received_ms < #", Value::Integer(unix_millis(to))));
    }
    if let Some(account) = filter.account_id {
        out.push(push("account_id = #", Value::Integer(account.get() as i64)));
    }
    if !on_events {
        return out;
    }
    if let Some(id) = &filter.event_id {
        out.push(push("event_id = #", Value::Text(id.as_str().to_owned())));
    }
    if let Some(user) = filter.user_id {
        out.push(push("user_id = #", Value::Integer(user.get() as i64)));
    }
    if let Some(instance) = &filter.lo_instance_id {
        out.push(push(
            "lo_instance_id = #",
            Value::Text(instance.as_str().to_owned()),
        ));
    }
    if !filter.event_names.is_empty() {
        let names: Vec<String> = filter
            .event_names
            .iter()
            .map(|n| push("#", Value::Text(n.as_str().to_owned())))
            .collect();
        out.push(format!("event_name IN ({})", names.join(", ")));
    }
    out
}

fn where_clause(conditions: &[String]) -> String {
    if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    }
}

impl SqliteInbox {
    pub(super) async fn archive_complete(
        &self,
        id: DeliveryId,
        token: LeaseToken,
        dead_letters: &[NewDeadLetter],
        events: &[ArchivedEvent],
    ) -> Result<bool, InboxError> {
        let (letters, events) = (dead_letters.to_vec(), events.to_vec());
        self.run("complete", move |conn| {
            complete(conn, id, token, &letters, Some(&events))
        })
        .await
    }

    pub(super) async fn archive_search(
        &self,
        filter: &ArchiveFilter,
        limit: usize,
    ) -> Result<Vec<FoundEvent>, InboxError> {
        let mut values = Vec::new();
        let conditions = conditions(filter, true, &mut values);
        values.push(Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM alm_archive_events {} \
             ORDER BY received_ms, archive_id, idx LIMIT ?{}",
            where_clause(&conditions),
            values.len()
        );
        self.run("search the archive", move |conn| {
            let mut statement = conn.prepare(&sql)?;
            let rows = statement.query_map(params_from_iter(values), event_row)?;
            rows.collect()
        })
        .await
    }

    pub(super) async fn archive_read(
        &self,
        filter: &ArchiveFilter,
        after: Option<ArchiveCursor>,
        limit: usize,
    ) -> Result<Vec<ArchivedDelivery>, InboxError> {
        let mut values = Vec::new();
        let mut outer: Vec<String> = conditions(filter, false, &mut values)
            .into_iter()
            .map(|c| format!("a.{c}"))
            .collect();
        if let Some(after) = after {
            values.push(Value::Integer(unix_millis(after.received_at)));
            values.push(Value::Integer(after.id.0 as i64));
            let n = values.len();
            outer.push(format!("(a.received_ms, a.id) > (?{}, ?{n})", n - 1));
        }
        if filter.has_event_condition() {
            let inner = conditions(filter, true, &mut values);
            outer.push(format!(
                "EXISTS (SELECT 1 FROM alm_archive_events e WHERE e.archive_id = a.id AND {})",
                inner
                    .iter()
                    .map(|c| format!("e.{c}"))
                    .collect::<Vec<_>>()
                    .join(" AND ")
            ));
        }
        values.push(Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
        let sql = format!(
            "SELECT a.id, a.account_id, a.body, a.received_ms FROM alm_archive a {} \
             ORDER BY a.received_ms, a.id LIMIT ?{}",
            where_clause(&outer),
            values.len()
        );
        self.run("read the archive", move |conn| {
            let mut statement = conn.prepare(&sql)?;
            let deliveries: Vec<(i64, i64, Vec<u8>, i64)> = statement
                .query_map(params_from_iter(values), |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?
                .collect::<rusqlite::Result<_>>()?;
            let mut events = conn.prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM alm_archive_events WHERE archive_id = ?1 ORDER BY idx"
            ))?;
            deliveries
                .into_iter()
                .map(|(id, account, body, received)| {
                    let found = events
                        .query_map([id], event_row)?
                        .map(|f| f.map(|f| f.event))
                        .collect::<rusqlite::Result<Vec<_>>>()?;
                    Ok(ArchivedDelivery::new(
                        DeliveryId(id as u64),
                        AccountId(account as u64),
                        body,
                        from_millis(received),
                        found,
                    ))
                })
                .collect()
        })
        .await
    }

    pub(super) async fn archive_sweep(
        &self,
        before: OffsetDateTime,
        limit: usize,
    ) -> Result<u64, InboxError> {
        let (before, limit) = (
            unix_millis(before),
            i64::try_from(limit).unwrap_or(i64::MAX),
        );
        self.run("sweep the archive", move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let old = "SELECT id FROM alm_archive WHERE received_ms < ?1 \
                       ORDER BY received_ms, id LIMIT ?2";
            tx.execute(
                &format!("DELETE FROM alm_archive_events WHERE archive_id IN ({old})"),
                params![before, limit],
            )?;
            let n = tx.execute(
                &format!("DELETE FROM alm_archive WHERE id IN ({old})"),
                params![before, limit],
            )?;
            tx.commit()?;
            Ok(n as u64)
        })
        .await
    }
}
