//! The learner projection on SQLite: table `alm_learner_records`, kept by a
//! commit hook in the commit's transaction, and its reads.

use std::io::Write;

use rusqlite::types::Value;
use rusqlite::{OptionalExtension, Row, Statement, Transaction, params, params_from_iter};
use time::OffsetDateTime;

use super::SqliteStore;
use super::codec::sqlite_error;
use crate::projection::{self, LearnerChanges, LearnerRecord, TranscriptCsv, parse_utc, utc_text};
use crate::store::{Decided, StoreError};
use crate::{AccountId, BoxError, LoInstanceId, UserId};

const COLUMNS: &str = "account_id, user_id, lo_instance_id, merge_state, updated_at, seq";

/// The commit hook that keeps `alm_learner_records`.
#[derive(Debug, Clone, Copy)]
struct Projection;

impl super::hooks::SqliteHook for Projection {
    /// Per commit: the events grouped by record (in key order), one read
    /// by key per record, the merge in Rust, and one upsert per record
    /// whose merge state changed, numbered from one `MAX(seq)` read for
    /// the commit (the transaction holds SQLite's write lock: no other
    /// writer can take a number meanwhile).
    fn on_commit(&self, tx: &Transaction<'_>, decided: &[Decided<'_>]) -> Result<(), BoxError> {
        let records = projection::by_record(decided.iter().map(|d| d.event));
        if records.is_empty() {
            return Ok(());
        }
        let now = OffsetDateTime::now_utc();
        let mut seq: i64 = tx
            .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM alm_learner_records")?
            .query_row([], |r| r.get(0))?;
        let mut read = tx.prepare_cached(READ)?;
        let mut upsert = tx.prepare_cached(UPSERT)?;
        for ((a, u, i), facts) in &records {
            let stored = read
                .query_row(params![a, u, i], decode)
                .optional()?
                .transpose()?
                .map(|(_, r)| r);
            let mut merged = stored.clone();
            for fact in facts {
                merged = Some(projection::merge(merged.as_ref(), fact, now));
            }
            let Some(merged) = merged else { continue };
            // An event the row already holds (or one that wins nothing)
            // changes no column: the row, its `seq` and `updated_at` stay.
            if stored.is_some_and(|s| s.summary == merged.summary) {
                continue;
            }
            seq += 1;
            write(&mut upsert, &merged, seq)?;
        }
        Ok(())
    }
}

/// The upsert of one record: a changed row is updated in place (its key
/// and instance index entries stay), not deleted and inserted again as by
/// `INSERT OR REPLACE`.
const UPSERT: &str = "INSERT INTO alm_learner_records (account_id, user_id, lo_instance_id, \
    lo_id, lo_type, status, progress_percent, date_enrolled, date_started, date_completed, \
    has_passed, enrollment_source, last_event_id, last_event_name, last_event_time, \
    updated_at, seq, merge_state) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18) \
    ON CONFLICT (account_id, user_id, lo_instance_id) DO UPDATE SET \
    lo_id = excluded.lo_id, lo_type = excluded.lo_type, status = excluded.status, \
    progress_percent = excluded.progress_percent, date_enrolled = excluded.date_enrolled, \
    date_started = excluded.date_started, date_completed = excluded.date_completed, \
    has_passed = excluded.has_passed, enrollment_source = excluded.enrollment_source, \
    last_event_id = excluded.last_event_id, last_event_name = excluded.last_event_name, \
    last_event_time = excluded.last_event_time, updated_at = excluded.updated_at, \
    seq = excluded.seq, merge_state = excluded.merge_state";

/// The read of one record by key.
const READ: &str = "SELECT account_id, user_id, lo_instance_id, merge_state, updated_at, seq \
    FROM alm_learner_records WHERE account_id = ?1 AND user_id = ?2 AND lo_instance_id = ?3";

fn write(upsert: &mut Statement<'_>, r: &LearnerRecord, seq: i64) -> rusqlite::Result<()> {
    let time = |t: Option<OffsetDateTime>| t.map(utc_text);
    upsert
        .execute(params![
            r.account_id.get() as i64,
            r.user_id.get() as i64,
            r.lo_instance_id.as_str(),
            r.lo_id.as_str(),
            r.lo_type.as_str(),
            r.status.as_str(),
            r.progress_percent,
            time(r.date_enrolled),
            time(r.date_started),
            time(r.date_completed),
            r.has_passed,
            r.enrollment_source.as_ref().map(|s| s.as_str()),
            r.last_event_id.as_str(),
            r.last_event_name.as_str(),
            utc_text(r.last_event_time),
            utc_text(r.updated_at),
            seq,
            r.summary_json(),
        ])
        .map(drop)
}

/// The export's columns, in the order of [`crate::projection::CSV_HEADER`],
/// in key order. The columns are written from the record each time its
/// merge state changes (the times as [`utc_text`]), so they are copied as
/// they are: nothing is decoded or formatted again.
const EXPORT: &str = "SELECT account_id, user_id, lo_id, lo_type, lo_instance_id, status, \
    progress_percent, date_enrolled, date_started, date_completed, has_passed, \
    enrollment_source, last_event_id, last_event_name, last_event_time, updated_at \
    FROM alm_learner_records ORDER BY account_id, user_id, lo_instance_id";

