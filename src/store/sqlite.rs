//! A durable store in an embedded SQLite database file.
//!
//! For a **single receiver that must survive restarts without running a
//! database server**: the dedup history and the rule states are kept in one
//! file, so an event ALM redelivers after a restart is still recognised as a
//! duplicate, and an out-of-order event as stale.
//!
//! It is **not** for several processes on a network file system (NFS, SMB,
//! cloud volumes shared between hosts): SQLite's locking is unreliable there
//! and WAL mode needs shared memory on one host. Several processes on the
//! same host may open the same local file (each claim and commit is a
//! transaction taking SQLite's write lock), but replicas on several hosts
//! need a shared store such as [`RedisStore`](super::RedisStore).
//!
//! # Schema
//!
//! [`SqliteStore::open`] creates the tables if they are missing:
//!
//! ```sql
//! CREATE TABLE alm_events (
//!     account_id INTEGER, event_id TEXT,
//!     status INTEGER,             -- 0: claimed, 1: decided
//!     token BLOB,                 -- a claim's token, 16 bytes big-endian
//!     lease_until_ms INTEGER,     -- a claim's lease end
//!     remember_until_ms INTEGER,  -- a decided event's window end
//!     PRIMARY KEY (account_id, event_id)) WITHOUT ROWID;
//! CREATE TABLE alm_states (
//!     state_key TEXT PRIMARY KEY, -- the StateKey's Display form
//!     version INTEGER,
//!     state TEXT,                 -- the EntityState as JSON
//!     expires_ms INTEGER);
//! ```
//!
//! The account id (a `u64`) is stored bit-cast to SQLite's signed 64-bit
//! `INTEGER` (ids above `i64::MAX` read as negative numbers in the file);
//! the store always converts the same way, so every id keeps its own row.
//! Times are Unix milliseconds.
//!
//! # Whose clock
//!
//! The store decides with the `now` it is given, never with SQLite's clock,
//! so an engine with a test clock gets the same answers as from
//! [`MemoryStore`](super::MemoryStore). Times are compared in milliseconds
//! (the memory store keeps decided events to the second, so the two can
//! differ within the last second of a window). Nothing expires on its own:
//! run [`Store::sweep`] now and then to keep the file small.
//!
//! # Durability
//!
//! The database uses WAL journaling with `synchronous=NORMAL`. A crash of
//! the process loses nothing that was committed. A power failure or OS crash
//! can lose the last transactions before the WAL was synced to disk (at a
//! checkpoint), never corrupt the file: the events decided in those last
//! moments may be processed again when ALM redelivers them. A `:memory:`
//! database ([`SqliteStore::open_in_memory`]) is lost when the store is
//! dropped.
//!
//! # Blocking
//!
//! The store holds one connection behind a mutex. Every operation is a short
//! transaction (`BEGIN IMMEDIATE` for claims, commits and sweeps) run on
//! tokio's blocking thread pool ([`tokio::task::spawn_blocking`]), so a
//! slow disk or a lock held by another process (waited for up to 5 seconds,
//! then a [`StoreError`]) does not stall the async workers. Polled outside
//! a tokio runtime, an operation runs inline instead (it takes microseconds
//! unless another connection holds the write lock).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use time::OffsetDateTime;

use super::{Claim, ClaimToken, Commit, CommitOutcome, DedupKey, Store, StoreError, Versioned};
use crate::engine::{EntityState, StateKey};

