//! The commit hooks the sweep checks: every receiver keeps the learner
//! projection, and on SQLite and PostgreSQL a hook of a user's own writes
//! one row per processed event (`alm_sweep_hook`: event id, process id) in
//! the transaction that commits the decisions. Once a run has drained,
//! the sweep checks both against the ledger: exactly one hook row per
//! processed event, however the receivers died (`kill -9` mid-handler
//! included), and every learner record exactly the merge of its decided
//! events, as if each had been processed once.

use std::collections::{BTreeMap, HashMap, HashSet};

use alm_webhooks::projection::{self, LearnerEvent, LearnerRecord};
use alm_webhooks::store::rusqlite::{Transaction, params};
use alm_webhooks::store::{AnyStore, BoxFuture, Decided, LearnerReads, PostgresHook, SqliteHook};
use alm_webhooks::{AccountId, BoxError, Envelope};

use super::faults::Backend;
use super::ledger::Ledger;
use super::traffic::Plan;

/// The user's own table, in the store's database (its schema on
/// PostgreSQL).
pub(crate) const HOOK_TABLE: &str = "alm_sweep_hook";

fn pid() -> i64 {
    i64::from(std::process::id())
}

/// A user's hook on SQLite: a row per processed event.
#[derive(Debug)]
struct SqliteRows;

impl SqliteHook for SqliteRows {
    fn on_commit(&self, tx: &Transaction<'_>, decided: &[Decided<'_>]) -> Result<(), BoxError> {
        let sql = format!("INSERT INTO {HOOK_TABLE} (event_id, pid) VALUES (?1, ?2)");
        let mut insert = tx.prepare_cached(&sql)?;
        for d in decided.iter().filter(|d| d.is_processed()) {
            insert.execute(params![d.event.event_id.as_str(), pid()])?;
        }
        Ok(())
    }
}

/// A user's hook on PostgreSQL: a row per processed event.
#[derive(Debug)]
struct PostgresRows {
    table: String,
}

impl PostgresHook for PostgresRows {
    fn on_commit<'a>(
        &'a self,
        tx: &'a tokio_postgres::Transaction<'_>,
        decided: &'a [Decided<'_>],
    ) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            let sql = format!("INSERT INTO {} (event_id, pid) VALUES ($1, $2)", self.table);
            for d in decided.iter().filter(|d| d.is_processed()) {
                tx.execute(&sql, &[&d.event.event_id.as_str(), &pid()])
                    .await?;
            }
            Ok(())
        })
    }
}

/// The receiver's store with the projection and, on SQLite and
/// PostgreSQL, the user's hook (its table created if missing; on
/// PostgreSQL the sweep creates it with the schema).
pub(crate) async fn keep(store: AnyStore) -> Result<AnyStore, String> {
    let failed = |e: alm_webhooks::store::StoreError| format!("projection: {e}");
    Ok(match store {
        AnyStore::Sqlite(s) => {
            let sql = format!(
                "CREATE TABLE IF NOT EXISTS {HOOK_TABLE} (event_id TEXT NOT NULL, pid INTEGER NOT NULL)"
            );
            s.run_sql(&sql).await.map_err(failed)?;
            AnyStore::Sqlite(
                s.with_hook(SqliteRows)
                    .with_learner_projection()
                    .await
                    .map_err(failed)?,
            )
        }
        AnyStore::Postgres(s) => {
            let table = format!("\"{}\".{HOOK_TABLE}", s.schema());
            let s = s.with_hook(PostgresRows { table });
            AnyStore::Postgres(s.with_learner_projection().await.map_err(failed)?)
        }
        AnyStore::Redis(s) => AnyStore::Redis(s.with_learner_projection()),
        other => other,
    })
}

/// The hook's table for a PostgreSQL run, made with its schema.
pub(crate) fn postgres_table_sql(schema: &str) -> String {
    format!("CREATE TABLE \"{schema}\".{HOOK_TABLE} (event_id TEXT NOT NULL, pid BIGINT NOT NULL)")
}

/// What the checks found.
#[derive(Debug, Default)]
pub(crate) struct Checked {
    /// Rows in the hook's table (`None`: no hook on this backend).
    pub(crate) hook_rows: Option<usize>,
    /// Events with more than one row, processed events without one, rows
    /// of events never processed.
    pub(crate) hook_wrong: usize,
    pub(crate) records: usize,
    /// Records missing, extra, or not the merge of their events.
    pub(crate) records_wrong: usize,
    pub(crate) notes: Vec<String>,
}

