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
/// busy timeout, WAL journaling and `sync`. A file it creates is readable
/// by its owner only (0600 on Unix; SQLite gives its `-wal` and `-shm`
/// files the database's mode): it holds learners' data.
pub(crate) fn connection(path: Option<&Path>, sync: Sync) -> rusqlite::Result<Connection> {
    let conn = match path {
        Some(path) => {
            create_private(path);
            Connection::open(path)?
        }
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

/// Creates `path` empty with mode 0600 if it does not exist yet (an empty
/// file is a valid new SQLite database). Any failure is left to SQLite's
/// own open to report, which says more; a file that exists keeps its mode,
/// and so does a name SQLite reads specially (`:memory:`, a `file:` URI).
fn create_private(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let text = path.to_string_lossy();
        if text.starts_with(':') || text.starts_with("file:") {
            return;
        }
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path);
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// Sets `synchronous` on an open connection.
pub(crate) fn set_sync(conn: &Connection, sync: Sync) -> rusqlite::Result<()> {
    conn.execute_batch(match sync {
        Sync::Normal => "PRAGMA synchronous = NORMAL;",
        Sync::Full => "PRAGMA synchronous = FULL;",
    })
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_new_database_and_its_journal_are_private() {
        let dir = std::env::temp_dir().join(format!("alm-sqlite-mode-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("new.db");
        let conn = connection(Some(&path), Sync::Full).unwrap();
        conn.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .unwrap();
        for suffix in ["", "-wal", "-shm"] {
            let file = format!("{}{suffix}", path.display());
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{file}: {mode:o}");
        }
        drop(conn);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
