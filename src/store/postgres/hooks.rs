//! Commit hooks on PostgreSQL: effects written in the transaction that
//! commits the decisions.

use std::sync::Arc;

use futures_util::future::{join_all, try_join_all};
use tokio_postgres::{Statement, Transaction};

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

/// A hook of the crate's own (the learner projection, the outbox), which
/// runs before the user's: its statements are prepared once per
/// connection (`prepare_cached`), with the commit's own, before the
/// transaction begins, not parsed and planned again in every commit.
pub(super) trait OwnHook: Send + Sync + 'static {
    /// The SQL of its statements, in the order [`OwnHook::apply`] gets
    /// them prepared.
    fn sql(&self) -> &[String];

    /// Writes the hook's effects of `decided` through `tx`.
    fn apply<'a>(
        &'a self,
        tx: &'a Transaction<'_>,
        statements: &'a [Statement],
        decided: &'a [Decided<'_>],
    ) -> BoxFuture<'a, Result<(), BoxError>>;
}

/// The crate's own hooks, in the order they were added.
pub(super) type OwnHooks = Arc<[Arc<dyn OwnHook>]>;

impl PostgresStore {
    /// Adds a commit hook: it runs in the transaction of every commit that
    /// decides events, after the hooks added before it.
    pub fn with_hook(mut self, hook: impl PostgresHook) -> Self {
        let mut hooks: Vec<Arc<dyn PostgresHook>> = self.hooks.iter().cloned().collect();
        hooks.push(Arc::new(hook));
        self.hooks = hooks.into();
        self
    }

    /// Adds a hook of the crate's own (see [`OwnHook`]).
    pub(super) fn with_own_hook(mut self, hook: impl OwnHook) -> Self {
        let mut hooks: Vec<Arc<dyn OwnHook>> = self.own_hooks.iter().cloned().collect();
        hooks.push(Arc::new(hook));
        self.own_hooks = hooks.into();
        self
    }

    /// Whether any hook runs in the commits.
    pub(super) fn hooked(&self) -> bool {
        !self.hooks.is_empty() || !self.own_hooks.is_empty()
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
        let own = self.own_hooks.iter().map(|hook| {
            let client = &client;
            try_join_all(hook.sql().iter().map(move |sql| client.prepare_cached(sql)))
        });
        let (statement, own) = tokio::try_join!(
            client.prepare_cached(&self.sql.commit_many),
            try_join_all(own)
        )
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
            for (hook, statements) in self.own_hooks.iter().zip(&own) {
                hook.apply(&tx, statements, &committed).await.map_err(|e| {
                    StoreError::with_source(
                        "postgres: a commit hook failed",
                        std::io::Error::other(e),
                    )
                })?;
            }
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
