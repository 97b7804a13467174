//! Opening a SQLite database, for the store and the inbox alike: one
//! connection setup (busy timeout, WAL, `synchronous`), so both can live
//! in one file, or share one connection.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

/// How long an operation waits for another connection's write lock before
/// it fails (transient): SQLite's `busy_timeout`.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How much SQLite waits for the disk at each commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sync {
    /// `synchronous=NORMAL`: in WAL mode, a crash of the machine (not of
    /// the process) can lose the last commits. The store's choice.
    Normal,
    /// `synchronous=FULL`: every commit is on disk when it returns. The
    /// inbox's choice: an acknowledged delivery must survive.
    Full,
}

/// Opens `path` (or a private in-memory database for `None`) with the
/// busy timeout, WAL journaling and `sync`.
pub(crate) fn connection(path: Option<&Path>, sync: Sync) -> rusqlite::Result<Connection> {
    let conn = match path {
        Some(path) => Connection::open(path)?,
        None => Connection::open_in_memory()?,
    };
    // The busy timeout first: another connection may be creating the
    // tables or switching to WAL at the same moment.
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // In memory, the journal mode stays "memory"; the answer is ignored.
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
    set_sync(&conn, sync)?;
    Ok(conn)
}

/// Sets `synchronous` on an open connection.
pub(crate) fn set_sync(conn: &Connection, sync: Sync) -> rusqlite::Result<()> {
    conn.execute_batch(match sync {
        Sync::Normal => "PRAGMA synchronous = NORMAL;",
        Sync::Full => "PRAGMA synchronous = FULL;",
    })
}
