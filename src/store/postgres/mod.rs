//! The PostgreSQL store: one store shared by every replica of a receiver,
//! durable across restarts.
//!
//! Enable it with the `postgres` feature. It keeps a connection pool
//! (`deadpool-postgres` over `tokio-postgres`, without TLS: run it next to
//! the database or through a TLS-terminating proxy) and two tables in its
//! schema, created at [`PostgresStore::connect`] if missing:
//!
//! ```sql
//! CREATE TABLE alm_events (
//!     account_id BIGINT      NOT NULL,  -- the u64 account id, bit-cast (see below)
//!     event_id   TEXT        NOT NULL,
//!     status     SMALLINT    NOT NULL,  -- 0 claimed, 1 decided
//!     token      BYTEA,                 -- the claim token (16 bytes), NULL once decided
//!     expires_at TIMESTAMPTZ NOT NULL,  -- lease end (claimed) or end of the dedup window (decided)
//!     PRIMARY KEY (account_id, event_id)
//! );
//! CREATE INDEX alm_events_expires_at ON alm_events (expires_at);
//! CREATE TABLE alm_states (
//!     state_key  TEXT        PRIMARY KEY, -- StateKey's Display, e.g. learner/1234/7/course:1_2
//!     version    BIGINT      NOT NULL,
//!     state      JSONB       NOT NULL,    -- EntityState as JSON
//!     expires_at TIMESTAMPTZ NOT NULL
//! );
//! CREATE INDEX alm_states_expires_at ON alm_states (expires_at);
//! ```
//!
//! Creating them is idempotent and safe when several replicas start at
//! once: the statements run in one transaction under a transaction-scoped
//! advisory lock.
//!
//! **Atomicity.** A claim is one statement: it reads the event's row and,
//! only if the row is missing or expired (an expired lease, or a decided
//! event past its window), runs an `INSERT … ON CONFLICT DO UPDATE … WHERE`
//! that takes it over only when it has expired, so two concurrent claims can
//! never both win; the same statement reads the entity's state
//! ([`Store::claim_and_load`]). A duplicate's claim writes nothing. A commit
//! is one statement too: it locks the event row if the caller's token still
//! holds, writes the state only at the expected version (an `INSERT … ON
//! CONFLICT DO NOTHING` for version 0, an `UPDATE … WHERE version =
//! expected` after that), and marks the event decided only if the state was
//! written; otherwise it writes nothing. [`Store::commit_many`] runs such
//! statements in one transaction.
//!
//! **Speed.** A new event costs two round trips: its claim (a lease, so its
//! transaction does not wait for the WAL flush; the next durable commit
//! flushes it anyway) and its commit, which does wait for the flush. With
//! the engine's default of one commit per event that flush dominates (see
//! `BENCHMARKS.md`: about 0.7 ms per new event on a local server, 3.5 s for a
//! 5,000-event bulk delivery, against ALM's 5 s).
//! [`EngineBuilder::commit_batch`](crate::engine::EngineBuilder::commit_batch)
//! commits a delivery's decisions in groups, one transaction and one flush
//! per group (2.0 s for the same delivery in groups of 500). A redelivered
//! duplicate costs one round trip and writes nothing.
//!
//! Every time compared or stored is the `now` the engine passes (its clock),
//! never the database's clock.
//!
//! **Account ids** are `u64`; PostgreSQL has no unsigned 64-bit integer, so
//! they are stored as `BIGINT` by a bit-for-bit cast (`id as i64`): ids above
//! `i64::MAX` are stored as negative numbers, consistently, and stay distinct.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::GenericClient;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use time::OffsetDateTime;
use tokio_postgres::NoTls;
use tokio_postgres::Statement;
use tokio_postgres::types::{Json, ToSql};

pub(crate) mod redact;
pub(crate) mod sql;

use redact::{describe, scrubbed};
use sql::{Sql, valid_schema};

use super::{Claim, ClaimToken, Commit, CommitOutcome, DedupKey, Store, StoreError, Versioned};
use crate::engine::{EntityState, StateKey};

/// Rows deleted by one statement of [`Store::sweep`], so that a sweep never
/// holds many row locks for long.
const SWEEP_BATCH: i64 = 10_000;

/// The pool's size: at most this many connections per store.
const POOL_SIZE: usize = 16;

/// How long to wait for a connection when the URL does not say
/// (`connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Row status: a live or expired claim.
const CLAIMED: i16 = 0;
/// Row status: a decided event.
const DECIDED: i16 = 1;

