//! The PostgreSQL inbox's archive: `alm_archive` (a completed delivery's
//! bytes, moved from `alm_inbox` by the statement that completes it) and
//! `alm_archive_events` (one row per event, indexed by `eventId`, learner
//! and instance, each with the time received).

use time::OffsetDateTime;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::rows::refused;
use super::{PostgresInbox, pg_error, token_bytes};
use crate::inbox::{
    ArchiveCursor, ArchiveFilter, ArchivedDelivery, ArchivedEvent, DeliveryId, FoundEvent,
    InboxError, LeaseToken, NewDeadLetter,
};
use crate::{AccountId, UserId};

type Param = Box<dyn ToSql + Sync + Send>;

/// The columns of an event row, in the order [`event_row`] reads them.
const EVENT_COLUMNS: &str = "archive_id, account_id, received_at, idx, event_id, event_name, \
     user_id, lo_instance_id, happened_at, decision, reason, attempts, error";

/// The events' columns as arrays, one element per event, for `unnest`.
struct Columns {
    idx: Vec<i32>,
    event_id: Vec<Option<Vec<u8>>>,
    event_name: Vec<Option<Vec<u8>>>,
    user_id: Vec<Option<i64>>,
    lo_instance_id: Vec<Option<Vec<u8>>>,
    happened_at: Vec<Option<OffsetDateTime>>,
    decision: Vec<String>,
    reason: Vec<Option<String>>,
    attempts: Vec<i32>,
    error: Vec<Option<Vec<u8>>>,
}

impl Columns {
    fn of(events: &[ArchivedEvent]) -> Self {
        let bytes = |s: Option<&str>| s.map(|s| s.as_bytes().to_vec());
        Self {
            idx: events
                .iter()
                .map(|e| i32::try_from(e.index).unwrap_or(i32::MAX))
                .collect(),
            event_id: events
                .iter()
                .map(|e| bytes(e.event_id.as_ref().map(|i| i.as_str())))
                .collect(),
            event_name: events
                .iter()
                .map(|e| bytes(e.event_name.as_ref().map(|n| n.as_str())))
                .collect(),
            user_id: events
                .iter()
                .map(|e| e.user_id.map(|u| u.get() as i64))
                .collect(),
            lo_instance_id: events
                .iter()
                .map(|e| bytes(e.lo_instance_id.as_ref().map(|i| i.as_str())))
                .collect(),
            happened_at: events.iter().map(|e| e.timestamp).collect(),
            decision: events.iter().map(|e| e.decision.clone()).collect(),
            reason: events.iter().map(|e| e.reason.clone()).collect(),
            attempts: events
                .iter()
                .map(|e| i32::try_from(e.attempts).unwrap_or(i32::MAX))
                .collect(),
            error: events.iter().map(|e| bytes(e.error.as_deref())).collect(),
        }
    }
}

/// Reads a text kept as UTF-8 `BYTEA`.
fn text(row: &Row, i: usize) -> Result<Option<String>, tokio_postgres::Error> {
    Ok(row
        .try_get::<_, Option<Vec<u8>>>(i)?
        .map(|b| String::from_utf8_lossy(&b).into_owned()))
}

/// Reads an event row ([`EVENT_COLUMNS`]).
fn event_row(row: &Row) -> Result<FoundEvent, tokio_postgres::Error> {
    let event = ArchivedEvent {
        index: u32::try_from(row.try_get::<_, i32>(3)?).unwrap_or(0),
        event_id: text(row, 4)?.and_then(|s| s.parse().ok()),
        event_name: text(row, 5)?.map(|s| s.as_str().into()),
        user_id: row.try_get::<_, Option<i64>>(6)?.map(|u| UserId(u as u64)),
        lo_instance_id: text(row, 7)?.and_then(|s| s.parse().ok()),
        timestamp: row.try_get(8)?,
        decision: row.try_get(9)?,
        reason: row.try_get(10)?,
        attempts: u32::try_from(row.try_get::<_, i32>(11)?).unwrap_or(0),
        error: text(row, 12)?,
    };
    Ok(FoundEvent::new(
        DeliveryId(row.try_get::<_, i64>(0)? as u64),
        AccountId(row.try_get::<_, i64>(1)? as u64),
        row.try_get(2)?,
        event,
    ))
}