/// How long an operation waits for another connection's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const STATUS_CLAIMED: i64 = 0;
const STATUS_DECIDED: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS alm_events (
    account_id INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    status INTEGER NOT NULL,
    token BLOB,
    lease_until_ms INTEGER,
    remember_until_ms INTEGER,
    PRIMARY KEY (account_id, event_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alm_states (
    state_key TEXT PRIMARY KEY NOT NULL,
    version INTEGER NOT NULL,
    state TEXT NOT NULL,
    expires_ms INTEGER NOT NULL
);
";

/// The SQLite store. See the [module docs](self).
///
/// Cloning is cheap and shares the connection.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    /// The file, or `None` for an in-memory database.
    path: Option<PathBuf>,
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

fn sqlite_error(what: &str, e: rusqlite::Error) -> StoreError {
    StoreError::with_source(format!("sqlite: {what}"), e)
}

fn unix_millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn duration_millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The account id as stored: the `u64` bit-cast to `i64`.
fn account(key: &DedupKey) -> i64 {
    key.account_id.get() as i64
}

fn token_bytes(token: ClaimToken) -> [u8; 16] {
    token.0.to_be_bytes()
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
        let conn = Connection::open(path)
            .map_err(|e| sqlite_error(&format!("cannot open {}", path.display()), e))?;
        Self::setup(conn, Some(path.to_owned()))
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
        let conn = Connection::open_in_memory()
            .map_err(|e| sqlite_error("cannot open an in-memory database", e))?;
        Self::setup(conn, None)
    }

    /// The database file, or `None` for an in-memory database.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    fn setup(conn: Connection, path: Option<PathBuf>) -> Result<Self, StoreError> {
        // The busy timeout first: another connection may be creating the
        // tables or switching to WAL at the same moment.
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| sqlite_error("cannot set the busy timeout", e))?;
        // In memory, the journal mode stays "memory"; the answer is ignored.
        conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
            .map_err(|e| sqlite_error("cannot switch to WAL", e))?;
        conn.execute_batch("PRAGMA synchronous = NORMAL;")
            .map_err(|e| sqlite_error("cannot set synchronous", e))?;
        conn.execute_batch(SCHEMA)
            .map_err(|e| sqlite_error("cannot create the tables", e))?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            path,
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
        lease: Duration,
        now: OffsetDateTime,
    ) -> Result<Claim, StoreError> {
        let (account, event) = (account(key), key.event_id.as_str().to_owned());
        let now_ms = unix_millis(now);
        let lease_until = now_ms.saturating_add(duration_millis(lease));
        let token = ClaimToken::random();
        self.run("claim", move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let row: Option<(i64, Option<i64>, Option<i64>)> = tx
                .query_row(
                    "SELECT status, lease_until_ms, remember_until_ms FROM alm_events \
                     WHERE account_id = ?1 AND event_id = ?2",
                    params![account, event],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            match row {
                Some((STATUS_DECIDED, _, Some(until))) if until > now_ms => {
                    return Ok(Claim::AlreadyDecided);
                }
                Some((STATUS_CLAIMED, Some(end), _)) if end > now_ms => {
                    return Ok(Claim::InFlight);
                }
                _ => {}
            }
            tx.execute(
                "INSERT OR REPLACE INTO alm_events \
                 (account_id, event_id, status, token, lease_until_ms, remember_until_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, NULL)",
                params![
                    account,
                    event,
                    STATUS_CLAIMED,
                    &token_bytes(token)[..],
                    lease_until
                ],
            )?;
            tx.commit()?;
            Ok(Claim::Claimed(token))
        })
        .await
    }

    async fn load(&self, key: &StateKey) -> Result<Versioned, StoreError> {
        let state_key = key.to_string();
        let row: Option<(i64, String)> = self
            .run("load", move |conn| {
                conn.query_row(
                    "SELECT version, state FROM alm_states WHERE state_key = ?1",
                    params![state_key],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
            })
            .await?;
        let Some((version, json)) = row else {
            return Ok(Versioned::default());
        };
        let version = u64::try_from(version)
            .map_err(|e| StoreError::with_source("sqlite: stored version is negative", e))?;
        let state: EntityState = serde_json::from_str(&json)
            .map_err(|e| StoreError::with_source("sqlite: stored state is malformed", e))?;
        Ok(Versioned { state, version })
    }

    async fn commit(&self, commit: Commit<'_>) -> Result<CommitOutcome, StoreError> {
        let (account, event) = (account(commit.key), commit.key.event_id.as_str().to_owned());
        let token = token_bytes(commit.token);
        let until = unix_millis(commit.remember_until);
        let state_until = unix_millis(commit.state_until);
        let update = match commit.update {
            Some(u) => {
                let json = serde_json::to_string(u.state).map_err(|e| {
                    StoreError::with_source("sqlite: cannot serialize the state", e)
                })?;
                let expected = i64::try_from(u.expected_version).map_err(|e| {
                    StoreError::with_source("sqlite: expected version out of range", e)
                })?;
                Some((u.key.to_string(), expected, json))
            }
            None => None,
        };
        self.run("commit", move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let held: Option<i64> = tx
                .query_row(
                    "SELECT 1 FROM alm_events WHERE account_id = ?1 AND event_id = ?2 \
                     AND status = ?3 AND token = ?4",
                    params![account, event, STATUS_CLAIMED, &token[..]],
                    |r| r.get(0),
                )
                .optional()?;
            if held.is_none() {
                return Ok(CommitOutcome::LeaseLost);
            }
            if let Some((state_key, expected, json)) = update {
                let current: i64 = tx
                    .query_row(
                        "SELECT version FROM alm_states WHERE state_key = ?1",
                        params![state_key],
                        |r| r.get(0),
                    )
                    .optional()?
                    .unwrap_or(0);
                if current != expected {
                    return Ok(CommitOutcome::StateChanged);
                }
                tx.execute(
                    "INSERT OR REPLACE INTO alm_states (state_key, version, state, expires_ms) \
                     VALUES (?1, ?2, ?3, ?4)",
                    params![state_key, current.saturating_add(1), json, state_until],
                )?;
            }
            tx.execute(
                "UPDATE alm_events SET status = ?3, token = NULL, lease_until_ms = NULL, \
                 remember_until_ms = ?4 WHERE account_id = ?1 AND event_id = ?2",
                params![account, event, STATUS_DECIDED, until],
            )?;
            tx.commit()?;
            Ok(CommitOutcome::Committed)
        })
        .await
    }

    async fn release(&self, key: &DedupKey, token: ClaimToken) -> Result<(), StoreError> {
        let (account, event) = (account(key), key.event_id.as_str().to_owned());
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

    async fn sweep(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let now_ms = unix_millis(now);
        self.run("sweep", move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let events = tx.execute(
                "DELETE FROM alm_events WHERE \
                 (status = ?1 AND remember_until_ms <= ?3) \
                 OR (status = ?2 AND lease_until_ms <= ?3)",
                params![STATUS_DECIDED, STATUS_CLAIMED, now_ms],
            )?;
            let states = tx.execute(
                "DELETE FROM alm_states WHERE expires_ms <= ?1",
                params![now_ms],
            )?;
            tx.commit()?;
            Ok((events + states) as u64)
        })
        .await
    }
}
