//! A durable store in an embedded SQLite database file.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use rusqlite::{Connection, TransactionBehavior, params};

mod codec;
pub(super) mod hooks;
mod learner_schema;
pub(crate) mod open;
mod outbox;
mod projection;
mod rows;
mod sql;

use super::many::chained;
use super::{
    Claim, ClaimOwner, ClaimRequest, Commit, CommitOutcome, DedupKey, Store, StoreError, Versioned,
    unix_millis,
};
use crate::rules::StateKey;
use codec::{commit_row, duration_millis, sqlite_error, versioned};
use sql::{RENEW, SCHEMA, STATUS_CLAIMED, STATUS_DECIDED, SWEEP_CHUNK, SWEEP_STEPS};

/// A durable store in an embedded SQLite database file.
///
/// For a **single receiver that must survive restarts without running a
/// database server**: the dedup history and the rule states are kept in one
/// file, so an event ALM redelivers after a restart is still recognised as a
/// duplicate, and an out-of-order event as stale.
///
/// It is **not** for several processes on a network file system (NFS, SMB,
/// cloud volumes shared between hosts): SQLite's locking is unreliable there
/// and WAL mode needs shared memory on one host. Several processes on the
/// same host may open the same local file (each claim and commit is a
/// transaction taking SQLite's write lock), but replicas on several hosts
/// need a shared store such as [`RedisStore`](super::RedisStore).
///
/// # Schema
///
/// [`SqliteStore::open`] creates the tables if they are missing:
///
/// ```sql
/// CREATE TABLE alm_events (
///     account_id INTEGER, event_id TEXT,  -- the eventId's storage_key()
///     status INTEGER,             -- 0: claimed, 1: decided
///     token BLOB,                 -- a claim's ClaimOwner: holder, lease (32 bytes)
///     lease_until_ms INTEGER,     -- a claim's lease end
///     remember_until_ms INTEGER,  -- a decided event's window end
///     PRIMARY KEY (account_id, event_id)) WITHOUT ROWID;
/// CREATE TABLE alm_states (
///     state_key TEXT PRIMARY KEY, -- storage_key() of the StateKey's Display form
///     version INTEGER,
///     state TEXT,                 -- the EntityState as JSON
///     expires_ms INTEGER);
/// ```
///
/// The account id (a `u64`) is stored bit-cast to SQLite's signed 64-bit
/// `INTEGER` (ids above `i64::MAX` read as negative numbers in the file);
/// the store always converts the same way, so every id keeps its own row.
/// Times are Unix milliseconds.
///
/// # Whose clock
///
/// The store decides with the `now` it is given, never with SQLite's clock,
/// leases included (every process that opens the file runs on one host,
/// with one clock), so an engine with a test clock gets the same answers as from
/// [`MemoryStore`](super::MemoryStore). Times are compared in milliseconds
/// (the memory store keeps decided events to the second, so the two can
/// differ within the last second of a window). Nothing expires on its own:
/// run [`Store::sweep`] now and then to keep the file small. The expiry
/// columns are indexed, and a sweep deletes in steps of 1,000 rows, each
/// its own transaction, so it never holds the write lock for long.
///
/// # Durability
///
/// The database uses WAL journaling with `synchronous=NORMAL`. A crash of
/// the process loses nothing that was committed. A power failure or OS crash
/// can lose the last transactions before the WAL was synced to disk (at a
/// checkpoint), never corrupt the file: the events decided in those last
/// moments may be processed again when ALM redelivers them. A `:memory:`
/// database ([`SqliteStore::open_in_memory`]) is lost when the store is
/// dropped.
///
/// # Blocking
///
/// The store holds one connection behind a mutex. Every operation is a short
/// transaction (`BEGIN IMMEDIATE` for claims, commits and sweeps) run on
/// tokio's blocking thread pool ([`tokio::task::spawn_blocking`]), so a
/// slow disk or a lock held by another process (waited for up to 5 seconds,
/// then a [`StoreError`]) does not stall the async workers. Polled outside
/// a tokio runtime, an operation runs inline instead (it takes microseconds
/// unless another connection holds the write lock).
///
///
/// Cloning is cheap and shares the connection.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), alm_webhooks::store::StoreError> {
/// use alm_webhooks::Engine;
/// use alm_webhooks::store::SqliteStore;
///
/// // A file survives restarts; `open_in_memory` is for tests.
/// let engine = Engine::builder(SqliteStore::open_in_memory()?).build();
/// assert_eq!(engine.counters().processed, 0);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    /// The file, or `None` for an in-memory database.
    path: Option<PathBuf>,
    hooks: hooks::Hooks,
    /// Whether the outbox hook is on.
    outbox: bool,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path: &dyn fmt::Debug = match &self.path {
            Some(path) => path,
            None => &":memory:",
        };
        f.debug_struct("SqliteStore")
            .field("path", path)
            .finish_non_exhaustive()
    }
}

