//! The learner projection on PostgreSQL: table `alm_learner_records`
//! (created by [`PostgresStore::migrate`]), kept by a commit hook in the
//! commit's transaction, and its reads.

use std::collections::BTreeMap;

use futures_util::{Stream, StreamExt};
use time::OffsetDateTime;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement, Transaction};

use super::connection::bounded;
use super::hooks::OwnHook;
use super::learner_write::{Columns, copy, copy_rows, upsert};
use super::{PostgresStore, pg_error, timed_out};
use crate::projection::{self, LearnerChanges, LearnerRecord};
use crate::store::{BoxFuture, Decided, StoreError};
use crate::{AccountId, BoxError, LoInstanceId, UserId};

const COLUMNS: &str = "account_id, user_id, lo_instance_id, merge_state, updated_at, seq";

/// The commit hook that keeps `alm_learner_records`.
#[derive(Debug, Clone)]
struct Projection {
    /// Lock, read, number, copy (records the read did not find), upsert
    /// (records it found).
    sql: [String; 5],
}

impl OwnHook for Projection {
    fn sql(&self) -> &[String] {
        &self.sql
    }

    fn apply<'a>(
        &'a self,
        tx: &'a Transaction<'_>,
        statements: &'a [Statement],
        decided: &'a [Decided<'_>],
    ) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(apply(tx, statements, decided))
    }
}

impl Projection {
    fn new(table: &str, sequence: &str) -> Self {
        // One index lookup per record (LATERAL, kept apart by OFFSET 0): a
        // join is planned as a scan of the table, slower as it grows.
        let lock = "SELECT count(*) FROM (SELECT pg_advisory_xact_lock(hashtextextended(\
                    'alm_learner/' || a, 7)) FROM unnest($1::bigint[]) WITH ORDINALITY AS t(a, n) \
                    ORDER BY n) AS locked";
        let read = format!(
            "SELECT r.* FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS k(a, u, i) \
             CROSS JOIN LATERAL (SELECT {COLUMNS} FROM {table} WHERE account_id = k.a \
             AND user_id = k.u AND lo_instance_id = k.i OFFSET 0) AS r"
        );
        // One row (an array), not one row per number.
        let number = format!(
            "SELECT array(SELECT nextval('{sequence}') FROM generate_series(1, $1::bigint))"
        );
        Self {
            sql: [lock.to_owned(), read, number, copy(table), upsert(table)],
        }
    }
}

