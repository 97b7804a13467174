//! The PostgreSQL store: one store shared by every replica of a receiver,

use std::fmt;
use std::time::{Duration, SystemTime};

use deadpool_postgres::GenericClient;
use deadpool_postgres::Pool;
use tokio_postgres::types::Json;

mod hooks;
mod many;
mod one;
mod projection;
pub(crate) mod redact;
mod runs;
mod setup;
pub(crate) mod sql;
mod tls;

pub use hooks::PostgresHook;
use one::commit_on;
use sql::Sql;

use super::lease_millis;
use super::{
    Claim, ClaimRequest, ClaimToken, Commit, CommitOutcome, DedupKey, Store, StoreError,
    StoreErrorKind, Versioned,
};
use crate::rules::{EntityState, StateKey};

/// Rows deleted by one statement of [`Store::sweep`], so that a sweep never
/// holds many row locks for long.
const SWEEP_BATCH: i64 = 10_000;

/// Row status: a live or expired claim.
const CLAIMED: i16 = 0;
/// Row status: a decided event.
const DECIDED: i16 = 1;

/// The PostgreSQL store: one store shared by every replica of a receiver,
/// durable across restarts.
///
/// Enable it with the `postgres` feature. It keeps a connection pool
/// (`deadpool-postgres` over `tokio-postgres`; a call waits at most
/// [`PostgresStore::POOL_WAIT_TIMEOUT`] for a free connection) and two tables in its
/// schema.
///
/// **TLS** (`native-tls`, the system's OpenSSL on Linux) is set in the
/// connection string as with libpq: `sslmode=require` encrypts (and
/// verifies the server's chain only if `sslrootcert` is given),
/// `verify-ca` verifies the chain, `verify-full` also the host name;
/// `sslrootcert=/path/ca.pem` makes that file the only trusted root (else
/// the system's roots). `prefer` tries TLS and falls back; without
/// `sslmode` (or `disable`) the connection is plain TCP.
///
/// **Setting up.** [`PostgresStore::migrate`] creates the tables
/// (`sql/postgres.sql`, shipped as [`PostgresStore::MIGRATION_SQL`]), idempotently, under
/// an advisory lock: run it once at deployment, as a role that may create
/// tables. [`PostgresStore::connect`] only checks that the tables are there,
/// so the receiver's role needs no more than `USAGE` on the schema and
/// `SELECT, INSERT, UPDATE, DELETE` on the tables, and replicas that start
/// together take no lock.
///
/// ```sql
/// CREATE TABLE alm_events (
///     account_id BIGINT      NOT NULL,  -- the u64 account id, bit-cast (see below)
///     event_id   TEXT        NOT NULL,  -- the eventId's storage_key()
///     status     SMALLINT    NOT NULL,  -- 0 claimed, 1 decided
///     token      BYTEA,                 -- the claim token (16 bytes), NULL once decided
///     expires_at TIMESTAMPTZ NOT NULL,  -- lease end (claimed) or end of the dedup window (decided)
///     PRIMARY KEY (account_id, event_id)
/// );
/// CREATE INDEX alm_events_expires_at ON alm_events (expires_at);
/// CREATE TABLE alm_states (
///     state_key  TEXT        PRIMARY KEY, -- storage_key() of StateKey's Display, e.g. learner/1234/7/course:1_2
///     version    BIGINT      NOT NULL,
///     state      JSONB       NOT NULL,    -- EntityState as JSON
///     expires_at TIMESTAMPTZ NOT NULL
/// );
/// CREATE INDEX alm_states_expires_at ON alm_states (expires_at);
/// ```
///
/// **Transactions** run at `READ COMMITTED` (set on every connection,
/// whatever the database's default): a version check that finds a row
/// changed by a concurrent commit re-reads it and refuses. Rows are locked
/// in key order, so two set-based calls that share events or states wait
/// for each other instead of deadlocking; a call that still fails with a
/// serialization failure or a deadlock (`40001`, `40P01`) is tried again, a
/// few times, as a whole (it wrote nothing).
///
/// **Atomicity.** A claim is one statement: it reads the event's row and,
/// only if the row is missing or expired (an expired lease, or a decided
/// event past its window), runs an `INSERT … ON CONFLICT DO UPDATE … WHERE`
/// that takes it over only when it has expired, so two concurrent claims can
/// never both win; the same statement reads the entity's state
/// ([`Store::claim_and_load`]). A duplicate's claim writes nothing. A commit
/// is one statement too: it locks the event row if the caller's token still
/// holds, writes the state only at the expected version (an `INSERT … ON
/// CONFLICT DO NOTHING` for version 0, an `UPDATE … WHERE version =
/// expected` after that), and marks the event decided only if the state was
/// written; otherwise it writes nothing. [`Store::claim_many`] and
/// [`Store::commit_many`] do the same for a whole slice in one statement
/// (arrays and `unnest`; one statement per run of distinct rows, a second
/// run only when an event or a state repeats), sent in one round trip.
///
/// **Speed.** The engine claims a delivery with the set-based calls: a
/// whole delivery costs two round trips (one to claim, one to commit, one
/// transaction and one WAL flush), one for a redelivery (see
/// `BENCHMARKS.md`: about 160 ms for 5,000 new events on a local server,
/// 30 ms for their redelivery). One by one
/// ([`EngineBuilder::commit_batch`](crate::engine::EngineBuilder::commit_batch)`(1)`),
/// a new event costs two round trips: its claim (a lease, so its
/// transaction does not wait for the WAL flush; the next durable commit
/// flushes it anyway) and its commit, which does wait for the flush (2.2 s
/// for the same delivery); a redelivered duplicate one round trip.
///
/// **Leases are on the database's clock** (`clock_timestamp()`): a claim's
/// lease ends `lease` after the server's now, so replicas whose clocks
/// disagree never both hold an event; the `now` passed to
/// [`Store::claim`] and [`Store::renew`] is not used for leases. **Dedup
/// windows are on the caller's clock**: a decided event is remembered
/// until the `remember_until` the engine computed, compared with the
/// engine's `now`, so a test clock drives them.
///
/// **Account ids** are `u64`; PostgreSQL has no unsigned 64-bit integer, so
/// they are stored as `BIGINT` by a bit-for-bit cast (`id as i64`): ids above
/// `i64::MAX` are stored as negative numbers, consistently, and stay distinct.
///
///
/// Cloning it is cheap and shares the pool.
///
/// Its `Debug` shows the host, port, database and schema, never the user's
/// password.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), alm_webhooks::store::StoreError> {
/// use alm_webhooks::Engine;
/// use alm_webhooks::store::PostgresStore;
///
/// let url = "postgres://alm@db.internal/alm?sslmode=verify-full";
/// // Once, at deploy time, with a role that may create tables:
/// PostgresStore::migrate(url, "public").await?;
/// // In every replica:
/// let engine = Engine::builder(PostgresStore::connect(url).await?).build();
/// # let _ = engine;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    schema: String,
    target: String,
    sql: Sql,
    /// The commit hooks, in order.
    hooks: hooks::Hooks,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("target", &self.target)
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

