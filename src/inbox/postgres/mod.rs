//! The inbox on PostgreSQL: shared by every replica of a receiver, durable

mod archive;
mod kept;
mod pause;
mod rows;
mod setup;

use std::fmt;
use std::future::Future;
use std::time::Duration;

use deadpool_postgres::{GenericClient, Pool};
use time::OffsetDateTime;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::{
    DeliveryId, Inbox, InboxError, InboxStats, LEASE_RAN_OUT, LeaseToken, NewDeadLetter,
    NewDelivery, Taken,
};
use crate::AccountId;
use crate::store::postgres::connection::bounded;
use rows::column_u64;

/// The inbox on PostgreSQL: shared by every replica of a receiver, durable
/// once committed.
///
/// Three tables in the inbox's schema, created with the store's by one
/// migration, `sql/postgres.sql` ([`PostgresInbox::migrate`] or
/// [`PostgresStore::migrate`](crate::store::PostgresStore::migrate), run
/// once as a role that may create tables); [`PostgresInbox::connect`] only
/// checks that they are there, so the receiver's role needs no DDL right:
///
/// ```sql
/// CREATE TABLE alm_inbox (id BIGINT IDENTITY PRIMARY KEY, account_id BIGINT, body BYTEA,
///     received_at TIMESTAMPTZ, attempts INTEGER, abandoned INTEGER, last_error BYTEA,
///     not_before TIMESTAMPTZ, lease_token BYTEA, lease_until TIMESTAMPTZ);
/// CREATE INDEX alm_inbox_account ON alm_inbox (account_id, id);
/// CREATE TABLE alm_dead_letters (id BIGINT IDENTITY PRIMARY KEY, account_id BIGINT,
///     event_id BYTEA, event_name BYTEA, event BYTEA, error BYTEA, attempts INTEGER, at TIMESTAMPTZ);
/// CREATE TABLE alm_quarantine (id BIGINT IDENTITY PRIMARY KEY, account_id BIGINT, body BYTEA,
///     error BYTEA, received_at TIMESTAMPTZ);
/// ```
///
/// Texts (errors, a dead letter's `eventId`, `eventName` and JSON) are
/// kept as their UTF-8 bytes, so a NUL is kept too; tables of an earlier
/// version (`TEXT` columns, no `abandoned`) are brought up to date by the
/// migration. **Leases run on the server's clock**
/// (`clock_timestamp()`): processes whose clocks disagree never hold one
/// delivery at once.
///
/// **Durability**: an append is one `INSERT` committed before it returns
/// (one round trip; as durable as the server's `synchronous_commit`).
///
/// **Taking** is one `UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP
/// LOCKED)`: the oldest delivery that is its account's head (the account's
/// lowest id, found for every account by a recursive walk of the
/// `(account_id, id)` index, so a take costs one index probe per account
/// however long the backlog) and is neither leased nor waiting for a retry.
/// Two takers never get the same delivery, and an account's next delivery
/// is not handed out while its head exists, except to the head's taker in
/// the same statement ([`Inbox::take_many`]: the head and the deliveries
/// behind it, in order). Deliveries of one account appended
/// at the same moment by two connections could commit out of id order; ALM
/// never does that (it waits for each acknowledgement).
///
/// **Connections** are the store's: the same connection string (TLS by
/// `sslmode` and `sslrootcert`; see
/// [`PostgresStore`](crate::store::PostgresStore) for the timeouts and
/// keepalives it sets), and the store and the inbox can share one pool
/// ([`PostgresInbox::from_pool`] with
/// [`PostgresStore::pool`](crate::store::PostgresStore::pool)). Every
/// call is bounded ([`PostgresInbox::CALL_TIMEOUT`]).
///
/// Account ids are stored bit-cast to `BIGINT`, as in the store.
/// Clones share the
/// pool; `Debug` shows the host, port, database and schema, never a
/// password.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use alm_webhooks::inbox::{Inbox, PostgresInbox};
///
/// let url = "postgres://alm@db.internal/alm?sslmode=verify-full";
/// // Once, at deployment, as a role that may create tables:
/// PostgresInbox::migrate("postgres://owner@db.internal/alm?sslmode=verify-full", "alm").await.unwrap();
/// let inbox = PostgresInbox::connect_with_schema(url, "alm").await.unwrap();
/// let stats = inbox.stats(time::OffsetDateTime::now_utc()).await.unwrap();
/// println!("{} pending, {} dead letters", stats.pending, stats.dead_letters);
/// println!("{inbox:?}"); // never a password
/// # }
/// ```
#[derive(Clone)]
pub struct PostgresInbox {
    pool: Pool,
    schema: String,
    target: String,
    /// The bound on one call.
    timeout: Duration,
}

