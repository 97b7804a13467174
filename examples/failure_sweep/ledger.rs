//! The ledger: one row per handler run (run, event id, process id, time) in
//! one PostgreSQL table for every backend, written by the receivers'
//! handler as its effect and read by the sweep when it counts.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio_postgres::{Client, NoTls};

/// Every await on the ledger is bounded by this.
const BOUND: Duration = Duration::from_secs(5);

/// The ledger's table (shared by every run; rows carry their run).
pub(crate) const TABLE: &str = "alm_sweep_ledger";

/// One handler run, as the sweep reads it back (in insertion order).
#[derive(Debug, Clone)]
pub(crate) struct Run {
    pub(crate) event_id: String,
    pub(crate) pid: i32,
}

/// A connection to the ledger that reconnects after an error, shared by
/// the receiver's workers: their statements are pipelined on it, none
/// waits for another's round trip.
#[derive(Debug)]
pub(crate) struct Ledger {
    url: String,
    client: Mutex<Option<Arc<Client>>>,
}

async fn bounded<T, E: std::fmt::Display>(
    what: &str,
    call: impl Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(BOUND, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(format!("ledger {what}: {e}")),
        Err(_) => Err(format!("ledger {what}: no answer within {BOUND:?}")),
    }
}

impl Ledger {
    /// `url` is a `postgres://` URL; the connection names itself
    /// `alm-sweep-ledger` so that the sweep's `pg_terminate_backend` spares
    /// it. Its commits do not wait for the WAL flush
    /// (`synchronous_commit=off`): a committed row is visible at once and
    /// outlives any receiver, and the sweep never stops the server itself.
    pub(crate) fn new(url: &str) -> Self {
        let sep = if url.contains('?') { '&' } else { '?' };
        Self {
            url: format!(
                "{url}{sep}application_name=alm-sweep-ledger&options=-c%20synchronous_commit%3Doff"
            ),
            client: Mutex::new(None),
        }
    }

    async fn client(&self) -> Result<Arc<Client>, String> {
        let mut slot = self.client.lock().await;
        match slot.as_ref() {
            Some(client) if !client.is_closed() => Ok(Arc::clone(client)),
            _ => {
                let (client, connection) =
                    bounded("connect", tokio_postgres::connect(&self.url, NoTls)).await?;
                tokio::spawn(connection);
                let client = Arc::new(client);
                *slot = Some(Arc::clone(&client));
                Ok(client)
            }
        }
    }

    /// Runs a statement; an error drops the connection for the next call.
    async fn execute(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, String> {
        let client = self.client().await?;
        let result = bounded("write", client.execute(sql, params)).await;
        if result.is_err() {
            let mut slot = self.client.lock().await;
            if slot.as_ref().is_some_and(|c| Arc::ptr_eq(c, &client)) {
                *slot = None;
            }
        }
        result
    }

    /// Creates the table if needed.
    pub(crate) async fn create(&self) -> Result<(), String> {
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS {TABLE} (id BIGSERIAL PRIMARY KEY, run TEXT NOT NULL, \
             event_id TEXT NOT NULL, pid INT NOT NULL, at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp())"
        );
        self.execute(&sql, &[]).await?;
        let index = format!("CREATE INDEX IF NOT EXISTS {TABLE}_run ON {TABLE} (run, id)");
        self.execute(&index, &[]).await.map(drop)
    }

    /// Records one handler run: the effect the sweep counts.
    pub(crate) async fn record(&self, run: &str, event_id: &str) -> Result<(), String> {
        let pid = i32::try_from(std::process::id()).unwrap_or(i32::MAX);
        let sql = format!("INSERT INTO {TABLE} (run, event_id, pid) VALUES ($1, $2, $3)");
        self.execute(&sql, &[&run, &event_id, &pid]).await.map(drop)
    }

    /// Every run of `run`, in the order they were written.
    pub(crate) async fn runs(&self, run: &str) -> Result<Vec<Run>, String> {
        let sql = format!("SELECT event_id, pid FROM {TABLE} WHERE run = $1 ORDER BY id");
        let client = self.client().await?;
        let rows = bounded("read", client.query(&sql, &[&run])).await?;
        Ok(rows
            .iter()
            .map(|row| Run {
                event_id: row.get(0),
                pid: row.get(1),
            })
            .collect())
    }

    /// The events process `pid` ran in `run`.
    pub(crate) async fn events_of(&self, run: &str, pid: i32) -> Result<Vec<String>, String> {
        let sql = format!("SELECT DISTINCT event_id FROM {TABLE} WHERE run = $1 AND pid = $2");
        let client = self.client().await?;
        let rows = bounded("read", client.query(&sql, &[&run, &pid])).await?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    /// A query that takes a text array and answers one text column (the
    /// store's own tables, on the same server).
    pub(crate) async fn strings(&self, sql: &str, texts: &[String]) -> Result<Vec<String>, String> {
        let client = self.client().await?;
        let rows = bounded("read", client.query(sql, &[&texts])).await?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    /// A query without parameters that answers one text column (the
    /// store's own tables, on the same server).
    pub(crate) async fn texts(&self, sql: &str) -> Result<Vec<String>, String> {
        let client = self.client().await?;
        let rows = bounded("read", client.query(sql, &[])).await?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    /// The newest run of `run`: (row id, process id).
    pub(crate) async fn newest(&self, run: &str) -> Result<Option<(i64, i32)>, String> {
        let sql = format!("SELECT id, pid FROM {TABLE} WHERE run = $1 ORDER BY id DESC LIMIT 1");
        let client = self.client().await?;
        let row = bounded("read", client.query_opt(&sql, &[&run])).await?;
        Ok(row.map(|row| (row.get(0), row.get(1))))
    }

    /// Removes `run`'s rows.
    pub(crate) async fn forget(&self, run: &str) -> Result<(), String> {
        let sql = format!("DELETE FROM {TABLE} WHERE run = $1");
        self.execute(&sql, &[&run]).await.map(drop)
    }

    /// An administrative statement (schema creation and removal).
    pub(crate) async fn admin(&self, sql: &str) -> Result<(), String> {
        self.execute(sql, &[]).await.map(drop)
    }

    /// Ends every PostgreSQL connection named `application_name`; how many.
    pub(crate) async fn terminate(&self, application_name: &str) -> Result<usize, String> {
        let sql = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                   WHERE application_name = $1 AND pid <> pg_backend_pid()";
        let client = self.client().await?;
        let rows = bounded("terminate", client.query(sql, &[&application_name])).await?;
        Ok(rows.len())
    }
}