/// Checks the hook's rows and the projection after a run: `processed` are
/// the events the handler ran (and that were not dead-lettered), `ignored`
/// those decided without running it.
pub(crate) async fn check(
    backend: Backend,
    direct: &str,
    schema: &str,
    ledger: &Ledger,
    plans: &[(u64, Plan)],
    processed: &HashSet<String>,
    ignored: &HashSet<String>,
) -> Checked {
    let mut checked = Checked::default();
    let rows = match backend {
        Backend::Sqlite => Some(sqlite_rows(direct.trim_start_matches("sqlite:"))),
        Backend::Postgres => Some(
            ledger
                .texts(&format!("SELECT event_id FROM \"{schema}\".{HOOK_TABLE}"))
                .await,
        ),
        Backend::Redis => None,
    };
    if let Some(rows) = rows {
        match rows {
            Ok(rows) => hook_counts(&mut checked, &rows, processed),
            Err(e) => {
                checked.hook_wrong += 1;
                checked.notes.push(format!("hook rows not read: {e}"));
            }
        }
    }
    match AnyStore::from_url(direct).await {
        Ok(store) => records(&mut checked, &store, plans, processed, ignored).await,
        Err(e) => {
            checked.records_wrong += 1;
            checked.notes.push(format!("projection not read: {e}"));
        }
    }
    checked
}

fn sqlite_rows(path: &str) -> Result<Vec<String>, String> {
    let conn = alm_webhooks::store::rusqlite::Connection::open(path).map_err(|e| e.to_string())?;
    let mut statement = conn
        .prepare(&format!("SELECT event_id FROM {HOOK_TABLE}"))
        .map_err(|e| e.to_string())?;
    let rows = statement
        .query_map([], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    rows.collect::<Result<_, _>>().map_err(|e| e.to_string())
}

fn hook_counts(checked: &mut Checked, rows: &[String], processed: &HashSet<String>) {
    checked.hook_rows = Some(rows.len());
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for id in rows {
        *counts.entry(id.as_str()).or_default() += 1;
    }
    let twice = counts.values().filter(|&&n| n > 1).count();
    let missing = processed
        .iter()
        .filter(|id| !counts.contains_key(id.as_str()))
        .count();
    let extra = counts.keys().filter(|id| !processed.contains(**id)).count();
    checked.hook_wrong += twice + missing + extra;
    if twice + missing + extra > 0 {
        checked.notes.push(format!(
            "hook rows: {twice} events more than once, {missing} processed events without a row, {extra} rows of events not processed"
        ));
    }
}

type Key = (u64, u64, String);

async fn records(
    checked: &mut Checked,
    store: &AnyStore,
    plans: &[(u64, Plan)],
    processed: &HashSet<String>,
    ignored: &HashSet<String>,
) {
    let now = time::OffsetDateTime::UNIX_EPOCH;
    let mut expected: BTreeMap<Key, LearnerRecord> = BTreeMap::new();
    for (_, plan) in plans {
        for (_, body) in plan {
            let Ok(envelope) = Envelope::from_slice(body) else {
                continue;
            };
            for event in envelope.parsed() {
                let id = event.event_id.as_str();
                if !processed.contains(id) && !ignored.contains(id) {
                    continue;
                }
                let Some(fact) = LearnerEvent::from_event(event) else {
                    continue;
                };
                let key = (
                    fact.account_id.get(),
                    fact.user_id.get(),
                    fact.lo_instance_id.to_string(),
                );
                let row = projection::merge(expected.get(&key), &fact, now);
                expected.insert(key, row);
            }
        }
    }
    let mut actual: BTreeMap<Key, LearnerRecord> = BTreeMap::new();
    for (account, _) in plans {
        match store.records_of_account(AccountId(*account)).await {
            Ok(rows) => {
                for mut r in rows {
                    r.updated_at = now;
                    let key = (
                        r.account_id.get(),
                        r.user_id.get(),
                        r.lo_instance_id.to_string(),
                    );
                    actual.insert(key, r);
                }
            }
            Err(e) => {
                checked.records_wrong += 1;
                checked.notes.push(format!("projection of {account}: {e}"));
            }
        }
    }
    checked.records = actual.len();
    let mut wrong = Vec::new();
    for (key, want) in &expected {
        if actual.get(key) != Some(want) {
            wrong.push(format!("{key:?}"));
        }
    }
    wrong.extend(
        actual
            .keys()
            .filter(|k| !expected.contains_key(*k))
            .map(|k| format!("{k:?} (not expected)")),
    );
    checked.records_wrong += wrong.len();
    if !wrong.is_empty() {
        let first: Vec<_> = wrong.iter().take(3).cloned().collect();
        checked.notes.push(format!(
            "{} learner records not the merge of their events, e.g. {}",
            wrong.len(),
            first.join(", ")
        ));
    }
}