impl fmt::Debug for PostgresInbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresInbox")
            .field("target", &self.target)
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

fn pg_error(what: &str, e: impl std::error::Error + Send + Sync + 'static) -> InboxError {
    InboxError::with_source(format!("postgres: {what}"), e)
}

fn token_bytes(token: LeaseToken) -> Vec<u8> {
    token.0.to_be_bytes().to_vec()
}

/// A lease's length in milliseconds, for the server's clock.
fn lease_millis(d: Duration) -> f64 {
    crate::inbox::types::lease_millis(d) as f64
}

impl PostgresInbox {
    /// A table's qualified name.
    fn t(&self, table: &str) -> String {
        format!("\"{}\".{table}", self.schema)
    }

    /// Runs `call`, failing when it takes longer than the inbox's bound.
    async fn bounded<T>(
        &self,
        what: &str,
        call: impl Future<Output = Result<T, InboxError>>,
    ) -> Result<T, InboxError> {
        bounded(self.timeout, call, |e| {
            pg_error(&format!("{what} timed out on {}", self.target), e)
        })
        .await
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, InboxError> {
        self.pool
            .get()
            .await
            .map_err(|e| pg_error(&format!("cannot get a connection to {}", self.target), e))
    }

    /// A pooled connection and `sql` prepared on it (cached per
    /// connection), for [`Self::execute`] and [`Self::query`].
    async fn prepared(
        &self,
        what: &str,
        sql: &str,
    ) -> Result<(deadpool_postgres::Object, tokio_postgres::Statement), InboxError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(sql)
            .await
            .map_err(|e| pg_error(&format!("cannot prepare {what}"), e))?;
        Ok((client, statement))
    }