/// The store on PostgreSQL. See the [module docs](self).
///
/// Cloning it is cheap and shares the pool.
///
/// Its `Debug` shows the host, port, database and schema, never the user's
/// password.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    schema: String,
    target: String,
    sql: Sql,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("target", &self.target)
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

fn pg_error(what: &str, error: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::with_source(format!("postgres: {what}"), error)
}

fn account(key: &DedupKey) -> i64 {
    // Bit-for-bit: see the module docs.
    key.account_id.get() as i64
}

fn lease_end(now: OffsetDateTime, lease: Duration) -> OffsetDateTime {
    time::Duration::try_from(lease)
        .ok()
        .and_then(|lease| now.checked_add(lease))
        .unwrap_or(time::macros::datetime!(9999-12-31 23:59:59 UTC))
}

impl PostgresStore {
    /// Connects to the database at `url` (e.g.
    /// `postgres://user:password@host:5432/db`, or the `key=value` form) and
    /// creates the tables in the `public` schema if they are missing.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), alm_webhooks::store::StoreError> {
    /// use alm_webhooks::engine::Engine;
    /// use alm_webhooks::store::PostgresStore;
    ///
    /// let store = PostgresStore::connect("postgres://alm:secret@db.internal/webhooks").await?;
    /// let engine = Engine::builder(store).build();
    /// # let _ = engine;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the URL does not parse, the database cannot be
    /// reached, or the tables cannot be created. Its message and `Debug`
    /// never contain the password.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with_schema(url, "public").await
    }

    /// Like [`connect`](Self::connect), with the tables in `schema` (created
    /// if missing). `schema` must match `[a-z_][a-z0-9_]*` (at most 63
    /// bytes).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), alm_webhooks::store::StoreError> {
    /// use alm_webhooks::store::PostgresStore;
    ///
    /// let store = PostgresStore::connect_with_schema("postgres://alm@localhost/app", "webhooks").await?;
    /// # let _ = store;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect), and when `schema` is not a valid name.
    pub async fn connect_with_schema(url: &str, schema: &str) -> Result<Self, StoreError> {
        if !valid_schema(schema) {
            return Err(StoreError::new(format!(
                "postgres: invalid schema name {schema:?} (expected [a-z_][a-z0-9_]*, at most 63 bytes)"
            )));
        }
        let mut config = tokio_postgres::Config::from_str(url)
            .map_err(|e| pg_error("cannot parse the connection string", scrubbed(&e, url)))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("alm-webhooks");
        }
        let target = describe(&config);
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| pg_error("cannot build the connection pool", e))?;
        let store = Self {
            pool,
            schema: schema.to_owned(),
            sql: Sql::new(schema),
            target,
        };
        store.create_tables(url).await?;
        Ok(store)
    }

    /// The schema the tables are in.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Drops the store's schema and everything in it (`DROP SCHEMA … CASCADE`),
    /// for tests that give each run its own schema. Refuses to drop `public`.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the schema is `public` or the database fails.
    pub async fn drop_schema(&self) -> Result<(), StoreError> {
        if self.schema == "public" {
            return Err(StoreError::new("postgres: refusing to drop schema public"));
        }
        let client = self.client().await?;
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
                self.schema
            ))
            .await
            .map_err(|e| pg_error("cannot drop the schema", e))
    }

    async fn create_tables(&self, url: &str) -> Result<(), StoreError> {
        let mut client = self.pool.get().await.map_err(|e| {
            pg_error(
                &format!("cannot connect to {}", self.target),
                scrubbed(&e, url),
            )
        })?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| pg_error("cannot begin the schema transaction", e))?;
        // Several replicas may start at once: `IF NOT EXISTS` alone can still
        // fail on a race in the catalogs, so the DDL runs one at a time.
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext('alm_webhooks'), hashtext($1))",
            &[&self.schema],
        )
        .await
        .map_err(|e| pg_error("cannot take the schema lock", e))?;
        tx.batch_execute(&Sql::create(&self.schema))
            .await
            .map_err(|e| pg_error("cannot create the tables", e))?;
        tx.commit()
            .await
            .map_err(|e| pg_error("cannot commit the schema", e))
    }

    /// The three commit statements, prepared on `client`.
    async fn commit_statements(
        &self,
        client: &deadpool_postgres::Object,
    ) -> Result<CommitStatements, StoreError> {
        let prepare = |sql| async move {
            client
                .prepare_cached(sql)
                .await
                .map_err(|e| pg_error("cannot prepare the commit", e))
        };
        Ok(CommitStatements {
            decide: prepare(&self.sql.decide).await?,
            insert_state: prepare(&self.sql.commit_insert_state).await?,
            update_state: prepare(&self.sql.commit_update_state).await?,
        })
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|e| pg_error(&format!("cannot get a connection to {}", self.target), e))
    }
}

