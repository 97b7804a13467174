//! The set-based claim: a run of claims in one statement, a slice of runs
//! in one round trip, or, for many distinct events, on several
//! connections at once.

use std::borrow::Cow;
use std::time::SystemTime;

use futures_util::future::join_all;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::runs::{claim_runs, even_runs};
use super::{DECIDED, PostgresStore, account, lease_millis, pg_error, versioned};
use crate::store::{Claim, ClaimOwner, ClaimRequest, MANY_CHUNK, StoreError, Versioned};

/// A claim's answer for each request, as far as it is known.
type Answers = Vec<Option<(Claim, Versioned)>>;

impl PostgresStore {
    /// [`Store::claim_many`](crate::store::Store::claim_many): each run in
    /// one statement, inside one transaction with `synchronous_commit` off
    /// (a claim is a lease; see `claim_and_load`), all sent together. JIT
    /// is off in the claim's and the commit's transactions on a pool of the
    /// application's too (see `connection::settings`).
    ///
    /// A claim of more than [`MANY_CHUNK`] distinct events is cut into runs
    /// of even size, which touch different rows in any order: they go out
    /// on as many connections as the pool has idle at once, each in a
    /// transaction of its own, so that the server works on them in
    /// parallel (BENCHMARKS.md: 5,000 duplicates in about 17 ms instead of
    /// 22). If one of them fails, what the others won is let go before the
    /// error is returned.
    pub(super) async fn claim_runs(
        &self,
        requests: &[ClaimRequest<'_>],
        owner: ClaimOwner,
        lease: std::time::Duration,
        now: SystemTime,
    ) -> Result<Vec<(Claim, Versioned)>, StoreError> {
        let first = self.client().await?;
        let token = owner.to_bytes();
        let args = ClaimArgs {
            sql: &self.sql.claim_many,
            token: &token[..],
            lease_ms: lease_millis(lease),
            now,
        };
        let apart = requests.len() > MANY_CHUNK && distinct(requests);
        let runs = if apart {
            even_runs(requests.len())
        } else {
            claim_runs(requests)
        };
        let mut clients = vec![first];
        if apart {
            clients.extend(self.idle_clients(runs.len() - 1));
        }
        let mut answers: Answers = vec![None; requests.len()];
        let mut todo: Vec<Vec<usize>> = runs.into_iter().map(Iterator::collect).collect();
        // Rows deleted (released, swept) or inserted by another claim after
        // the statement's snapshot are neither won nor seen: those events
        // are claimed again, a few times, as by `claim_and_load`.
        for _ in 0..3 {
            todo.retain(|run| !run.is_empty());
            if todo.is_empty() {
                break;
            }
            let results = match claim_round(&clients, requests, &todo, &args).await {
                Ok(results) => results,
                Err((error, results)) => {
                    // Other runs' transactions committed: what they (and
                    // earlier rounds) won is let go, so that the call tried
                    // again finds none of its events claimed by itself.
                    let won = won_so_far(&todo, &results, &answers);
                    self.release_won(&clients[0], requests, &won, args.token)
                        .await;
                    return Err(error);
                }
            };
            let mut again = Vec::new();
            for (run, rows) in todo.iter().zip(results) {
                let rows = rows.unwrap_or_default();
                again.push(read_answers(run, &rows, owner, &mut answers)?);
            }
            todo = again;
        }
        Ok(answers
            .into_iter()
            .map(|a| a.unwrap_or((Claim::InFlight, Versioned::default())))
            .collect())
    }

    /// Lets go of the claims `won` (indexes into `requests`) of `token`,
    /// after a claim failed half-way; at worst they stay until their lease
    /// ends.
    async fn release_won(
        &self,
        client: &deadpool_postgres::Object,
        requests: &[ClaimRequest<'_>],
        won: &[usize],
        token: &[u8],
    ) {
        if won.is_empty() {
            return;
        }
        let accounts: Vec<i64> = won.iter().map(|&i| account(requests[i].key)).collect();
        let events: Vec<Cow<'_, str>> = won
            .iter()
            .map(|&i| requests[i].key.storage_key().1)
            .collect();
        let released = client
            .execute(
                self.sql.release_many.as_str(),
                &[&accounts, &events, &token],
            )
            .await;
        #[cfg(not(feature = "tracing"))]
        let _ = released;
        #[cfg(feature = "tracing")]
        if let Err(e) = released {
            tracing::warn!(
                claims = won.len(),
                error = %e,
                "postgres: could not let go of the claims of a claim that failed; \
                 they end with their lease"
            );
        }
    }

    /// Up to `wanted` more connections, only those the pool can give at
    /// once: a call never waits for a second connection while it holds
    /// one (two calls doing so could wait on each other).
    fn idle_clients(&self, wanted: usize) -> Vec<deadpool_postgres::Object> {
        let idle = self.pool.status().available.min(wanted);
        let at_once = deadpool_postgres::Timeouts {
            wait: Some(std::time::Duration::ZERO),
            create: Some(std::time::Duration::ZERO),
            recycle: Some(std::time::Duration::ZERO),
        };
        (0..idle)
            .map_while(|_| {
                futures_util::FutureExt::now_or_never(self.pool.timeout_get(&at_once))
                    .and_then(Result::ok)
            })
            .collect()
    }
}

/// Each run's rows, or nothing for the runs of a connection that failed.
type RoundRows = Vec<Option<Vec<Row>>>;

/// One round of a claim: the runs `todo` shared out over `clients`, each
/// client's runs in one transaction. On an error, the rows of the runs
/// that went through come with it.
async fn claim_round(
    clients: &[deadpool_postgres::Object],
    requests: &[ClaimRequest<'_>],
    todo: &[Vec<usize>],
    args: &ClaimArgs<'_>,
) -> Result<RoundRows, (StoreError, RoundRows)> {
    let inputs: Vec<ClaimInput> = todo
        .iter()
        .map(|run| ClaimInput::new(requests, run))
        .collect();
    let per_client = inputs.len().div_ceil(clients.len());
    let groups = inputs
        .chunks(per_client)
        .zip(clients)
        .map(|(group, client)| async move { (group.len(), claim_on(client, group, args).await) });
    let mut results = Vec::with_capacity(inputs.len());
    let mut failed = None;
    for (size, group) in join_all(groups).await {
        match group {
            Ok(rows) => results.extend(rows.into_iter().map(Some)),
            Err(e) => {
                results.resize_with(results.len() + size, || None);
                failed.get_or_insert(e);
            }
        }
    }
    match failed {
        None => Ok(results),
        Some(error) => Err((error, results)),
    }
}

/// The requests this call has won: in this round's runs that went
/// through, and in earlier rounds.
fn won_so_far(todo: &[Vec<usize>], results: &RoundRows, answers: &Answers) -> Vec<usize> {
    let this_round = todo.iter().zip(results).flat_map(|(run, rows)| {
        let rows = rows.as_deref().unwrap_or_default();
        run.iter()
            .zip(rows)
            .filter(|(_, row)| row.try_get(0).unwrap_or(false))
            .map(|(&index, _)| index)
    });
    let earlier = answers.iter().enumerate().filter_map(|(index, answer)| {
        matches!(answer, Some((Claim::Claimed(_), _))).then_some(index)
    });
    this_round.chain(earlier).collect()
}

/// Reads one run's rows into `answers`: the requests neither won nor seen,
/// to be claimed again.
fn read_answers(
    run: &[usize],
    rows: &[Row],
    owner: ClaimOwner,
    answers: &mut Answers,
) -> Result<Vec<usize>, StoreError> {
    let mut retry = Vec::new();
    for (&index, row) in run.iter().zip(rows) {
        match claim_answer(row, owner)? {
            Some(answer) => answers[index] = Some(answer),
            None => retry.push(index),
        }
    }
    Ok(retry)
}

/// A claim statement's answer for one event (columns: won, the row's
/// status as it was, the state's version and state): `None` if the row
/// was neither won nor seen (deleted or inserted by another claim after
/// the statement's snapshot), to be claimed again.
pub(super) fn claim_answer(
    row: &Row,
    owner: ClaimOwner,
) -> Result<Option<(Claim, Versioned)>, StoreError> {
    let bad = |e| pg_error("claim read a bad row", e);
    let won: bool = row.try_get(0).map_err(bad)?;
    if won {
        let loaded = match row.try_get::<_, Option<i64>>(2).map_err(bad)? {
            Some(version) => versioned(Ok(version), row.try_get(3))?,
            None => Versioned::default(),
        };
        return Ok(Some((Claim::Claimed(owner), loaded)));
    }
    Ok(row
        .try_get::<_, Option<i16>>(1)
        .map_err(bad)?
        .map(|status| {
            let claim = if status == DECIDED {
                Claim::AlreadyDecided
            } else {
                Claim::InFlight
            };
            (claim, Versioned::default())
        }))
}

/// What every run of one claim passes besides its arrays.
struct ClaimArgs<'a> {
    sql: &'a str,
    token: &'a [u8],
    lease_ms: i64,
    now: SystemTime,
}

/// Runs of claims on one connection, in one transaction with
/// `synchronous_commit` off (a claim is a lease; see `claim_and_load`),
/// all sent together: each run's rows.
async fn claim_on(
    client: &deadpool_postgres::Object,
    inputs: &[ClaimInput<'_>],
    args: &ClaimArgs<'_>,
) -> Result<Vec<Vec<Row>>, StoreError> {
    let statement = client
        .prepare_cached(args.sql)
        .await
        .map_err(|e| pg_error("cannot prepare the claim", e))?;
    let queries = inputs.iter().map(|input| {
        let params: [&(dyn ToSql + Sync); 6] = [
            &input.accounts,
            &input.events,
            &args.token,
            &args.lease_ms,
            &args.now,
            &input.states,
        ];
        let statement = &statement;
        async move { client.query(statement, &params).await }
    });
    let (begun, results, ended) = tokio::join!(
        client.batch_execute("BEGIN; SET LOCAL synchronous_commit = off; SET LOCAL jit = off"),
        join_all(queries),
        client.batch_execute("COMMIT"),
    );
    begun.map_err(|e| pg_error("claim failed to begin", e))?;
    let rows = results
        .into_iter()
        .map(|rows| rows.map_err(|e| pg_error("claim failed", e)))
        .collect::<Result<Vec<_>, _>>()?;
    ended.map_err(|e| pg_error("claim failed to commit", e))?;
    Ok(rows)
}

/// Whether no event repeats in `requests`.
fn distinct(requests: &[ClaimRequest<'_>]) -> bool {
    let mut seen = std::collections::HashSet::with_capacity(requests.len());
    requests.iter().all(|r| seen.insert(r.key))
}

/// One run of claims as the statement's arrays.
struct ClaimInput<'a> {
    accounts: Vec<i64>,
    events: Vec<Cow<'a, str>>,
    states: Vec<Option<String>>,
}

impl<'a> ClaimInput<'a> {
    fn new(requests: &'a [ClaimRequest<'_>], run: &[usize]) -> Self {
        Self {
            accounts: run.iter().map(|&i| account(requests[i].key)).collect(),
            events: run
                .iter()
                .map(|&i| requests[i].key.storage_key().1)
                .collect(),
            states: run
                .iter()
                .map(|&i| requests[i].state.map(crate::rules::StateKey::storage_key))
                .collect(),
        }
    }
}
