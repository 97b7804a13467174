//! One claim and one commit, each one statement.

use std::time::{Duration, SystemTime};

use deadpool_postgres::GenericClient;
use tokio_postgres::Statement;
use tokio_postgres::types::{Json, ToSql};

use super::{PostgresStore, account, lease_millis, pg_error};
use crate::rules::StateKey;
use crate::store::{Claim, ClaimOwner, Commit, CommitOutcome, DedupKey, StoreError, Versioned};

impl PostgresStore {
    /// [`Store::claim_and_load`], once: one statement, the claim, the
    /// row's earlier status, and the state.
    pub(super) async fn claim_one(
        &self,
        key: &DedupKey,
        state: Option<&StateKey>,
        owner: ClaimOwner,
        lease: Duration,
        now: SystemTime,
    ) -> Result<(Claim, Versioned), StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(&self.sql.claim_and_load)
            .await
            .map_err(|e| pg_error("cannot prepare the claim", e))?;
        let (account, event) = (account(key), key.storage_key().1);
        let lease_ms = lease_millis(lease);
        let state_key = state.map(StateKey::storage_key);
        // A row deleted (released, swept) or inserted by another claim
        // after this statement's snapshot: try again, a few times.
        let bytes = owner.to_bytes();
        for _ in 0..3 {
            // A claim is a lease, not a decision: it need not wait for the
            // WAL flush (losing it in a database crash only frees the event;
            // the next durable commit flushes it anyway). So it runs in a
            // transaction with `synchronous_commit` off, and the three
            // requests go out together, in one round trip. All three are
            // queued on the connection at the first poll, so the server runs
            // them all even if this future is dropped: the connection never
            // stays inside the transaction (a failed claim makes `COMMIT` a
            // rollback).
            let params: [&(dyn ToSql + Sync); 6] =
                [&account, &event, &&bytes[..], &lease_ms, &now, &state_key];
            let (begun, row, ended) = tokio::join!(
                client.batch_execute("BEGIN; SET LOCAL synchronous_commit = off"),
                client.query_one(&statement, &params),
                client.batch_execute("COMMIT"),
            );
            begun.map_err(|e| pg_error("claim failed to begin", e))?;
            let row = row.map_err(|e| pg_error("claim failed", e))?;
            ended.map_err(|e| pg_error("claim failed to commit", e))?;
            if let Some(answer) = super::claims::claim_answer(&row, owner)? {
                return Ok(answer);
            }
        }
        Ok((Claim::InFlight, Versioned::default()))
    }

    /// The three commit statements, prepared on `client`.
    pub(super) async fn commit_statements(
        &self,
        client: &deadpool_postgres::Object,
    ) -> Result<CommitStatements, StoreError> {
        let prepare = |sql| async move {
            client
                .prepare_cached(sql)
                .await
                .map_err(|e| pg_error("cannot prepare the commit", e))
        };
        Ok(CommitStatements {
            decide: prepare(&self.sql.decide).await?,
            insert_state: prepare(&self.sql.commit_insert_state).await?,
            update_state: prepare(&self.sql.commit_update_state).await?,
        })
    }
}

/// The prepared commit statements of one connection.
pub(super) struct CommitStatements {
    decide: Statement,
    insert_state: Statement,
    update_state: Statement,
}

/// Runs one commit as one statement on `client` (a connection or an open
/// transaction).
pub(super) async fn commit_on(
    client: &impl GenericClient,
    statements: &CommitStatements,
    commit: &Commit<'_>,
) -> Result<CommitOutcome, StoreError> {
    let account = account(commit.key);
    let event = commit.key.storage_key().1;
    let bytes = commit.token.to_bytes();
    let token = &bytes[..];
    let until = commit.remember_until;
    let Some(update) = commit.update else {
        let rows = client
            .execute(&statements.decide, &[&account, &event, &token, &until])
            .await
            .map_err(|e| pg_error("commit failed", e))?;
        return Ok(if rows == 1 {
            CommitOutcome::Committed
        } else {
            CommitOutcome::LeaseLost
        });
    };
    let expected = i64::try_from(update.expected_version)
        .map_err(|e| pg_error("commit: version out of range", e))?;
    let state_key = update.key.storage_key();
    let state = Json(update.state);
    let state_until = commit.state_until;
    let params: [&(dyn ToSql + Sync); 8] = [
        &account,
        &event,
        &token,
        &until,
        &state_key,
        &state,
        &state_until,
        &expected,
    ];
    let row = if expected == 0 {
        client
            .query_one(&statements.insert_state, &params[..7])
            .await
    } else {
        client.query_one(&statements.update_state, &params).await
    }
    .map_err(|e| pg_error("commit failed", e))?;
    let bad = |e| pg_error("commit read a bad row", e);
    let held: bool = row.try_get(0).map_err(bad)?;
    let done: bool = row.try_get(1).map_err(bad)?;
    Ok(match (held, done) {
        (false, _) => CommitOutcome::LeaseLost,
        (true, false) => CommitOutcome::StateChanged,
        (true, true) => CommitOutcome::Committed,
    })
}