    /// Runs one statement (prepared and cached); how many rows it changed.
    async fn execute(
        &self,
        what: &str,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, InboxError> {
        self.bounded(what, async {
            let (client, statement) = self.prepared(what, sql).await?;
            client
                .execute(&statement, params)
                .await
                .map_err(|e| pg_error(&format!("{what} failed"), e))
        })
        .await
    }

    /// Runs one query (prepared and cached); its rows.
    async fn query(
        &self,
        what: &str,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<Row>, InboxError> {
        self.bounded(what, async {
            let (client, statement) = self.prepared(what, sql).await?;
            client
                .query(&statement, params)
                .await
                .map_err(|e| pg_error(&format!("{what} failed"), e))
        })
        .await
    }

    /// Deletes one row with `delete` (which returns the account and body
    /// of the new delivery) and appends the delivery, in one transaction.
    async fn move_to_inbox(
        &self,
        what: &str,
        delete: &str,
        id: i64,
        now: OffsetDateTime,
        delivery_of: impl FnOnce(&Row) -> Result<(u64, Vec<u8>), InboxError>,
    ) -> Result<Option<DeliveryId>, InboxError> {
        let moving = async {
            let mut client = self.client().await?;
            let tx = client
                .transaction()
                .await
                .map_err(|e| pg_error(&format!("cannot begin {what}"), e))?;
            let Some(row) = tx
                .query_opt(delete, &[&id])
                .await
                .map_err(|e| pg_error(&format!("{what} failed"), e))?
            else {
                return Ok(None);
            };
            let (account, body) = delivery_of(&row)?;
            let row = tx
                .query_one(
                    &format!(
                        "INSERT INTO {} (account_id, body, received_at) VALUES ($1, $2, $3) RETURNING id",
                        self.t("alm_inbox")
                    ),
                    &[&(account as i64), &body, &now],
                )
                .await
                .map_err(|e| pg_error(&format!("{what} failed"), e))?;
            let new = column_u64(&row, 0)?;
            tx.commit()
                .await
                .map_err(|e| pg_error(&format!("{what} failed"), e))?;
            Ok(Some(DeliveryId(new)))
        };
        self.bounded(what, moving).await
    }
}

impl PostgresInbox {
    /// Ends the lease `token` holds ([`rows::give_back`]).
    async fn give_back(
        &self,
        what: &str,
        id: DeliveryId,
        token: LeaseToken,
        not_before: Option<OffsetDateTime>,
        error: Option<&str>,
        uncount: i32,
    ) -> Result<bool, InboxError> {
        let sql = rows::give_back(&self.t("alm_inbox"));
        let error = error.map(str::as_bytes);
        let params: [&(dyn ToSql + Sync); 5] = [
            &(id.0 as i64),
            &token_bytes(token),
            &not_before,
            &error,
            &uncount,
        ];
        Ok(self.execute(what, &sql, &params).await? == 1)
    }
}

impl Inbox for PostgresInbox {
    async fn append(&self, delivery: NewDelivery<'_>) -> Result<DeliveryId, InboxError> {
        let sql = format!(
            "INSERT INTO {} (account_id, body, received_at) VALUES ($1, $2, $3) RETURNING id",
            self.t("alm_inbox")
        );
        let account = delivery.account_id.get() as i64;
        let rows = self
            .query(
                "append",
                &sql,
                &[&account, &delivery.body, &delivery.received_at],
            )
            .await?;
        let row = rows
            .first()
            .ok_or_else(|| InboxError::new("postgres: append returned no id"))?;
        Ok(DeliveryId(column_u64(row, 0)?))
    }

    async fn take(
        &self,
        lease: Duration,
        now: OffsetDateTime,
    ) -> Result<Option<Taken>, InboxError> {
        Ok(self.take_many(lease, now, 1).await?.into_iter().next())
    }

    /// One statement, whatever `max`; the run's
    /// deliveries share one lease token, in order.
    async fn take_many(
        &self,
        lease: Duration,
        now: OffsetDateTime,
        max: usize,
    ) -> Result<Vec<Taken>, InboxError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let sql = rows::take(&self.t("alm_inbox"), &self.t("alm_inbox_paused"));
        let token = LeaseToken::random();
        let note = LEASE_RAN_OUT.as_bytes();
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        let params: [&(dyn ToSql + Sync); 5] = [
            &now,
            &token_bytes(token),
            &lease_millis(lease),
            &note,
            &limit,
        ];
        let rows = self.query("take", &sql, &params).await?;
        let get = |e| pg_error("unexpected inbox row", e);
        let mut taken = rows
            .iter()
            .map(|row| {
                let count = |i| {
                    row.try_get::<_, i32>(i)
                        .map(|n| u32::try_from(n).unwrap_or(0))
                };
                Ok(Taken::new(
                    DeliveryId(column_u64(row, 0)?),
                    token,
                    AccountId(column_u64(row, 1)?),
                    row.try_get(2).map_err(get)?,
                    row.try_get(3).map_err(get)?,
                    count(4).map_err(get)?,
                    rows::column_text(row, 6)?,
                )
                .with_abandoned(count(5).map_err(get)?))
            })
            .collect::<Result<Vec<_>, InboxError>>()?;
        taken.sort_by_key(|t| t.id);
        Ok(taken)
    }

    async fn renew(
        &self,
        id: DeliveryId,
        token: LeaseToken,
        lease: Duration,
        _now: OffsetDateTime,
    ) -> Result<bool, InboxError> {
        let sql = format!(
            "UPDATE {} SET lease_until = clock_timestamp() + $3::float8 * interval '1 millisecond' \
             WHERE id = $1 AND lease_token = $2",
            self.t("alm_inbox")
        );
        let params: [&(dyn ToSql + Sync); 3] =
            [&(id.0 as i64), &token_bytes(token), &lease_millis(lease)];
        Ok(self.execute("renew", &sql, &params).await? == 1)
    }

    async fn complete(
        &self,
        id: DeliveryId,
        token: LeaseToken,
        dead_letters: &[NewDeadLetter],
    ) -> Result<bool, InboxError> {
        let delete = format!(
            "DELETE FROM {} WHERE id = $1 AND lease_token = $2",
            self.t("alm_inbox")
        );
        let (delivery, token) = (id.0 as i64, token_bytes(token));
        if dead_letters.is_empty() {
            return Ok(self
                .execute("complete", &delete, &[&delivery, &token])
                .await?
                == 1);
        }
        let keeping = self.complete_keeping(&delete, delivery, token, dead_letters);
        self.bounded("complete", keeping).await
    }

    async fn retry_later(
        &self,
        id: DeliveryId,
        token: LeaseToken,
        not_before: OffsetDateTime,
        error: &str,
    ) -> Result<bool, InboxError> {
        self.give_back("retry", id, token, Some(not_before), Some(error), 0)
            .await
    }

    async fn postpone(
        &self,
        id: DeliveryId,
        token: LeaseToken,
        not_before: OffsetDateTime,
        error: &str,
    ) -> Result<bool, InboxError> {
        self.give_back("postpone", id, token, Some(not_before), Some(error), 1)
            .await
    }

    async fn release(&self, id: DeliveryId, token: LeaseToken) -> Result<bool, InboxError> {
        self.give_back("release", id, token, None, None, 1).await
    }

    delegate_kept!();
    delegate_pause!();
    delegate_archive!();

    async fn stats(&self, now: OffsetDateTime) -> Result<InboxStats, InboxError> {
        self.kept_stats(now).await
    }
}