/// How many times in all a call that lost a race (`40001`, `40P01`) runs.
const ATTEMPTS: usize = 3;

/// Whether the error is a serialization failure or a deadlock: the
/// transaction was rolled back, and running it again can succeed.
fn lost_a_race(e: &StoreError) -> bool {
    use tokio_postgres::error::SqlState;
    let mut cause = std::error::Error::source(e);
    while let Some(error) = cause {
        if let Some(code) = error
            .downcast_ref::<tokio_postgres::Error>()
            .and_then(tokio_postgres::Error::code)
        {
            return *code == SqlState::T_R_SERIALIZATION_FAILURE
                || *code == SqlState::T_R_DEADLOCK_DETECTED;
        }
        cause = error.source();
    }
    false
}

/// Runs `call` again, up to [`ATTEMPTS`] times in all, while it loses a
/// race. Every call retried this way is one transaction that writes
/// nothing when it fails.
async fn retrying<T, F, Fut>(mut call: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut attempt = 1;
    loop {
        match call().await {
            Err(e) if attempt < ATTEMPTS && lost_a_race(&e) => attempt += 1,
            answer => return answer,
        }
    }
}

fn pg_error(what: &str, error: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    let kind = kind_of(&error);
    StoreError::with_source(format!("postgres: {what}"), error).with_kind(kind)
}