/// `filter`'s conditions (on the delivery's time and account, and with
/// `on_events` on the events' columns), joined by `AND`, each column
/// prefixed by `table`; their values appended to `values`.
fn conditions(
    filter: &ArchiveFilter,
    on_events: bool,
    table: &str,
    values: &mut Vec<Param>,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut push = |sql: &str, value: Param| {
        values.push(value);
        out.push(format!("{table}{sql}{}", values.len()));
    };
    if let Some(from) = filter.from {
        push("received_at >= $", Box::new(from));
    }
    if let Some(to) = filter.to {
        push("received_at < $", Box::new(to));
    }
    if let Some(account) = filter.account_id {
        push("account_id = $", Box::new(account.get() as i64));
    }
    if on_events {
        if let Some(id) = &filter.event_id {
            push("event_id = $", Box::new(id.as_str().as_bytes().to_vec()));
        }
        if let Some(user) = filter.user_id {
            push("user_id = $", Box::new(user.get() as i64));
        }
        if let Some(instance) = &filter.lo_instance_id {
            push(
                "lo_instance_id = $",
                Box::new(instance.as_str().as_bytes().to_vec()),
            );
        }
        if !filter.event_names.is_empty() {
            let names: Vec<Vec<u8>> = filter
                .event_names
                .iter()
                .map(|n| n.as_str().as_bytes().to_vec())
                .collect();
            values.push(Box::new(names));
            out.push(format!("{table}event_name = ANY(${})", values.len()));
        }
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

fn refs(values: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    values.iter().map(|v| &**v as &(dyn ToSql + Sync)).collect()
}

impl PostgresInbox {
    /// Completes delivery `id` if `token` holds it, moving its row to the
    /// archive with `events` in one statement (the body is copied inside
    /// the server), and keeping `letters` in the same transaction.
    pub(super) async fn archive_complete(
        &self,
        id: DeliveryId,
        token: LeaseToken,
        letters: &[NewDeadLetter],
        events: &[ArchivedEvent],
    ) -> Result<bool, InboxError> {
        let sql = format!(
            "WITH done AS (
                DELETE FROM {inbox} WHERE id = $1 AND lease_token = $2
                RETURNING id, account_id, body, received_at),
             kept AS (
                INSERT INTO {archive} (id, account_id, body, received_at)
                SELECT id, account_id, body, date_trunc('milliseconds', received_at) FROM done
                RETURNING id, account_id, received_at),
             events AS (
                INSERT INTO {events} (archive_id, account_id, received_at, idx, event_id,
                    event_name, user_id, lo_instance_id, happened_at, decision, reason,
                    attempts, error)
                SELECT k.id, k.account_id, k.received_at, e.* FROM kept k,
                    unnest($3::INTEGER[], $4::BYTEA[], $5::BYTEA[], $6::BIGINT[], $7::BYTEA[],
                           $8::TIMESTAMPTZ[], $9::TEXT[], $10::TEXT[], $11::INTEGER[],
                           $12::BYTEA[]) AS e)
             SELECT count(*) FROM kept",
            inbox = self.t("alm_inbox"),
            archive = self.t("alm_archive"),
            events = self.t("alm_archive_events"),
        );
        let c = Columns::of(events);
        let (delivery, token) = (id.0 as i64, token_bytes(token));
        let params: [&(dyn ToSql + Sync); 12] = [
            &delivery,
            &token,
            &c.idx,
            &c.event_id,
            &c.event_name,
            &c.user_id,
            &c.lo_instance_id,
            &c.happened_at,
            &c.decision,
            &c.reason,
            &c.attempts,
            &c.error,
        ];
        let failed = |e: tokio_postgres::Error| {
            let permanent = refused(&e);
            let error = pg_error("complete failed", e);
            if permanent { error.permanent() } else { error }
        };
        if letters.is_empty() {
            let rows = self.query("complete", &sql, &params).await?;
            return Ok(rows.first().map(|r| r.get::<_, i64>(0)) == Some(1));
        }
        let keeping = async {
            let mut client = self.client().await?;
            let tx = client
                .transaction()
                .await
                .map_err(|e| pg_error("cannot begin complete", e))?;
            let kept: i64 = tx.query_one(&sql, &params).await.map_err(failed)?.get(0);
            if kept != 1 {
                return Ok(false);
            }
            self.keep_letters(&tx, letters).await?;
            tx.commit()
                .await
                .map_err(|e| pg_error("complete failed", e))?;
            Ok(true)
        };
        self.bounded("complete", keeping).await
    }

    pub(super) async fn archive_search(
        &self,
        filter: &ArchiveFilter,
        limit: usize,
    ) -> Result<Vec<FoundEvent>, InboxError> {
        let mut values: Vec<Param> = Vec::new();
        let conditions = conditions(filter, true, "", &mut values);
        values.push(Box::new(i64::try_from(limit).unwrap_or(i64::MAX)));
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM {} {} ORDER BY received_at, archive_id, idx LIMIT ${}",
            self.t("alm_archive_events"),
            where_clause(&conditions),
            values.len()
        );
        let rows = self
            .query("search the archive", &sql, &refs(&values))
            .await?;
        rows.iter()
            .map(event_row)
            .collect::<Result<_, _>>()
            .map_err(|e| pg_error("cannot read the archive", e))
    }

    pub(super) async fn archive_read(
        &self,
        filter: &ArchiveFilter,
        after: Option<ArchiveCursor>,
        limit: usize,
    ) -> Result<Vec<ArchivedDelivery>, InboxError> {
        let mut values: Vec<Param> = Vec::new();
        let mut outer = conditions(filter, false, "a.", &mut values);
        if let Some(after) = after {
            values.push(Box::new(after.received_at));
            values.push(Box::new(after.id.0 as i64));
            let n = values.len();
            outer.push(format!("(a.received_at, a.id) > (${}, ${n})", n - 1));
        }
        if filter.has_event_condition() {
            let inner = conditions(filter, true, "e.", &mut values);
            outer.push(format!(
                "EXISTS (SELECT 1 FROM {} e WHERE e.archive_id = a.id AND {})",
                self.t("alm_archive_events"),
                inner.join(" AND ")
            ));
        }
        values.push(Box::new(i64::try_from(limit).unwrap_or(i64::MAX)));
        let sql = format!(
            "SELECT a.id, a.account_id, a.body, a.received_at FROM {} a {} \
             ORDER BY a.received_at, a.id LIMIT ${}",
            self.t("alm_archive"),
            where_clause(&outer),
            values.len(),
        );
        let page = self.query("read the archive", &sql, &refs(&values)).await?;
        let ids: Vec<i64> = page.iter().map(|r| r.get(0)).collect();
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM {} WHERE archive_id = ANY($1) ORDER BY archive_id, idx",
            self.t("alm_archive_events")
        );
        let rows = self.query("read the archive", &sql, &[&ids]).await?;
        let mut events: std::collections::HashMap<u64, Vec<ArchivedEvent>> =
            std::collections::HashMap::new();
        for row in &rows {
            let found = event_row(row).map_err(|e| pg_error("cannot read the archive", e))?;
            events
                .entry(found.delivery.0)
                .or_default()
                .push(found.event);
        }
        page.iter()
            .map(|r| {
                let id = r.try_get::<_, i64>(0)? as u64;
                Ok(ArchivedDelivery::new(
                    DeliveryId(id),
                    AccountId(r.try_get::<_, i64>(1)? as u64),
                    r.try_get(2)?,
                    r.try_get(3)?,
                    events.remove(&id).unwrap_or_default(),
                ))
            })
            .collect::<Result<_, tokio_postgres::Error>>()
            .map_err(|e| pg_error("cannot read the archive", e))
    }

    pub(super) async fn archive_sweep(
        &self,
        before: OffsetDateTime,
        limit: usize,
    ) -> Result<u64, InboxError> {
        let sql = format!(
            "WITH old AS (SELECT id FROM {archive} WHERE received_at < $1
                          ORDER BY received_at, id LIMIT $2),
                  gone AS (DELETE FROM {events} WHERE archive_id IN (SELECT id FROM old))
             DELETE FROM {archive} WHERE id IN (SELECT id FROM old)",
            archive = self.t("alm_archive"),
            events = self.t("alm_archive_events"),
        );
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.execute("sweep the archive", &sql, &[&before, &limit])
            .await
    }
}
