//! The inbox in an embedded SQLite file: for a single receiver that must

mod kept;
mod open;

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params, params_from_iter};
use time::OffsetDateTime;

use super::types::{duration_millis, from_millis, unix_millis};
use super::{
    DeadLetter, DeadLetterId, DeliveryId, Inbox, InboxError, InboxStats, LeaseToken, NewDeadLetter,
    NewDelivery, QuarantineId, Quarantined, Taken,
};
use crate::AccountId;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS alm_inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id INTEGER NOT NULL,
    body BLOB NOT NULL,
    received_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
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
";

/// Takes the oldest account head that is neither leased nor waiting. The
/// heads are found by walking the `(account_id, id)` index one account at a
/// time, so a take costs one probe per account however long the backlog.
const TAKE: &str = "
UPDATE alm_inbox SET lease_token = ?2, lease_until_ms = ?3, not_before_ms = NULL
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
    ORDER BY d.id LIMIT 1)
RETURNING id, account_id, body, received_ms, attempts, last_error";

const DEAD_LETTER_COLUMNS: &str =
    "id, account_id, event_id, event_name, event, error, attempts, at_ms";

/// The inbox in an embedded SQLite file: for a single receiver that must
/// not lose an acknowledged delivery when it stops or crashes.
///
/// Three tables, created if missing (they may share a file with
/// [`SqliteStore`](crate::store::SqliteStore), or its very connection:
/// [`SqliteInbox::from_store`]):
///
/// ```sql
/// CREATE TABLE alm_inbox (id INTEGER PRIMARY KEY AUTOINCREMENT, account_id INTEGER,
///     body BLOB, received_ms INTEGER, attempts INTEGER, last_error TEXT,
///     not_before_ms INTEGER, lease_token BLOB, lease_until_ms INTEGER);
/// CREATE TABLE alm_dead_letters (id INTEGER PRIMARY KEY AUTOINCREMENT, account_id INTEGER,
///     event_id TEXT, event_name TEXT, event TEXT, error TEXT, attempts INTEGER, at_ms INTEGER);
/// CREATE TABLE alm_quarantine (id INTEGER PRIMARY KEY AUTOINCREMENT, account_id INTEGER,
///     body BLOB, error TEXT, received_ms INTEGER);
/// ```
///
/// **Durability**: WAL journaling with `synchronous=FULL`, so an appended
/// delivery is on disk when [`Inbox::append`] returns: it survives a crash
/// of the process and of the machine. Every operation is one statement or
/// one `BEGIN IMMEDIATE` transaction, run on tokio's blocking pool; another
/// process's write lock is waited for up to 5 s. Account ids are stored
/// bit-cast to `INTEGER`, times as Unix milliseconds.
/// Clones share the
/// connection.
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

fn sqlite_error(what: &str, e: rusqlite::Error) -> InboxError {
    InboxError::with_source(format!("sqlite: {what}"), e)
}

fn token_bytes(token: LeaseToken) -> [u8; 16] {
    token.0.to_be_bytes()
}

impl SqliteInbox {
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
    async fn append(&self, delivery: NewDelivery<'_>) -> Result<DeliveryId, InboxError> {
        let (account, body) = (delivery.account_id.get(), delivery.body.to_vec());
        let at = unix_millis(delivery.received_at);
        self.run("append", move |conn| {
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
            conn.query_row(TAKE, params![now_ms, token_bytes(token), until], |r| {
                Ok(Taken::new(
                    DeliveryId(r.get::<_, i64>(0)? as u64),
                    token,
                    AccountId(r.get::<_, i64>(1)? as u64),
                    r.get(2)?,
                    from_millis(r.get(3)?),
                    u32::try_from(r.get::<_, i64>(4)?).unwrap_or(u32::MAX),
                    r.get(5)?,
                ))
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
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let n = tx.execute(
                "DELETE FROM alm_inbox WHERE id = ?1 AND lease_token = ?2",
                params![id.0 as i64, token_bytes(token)],
            )?;
            if n != 1 {
                return Ok(false);
            }
            for l in &letters {
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
        })
        .await
    }

    async fn retry_later(
        &self,
        id: DeliveryId,
        token: LeaseToken,
        not_before: OffsetDateTime,
        attempts: u32,
        error: &str,
    ) -> Result<bool, InboxError> {
        self.update_held(
            "retry",
            "UPDATE alm_inbox SET lease_token = NULL, lease_until_ms = NULL, not_before_ms = ?3, \
             attempts = ?4, last_error = ?5 WHERE id = ?1 AND lease_token = ?2",
            id,
            token,
            vec![
                Value::Integer(unix_millis(not_before)),
                Value::Integer(i64::from(attempts)),
                Value::Text(error.to_owned()),
            ],
        )
        .await
    }

    async fn release(&self, id: DeliveryId, token: LeaseToken) -> Result<bool, InboxError> {
        self.update_held(
            "release",
            "UPDATE alm_inbox SET lease_token = NULL, lease_until_ms = NULL \
             WHERE id = ?1 AND lease_token = ?2",
            id,
            token,
            Vec::new(),
        )
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
                   (SELECT count(*) FROM alm_quarantine) \
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
                    ))
                },
            )
        })
        .await
    }
}
