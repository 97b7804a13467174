//! Commit hooks on PostgreSQL: effects written in the transaction that
//! commits the decisions.

use std::sync::Arc;

use futures_util::future::join_all;
use tokio_postgres::Transaction;

use super::many::{CommitInput, chained, commit_outcomes};
use super::runs::commit_runs;
use super::{PostgresStore, pg_error};
use crate::BoxError;
use crate::store::{BoxFuture, Commit, CommitOutcome, Decided, StoreError};

/// An effect written in the transaction that commits the engine's
/// decisions: either the decisions and everything the hooks write are
/// committed, or nothing is (see [`Decided`]). A hook that fails fails the
/// commit: the events are decided again later, and the hooks run again
/// with that commit. So the rows a hook writes for an event exist once,
/// whatever crashes, as long as the hook writes only through `tx`.
///
/// ```
/// use alm_webhooks::BoxError;
/// use alm_webhooks::store::{BoxFuture, Decided, PostgresHook};
/// use tokio_postgres::Transaction;
///
/// /// One row per processed event in a table of my own.
/// struct Processed;
///
/// impl PostgresHook for Processed {
///     fn on_commit<'a>(
///         &'a self,
///         tx: &'a Transaction<'_>,
///         decided: &'a [Decided<'_>],
///     ) -> BoxFuture<'a, Result<(), BoxError>> {
///         Box::pin(async move {
///             for d in decided.iter().filter(|d| d.is_processed()) {
///                 tx.execute("INSERT INTO my_processed (event_id) VALUES ($1)",
///                     &[&d.event.event_id.as_str()]).await?;
///             }
///             Ok(())
///         })
///     }
/// }
/// ```
pub trait PostgresHook: Send + Sync + 'static {
    /// Writes the hook's effects of `decided` (the events whose commit
    /// succeeded in this transaction, processed or ignored) through `tx`.
    ///
    /// # Errors
    ///
    /// Any error fails (rolls back) the whole commit.
    fn on_commit<'a>(
        &'a self,
        tx: &'a Transaction<'_>,
        decided: &'a [Decided<'_>],
    ) -> BoxFuture<'a, Result<(), BoxError>>;
}

/// The hooks a store runs, in the order they were added.
pub(super) type Hooks = Arc<[Arc<dyn PostgresHook>]>;

impl PostgresStore {
    /// Adds a commit hook: it runs in the transaction of every commit that
    /// decides events, after the hooks added before it.
    pub fn with_hook(mut self, hook: impl PostgresHook) -> Self {
        let mut hooks: Vec<Arc<dyn PostgresHook>> = self.hooks.iter().cloned().collect();
        hooks.push(Arc::new(hook));
        self.hooks = hooks.into();
        self
    }

    /// [`Store::commit_decided`](crate::store::Store::commit_decided) with
    /// hooks: the runs' statements, then the hooks, in one transaction.
    pub(super) async fn commit_hooked(
        &self,
        commits: &[Commit<'_>],
        decided: &[Option<Decided<'_>>],
    ) -> Result<Vec<CommitOutcome>, StoreError> {
        if commits.is_empty() {
            return Ok(Vec::new());
        }
        let mut client = self.client().await?;
        let statement = client
            .prepare_cached(&self.sql.commit_many)
            .await
            .map_err(|e| pg_error("cannot prepare the commit", e))?;
        let runs = commit_runs(commits);
        let chained = chained(commits, runs.len());
        let inputs = runs
            .into_iter()
            .map(|run| CommitInput::new(&commits[run.clone()], &chained[run]))
            .collect::<Result<Vec<_>, _>>()?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::ReadCommitted)
            .start()
            .await
            .map_err(|e| pg_error("commit failed to begin", e))?;
        let queries = inputs.iter().map(|input| {
            let (tx, statement) = (&tx, &statement);
            async move { tx.query(statement, &input.params()).await }
        });
        // A refused commit (lease lost, state changed, the rest of a broken
        // chain) wrote nothing: its event is not given to the hooks.
        let outcomes = commit_outcomes(join_all(queries).await, commits.len())?;
        let committed: Vec<Decided<'_>> = decided
            .iter()
            .zip(&outcomes)
            .filter(|(_, o)| **o == CommitOutcome::Committed)
            .filter_map(|(d, _)| *d)
            .collect();
        if !committed.is_empty() {
            for hook in self.hooks.iter() {
                hook.on_commit(&tx, &committed).await.map_err(|e| {
                    StoreError::with_source(
                        "postgres: a commit hook failed",
                        std::io::Error::other(e),
                    )
                })?;
            }
        }
        tx.commit()
            .await
            .map_err(|e| pg_error("commit failed", e))?;
        Ok(outcomes)
    }
}
