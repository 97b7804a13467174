//! The inbox in an embedded SQLite file: for a single receiver that must

mod archive;
mod kept;
mod open;
mod pause;
mod sql;

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};
use time::OffsetDateTime;

use super::types::{duration_millis, from_millis, unix_millis};
use super::{
    DeadLetter, DeadLetterId, DeliveryId, Inbox, InboxError, InboxStats, LEASE_RAN_OUT, LeaseToken,
    NewDeadLetter, NewDelivery, QuarantineId, Quarantined, Taken,
};
use crate::AccountId;
use crate::store::sqlite::open::{Sync as Flush, set_sync};
use sql::{GIVE_BACK, SCHEMA, TAKE};

const DEAD_LETTER_COLUMNS: &str =
    "id, account_id, event_id, event_name, event, error, attempts, at_ms";

/// The inbox in an embedded SQLite file: for a single receiver that must
/// not lose an acknowledged delivery when it stops or crashes.
///
/// Four tables, created if missing (they may share a file with
/// [`SqliteStore`](crate::store::SqliteStore), or its very connection:
/// [`SqliteInbox::from_store`]):
///
/// ```sql
/// CREATE TABLE alm_inbox (id INTEGER PRIMARY KEY AUTOINCREMENT, account_id INTEGER,
///     body BLOB, received_ms INTEGER, attempts INTEGER, abandoned INTEGER,
///     last_error TEXT, not_before_ms INTEGER, lease_token BLOB, lease_until_ms INTEGER);
/// CREATE TABLE alm_dead_letters (id INTEGER PRIMARY KEY AUTOINCREMENT, account_id INTEGER,
///     event_id TEXT, event_name TEXT, event TEXT, error TEXT, attempts INTEGER, at_ms INTEGER);
/// CREATE TABLE alm_quarantine (id INTEGER PRIMARY KEY AUTOINCREMENT, account_id INTEGER,
///     body BLOB, error TEXT, received_ms INTEGER);
/// CREATE TABLE alm_inbox_paused (every INTEGER, account_id INTEGER, since_ms INTEGER,
///     PRIMARY KEY (every, account_id));
/// ```
///
/// **Durability**: WAL journaling. What acknowledges a delivery (an
/// [`Inbox::append`], a malformed body put in quarantine) commits with
/// `synchronous=FULL`: it is on disk when the call returns and survives a
/// crash of the process and of the machine. Everything else (a take, a
/// completion, a retry, a replay) commits with `synchronous=NORMAL`: it
/// survives a crash of the process; a power cut can undo the last of them,
/// never an acknowledgement (the WAL is written in order, and the next
/// acknowledgement's flush covers what came before it). An undone take or
/// completion means the delivery is taken again; its events already
/// decided are duplicates if the store kept their decisions. Every operation is one statement or
/// one `BEGIN IMMEDIATE` transaction, run on tokio's blocking pool; another
/// process's write lock is waited for up to 5 s. Account ids are stored
/// bit-cast to `INTEGER`, times as Unix milliseconds; texts are bound with
/// their length, so a NUL is kept. A table of an earlier version gets its
/// `abandoned` column when the inbox opens. Leases run on the `now` the
/// caller passes (one process, one clock). Clones share the connection.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use alm_webhooks::AccountId;
/// use alm_webhooks::inbox::{Inbox, NewDelivery, SqliteInbox};
///
/// let dir = std::env::temp_dir().join(format!("alm-inbox-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let inbox = SqliteInbox::open(dir.join("inbox.db")).unwrap();
/// let now = time::OffsetDateTime::now_utc();
/// let body = br#"{"accountId":7,"events":[]}"#;
/// inbox.append(NewDelivery { account_id: AccountId(7), body, received_at: now }).await.unwrap();
/// assert_eq!(inbox.stats(now).await.unwrap().pending, 1);
/// // In memory, for tests:
/// assert_eq!(SqliteInbox::open_in_memory().unwrap().stats(now).await.unwrap().pending, 0);
/// # drop(inbox);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # }
/// ```
#[derive(Clone)]
pub struct SqliteInbox {
    conn: Arc<Mutex<Connection>>,
    path: Option<PathBuf>,
}

