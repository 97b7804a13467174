//! The SQLite learner table's form ([`SCHEMA`]), and the move of a table
//! made by an earlier version into it ([`UPGRADE`]).

use rusqlite::{Connection, OptionalExtension};

/// The table is keyed by `seq` (SQLite's rowid: a changed record's row is
/// written at the table's end, the change feed reads in table order); the
/// record's key and the instance lookup are indexes. A `WITHOUT ROWID`
/// table keyed by the record, as this crate made it before, kept rows of
/// some 400 bytes in its key's B-tree, which SQLite splits often: writing
/// a new record cost 2.5 times as much (see [`UPGRADE`]).
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS alm_learner_records (
    account_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    lo_instance_id TEXT NOT NULL,
    lo_id TEXT NOT NULL,
    lo_type TEXT NOT NULL,
    status TEXT NOT NULL,
    progress_percent REAL NOT NULL,
    date_enrolled TEXT,
    date_started TEXT,
    date_completed TEXT,
    has_passed INTEGER,
    enrollment_source TEXT,
    last_event_id TEXT NOT NULL,
    last_event_name TEXT NOT NULL,
    last_event_time TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    seq INTEGER PRIMARY KEY NOT NULL,
    merge_state TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS alm_learner_records_key
    ON alm_learner_records (account_id, user_id, lo_instance_id);
CREATE INDEX IF NOT EXISTS alm_learner_records_instance
    ON alm_learner_records (account_id, lo_instance_id, user_id);
";

/// A table made by an earlier version (`WITHOUT ROWID`, keyed by the
/// record, with an index on `seq`) is moved into the present form, rows
/// and all, in one transaction, before [`SCHEMA`] runs.
const UPGRADE: &str = "
ALTER TABLE alm_learner_records RENAME TO alm_learner_records_before;
DROP INDEX IF EXISTS alm_learner_records_instance;
DROP INDEX IF EXISTS alm_learner_records_seq;
";

/// The columns the upgrade copies (every one, by name).
const ALL_COLUMNS: &str = "account_id, user_id, lo_instance_id, lo_id, lo_type, status, \
    progress_percent, date_enrolled, date_started, date_completed, has_passed, \
    enrollment_source, last_event_id, last_event_name, last_event_time, updated_at, seq, \
    merge_state";

/// Makes the table and its indexes if missing, moving a table of the
/// earlier form into the present one first (in one transaction).
pub(super) fn make(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    let made: Option<String> = tx
        .query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'table' \
             AND name = 'alm_learner_records'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    let earlier = made.is_some_and(|sql| sql.to_ascii_uppercase().contains("WITHOUT ROWID"));
    if earlier {
        tx.execute_batch(UPGRADE)?;
    }
    tx.execute_batch(SCHEMA)?;
    if earlier {
        tx.execute_batch(&format!(
            "INSERT INTO alm_learner_records ({ALL_COLUMNS}) \
             SELECT {ALL_COLUMNS} FROM alm_learner_records_before; \
             DROP TABLE alm_learner_records_before;"
        ))?;
    }
    tx.commit()
}
