//! The set-based commits and renewals: a run of commits in one statement,
//! a slice of runs in one round trip (the claims: `claims.rs`).

use std::borrow::Cow;
use std::time::SystemTime;

use futures_util::future::join_all;
use tokio_postgres::types::{Json, ToSql};

use super::runs::commit_runs;
use super::{PostgresStore, account, lease_millis, pg_error};
use crate::store::{ClaimOwner, Commit, CommitOutcome, StoreError};

impl PostgresStore {
    /// [`Store::commit_many`](crate::store::Store::commit_many): each run
    /// in one statement, all in one transaction (one WAL flush), sent
    /// together.
    pub(super) async fn commit_runs(
        &self,
        commits: &[Commit<'_>],
    ) -> Result<Vec<CommitOutcome>, StoreError> {
        if commits.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.client().await?;
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
        let queries = inputs.iter().map(|input| {
            let client = &client;
            let statement = &statement;
            async move { client.query(statement, &input.params()).await }
        });
        let (begun, results, ended) = tokio::join!(
            client.batch_execute("BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL jit = off"),
            join_all(queries),
            client.batch_execute("COMMIT"),
        );
        begun.map_err(|e| pg_error("commit failed to begin", e))?;
        let outcomes = commit_outcomes(results, commits.len());
        ended.map_err(|e| pg_error("commit failed", e))?;
        outcomes
    }
}

/// The commits' outcomes from the answers of their runs' statements
/// ([`Sql::commit_many`](super::sql::Sql)), one per commit, in order.
pub(super) fn commit_outcomes(
    results: Vec<Result<Vec<tokio_postgres::Row>, tokio_postgres::Error>>,
    commits: usize,
) -> Result<Vec<CommitOutcome>, StoreError> {
    let mut outcomes = Vec::with_capacity(commits);
    for rows in results {
        for row in rows.map_err(|e| pg_error("commit failed", e))? {
            let bad = |e| pg_error("commit read a bad row", e);
            let held: bool = row.try_get(0).map_err(bad)?;
            let done: bool = row.try_get(1).map_err(bad)?;
            outcomes.push(match (held, done) {
                (false, _) => CommitOutcome::LeaseLost,
                (true, false) => CommitOutcome::StateChanged,
                (true, true) => CommitOutcome::Committed,
            });
        }
    }
    if outcomes.len() != commits {
        return Err(StoreError::new(format!(
            "postgres: commit answered {} rows for {commits} commits",
            outcomes.len(),
        )));
    }
    Ok(outcomes)
}

/// One run of commits as the statement's arrays.
pub(super) struct CommitInput<'a> {
    accounts: Vec<i64>,
    events: Vec<Cow<'a, str>>,
    tokens: Vec<Vec<u8>>,
    until: Vec<SystemTime>,
    state_until: Vec<SystemTime>,
    state_keys: Vec<Option<String>>,
    states: Vec<Option<Json<&'a crate::rules::EntityState>>>,
    expected: Vec<Option<i64>>,
    chained: &'a [bool],
}

impl<'a> CommitInput<'a> {
    pub(super) fn new(commits: &'a [Commit<'a>], chained: &'a [bool]) -> Result<Self, StoreError> {
        let expected = commits
            .iter()
            .map(|c| {
                c.update
                    .map(|u| i64::try_from(u.expected_version))
                    .transpose()
            })
            .collect::<Result<_, _>>()
            .map_err(|e| pg_error("commit: version out of range", e))?;
        Ok(Self {
            accounts: commits.iter().map(|c| account(c.key)).collect(),
            events: commits.iter().map(|c| c.key.storage_key().1).collect(),
            tokens: commits
                .iter()
                .map(|c| c.token.to_bytes().to_vec())
                .collect(),
            until: commits.iter().map(|c| c.remember_until).collect(),
            state_until: commits.iter().map(|c| c.state_until).collect(),
            state_keys: commits
                .iter()
                .map(|c| c.update.map(|u| u.key.storage_key()))
                .collect(),
            states: commits
                .iter()
                .map(|c| c.update.map(|u| Json(u.state)))
                .collect(),
            expected,
            chained,
        })
    }

    /// The statement's parameters, in order.
    pub(super) fn params(&self) -> [&(dyn ToSql + Sync); 9] {
        [
            &self.accounts,
            &self.events,
            &self.tokens,
            &self.until,
            &self.state_keys,
            &self.states,
            &self.expected,
            &self.state_until,
            &self.chained,
        ]
    }
}

/// For each commit, whether an earlier commit of the slice updates the
/// same state (then in an earlier run): the rest of a chain, written only
/// if the chain's earlier update was.
pub(super) fn chained(commits: &[Commit<'_>], runs: usize) -> Vec<bool> {
    if runs < 2 {
        return vec![false; commits.len()];
    }
    let mut seen = std::collections::HashSet::new();
    commits
        .iter()
        .map(|c| c.update.is_some_and(|u| !seen.insert(u.key)))
        .collect()
}

/// [`Store::renew_many`](crate::store::Store::renew_many)'s arrays for one
/// chunk, and the claims it renewed.
struct RenewInput<'a> {
    accounts: Vec<i64>,
    pub(super) events: Vec<Cow<'a, str>>,
    pub(super) tokens: Vec<Vec<u8>>,
}

impl PostgresStore {
    /// [`Store::renew_many`](crate::store::Store::renew_many): one
    /// statement per chunk, all sent together.
    pub(super) async fn renew_chunks(
        &self,
        claims: &[(&crate::store::DedupKey, ClaimOwner)],
        lease: std::time::Duration,
    ) -> Result<Vec<bool>, StoreError> {
        if claims.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&self.sql.renew_many)
            .await
            .map_err(|e| pg_error("cannot prepare the renewal", e))?;
        let lease_ms = lease_millis(lease);
        let inputs: Vec<RenewInput<'_>> = claims
            .chunks(crate::store::MANY_CHUNK)
            .map(|chunk| RenewInput {
                accounts: chunk.iter().map(|(k, _)| account(k)).collect(),
                events: chunk.iter().map(|(k, _)| k.storage_key().1).collect(),
                tokens: chunk.iter().map(|(_, t)| t.to_bytes().to_vec()).collect(),
            })
            .collect();
        let queries = inputs.iter().map(|input| {
            let params: [&(dyn ToSql + Sync); 4] =
                [&input.accounts, &input.events, &input.tokens, &lease_ms];
            let client = &client;
            let statement = &statement;
            async move { client.query(statement, &params).await }
        });
        let mut renewed = std::collections::HashSet::new();
        for rows in join_all(queries).await {
            for row in rows.map_err(|e| pg_error("renew failed", e))? {
                let bad = |e| pg_error("renew read a bad row", e);
                let account: i64 = row.try_get(0).map_err(bad)?;
                let event: String = row.try_get(1).map_err(bad)?;
                let token: Vec<u8> = row.try_get(2).map_err(bad)?;
                renewed.insert((account, event, token));
            }
        }
        Ok(inputs
            .into_iter()
            .flat_map(|input| {
                let RenewInput {
                    accounts,
                    events,
                    tokens,
                } = input;
                accounts.into_iter().zip(events).zip(tokens)
            })
            .map(|((account, event), token)| {
                renewed.contains(&(account, event.into_owned(), token))
            })
            .collect())
    }
}