impl fmt::Debug for SqliteInbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteInbox")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// SQLite's error; permanent when SQLite refused a value for good (a
/// string or blob too big), so trying again cannot help.
fn sqlite_error(what: &str, e: rusqlite::Error) -> InboxError {
    let too_big = e.sqlite_error_code() == Some(rusqlite::ErrorCode::TooBig);
    let error = InboxError::with_source(format!("sqlite: {what}"), e);
    if too_big { error.permanent() } else { error }
}

fn token_bytes(token: LeaseToken) -> [u8; 16] {
    token.0.to_be_bytes()
}

impl SqliteInbox {
    /// [`SqliteInbox::run`] for a write that acknowledges a delivery: with
    /// `synchronous=FULL`, on disk when it returns (the connection runs
    /// `NORMAL` otherwise).
    async fn run_acknowledged<T, F>(&self, what: &'static str, f: F) -> Result<T, InboxError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        self.run(what, move |conn| {
            set_sync(conn, Flush::Full)?;
            let result = f(conn);
            let restored = set_sync(conn, Flush::Normal);
            let value = result?;
            restored.map(|()| value)
        })
        .await
    }

    /// Runs `f` with the connection on the blocking pool.
    async fn run<T, F>(&self, what: &'static str, f: F) -> Result<T, InboxError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        let job = move || f(&mut conn.lock().unwrap_or_else(PoisonError::into_inner));
        tokio::task::spawn_blocking(job)
            .await
            .map_err(|e| InboxError::with_source(format!("sqlite: {what} did not finish"), e))?
            .map_err(|e| sqlite_error(&format!("{what} failed"), e))
    }

    /// Runs an `UPDATE` of a delivery whose lease `token` holds; whether a
    /// row changed.
    async fn update_held(
        &self,
        what: &'static str,
        sql: &'static str,
        id: DeliveryId,
        token: LeaseToken,
        more: Vec<Value>,
    ) -> Result<bool, InboxError> {
        let mut values = vec![
            Value::Integer(id.0 as i64),
            Value::Blob(token_bytes(token).to_vec()),
        ];
        values.extend(more);
        self.run(what, move |conn| {
            Ok(conn.execute(sql, params_from_iter(values))? == 1)
        })
        .await
    }
}

fn dead_letter(row: &Row<'_>) -> rusqlite::Result<DeadLetter> {
    Ok(DeadLetter::new(
        DeadLetterId(row.get::<_, i64>(0)? as u64),
        NewDeadLetter {
            account_id: AccountId(row.get::<_, i64>(1)? as u64),
            event_id: row.get(2)?,
            event_name: row.get(3)?,
            event: row.get(4)?,
            error: row.get(5)?,
            attempts: u32::try_from(row.get::<_, i64>(6)?).unwrap_or(u32::MAX),
            at: from_millis(row.get(7)?),
        },
    ))
}

fn quarantined(row: &Row<'_>) -> rusqlite::Result<Quarantined> {
    Ok(Quarantined::new(
        QuarantineId(row.get::<_, i64>(0)? as u64),
        row.get::<_, Option<i64>>(1)?.map(|a| AccountId(a as u64)),
        row.get(2)?,
        row.get(3)?,
        from_millis(row.get(4)?),
    ))
}

fn insert_delivery(
    conn: &Connection,
    account: u64,
    body: &[u8],
    at_ms: i64,
) -> rusqlite::Result<u64> {
    conn.query_row(
        "INSERT INTO alm_inbox (account_id, body, received_ms) VALUES (?1, ?2, ?3) RETURNING id",
        params![account as i64, body, at_ms],
        |r| r.get::<_, i64>(0),
    )
    .map(|id| id as u64)
}

impl Inbox for SqliteInbox {
    delegate_pause!();
    delegate_archive!();

    async fn append(&self, delivery: NewDelivery<'_>) -> Result<DeliveryId, InboxError> {
        let (account, body) = (delivery.account_id.get(), delivery.body.to_vec());
        let at = unix_millis(delivery.received_at);
        self.run_acknowledged("append", move |conn| {
            insert_delivery(conn, account, &body, at)
        })
        .await
        .map(DeliveryId)
    }