/// Writes a row of [`EXPORT`] as [`TranscriptCsv::write`] writes its record.
fn export_row<W: Write>(
    row: &Row<'_>,
    csv: &mut TranscriptCsv<W>,
) -> rusqlite::Result<Result<(), BoxError>> {
    let account = (row.get::<_, i64>(0)? as u64).to_string();
    let user = (row.get::<_, i64>(1)? as u64).to_string();
    let percent = row.get::<_, f64>(6)?.to_string();
    let passed = match row.get::<_, Option<bool>>(10)? {
        Some(true) => "true",
        Some(false) => "false",
        None => "",
    };
    let text = |i: usize| -> rusqlite::Result<&str> {
        match row.get_ref(i)? {
            rusqlite::types::ValueRef::Null => Ok(""),
            value => value.as_str().map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(i, value.data_type(), Box::new(e))
            }),
        }
    };
    let fields = [
        account.as_str(),
        user.as_str(),
        text(2)?,
        text(3)?,
        text(4)?,
        text(5)?,
        percent.as_str(),
        text(7)?,
        text(8)?,
        text(9)?,
        passed,
        text(11)?,
        text(12)?,
        text(13)?,
        text(14)?,
        text(15)?,
    ];
    Ok(csv.write_fields(&fields).map_err(BoxError::from))
}

/// An id as stored: the `u64` bit-cast to `i64`.
fn id(value: u64) -> Value {
    Value::Integer(value as i64)
}

type Decoded = Result<(u64, LearnerRecord), BoxError>;

/// A row of [`COLUMNS`] as its record (and its sequence number).
fn decode(row: &Row<'_>) -> rusqlite::Result<Decoded> {
    let (account, user): (i64, i64) = (row.get(0)?, row.get(1)?);
    let instance: String = row.get(2)?;
    let (summary, updated_at): (String, String) = (row.get(3)?, row.get(4)?);
    let seq: i64 = row.get(5)?;
    Ok((|| {
        let updated_at = parse_utc(&updated_at).ok_or("updated_at is not RFC 3339")?;
        let record = LearnerRecord::from_stored(
            AccountId(account as u64),
            UserId(user as u64),
            instance.parse()?,
            &summary,
            updated_at,
        )?;
        Ok((seq as u64, record))
    })())
}

fn decoded(rows: Vec<Decoded>) -> Result<Vec<(u64, LearnerRecord)>, StoreError> {
    rows.into_iter()
        .map(|r| {
            r.map_err(|e| {
                StoreError::with_source(
                    "sqlite: a learner record does not decode",
                    std::io::Error::other(e),
                )
            })
        })
        .collect()
}

impl SqliteStore {
    /// Keeps the learner projection (table `alm_learner_records`, created
    /// if missing) in the transaction of every commit: see
    /// [`crate::projection`] for what each column holds.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use alm_webhooks::{AccountId, UserId, store::SqliteStore};
    /// let store = SqliteStore::open_in_memory().unwrap().with_learner_projection().await.unwrap();
    /// let rows = store.learner_records_of_user(AccountId(1), UserId(7)).await.unwrap();
    /// assert!(rows.is_empty());
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// When the table cannot be created.
    pub async fn with_learner_projection(self) -> Result<Self, StoreError> {
        self.run("learner table", super::learner_schema::make)
            .await?;
        Ok(self.with_hook(Projection))
    }

    async fn learner_query(
        &self,
        filter: &'static str,
        args: Vec<Value>,
    ) -> Result<Vec<(u64, LearnerRecord)>, StoreError> {
        let rows = self
            .run("learner records", move |conn| {
                let sql = format!("SELECT {COLUMNS} FROM alm_learner_records WHERE {filter}");
                let mut statement = conn.prepare_cached(&sql)?;
                let rows = statement.query_map(params_from_iter(args), decode)?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
            })
            .await?;
        decoded(rows)
    }

    /// The record of a learner in an instance (either spelling of a
    /// learning path), if any event of it was decided.
    ///
    /// # Errors
    ///
    /// When SQLite fails.
    pub async fn learner_record(
        &self,
        account: AccountId,
        user: UserId,
        lo_instance: &LoInstanceId,
    ) -> Result<Option<LearnerRecord>, StoreError> {
        let instance = Value::Text(lo_instance.canonical().to_string());
        let args = vec![id(account.get()), id(user.get()), instance];
        let filter = "account_id = ?1 AND user_id = ?2 AND lo_instance_id = ?3";
        Ok(self
            .learner_query(filter, args)
            .await?
            .pop()
            .map(|(_, r)| r))
    }