impl Store for PostgresStore {
    async fn claim(
        &self,
        key: &DedupKey,
        lease: Duration,
        now: OffsetDateTime,
    ) -> Result<Claim, StoreError> {
        Ok(self.claim_and_load(key, None, lease, now).await?.0)
    }

    async fn load(&self, key: &StateKey) -> Result<Versioned, StoreError> {
        let client = self.client().await?;
        let load = client
            .prepare_cached(&self.sql.load)
            .await
            .map_err(|e| pg_error("cannot prepare the load", e))?;
        let row = client
            .query_opt(&load, &[&key.to_string()])
            .await
            .map_err(|e| pg_error("load failed", e))?;
        match row {
            Some(row) => versioned(row.try_get(0), row.try_get(1)),
            None => Ok(Versioned::default()),
        }
    }

    /// One statement: the claim, the row's earlier status, and the state.
    async fn claim_and_load(
        &self,
        key: &DedupKey,
        state: Option<&StateKey>,
        lease: Duration,
        now: OffsetDateTime,
    ) -> Result<(Claim, Versioned), StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&self.sql.claim_and_load)
            .await
            .map_err(|e| pg_error("cannot prepare the claim", e))?;
        let (account, event) = (account(key), key.event_id.as_str());
        let until = lease_end(now, lease);
        let state_key = state.map(ToString::to_string);
        // A row deleted (released, swept) or inserted by another claim
        // after this statement's snapshot: try again, a few times.
        for _ in 0..3 {
            let token = ClaimToken::random();
            let bytes = token.0.to_be_bytes();
            // A claim is a lease, not a decision: it need not wait for the
            // WAL flush (losing it in a database crash only frees the event;
            // the next durable commit flushes it anyway). So it runs in a
            // transaction with `synchronous_commit` off, and the three
            // requests go out together, in one round trip. All three are
            // queued on the connection at the first poll, so the server runs
            // them all even if this future is dropped: the connection never
            // stays inside the transaction (a failed claim makes `COMMIT` a
            // rollback).
            let params: [&(dyn ToSql + Sync); 6] =
                [&account, &event, &&bytes[..], &until, &now, &state_key];
            let (begun, row, ended) = tokio::join!(
                client.batch_execute("BEGIN; SET LOCAL synchronous_commit = off"),
                client.query_one(&statement, &params),
                client.batch_execute("COMMIT"),
            );
            begun.map_err(|e| pg_error("claim failed to begin", e))?;
            let row = row.map_err(|e| pg_error("claim failed", e))?;
            ended.map_err(|e| pg_error("claim failed to commit", e))?;
            let bad = |e| pg_error("claim read a bad row", e);
            let won: bool = row.try_get(0).map_err(bad)?;
            if won {
                let loaded = match row.try_get::<_, Option<i64>>(2).map_err(bad)? {
                    Some(version) => versioned(Ok(version), row.try_get(3))?,
                    None => Versioned::default(),
                };
                return Ok((Claim::Claimed(token), loaded));
            }
            if let Some(status) = row.try_get::<_, Option<i16>>(1).map_err(bad)? {
                let claim = if status == DECIDED {
                    Claim::AlreadyDecided
                } else {
                    Claim::InFlight
                };
                return Ok((claim, Versioned::default()));
            }
        }
        Ok((Claim::InFlight, Versioned::default()))
    }

    /// One statement, atomic on its own.
    async fn commit(&self, commit: Commit<'_>) -> Result<CommitOutcome, StoreError> {
        let client = self.client().await?;
        let statements = self.commit_statements(&client).await?;
        commit_on(&client, &statements, &commit).await
    }

    /// One transaction: each commit is its own statement (so one that finds
    /// its lease lost or its state changed writes nothing and leaves the
    /// others be), and the transaction's single commit waits for one WAL
    /// flush instead of one per event.
    async fn commit_many(&self, commits: &[Commit<'_>]) -> Result<Vec<CommitOutcome>, StoreError> {
        let mut client = self.client().await?;
        let statements = self.commit_statements(&client).await?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| pg_error("cannot begin the commit", e))?;
        let mut outcomes = Vec::with_capacity(commits.len());
        for commit in commits {
            outcomes.push(commit_on(&tx, &statements, commit).await?);
        }
        tx.commit()
            .await
            .map_err(|e| pg_error("commit failed", e))?;
        Ok(outcomes)
    }

    async fn release(&self, key: &DedupKey, token: ClaimToken) -> Result<(), StoreError> {
        let client = self.client().await?;
        let release = client
            .prepare_cached(&self.sql.release)
            .await
            .map_err(|e| pg_error("cannot prepare the release", e))?;
        let bytes = token.0.to_be_bytes();
        client
            .execute(
                &release,
                &[&account(key), &key.event_id.as_str(), &&bytes[..]],
            )
            .await
            .map_err(|e| pg_error("release failed", e))?;
        Ok(())
    }

    async fn sweep(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let mut removed = 0;
        for sql in [&self.sql.sweep_events, &self.sql.sweep_states] {
            let statement = client
                .prepare_cached(sql)
                .await
                .map_err(|e| pg_error("cannot prepare the sweep", e))?;
            loop {
                let rows = client
                    .execute(&statement, &[&now, &SWEEP_BATCH])
                    .await
                    .map_err(|e| pg_error("sweep failed", e))?;
                removed += rows;
                if rows < SWEEP_BATCH as u64 {
                    break;
                }
            }
        }
        Ok(removed)
    }
}