    async fn take(
        &self,
        lease: Duration,
        now: OffsetDateTime,
    ) -> Result<Option<Taken>, InboxError> {
        let now_ms = unix_millis(now);
        let until = now_ms.saturating_add(duration_millis(lease));
        let token = LeaseToken::random();
        self.run("take", move |conn| {
            let params = params![now_ms, token_bytes(token), until, LEASE_RAN_OUT];
            conn.query_row(TAKE, params, |r| {
                let count = |i| {
                    r.get::<_, i64>(i)
                        .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
                };
                Ok(Taken::new(
                    DeliveryId(r.get::<_, i64>(0)? as u64),
                    token,
                    AccountId(r.get::<_, i64>(1)? as u64),
                    r.get(2)?,
                    from_millis(r.get(3)?),
                    count(4)?,
                    r.get(6)?,
                )
                .with_abandoned(count(5)?))
            })
            .optional()
        })
        .await
    }

    async fn renew(
        &self,
        id: DeliveryId,
        token: LeaseToken,
        lease: Duration,
        now: OffsetDateTime,
    ) -> Result<bool, InboxError> {
        let until = unix_millis(now).saturating_add(duration_millis(lease));
        self.update_held(
            "renew",
            "UPDATE alm_inbox SET lease_until_ms = ?3 WHERE id = ?1 AND lease_token = ?2",
            id,
            token,
            vec![Value::Integer(until)],
        )
        .await
    }

    async fn complete(
        &self,
        id: DeliveryId,
        token: LeaseToken,
        dead_letters: &[NewDeadLetter],
    ) -> Result<bool, InboxError> {
        let letters = dead_letters.to_vec();
        self.run("complete", move |conn| {
            archive::complete(conn, id, token, &letters, None)
        })
        .await
    }

    async fn retry_later(
        &self,
        id: DeliveryId,
        token: LeaseToken,
        not_before: OffsetDateTime,
        error: &str,
    ) -> Result<bool, InboxError> {
        let (at, error) = (unix_millis(not_before), error.to_owned());
        let more = vec![Value::Integer(at), Value::Text(error), Value::Integer(0)];
        self.update_held("retry", GIVE_BACK, id, token, more).await
    }

    async fn postpone(
        &self,
        id: DeliveryId,
        token: LeaseToken,
        not_before: OffsetDateTime,
        error: &str,
    ) -> Result<bool, InboxError> {
        let (at, error) = (unix_millis(not_before), error.to_owned());
        let more = vec![Value::Integer(at), Value::Text(error), Value::Integer(1)];
        self.update_held("postpone", GIVE_BACK, id, token, more)
            .await
    }

    async fn release(&self, id: DeliveryId, token: LeaseToken) -> Result<bool, InboxError> {
        let more = vec![Value::Null, Value::Null, Value::Integer(1)];
        self.update_held("release", GIVE_BACK, id, token, more)
            .await
    }

    delegate_kept!();

    async fn stats(&self, now: OffsetDateTime) -> Result<InboxStats, InboxError> {
        let now_ms = unix_millis(now);
        self.run("stats", move |conn| {
            conn.query_row(
                "SELECT count(*), \
                   coalesce(sum(lease_until_ms > ?1), 0), \
                   coalesce(sum(coalesce(lease_until_ms <= ?1, 1) AND not_before_ms > ?1), 0), \
                   min(received_ms), \
                   (SELECT count(*) FROM alm_dead_letters), \
                   (SELECT count(*) FROM alm_quarantine), \
                   (SELECT coalesce(sum(length(body)), 0) FROM alm_quarantine) \
                 FROM alm_inbox",
                [now_ms],
                |r| {
                    let (total, in_flight, retrying): (i64, i64, i64) =
                        (r.get(0)?, r.get(1)?, r.get(2)?);
                    let oldest: Option<i64> = r.get(3)?;
                    Ok(InboxStats::new(
                        (total - in_flight - retrying) as u64,
                        in_flight as u64,
                        retrying as u64,
                        r.get::<_, i64>(4)? as u64,
                        r.get::<_, i64>(5)? as u64,
                        oldest.map(|ms| super::types::age(now, from_millis(ms))),
                    )
                    .with_quarantined_bytes(r.get::<_, i64>(6)? as u64))
                },
            )
        })
        .await
    }
}