    /// Every record of a learner, by instance id.
    ///
    /// # Errors
    ///
    /// When SQLite fails.
    pub async fn learner_records_of_user(
        &self,
        account: AccountId,
        user: UserId,
    ) -> Result<Vec<LearnerRecord>, StoreError> {
        let args = vec![id(account.get()), id(user.get())];
        let filter = "account_id = ?1 AND user_id = ?2 ORDER BY lo_instance_id";
        let rows = self.learner_query(filter, args).await?;
        Ok(rows.into_iter().map(|(_, r)| r).collect())
    }

    /// Every record of an instance, by user id.
    ///
    /// # Errors
    ///
    /// When SQLite fails.
    pub async fn learner_records_of_instance(
        &self,
        account: AccountId,
        lo_instance: &LoInstanceId,
    ) -> Result<Vec<LearnerRecord>, StoreError> {
        let instance = Value::Text(lo_instance.canonical().to_string());
        let args = vec![id(account.get()), instance];
        let filter = "account_id = ?1 AND lo_instance_id = ?2 ORDER BY user_id";
        let rows = self.learner_query(filter, args).await?;
        Ok(rows.into_iter().map(|(_, r)| r).collect())
    }

    /// Every record of an account, by user id then instance id.
    ///
    /// # Errors
    ///
    /// When SQLite fails (or the store keeps no learner projection).
    pub async fn learner_records_of_account(
        &self,
        account: AccountId,
    ) -> Result<Vec<LearnerRecord>, StoreError> {
        let filter = "account_id = ?1 ORDER BY user_id, lo_instance_id";
        let rows = self.learner_query(filter, vec![id(account.get())]).await?;
        Ok(rows.into_iter().map(|(_, r)| r).collect())
    }

    /// The accounts that have learner records, in order: one index probe
    /// per account (a loose index scan of the primary key).
    ///
    /// # Errors
    ///
    /// When SQLite fails.
    pub async fn learner_accounts(&self) -> Result<Vec<AccountId>, StoreError> {
        self.run("learner accounts", |conn| {
            let mut statement = conn.prepare_cached(
                "WITH RECURSIVE a(id) AS (SELECT MIN(account_id) FROM alm_learner_records \
                 UNION ALL SELECT (SELECT MIN(account_id) FROM alm_learner_records \
                 WHERE account_id > a.id) FROM a WHERE a.id IS NOT NULL) \
                 SELECT id FROM a WHERE id IS NOT NULL",
            )?;
            let ids = statement.query_map([], |r| r.get::<_, i64>(0))?;
            ids.map(|id| id.map(|id| AccountId(id as u64))).collect()
        })
        .await
    }

    /// Up to `limit` records changed after `cursor` (0 for all), oldest
    /// change first: a change feed for incremental sync. A record changed
    /// twice appears once, at its latest change.
    ///
    /// # Errors
    ///
    /// When SQLite fails.
    pub async fn learner_changes_since(
        &self,
        cursor: u64,
        limit: usize,
    ) -> Result<LearnerChanges, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let args = vec![id(cursor), Value::Integer(limit)];
        let filter = "seq > ?1 ORDER BY seq LIMIT ?2";
        let rows = self.learner_query(filter, args).await?;
        Ok(LearnerChanges::from_rows(rows, cursor))
    }

    /// Writes every learner record as CSV ([`TranscriptCsv`]) into `out`,
    /// row by row (nothing is collected), and gives `out` back with the
    /// number of rows. A database file is read through a connection of its
    /// own (commits go on meanwhile); an in-memory one holds the store's
    /// connection for the export.
    ///
    /// # Errors
    ///
    /// When SQLite or `out` fails.
    pub async fn export_learner_csv<W: Write + Send + 'static>(
        &self,
        out: W,
    ) -> Result<(W, u64), StoreError> {
        let path = self.path.clone();
        let export =
            move |conn: &rusqlite::Connection| -> rusqlite::Result<Result<(W, u64), BoxError>> {
                let mut statement = conn.prepare(EXPORT)?;
                let mut rows = statement.query([])?;
                let mut csv = match TranscriptCsv::new(out) {
                    Ok(csv) => csv,
                    Err(e) => return Ok(Err(e.into())),
                };
                while let Some(row) = rows.next()? {
                    if let Err(e) = export_row(row, &mut csv)? {
                        return Ok(Err(e));
                    }
                }
                let n = csv.rows();
                Ok(csv.finish().map(|w| (w, n)).map_err(BoxError::from))
            };
        let result = match path {
            Some(path) => {
                let job = move || {
                    let conn = rusqlite::Connection::open_with_flags(
                        &path,
                        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
                    )?;
                    conn.busy_timeout(super::open::BUSY_TIMEOUT)?;
                    export(&conn)
                };
                tokio::task::spawn_blocking(job)
                    .await
                    .map_err(|e| StoreError::with_source("sqlite: the export did not finish", e))?
                    .map_err(|e| sqlite_error("export failed", e))?
            }
            None => self.run("export", move |conn| export(conn)).await?,
        };
        result.map_err(|e| {
            StoreError::with_source("sqlite: the export failed", std::io::Error::other(e))
        })
    }
}