/// The account id as stored: the `u64` bit-cast to `i64`.
fn account(key: &DedupKey) -> i64 {
    key.account_id.get() as i64
}

fn token_bytes(token: ClaimOwner) -> [u8; 32] {
    token.to_bytes()
}

impl SqliteStore {
    /// Opens (creating if missing) the database file at `path`, with its
    /// tables, in WAL mode.
    ///
    /// ```no_run
    /// use alm_webhooks::Engine;
    /// use alm_webhooks::store::SqliteStore;
    ///
    /// # fn run() -> Result<(), alm_webhooks::store::StoreError> {
    /// let store = SqliteStore::open("/var/lib/crm-sync/alm-webhooks.db")?;
    /// let engine = Engine::builder(store).build();
    /// # let _ = engine;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// A [`StoreError`] if the file cannot be opened or created, is not a
    /// SQLite database, or its tables cannot be created.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        Self::setup(Some(path))
            .map_err(|e| sqlite_error(&format!("cannot open {}", path.display()), e))
    }

    /// A fresh database in memory, private to this store (and its clones):
    /// for tests, or a receiver that wants SQL without a file. Nothing
    /// survives the store.
    ///
    /// ```
    /// use alm_webhooks::store::SqliteStore;
    /// let store = SqliteStore::open_in_memory().unwrap();
    /// assert!(store.path().is_none());
    /// ```
    ///
    /// # Errors
    ///
    /// A [`StoreError`] if SQLite cannot allocate the database.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::setup(None).map_err(|e| sqlite_error("cannot open an in-memory database", e))
    }

    /// The database file, or `None` for an in-memory database.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The store's connection, for an inbox that shares it
    /// (`SqliteInbox::from_store`).
    pub(crate) fn connection(&self) -> Arc<Mutex<Connection>> {
        Arc::clone(&self.conn)
    }

    fn setup(path: Option<&Path>) -> rusqlite::Result<Self> {
        let conn = open::connection(path, open::Sync::Normal)?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            path: path.map(Path::to_owned),
            hooks: Arc::new([]),
            outbox: false,
        })
    }

    /// Runs `f` with the connection on the blocking pool.
    async fn run<T, F>(&self, what: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        let job = move || {
            // A panic under the lock cannot leave a transaction half-done
            // (an unfinished transaction rolls back when dropped), so a
            // poisoned lock is usable.
            let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut conn)
        };
        let result = match tokio::runtime::Handle::try_current() {
            Ok(runtime) => runtime.spawn_blocking(job).await.map_err(|e| {
                StoreError::with_source(format!("sqlite: {what} did not finish"), e)
            })?,
            // Not on a tokio runtime: no blocking pool to use, run here.
            Err(_) => job(),
        };
        result.map_err(|e| sqlite_error(&format!("{what} failed"), e))
    }
}

