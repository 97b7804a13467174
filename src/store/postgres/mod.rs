//! The PostgreSQL store: one store shared by every replica of a receiver,

use std::fmt;
use std::time::{Duration, SystemTime};

use deadpool_postgres::GenericClient;
use deadpool_postgres::Pool;
use tokio_postgres::types::Json;

mod claims;
pub(crate) mod connection;
mod errors;
mod export;
mod hooks;
mod learner_accounts;
mod learner_write;
mod many;
mod one;
mod outbox;
mod projection;
pub(crate) mod redact;
mod runs;
mod setup;
pub(crate) mod sql;
mod tls;

use connection::bounded;
use errors::{ATTEMPTS, lost_a_race, pg_error};
pub use hooks::PostgresHook;
use one::commit_on;
use sql::Sql;

use super::lease_millis;
use super::{
    Claim, ClaimOwner, ClaimRequest, Commit, CommitOutcome, DedupKey, Store, StoreError, Versioned,
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
/// [`PostgresStore::POOL_WAIT_TIMEOUT`] for a free connection, and every
/// call is bounded: see the timeouts of [`PostgresStore::connect`]) and
/// two tables in its schema (beside the inbox's three).
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
    /// The bound on one call.
    timeout: Duration,
    /// The commit hooks, in order.
    hooks: hooks::Hooks,
    /// The crate's own commit hooks (projection, outbox), before those.
    own_hooks: hooks::OwnHooks,
    /// Whether the outbox hook is on.
    outbox: bool,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("target", &self.target)
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

/// Runs `call` again, up to [`ATTEMPTS`] times in all, while it loses a
/// race, each attempt bounded by `limit`. Every call retried this way is
/// one transaction that writes nothing when it fails.
async fn retrying<T, F, Fut>(limit: Duration, mut call: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut attempt = 1;
    loop {
        match bounded(limit, call(), timed_out).await {
            Err(e) if attempt < ATTEMPTS && lost_a_race(&e) => attempt += 1,
            answer => return answer,
        }
    }
}

/// The error of a call that ran out of time: transient.
fn timed_out(e: connection::TimedOut) -> StoreError {
    pg_error("the call timed out", e)
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
        owner: ClaimOwner,
        lease: Duration,
        now: SystemTime,
    ) -> Result<Claim, StoreError> {
        Ok(self.claim_and_load(key, None, owner, lease, now).await?.0)
    }

    async fn load(&self, key: &StateKey) -> Result<Versioned, StoreError> {
        bounded(
            self.timeout,
            async {
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
            },
            timed_out,
        )
        .await
    }

    /// One statement: the claim, the row's earlier status, and the state.
    async fn claim_and_load(
        &self,
        key: &DedupKey,
        state: Option<&StateKey>,
        owner: ClaimOwner,
        lease: Duration,
        now: SystemTime,
    ) -> Result<(Claim, Versioned), StoreError> {
        retrying(self.timeout, || {
            self.claim_one(key, state, owner, lease, now)
        })
        .await
    }

    /// One statement, atomic on its own.
    async fn commit(&self, commit: Commit<'_>) -> Result<CommitOutcome, StoreError> {
        retrying(self.timeout, || async {
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
        retrying(self.timeout, || self.commit_runs(commits)).await
    }

    fn wants_decided(&self) -> bool {
        self.hooked()
    }

    /// [`Store::commit_many`], and the hooks in the same transaction.
    async fn commit_decided(
        &self,
        commits: &[Commit<'_>],
        decided: &[Option<super::Decided<'_>>],
    ) -> Result<Vec<CommitOutcome>, StoreError> {
        if !self.hooked() {
            return self.commit_many(commits).await;
        }
        retrying(self.timeout, || self.commit_hooked(commits, decided)).await
    }

    /// One round trip: one statement per run of distinct events (one run
    /// unless an event repeats or there are more than
    /// [`MANY_CHUNK`](crate::store::MANY_CHUNK)), as
    /// [`Store::claim_and_load`] for each. The runs of a large claim of
    /// distinct events go out on the pool's idle connections at once.
    async fn claim_many(
        &self,
        requests: &[ClaimRequest<'_>],
        owner: ClaimOwner,
        lease: Duration,
        now: SystemTime,
    ) -> Result<Vec<(Claim, Versioned)>, StoreError> {
        retrying(self.timeout, || {
            self.claim_runs(requests, owner, lease, now)
        })
        .await
    }

    /// One statement; the lease ends `lease` after the database's clock.
    async fn renew(
        &self,
        key: &DedupKey,
        token: ClaimOwner,
        lease: Duration,
        _now: SystemTime,
    ) -> Result<bool, StoreError> {
        bounded(
            self.timeout,
            async {
                let client = self.client().await?;
                let renew = client
                    .prepare_cached(&self.sql.renew)
                    .await
                    .map_err(|e| pg_error("cannot prepare the renewal", e))?;
                let bytes = token.to_bytes();
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
            },
            timed_out,
        )
        .await
    }

    /// One statement per chunk of [`MANY_CHUNK`](crate::store::MANY_CHUNK)
    /// claims, all sent together: one round trip.
    async fn renew_many(
        &self,
        claims: &[(&DedupKey, ClaimOwner)],
        lease: Duration,
        _now: SystemTime,
    ) -> Result<Vec<bool>, StoreError> {
        retrying(self.timeout, || self.renew_chunks(claims, lease)).await
    }

    async fn release(&self, key: &DedupKey, token: ClaimOwner) -> Result<(), StoreError> {
        bounded(
            self.timeout,
            async {
                let client = self.client().await?;
                let release = client
                    .prepare_cached(&self.sql.release)
                    .await
                    .map_err(|e| pg_error("cannot prepare the release", e))?;
                let bytes = token.to_bytes();
                client
                    .execute(
                        &release,
                        &[&account(key), &key.storage_key().1, &&bytes[..]],
                    )
                    .await
                    .map_err(|e| pg_error("release failed", e))?;
                Ok(())
            },
            timed_out,
        )
        .await
    }

    async fn sweep(&self, now: SystemTime) -> Result<u64, StoreError> {
        let client = bounded(self.timeout, self.client(), timed_out).await?;
        let mut removed = 0;
        for sql in [&self.sql.sweep_events, &self.sql.sweep_states] {
            let prepare = async {
                client
                    .prepare_cached(sql)
                    .await
                    .map_err(|e| pg_error("cannot prepare the sweep", e))
            };
            let statement = bounded(self.timeout, prepare, timed_out).await?;
            loop {
                // Each batch is bounded: a sweep may run many.
                let batch = async {
                    client
                        .execute(&statement, &[&now, &SWEEP_BATCH])
                        .await
                        .map_err(|e| pg_error("sweep failed", e))
                };
                let rows = bounded(self.timeout, batch, timed_out).await?;
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