/// Four or five statements whatever the number of records: lock their
/// accounts (one advisory lock each, in order, so concurrent commits never
/// deadlock; the workers commit an account's deliveries one at a time
/// anyway), read the records and draw a change number for each, the three
/// sent together (the read starts once the locks are held, so it sees
/// every commit that held them before); then write them back merged: a
/// binary `COPY` of the records the read did not find (no other commit can
/// insert them while the locks are held; a `COPY` is neither planned nor
/// unpacked from arrays), and an upsert of those it found.
async fn apply(
    tx: &Transaction<'_>,
    statements: &[Statement],
    decided: &[Decided<'_>],
) -> Result<(), BoxError> {
    let [lock, read, number, copy, upsert] = statements else {
        return Err("the projection's statements are not prepared".into());
    };
    let records = projection::by_record(decided.iter().map(|d| d.event));
    if records.is_empty() {
        return Ok(());
    }
    let accounts: Vec<i64> = records.keys().map(|k| k.0).collect();
    // The records are in key order, so their accounts are sorted.
    let mut locks = accounts.clone();
    locks.dedup();
    let users: Vec<i64> = records.keys().map(|k| k.1).collect();
    let instances: Vec<&str> = records.keys().map(|k| k.2.as_str()).collect();
    let count = records.len() as i64;
    let lock_params: [&(dyn ToSql + Sync); 1] = [&locks];
    let read_params: [&(dyn ToSql + Sync); 3] = [&accounts, &users, &instances];
    let number_params: [&(dyn ToSql + Sync); 1] = [&count];
    let (_, read, numbers) = tokio::try_join!(
        tx.query(lock, &lock_params),
        tx.query(read, &read_params),
        tx.query_one(number, &number_params)
    )?;
    let mut rows: BTreeMap<(i64, i64, String), LearnerRecord> = BTreeMap::new();
    for row in read {
        let (_, record) = decode(&row)?;
        let key = (
            record.account_id.get() as i64,
            record.user_id.get() as i64,
            record.lo_instance_id.to_string(),
        );
        rows.insert(key, record);
    }
    let mut numbers = numbers.try_get::<_, Vec<i64>>(0)?.into_iter();
    let now = OffsetDateTime::now_utc();
    let (mut new, mut changed) = (Vec::new(), Vec::new());
    for (key, facts) in &records {
        let seq = numbers.next().ok_or("fewer change numbers than records")?;
        let stored = rows.remove(key);
        let mut row = stored.clone();
        for fact in facts {
            row = Some(projection::merge(row.as_ref(), fact, now));
        }
        match (row, stored) {
            (Some(row), None) => new.push((row, seq)),
            // An event the row already holds (or one that wins nothing)
            // changes no column: the row, its `seq` and `updated_at` stay.
            (Some(row), Some(stored)) if stored.summary != row.summary => {
                changed.push((row, seq));
            }
            _ => {}
        }
    }
    if !changed.is_empty() {
        let changed = Columns::of(&changed);
        tx.execute(upsert, &changed.params()).await?;
    }
    if !new.is_empty() {
        copy_rows(tx, copy, &new).await?;
    }
    Ok(())
}

/// A row of [`COLUMNS`] as its sequence number and record.
fn decode(row: &Row) -> Result<(u64, LearnerRecord), BoxError> {
    let account: i64 = row.try_get(0)?;
    let user: i64 = row.try_get(1)?;
    let instance: String = row.try_get(2)?;
    let summary: String = row.try_get(3)?;
    let updated_at: OffsetDateTime = row.try_get(4)?;
    let seq: i64 = row.try_get(5)?;
    let record = LearnerRecord::from_stored(
        AccountId(account as u64),
        UserId(user as u64),
        instance.parse()?,
        &summary,
        updated_at,
    )?;
    Ok((seq as u64, record))
}

fn undecodable(e: BoxError) -> StoreError {
    StoreError::with_source(
        "postgres: a learner record does not decode",
        std::io::Error::other(e),
    )
}

impl PostgresStore {
    pub(super) fn learner_table(&self) -> String {
        format!("\"{}\".alm_learner_records", self.schema)
    }

    /// Keeps the learner projection (table `alm_learner_records`, created
    /// by [`PostgresStore::migrate`]) in the transaction of every commit:
    /// see [`crate::projection`] for what each column holds.
    ///
    /// # Errors
    ///
    /// When the table is missing (run [`PostgresStore::migrate`]) or the
    /// database fails.
    pub async fn with_learner_projection(self) -> Result<Self, StoreError> {
        let check = async {
            let client = self.client().await?;
            client
                .batch_execute(&format!("SELECT 1 FROM {} LIMIT 0", self.learner_table()))
                .await
                .map_err(|e| {
                    pg_error(
                        "alm_learner_records is missing (run PostgresStore::migrate)",
                        e,
                    )
                })
        };
        bounded(self.timeout, check, timed_out).await?;
        let sequence = format!("\"{}\".alm_learner_records_seq_source", self.schema);
        let hook = Projection::new(&self.learner_table(), &sequence);
        Ok(self.with_own_hook(hook))
    }

    async fn learner_query(
        &self,
        filter: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<(u64, LearnerRecord)>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM {} WHERE {filter}",
            self.learner_table()
        );
        let read = async {
            let client = self.client().await?;
            client
                .query(&sql, params)
                .await
                .map_err(|e| pg_error("cannot read learner records", e))
        };
        let rows = bounded(self.timeout, read, timed_out).await?;
        rows.iter()
            .map(|r| decode(r).map_err(undecodable))
            .collect()
    }

    /// The record of a learner in an instance (either spelling of a
    /// learning path), if any event of it was decided.
    ///
    /// # Errors
    ///
    /// When the database fails.
    pub async fn learner_record(
        &self,
        account: AccountId,
        user: UserId,
        lo_instance: &LoInstanceId,
    ) -> Result<Option<LearnerRecord>, StoreError> {
        let (a, u, i) = (
            account.get() as i64,
            user.get() as i64,
            lo_instance.canonical().to_string(),
        );
        let filter = "account_id = $1 AND user_id = $2 AND lo_instance_id = $3";
        Ok(self
            .learner_query(filter, &[&a, &u, &i])
            .await?
            .pop()
            .map(|(_, r)| r))
    }

    /// Every record of a learner, by instance id.
    ///
    /// # Errors
    ///
    /// When the database fails.
    pub async fn learner_records_of_user(
        &self,
        account: AccountId,
        user: UserId,
    ) -> Result<Vec<LearnerRecord>, StoreError> {
        let (a, u) = (account.get() as i64, user.get() as i64);
        let filter = "account_id = $1 AND user_id = $2 ORDER BY lo_instance_id";
        let rows = self.learner_query(filter, &[&a, &u]).await?;
        Ok(rows.into_iter().map(|(_, r)| r).collect())
    }

    /// Every record of an instance, by user id.
    ///
    /// # Errors
    ///
    /// When the database fails.
    pub async fn learner_records_of_instance(
        &self,
        account: AccountId,
        lo_instance: &LoInstanceId,
    ) -> Result<Vec<LearnerRecord>, StoreError> {
        let (a, i) = (account.get() as i64, lo_instance.canonical().to_string());
        let filter = "account_id = $1 AND lo_instance_id = $2 ORDER BY user_id";
        let rows = self.learner_query(filter, &[&a, &i]).await?;
        Ok(rows.into_iter().map(|(_, r)| r).collect())
    }

    /// Every record of an account, by user id then instance id.
    ///
    /// # Errors
    ///
    /// When the database fails (or the table is missing).
    pub async fn learner_records_of_account(
        &self,
        account: AccountId,
    ) -> Result<Vec<LearnerRecord>, StoreError> {
        let a = account.get() as i64;
        let filter = "account_id = $1 ORDER BY user_id, lo_instance_id";
        let rows = self.learner_query(filter, &[&a]).await?;
        Ok(rows.into_iter().map(|(_, r)| r).collect())
    }

    /// Up to `limit` records changed after `cursor` (0 for all), oldest
    /// change first. On PostgreSQL the cursor comes from a sequence, and a
    /// transaction that took a lower number can commit after one that
    /// took a higher: a feed that must not miss a change re-reads a margin
    /// behind its cursor (the rows are idempotent to apply).
    ///
    /// # Errors
    ///
    /// When the database fails.
    pub async fn learner_changes_since(
        &self,
        cursor: u64,
        limit: usize,
    ) -> Result<LearnerChanges, StoreError> {
        let (c, l) = (cursor as i64, i64::try_from(limit).unwrap_or(i64::MAX));
        let rows = self
            .learner_query("seq > $1 ORDER BY seq LIMIT $2", &[&c, &l])
            .await?;
        Ok(LearnerChanges::from_rows(rows, cursor))
    }

    /// Every learner record, streamed from the database in key order (a
    /// server-side cursor: nothing is collected), each rebuilt from its
    /// stored merge state. [`PostgresStore::export_learner_csv`] writes
    /// the same rows as CSV faster, from the table's columns.
    ///
    /// The export runs on a connection of its own, taken out of the pool
    /// (and closed when the stream ends), without the server's
    /// `statement_timeout`: an export may take longer than one call.
    /// Instead, each row must arrive within the store's call timeout
    /// ([`PostgresStore::with_call_timeout`]), else the stream ends with a
    /// transient error.
    ///
    /// # Errors
    ///
    /// When the database fails; each item, when a row does not decode.
    pub async fn learner_records_stream(
        &self,
    ) -> Result<impl Stream<Item = Result<LearnerRecord, StoreError>> + Send + 'static, StoreError>
    {
        let sql = format!(
            "SELECT {COLUMNS} FROM {} ORDER BY account_id, user_id, lo_instance_id",
            self.learner_table()
        );
        let start = async {
            let client = self.export_client().await?;
            let none: [&(dyn ToSql + Sync); 0] = [];
            let rows = client
                .query_raw(&sql, none)
                .await
                .map_err(|e| pg_error("cannot export learner records", e))?;
            Ok::<_, StoreError>((client, Box::pin(rows)))
        };
        let (client, rows) = bounded(self.timeout, start, timed_out).await?;
        let limit = self.timeout;
        // The connection lives as long as the stream; after an error, the
        // stream ends (and the connection closes).
        Ok(futures_util::stream::unfold(
            Some((client, rows)),
            move |open| async move {
                let (client, mut rows) = open?;
                let row = match tokio::time::timeout(limit, rows.next()).await {
                    Ok(None) => return None,
                    Ok(Some(row)) => row.map_err(|e| pg_error("the export failed", e)),
                    Err(_) => Err(timed_out(super::connection::TimedOut(limit))),
                };
                let item = row.and_then(|r| decode(&r).map(|(_, r)| r).map_err(undecodable));
                let next = item.is_ok().then_some((client, rows));
                Some((item, next))
            },
        ))
    }
}
