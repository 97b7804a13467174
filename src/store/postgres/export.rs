//! The learner projection's CSV export on PostgreSQL: the server sends the
//! stored columns in its binary `COPY` format (it formats nothing) and the
//! client renders them, byte for byte what
//! [`TranscriptCsv`](crate::projection::TranscriptCsv) writes of a record.

use std::io::Write;

use futures_util::{FutureExt, StreamExt};

use time::OffsetDateTime;
use tokio_postgres::binary_copy::{BinaryCopyOutRow, BinaryCopyOutStream};
use tokio_postgres::types::Type;

use super::connection::{TimedOut, bounded};
use super::{PostgresStore, pg_error, timed_out};
use crate::projection::{TranscriptCsv, utc_millis, utc_text};
use crate::store::StoreError;

/// A record's columns in the order of [`CSV_HEADER`](crate::projection::CSV_HEADER),
/// as the export reads them and the projection's `COPY` writes them.
pub(super) const RECORD_COLUMNS: &str = "account_id, user_id, lo_id, lo_type, lo_instance_id, \
     status, progress_percent, date_enrolled, date_started, date_completed, has_passed, \
     enrollment_source, last_event_id, last_event_name, last_event_time, updated_at";

/// The types of [`RECORD_COLUMNS`].
pub(super) const RECORD_TYPES: [Type; 16] = [
    Type::INT8,
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::FLOAT8,
    Type::TIMESTAMPTZ,
    Type::TIMESTAMPTZ,
    Type::TIMESTAMPTZ,
    Type::BOOL,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TIMESTAMPTZ,
    Type::TIMESTAMPTZ,
];

/// The export's `COPY` statement: [`RECORD_COLUMNS`], as they are stored,
/// in the primary key's order, in PostgreSQL's binary format: the server
/// formats nothing (formatting the five times with `to_char` was what
/// bounded the export), the client renders each row as
/// [`TranscriptCsv::write`] renders a record.
fn copy_sql(table: &str) -> String {
    format!(
        "COPY (SELECT {RECORD_COLUMNS} FROM {table} \
         ORDER BY account_id, user_id, lo_instance_id) TO STDOUT WITH (FORMAT binary)"
    )
}

/// Writes a row of [`copy_sql`] as [`TranscriptCsv::write`] writes its
/// record: ids unsigned, times as [`utc_text`], absent values empty.
fn write_row<W: Write>(
    row: &BinaryCopyOutRow,
    csv: &mut TranscriptCsv<W>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let id = |i: usize| row.try_get::<i64>(i).map(|v| (v as u64).to_string());
    let text = |i: usize| {
        row.try_get::<Option<&str>>(i)
            .map(Option::unwrap_or_default)
    };
    let mut times = [[0u8; 24]; 5];
    let mut slow: [String; 5] = Default::default();
    let mut present = [false; 5];
    for (slot, column) in [7, 8, 9, 14, 15].into_iter().enumerate() {
        if let Some(t) = row.try_get::<Option<OffsetDateTime>>(column)? {
            present[slot] = true;
            if utc_millis(t, &mut times[slot]).is_none() {
                slow[slot] = utc_text(t);
            }
        }
    }
    let mut rendered = [""; 5];
    for (slot, text) in rendered.iter_mut().enumerate() {
        *text = match (present[slot], slow[slot].as_str()) {
            (false, _) => "",
            (true, "") => std::str::from_utf8(&times[slot])?,
            (true, slow) => slow,
        };
    }
    let (account, user) = (id(0)?, id(1)?);
    let percent = row.try_get::<f64>(6)?.to_string();
    let passed = match row.try_get::<Option<bool>>(10)? {
        Some(true) => "true",
        Some(false) => "false",
        None => "",
    };
    let fields = [
        account.as_str(),
        user.as_str(),
        text(2)?,
        text(3)?,
        text(4)?,
        text(5)?,
        percent.as_str(),
        rendered[0],
        rendered[1],
        rendered[2],
        passed,
        text(11)?,
        text(12)?,
        text(13)?,
        rendered[3],
        rendered[4],
    ];
    csv.write_fields(&fields)?;
    Ok(())
}

impl PostgresStore {
    /// A connection of its own for an export, taken out of the pool (it
    /// closes when dropped), without the server's `statement_timeout` (an
    /// export may take longer than one call) and reading in the primary
    /// key's order from its index as the rows go: a sort would hold the
    /// first row back until the whole table is sorted (over the call
    /// timeout at 10^6 rows).
    pub(super) async fn export_client(
        &self,
    ) -> Result<deadpool_postgres::ClientWrapper, StoreError> {
        let client = deadpool_postgres::Object::take(self.client().await?);
        client
            .batch_execute("SET statement_timeout = 0; SET enable_sort = off")
            .await
            .map_err(|e| pg_error("cannot start the export", e))?;
        Ok(client)
    }

    /// Writes every learner record as CSV (the columns and format of
    /// [`TranscriptCsv`]) into `out`, in key order, and gives `out` back
    /// with the number of rows.
    ///
    /// The server sends the table's columns (`COPY … TO STDOUT WITH
    /// (FORMAT binary)`), formatting nothing, and each row is written to
    /// `out` as it comes, rendered as [`TranscriptCsv::write`] renders a
    /// record: nothing else is held in memory. The
    /// export runs on a connection of its own, taken out of the pool (and
    /// closed at the end), without the server's `statement_timeout`: an
    /// export may take longer than one call. Instead, each piece must
    /// arrive within the store's call timeout
    /// ([`PostgresStore::with_call_timeout`]).
    ///
    /// ```no_run
    /// # async fn run(store: alm_webhooks::store::PostgresStore) -> Result<(), Box<dyn std::error::Error>> {
    /// let file = std::fs::File::create("learners.csv")?;
    /// let (_file, rows) = store.export_learner_csv(file).await?;
    /// println!("{rows} learner records");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// When the database or `out` fails, or a piece is late.
    pub async fn export_learner_csv<W: Write + Send>(
        &self,
        out: W,
    ) -> Result<(W, u64), StoreError> {
        let io = |e: std::io::Error| StoreError::with_source("postgres: the export failed", e);
        let sql = copy_sql(&self.learner_table());
        let start = async {
            let client = self.export_client().await?;
            let rows = client
                .copy_out(sql.as_str())
                .await
                .map_err(|e| pg_error("cannot export learner records", e))?;
            Ok::<_, StoreError>((client, rows))
        };
        let (_client, rows) = bounded(self.timeout, start, timed_out).await?;
        let mut csv = TranscriptCsv::new(out).map_err(io)?;
        let mut rows = std::pin::pin!(BinaryCopyOutStream::new(rows, &RECORD_TYPES));
        loop {
            // A row already there is taken without a timer.
            let next = match rows.next().now_or_never() {
                Some(next) => next,
                None => tokio::time::timeout(self.timeout, rows.next())
                    .await
                    .map_err(|_| timed_out(TimedOut(self.timeout)))?,
            };
            let Some(row) = next else { break };
            let row = row.map_err(|e| pg_error("the export failed", e))?;
            write_row(&row, &mut csv).map_err(|e| {
                StoreError::with_source("postgres: the export failed", std::io::Error::other(e))
            })?;
        }
        let n = csv.rows();
        let out = csv.finish().map_err(io)?;
        Ok((out, n))
    }
}
