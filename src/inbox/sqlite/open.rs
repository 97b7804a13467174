//! Opening the SQLite inbox: its own file, or the store's connection.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::Connection;

use super::{SCHEMA, SqliteInbox, sqlite_error};
use crate::inbox::InboxError;
use crate::store::SqliteStore;
use crate::store::sqlite::open::{self, Sync};

impl SqliteInbox {
    /// Opens (creating if missing) the database file at `path`.
    ///
    /// # Errors
    ///
    /// An [`InboxError`] if the file cannot be opened or its tables created.
    ///
    /// ```
    /// use alm_webhooks::inbox::SqliteInbox;
    /// let path = std::env::temp_dir().join(format!("alm-inbox-open-{}.db", std::process::id()));
    /// let inbox = SqliteInbox::open(&path).unwrap();
    /// drop(inbox);
    /// assert!(SqliteInbox::open(&path).is_ok(), "opened again, tables kept");
    /// # for suffix in ["", "-wal", "-shm"] { let _ = std::fs::remove_file(format!("{}{suffix}", path.display())); }
    /// assert!(SqliteInbox::open("/nonexistent-dir/inbox.db").is_err());
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<Self, InboxError> {
        let path = path.as_ref();
        let conn = open::connection(Some(path), Sync::Normal)
            .map_err(|e| sqlite_error(&format!("cannot open {}", path.display()), e))?;
        Self::setup(Arc::new(Mutex::new(conn)), Some(path.to_owned()))
    }

    /// A private in-memory database, for tests: nothing survives the inbox.
    ///
    /// # Errors
    ///
    /// An [`InboxError`] if SQLite cannot allocate it.
    ///
    /// ```
    /// let inbox = alm_webhooks::inbox::SqliteInbox::open_in_memory().unwrap();
    /// # let _ = inbox;
    /// ```
    pub fn open_in_memory() -> Result<Self, InboxError> {
        let conn = open::connection(None, Sync::Normal)
            .map_err(|e| sqlite_error("cannot open an in-memory database", e))?;
        Self::setup(Arc::new(Mutex::new(conn)), None)
    }

    /// The inbox in the store's database, on the store's own connection:
    /// one file (or one in-memory database) and one connection for both.
    /// Creates the inbox's tables beside the store's if they are missing.
    /// The inbox's acknowledgements commit with `synchronous=FULL` (an
    /// acknowledged delivery must survive a crash of the machine), the
    /// rest, the store's commits among them, with the store's `NORMAL`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use alm_webhooks::inbox::{Inbox, SqliteInbox};
    /// use alm_webhooks::store::SqliteStore;
    /// use alm_webhooks::{Engine, inbox::WorkerOptions, Authentication, Endpoint};
    /// use std::sync::Arc;
    ///
    /// let store = SqliteStore::open_in_memory()?;
    /// let inbox = Arc::new(SqliteInbox::from_store(&store)?);
    /// let endpoint = Endpoint::builder(Authentication::None)
    ///     .engine(Engine::builder(store).build())
    ///     .inbox(inbox, WorkerOptions::new())
    ///     .handler(|_event| async { Ok(()) })
    ///     .build()?;
    /// # endpoint.shutdown(std::time::Duration::from_secs(1)).await;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// An [`InboxError`] if the tables cannot be created.
    pub fn from_store(store: &SqliteStore) -> Result<Self, InboxError> {
        Self::setup(store.connection(), store.path().map(Path::to_owned))
    }

    /// Creates the tables if they are missing.
    fn setup(conn: Arc<Mutex<Connection>>, path: Option<PathBuf>) -> Result<Self, InboxError> {
        {
            let conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            conn.execute_batch(SCHEMA)
                .map_err(|e| sqlite_error("cannot create the inbox tables", e))?;
            // A file of an earlier version: add the column that counts
            // abandoned attempts.
            let has_abandoned: bool = conn
                .query_row(
                    "SELECT count(*) FROM pragma_table_info('alm_inbox') WHERE name = 'abandoned'",
                    [],
                    |r| r.get::<_, i64>(0).map(|n| n > 0),
                )
                .map_err(|e| sqlite_error("cannot read the inbox table's columns", e))?;
            if !has_abandoned {
                conn.execute_batch(super::sql::ADD_ABANDONED)
                    .map_err(|e| sqlite_error("cannot add the abandoned column", e))?;
            }
        }
        Ok(Self { conn, path })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synchronous(conn: &Connection) -> rusqlite::Result<i64> {
        conn.query_row("PRAGMA synchronous", [], |r| r.get(0))
    }

    /// An acknowledgement waits for the disk (`FULL` = 2); the connection
    /// runs `NORMAL` (1) before and after it, also when it fails.
    #[tokio::test]
    async fn only_acknowledgements_wait_for_the_disk() {
        let dir = std::env::temp_dir().join(format!("alm-inbox-sync-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let inbox = SqliteInbox::open(dir.join("inbox.db")).unwrap();
        let before = inbox.run("read", |c| synchronous(c)).await.unwrap();
        let during = inbox
            .run_acknowledged("read", |c| synchronous(c))
            .await
            .unwrap();
        let failed = inbox
            .run_acknowledged("fail", |c| c.execute_batch("SELECT * FROM no_such_table"))
            .await;
        let after = inbox.run("read", |c| synchronous(c)).await.unwrap();
        assert_eq!((before, during, after), (1, 2, 1));
        assert!(failed.is_err());
        drop(inbox);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