/// The prepared commit statements of one connection.
struct CommitStatements {
    decide: Statement,
    insert_state: Statement,
    update_state: Statement,
}

/// Runs one commit as one statement on `client` (a connection or an open
/// transaction).
async fn commit_on(
    client: &impl GenericClient,
    statements: &CommitStatements,
    commit: &Commit<'_>,
) -> Result<CommitOutcome, StoreError> {
    let account = account(commit.key);
    let event = commit.key.event_id.as_str();
    let bytes = commit.token.0.to_be_bytes();
    let token = &bytes[..];
    let until = commit.remember_until;
    let Some(update) = commit.update else {
        let rows = client
            .execute(&statements.decide, &[&account, &event, &token, &until])
            .await
            .map_err(|e| pg_error("commit failed", e))?;
        return Ok(if rows == 1 {
            CommitOutcome::Committed
        } else {
            CommitOutcome::LeaseLost
        });
    };
    let expected = i64::try_from(update.expected_version)
        .map_err(|e| pg_error("commit: version out of range", e))?;
    let state_key = update.key.to_string();
    let state = Json(update.state);
    let state_until = commit.state_until;
    let params: [&(dyn ToSql + Sync); 8] = [
        &account,
        &event,
        &token,
        &until,
        &state_key,
        &state,
        &state_until,
        &expected,
    ];
    let row = if expected == 0 {
        client
            .query_one(&statements.insert_state, &params[..7])
            .await
    } else {
        client.query_one(&statements.update_state, &params).await
    }
    .map_err(|e| pg_error("commit failed", e))?;
    let bad = |e| pg_error("commit read a bad row", e);
    let held: bool = row.try_get(0).map_err(bad)?;
    let done: bool = row.try_get(1).map_err(bad)?;
    Ok(match (held, done) {
        (false, _) => CommitOutcome::LeaseLost,
        (true, false) => CommitOutcome::StateChanged,
        (true, true) => CommitOutcome::Committed,
    })
}

/// A state row's `version` and `state` columns as a [`Versioned`].
fn versioned(
    version: Result<i64, tokio_postgres::Error>,
    state: Result<Json<EntityState>, tokio_postgres::Error>,
) -> Result<Versioned, StoreError> {
    let version = version.map_err(|e| pg_error("read a bad state row", e))?;
    let Json(state) = state.map_err(|e| pg_error("read a bad state", e))?;
    let version = u64::try_from(version).map_err(|e| pg_error("read a negative version", e))?;
    Ok(Versioned { state, version })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_end_saturates() {
        let now = OffsetDateTime::UNIX_EPOCH;
        assert_eq!(
            lease_end(now, Duration::from_secs(30)),
            now + time::Duration::seconds(30)
        );
        assert_eq!(lease_end(now, Duration::MAX).year(), 9999);
    }
}