/// Whether an error (or one of its causes) is about the data itself: a
/// SQLSTATE of class 22 (data exception, e.g. a NUL byte in text), 23
/// (integrity constraint) or 54 (program limit, e.g. an index row too
/// large), a state that does not serialize or parse, a number out of range.
/// Everything else (no connection, a timeout, a pool wait, 40001, 40P01,
/// 57P01, a missing table or right that an operator can fix) is transient.
fn kind_of(error: &(dyn std::error::Error + 'static)) -> StoreErrorKind {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if let Some(code) = error
            .downcast_ref::<tokio_postgres::Error>()
            .and_then(tokio_postgres::Error::code)
        {
            return match code.code().get(..2) {
                Some("22" | "23" | "54") => StoreErrorKind::Permanent,
                _ => StoreErrorKind::Transient,
            };
        }
        if error.is::<serde_json::Error>() || error.is::<std::num::TryFromIntError>() {
            return StoreErrorKind::Permanent;
        }
        cause = error.source();
    }
    StoreErrorKind::Transient
}

fn account(key: &DedupKey) -> i64 {
    // Bit-for-bit: see the module docs.
    key.account_id.get() as i64
}

impl PostgresStore {
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
        now: SystemTime,
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
            .query_opt(&load, &[&key.storage_key()])
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
        now: SystemTime,
    ) -> Result<(Claim, Versioned), StoreError> {
        retrying(|| self.claim_one(key, state, lease, now)).await
    }

    /// One statement, atomic on its own.
    async fn commit(&self, commit: Commit<'_>) -> Result<CommitOutcome, StoreError> {
        retrying(|| async {
            let client = self.client().await?;
            let statements = self.commit_statements(&client).await?;
            commit_on(&client, &statements, &commit).await
        })
        .await
    }

    /// One transaction and one round trip: the commits in one statement
    /// per run of commits that touch distinct rows (one run unless an
    /// event or a state repeats), so a refused commit writes nothing and
    /// leaves the others be, and the transaction's single commit waits for
    /// one WAL flush instead of one per event.
    async fn commit_many(&self, commits: &[Commit<'_>]) -> Result<Vec<CommitOutcome>, StoreError> {
        retrying(|| self.commit_runs(commits)).await
    }

    fn wants_decided(&self) -> bool {
        !self.hooks.is_empty()
    }

    /// [`Store::commit_many`], and the hooks in the same transaction.
    async fn commit_decided(
        &self,
        commits: &[Commit<'_>],
        decided: &[Option<super::Decided<'_>>],
    ) -> Result<Vec<CommitOutcome>, StoreError> {
        if self.hooks.is_empty() {
            return self.commit_many(commits).await;
        }
        retrying(|| self.commit_hooked(commits, decided)).await
    }

    /// One round trip: one statement per run of distinct events (one run
    /// unless an event repeats), as [`Store::claim_and_load`] for each.
    async fn claim_many(
        &self,
        requests: &[ClaimRequest<'_>],
        lease: Duration,
        now: SystemTime,
    ) -> Result<Vec<(Claim, Versioned)>, StoreError> {
        retrying(|| self.claim_runs(requests, lease, now)).await
    }

    /// One statement; the lease ends `lease` after the database's clock.
    async fn renew(
        &self,
        key: &DedupKey,
        token: ClaimToken,
        lease: Duration,
        _now: SystemTime,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let renew = client
            .prepare_cached(&self.sql.renew)
            .await
            .map_err(|e| pg_error("cannot prepare the renewal", e))?;
        let bytes = token.0.to_be_bytes();
        let rows = client
            .execute(
                &renew,
                &[
                    &account(key),
                    &key.storage_key().1,
                    &&bytes[..],
                    &lease_millis(lease),
                ],
            )
            .await
            .map_err(|e| pg_error("renew failed", e))?;
        Ok(rows == 1)
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
                &[&account(key), &key.storage_key().1, &&bytes[..]],
            )
            .await
            .map_err(|e| pg_error("release failed", e))?;
        Ok(())
    }

    async fn sweep(&self, now: SystemTime) -> Result<u64, StoreError> {
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
