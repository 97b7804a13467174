//! Commit hooks on SQLite: effects written in the transaction that commits
//! the decisions.

use std::sync::Arc;

use rusqlite::Transaction;

use super::SqliteStore;
use crate::store::{CommitOutcome, Decided};
use crate::{BoxError, Decision, Event};

/// An effect written in the transaction that commits the engine's
/// decisions: either the decisions and everything the hooks write are
/// committed, or nothing is (see [`Decided`]). A hook that fails fails the
/// commit: the events are decided again later, and the hooks run again
/// with that commit. So the rows a hook writes for an event exist once,
/// whatever crashes, as long as the hook writes only through `tx`.
///
/// Any `Fn(&Transaction, &[Decided]) -> Result<(), BoxError>` is a hook:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use alm_webhooks::store::SqliteStore;
/// let store = SqliteStore::open_in_memory().unwrap();
/// store.run_sql("CREATE TABLE processed (event_id TEXT NOT NULL)").await.unwrap();
/// let store = store.with_hook(|tx: &rusqlite::Transaction<'_>, decided: &[alm_webhooks::store::Decided<'_>]| {
///     for d in decided.iter().filter(|d| d.is_processed()) {
///         tx.execute("INSERT INTO processed (event_id) VALUES (?1)", [d.event.event_id.as_str()])?;
///     }
///     Ok(())
/// });
/// # }
/// ```
pub trait SqliteHook: Send + Sync + 'static {
    /// Writes the hook's effects of `decided` (the events whose commit
    /// succeeded in this transaction, processed or ignored) through `tx`.
    ///
    /// # Errors
    ///
    /// Any error fails (rolls back) the whole commit.
    fn on_commit(&self, tx: &Transaction<'_>, decided: &[Decided<'_>]) -> Result<(), BoxError>;
}

impl<F> SqliteHook for F
where
    F: Fn(&Transaction<'_>, &[Decided<'_>]) -> Result<(), BoxError> + Send + Sync + 'static,
{
    fn on_commit(&self, tx: &Transaction<'_>, decided: &[Decided<'_>]) -> Result<(), BoxError> {
        self(tx, decided)
    }
}

/// The hooks a store runs, in the order they were added.
pub(super) type Hooks = Arc<[Arc<dyn SqliteHook>]>;

/// The events of a commit, owned (they cross to the blocking pool).
pub(super) type Owned = Vec<Option<(Event, Decision)>>;

pub(super) fn owned(decided: &[Option<Decided<'_>>]) -> Owned {
    decided
        .iter()
        .map(|d| d.map(|d| (d.event.clone(), d.decision)))
        .collect()
}

/// Runs every hook on the events whose commit succeeded, then commits
/// `tx`; if a hook fails, `tx` rolls back (as it drops) and the hook's
/// error is the answer.
pub(super) fn run_and_commit(
    tx: Transaction<'_>,
    hooks: &Hooks,
    events: &Owned,
    outcomes: Vec<CommitOutcome>,
) -> rusqlite::Result<Result<Vec<CommitOutcome>, BoxError>> {
    if let Err(failed) = run(&tx, hooks, events, &outcomes) {
        return Ok(Err(failed));
    }
    tx.commit()?;
    Ok(Ok(outcomes))
}

/// Runs every hook on the events whose commit succeeded.
fn run(
    tx: &Transaction<'_>,
    hooks: &Hooks,
    events: &Owned,
    outcomes: &[CommitOutcome],
) -> Result<(), BoxError> {
    if hooks.is_empty() {
        return Ok(());
    }
    let decided: Vec<Decided<'_>> = events
        .iter()
        .zip(outcomes)
        .filter(|(_, outcome)| **outcome == CommitOutcome::Committed)
        .filter_map(|(event, _)| event.as_ref())
        .map(|(event, decision)| Decided {
            event,
            decision: *decision,
        })
        .collect();
    if decided.is_empty() {
        return Ok(());
    }
    for hook in hooks.iter() {
        hook.on_commit(tx, &decided)?;
    }
    Ok(())
}

/// A hook's failure as the commit's (transient: the events are decided
/// again).
pub(super) fn failed(error: BoxError) -> crate::store::StoreError {
    crate::store::StoreError::with_source(
        "sqlite: a commit hook failed",
        std::io::Error::other(error),
    )
}

impl SqliteStore {
    /// Adds a commit hook: it runs in the transaction of every commit that
    /// decides events, after the hooks added before it.
    pub fn with_hook(mut self, hook: impl SqliteHook) -> Self {
        let mut hooks: Vec<Arc<dyn SqliteHook>> = self.hooks.iter().cloned().collect();
        hooks.push(Arc::new(hook));
        self.hooks = hooks.into();
        self
    }

    /// Runs SQL statements (separated by `;`) on the store's connection:
    /// to create the tables of your own hooks, say.
    ///
    /// # Errors
    ///
    /// When SQLite refuses them.
    pub async fn run_sql(&self, sql: &str) -> Result<(), crate::store::StoreError> {
        let sql = sql.to_owned();
        self.run("run_sql", move |conn| conn.execute_batch(&sql))
            .await
    }
}
