//! The learner projection's CSV export on PostgreSQL: the server renders
//! the stored columns as CSV (`COPY … TO STDOUT`), byte for byte what
//! [`TranscriptCsv`](crate::projection::TranscriptCsv) writes, and the
//! client only copies the bytes out.

use std::io::Write;

use futures_util::{FutureExt, StreamExt};

use super::connection::{TimedOut, bounded};
use super::{PostgresStore, pg_error, timed_out};
use crate::projection::TranscriptCsv;
use crate::store::StoreError;

/// A time as [`TranscriptCsv`] writes it (RFC 3339, UTC, milliseconds).
fn utc(column: &str) -> String {
    format!("to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')")
}

/// A `u64` id stored bit-cast into a `BIGINT`, as its decimal text.
fn unsigned(column: &str) -> String {
    format!(
        "CASE WHEN {column} < 0 THEN ({column}::numeric + 18446744073709551616)::text \
         ELSE {column}::text END"
    )
}

/// The export's `COPY` statement: the columns of
/// [`CSV_HEADER`](crate::projection::CSV_HEADER), in the primary key's
/// order (qualified: an output column named like the ids is text). Text the CSV writer would leave unquoted stays unquoted: an empty
/// source is `NULL` (PostgreSQL quotes an empty string, the writer does
/// not), a boolean is `true`/`false` (not `t`/`f`).
fn copy_sql(table: &str) -> String {
    let columns = [
        unsigned("account_id"),
        unsigned("user_id"),
        "lo_id".into(),
        "lo_type".into(),
        "lo_instance_id".into(),
        "status".into(),
        "progress_percent".into(),
        utc("date_enrolled"),
        utc("date_started"),
        utc("date_completed"),
        "CASE has_passed WHEN true THEN 'true' WHEN false THEN 'false' END".into(),
        "NULLIF(enrollment_source, '')".into(),
        "last_event_id".into(),
        "last_event_name".into(),
        utc("last_event_time"),
        utc("updated_at"),
    ];
    format!(
        "COPY (SELECT {} FROM {table} AS r ORDER BY r.account_id, r.user_id, \
         r.lo_instance_id) TO STDOUT WITH (FORMAT csv)",
        columns.join(", ")
    )
}

/// Counts the records in CSV bytes as they pass: line ends outside quotes.
#[derive(Debug, Default)]
struct Records {
    rows: u64,
    quoted: bool,
}

impl Records {
    fn count(&mut self, bytes: &[u8]) {
        for &b in bytes {
            match b {
                b'"' => self.quoted = !self.quoted,
                b'\n' if !self.quoted => self.rows += 1,
                _ => {}
            }
        }
    }
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
    /// The server renders the rows (`COPY … TO STDOUT WITH (FORMAT csv)`
    /// from the table's columns) and they are copied to `out` through a
    /// 64 KiB buffer as they come: nothing else is held in memory. The
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
        let header = TranscriptCsv::new(out).map_err(io)?.finish().map_err(io)?;
        let mut out = std::io::BufWriter::with_capacity(64 * 1024, header);
        let sql = copy_sql(&self.learner_table());
        let start = async {
            let client = self.export_client().await?;
            let rows = client
                .copy_out(sql.as_str())
                .await
                .map_err(|e| pg_error("cannot export learner records", e))?;
            Ok::<_, StoreError>((client, Box::pin(rows)))
        };
        let (_client, mut rows) = bounded(self.timeout, start, timed_out).await?;
        let mut records = Records::default();
        loop {
            // A piece already there is taken without a timer.
            let next = match rows.next().now_or_never() {
                Some(next) => next,
                None => tokio::time::timeout(self.timeout, rows.next())
                    .await
                    .map_err(|_| timed_out(TimedOut(self.timeout)))?,
            };
            let Some(piece) = next else { break };
            let piece = piece.map_err(|e| pg_error("the export failed", e))?;
            records.count(&piece);
            out.write_all(&piece).map_err(io)?;
        }
        let out = out.into_inner().map_err(|e| io(e.into_error()))?;
        Ok((out, records.rows))
    }
}

#[cfg(test)]
mod tests {
    use super::Records;

    #[test]
    fn records_are_counted_by_line_ends_outside_quotes() {
        let mut records = Records::default();
        records.count(b"1,\"a\nb\",c\n2,");
        records.count(b"\"x\"\"\",y\n");
        assert_eq!(records.rows, 2);
        assert!(!records.quoted);
    }
}
