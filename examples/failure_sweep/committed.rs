//! What a death leaves to be run again: when a receiver dies, the events
//! its handler ran (its ledger rows) whose decision the store had not
//! committed (no decided row in the store's `alm_events`, or no event key
//! on Redis holding `d:…`, a decision). Those, and only those, may run again.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use alm_webhooks::store::storage_key;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::ledger::Ledger;
use super::traffic::position;

/// Every await on the store is bounded by this.
const BOUND: Duration = Duration::from_secs(5);

/// How long after a death its snapshot is taken: a ledger row whose
/// `INSERT` was on its way when the process was killed lands by then. The
/// dead process's deliveries are not taken again before their lease (5 s)
/// runs out, so nothing it left is committed by another process meanwhile.
const SETTLE: Duration = Duration::from_millis(200);

/// Where a run's store says which events are decided.
#[derive(Debug, Clone)]
pub(crate) enum Probe {
    Postgres { schema: String },
    Sqlite { path: PathBuf },
    Redis { url: String, prefix: String },
}

/// Dead process id → the events it ran and left uncommitted.
pub(crate) type AtDeaths = HashMap<i32, HashSet<String>>;

/// What the snapshots found, once every death was seen.
#[derive(Debug, Default)]
pub(crate) struct Snapshots {
    pub(crate) at_deaths: AtDeaths,
    pub(crate) errors: Vec<String>,
}

impl Probe {
    /// Takes a snapshot for each process id sent on the returned channel
    /// (each receiver's death), until every sender is dropped.
    pub(crate) fn watch(
        self,
        ledger_url: &str,
        run: &str,
    ) -> (mpsc::UnboundedSender<u32>, JoinHandle<Snapshots>) {
        let (tx, mut rx) = mpsc::unbounded_channel::<u32>();
        let (ledger, run) = (Ledger::new(ledger_url), run.to_owned());
        let task = tokio::spawn(async move {
            let mut found = Snapshots::default();
            while let Some(pid) = rx.recv().await {
                tokio::time::sleep(SETTLE).await;
                let pid = i32::try_from(pid).unwrap_or(i32::MAX);
                let mut last = None;
                for _ in 0..3 {
                    match self.uncommitted(&ledger, &run, pid).await {
                        Ok(events) => {
                            found.at_deaths.insert(pid, events);
                            last = None;
                            break;
                        }
                        Err(e) => last = Some(e),
                    }
                }
                if let Some(e) = last {
                    found
                        .errors
                        .push(format!("snapshot at the death of {pid}: {e}"));
                }
            }
            found
        });
        (tx, task)
    }

    /// The events `pid` ran (ledger) that the store has not decided.
    async fn uncommitted(
        &self,
        ledger: &Ledger,
        run: &str,
        pid: i32,
    ) -> Result<HashSet<String>, String> {
        let ran = ledger.events_of(run, pid).await?;
        if ran.is_empty() {
            return Ok(HashSet::new());
        }
        let decided = self.decided(ledger, &ran).await?;
        Ok(ran.into_iter().filter(|id| !decided.contains(id)).collect())
    }

    /// Which of `ids` the store holds as decided.
    async fn decided(&self, ledger: &Ledger, ids: &[String]) -> Result<HashSet<String>, String> {
        match self {
            Self::Postgres { schema } => {
                let keys: Vec<String> = ids.iter().map(|id| storage_key(id).into_owned()).collect();
                let sql = format!(
                    "SELECT event_id FROM {schema}.alm_events WHERE status = 1 AND event_id = ANY($1)"
                );
                Ok(ledger.strings(&sql, &keys).await?.into_iter().collect())
            }
            Self::Sqlite { path } => {
                let path = path.clone();
                let read = tokio::task::spawn_blocking(move || {
                    let db = rusqlite::Connection::open(&path).map_err(|e| e.to_string())?;
                    db.busy_timeout(BOUND).map_err(|e| e.to_string())?;
                    let mut statement = db
                        .prepare("SELECT event_id FROM alm_events WHERE status = 1")
                        .map_err(|e| e.to_string())?;
                    let rows = statement
                        .query_map([], |row| row.get::<_, String>(0))
                        .map_err(|e| e.to_string())?;
                    rows.collect::<Result<HashSet<String>, _>>()
                        .map_err(|e| e.to_string())
                });
                let keys = tokio::time::timeout(BOUND, read)
                    .await
                    .map_err(|_| format!("sqlite: no answer within {BOUND:?}"))?
                    .map_err(|e| e.to_string())??;
                Ok(ids
                    .iter()
                    .filter(|id| keys.contains(storage_key(id).as_ref()))
                    .cloned()
                    .collect())
            }
            Self::Redis { url, prefix } => {
                let client = redis::Client::open(url.as_str()).map_err(|e| e.to_string())?;
                let ask = async {
                    let mut con = client.get_multiplexed_async_connection().await?;
                    let mut pipe = redis::pipe();
                    for id in ids {
                        let account = position(id).map_or(0, |p| p.account);
                        let hex = base16ct::lower::encode_string(storage_key(id).as_bytes());
                        pipe.get(format!("{prefix}ev:{account}:{hex}"));
                    }
                    pipe.query_async::<Vec<Option<String>>>(&mut con).await
                };
                let values = tokio::time::timeout(BOUND, ask)
                    .await
                    .map_err(|_| format!("redis: no answer within {BOUND:?}"))?
                    .map_err(|e| e.to_string())?;
                Ok(ids
                    .iter()
                    .zip(values)
                    // A decided event's key holds `d:{remember_until_ms}`.
                    .filter(|(_, value)| value.as_deref().is_some_and(|v| v.starts_with("d:")))
                    .map(|(id, _)| id.clone())
                    .collect())
            }
        }
    }
}