impl Store for SqliteStore {
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
        let state_key = key.storage_key();
        let row = self
            .run("load", move |conn| rows::load(conn, &state_key))
            .await?;
        versioned(row)
    }

    /// One transaction: the claim, and the state's read when it is won.
    async fn claim_and_load(
        &self,
        key: &DedupKey,
        state: Option<&StateKey>,
        owner: ClaimOwner,
        lease: Duration,
        now: SystemTime,
    ) -> Result<(Claim, Versioned), StoreError> {
        let request = ClaimRequest { key, state };
        let mut answers = self.claim_many(&[request], owner, lease, now).await?;
        answers
            .pop()
            .ok_or_else(|| StoreError::new("sqlite: a claim went unanswered"))
    }

    /// One transaction for the whole slice, the claims one after another.
    async fn claim_many(
        &self,
        requests: &[ClaimRequest<'_>],
        owner: ClaimOwner,
        lease: Duration,
        now: SystemTime,
    ) -> Result<Vec<(Claim, Versioned)>, StoreError> {
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        let now_ms = unix_millis(now);
        let lease_until = now_ms.saturating_add(duration_millis(lease));
        let claims: Vec<rows::ClaimRow> = requests
            .iter()
            .map(|r| rows::ClaimRow {
                account: account(r.key),
                event: r.key.storage_key().1.into_owned(),
                token: owner,
                lease_until,
                now_ms,
                state_key: r.state.map(StateKey::storage_key),
            })
            .collect();
        let answers = self
            .run("claim", move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let answers = claims
                    .iter()
                    .map(|row| rows::claim(&tx, row))
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                tx.commit()?;
                Ok(answers)
            })
            .await?;
        answers
            .into_iter()
            .map(|(claim, state)| Ok((claim, versioned(state)?)))
            .collect()
    }

    async fn commit(&self, commit: Commit<'_>) -> Result<CommitOutcome, StoreError> {
        let mut outcomes = self.commit_many(&[commit]).await?;
        outcomes
            .pop()
            .ok_or_else(|| StoreError::new("sqlite: a commit went unanswered"))
    }

    /// One transaction for the whole slice (one write lock, one WAL
    /// append), the commits one after another; the rest of a broken chain
    /// is refused without a statement.
    async fn commit_many(&self, commits: &[Commit<'_>]) -> Result<Vec<CommitOutcome>, StoreError> {
        self.commit_decided(commits, &[]).await
    }

    fn wants_decided(&self) -> bool {
        !self.hooks.is_empty()
    }

    async fn commit_decided(
        &self,
        commits: &[Commit<'_>],
        decided: &[Option<super::Decided<'_>>],
    ) -> Result<Vec<CommitOutcome>, StoreError> {
        let (hooks, decided) = (Arc::clone(&self.hooks), hooks::owned(decided));
        if commits.is_empty() {
            return Ok(Vec::new());
        }
        let rows = commits
            .iter()
            .map(commit_row)
            .collect::<Result<Vec<_>, _>>()?;
        self.run("commit", move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let states: Vec<Option<&str>> = rows
                .iter()
                .map(|row| row.update.as_ref().map(|(key, _, _)| key.as_str()))
                .collect();
            let outcomes = chained(&states, |at| rows::commit(&tx, &rows[at]))?;
            hooks::run_and_commit(tx, &hooks, &decided, outcomes)
        })
        .await?
        .map_err(hooks::failed)
    }

    async fn renew(
        &self,
        key: &DedupKey,
        token: ClaimOwner,
        lease: Duration,
        now: SystemTime,
    ) -> Result<bool, StoreError> {
        let (account, event) = (account(key), key.storage_key().1.into_owned());
        let token = token_bytes(token);
        let until = unix_millis(now).saturating_add(duration_millis(lease));
        self.run("renew", move |conn| {
            conn.prepare_cached(RENEW)?
                .execute(params![account, event, STATUS_CLAIMED, &token[..], until])
                .map(|rows| rows == 1)
        })
        .await
    }

    /// One transaction for the whole slice (one write lock).
    async fn renew_many(
        &self,
        claims: &[(&DedupKey, ClaimOwner)],
        lease: Duration,
        now: SystemTime,
    ) -> Result<Vec<bool>, StoreError> {
        if claims.is_empty() {
            return Ok(Vec::new());
        }
        let until = unix_millis(now).saturating_add(duration_millis(lease));
        let rows: Vec<(i64, String, [u8; 32])> = claims
            .iter()
            .map(|(key, token)| {
                let event = key.storage_key().1.into_owned();
                (account(key), event, token_bytes(*token))
            })
            .collect();
        self.run("renew", move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut answers = Vec::with_capacity(rows.len());
            {
                let mut renew = tx.prepare_cached(RENEW)?;
                for (account, event, token) in &rows {
                    let params = params![account, event, STATUS_CLAIMED, &token[..], until];
                    answers.push(renew.execute(params)? == 1);
                }
            }
            tx.commit()?;
            Ok(answers)
        })
        .await
    }

    async fn release(&self, key: &DedupKey, token: ClaimOwner) -> Result<(), StoreError> {
        let (account, event) = (account(key), key.storage_key().1.into_owned());
        let token = token_bytes(token);
        self.run("release", move |conn| {
            conn.execute(
                "DELETE FROM alm_events WHERE account_id = ?1 AND event_id = ?2 \
                 AND status = ?3 AND token = ?4",
                params![account, event, STATUS_CLAIMED, &token[..]],
            )
            .map(drop)
        })
        .await
    }

    /// In steps of at most 1,000 rows, each its own transaction (and its
    /// own turn at the connection), found through the expiry indexes.
    async fn sweep(&self, now: SystemTime) -> Result<u64, StoreError> {
        let now_ms = unix_millis(now);
        let mut removed = 0u64;
        for step in SWEEP_STEPS {
            loop {
                let rows = self
                    .run("sweep", move |conn| {
                        conn.prepare_cached(step)?
                            .execute(params![now_ms, SWEEP_CHUNK])
                    })
                    .await?;
                removed += rows as u64;
                if (rows as i64) < SWEEP_CHUNK {
                    break;
                }
            }
        }
        Ok(removed)
    }
}
