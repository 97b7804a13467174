//! The outbox on PostgreSQL: table `alm_outbox` (created by
//! [`PostgresStore::migrate`]), written by a commit hook in the commit's
//! transaction, and the relay's reads.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use tokio_postgres::{Row, Statement, Transaction};

use super::connection::bounded;
use super::hooks::OwnHook;
use super::{PostgresStore, pg_error, timed_out};
use crate::store::outbox::{OutboxEntry, OutboxStats, OutboxStore, highest_sent};
use crate::store::{BoxFuture, Decided, StoreError};
use crate::{AccountId, BoxError};

/// The commit hook that writes `alm_outbox`.
#[derive(Debug, Clone)]
struct Outbox {
    /// Number, insert.
    sql: [String; 2],
}

impl OwnHook for Outbox {
    fn sql(&self) -> &[String] {
        &self.sql
    }

    fn apply<'a>(
        &'a self,
        tx: &'a Transaction<'_>,
        statements: &'a [Statement],
        decided: &'a [Decided<'_>],
    ) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(write(tx, statements, decided))
    }
}

impl Outbox {
    fn new(schema: &str) -> Self {
        let number = format!(
            "INSERT INTO \"{schema}\".alm_outbox_accounts AS a (account_id, next_seq) \
             SELECT k, n FROM unnest($1::bigint[], $2::bigint[]) AS t(k, n) ORDER BY k \
             ON CONFLICT (account_id) DO UPDATE SET next_seq = a.next_seq + EXCLUDED.next_seq \
             RETURNING account_id, next_seq"
        );
        let insert = format!(
            "INSERT INTO \"{schema}\".alm_outbox \
             (account_id, seq, event_id, event_name, event_time, body) \
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], \
             $5::timestamptz[], $6::bytea[])"
        );
        Self {
            sql: [number, insert],
        }
    }
}

/// Two statements whatever the number of entries: number them (taking
/// each account's counter row, in account order, until the commit ends),
/// then insert them.
async fn write(
    tx: &Transaction<'_>,
    statements: &[Statement],
    decided: &[Decided<'_>],
) -> Result<(), BoxError> {
    let [number, insert] = statements else {
        return Err("the outbox's statements are not prepared".into());
    };
    let mut entries = OutboxEntry::of_processed(decided)?;
    if entries.is_empty() {
        return Ok(());
    }
    let mut counts: BTreeMap<i64, i64> = BTreeMap::new();
    for e in &entries {
        *counts.entry(e.account_id.get() as i64).or_default() += 1;
    }
    let accounts: Vec<i64> = counts.keys().copied().collect();
    let adds: Vec<i64> = counts.values().copied().collect();
    let numbered = tx.query(number, &[&accounts, &adds]).await?;
    // The first number of each account's entries in this commit.
    let mut next: BTreeMap<i64, i64> = BTreeMap::new();
    for row in numbered {
        let (account, last): (i64, i64) = (row.get(0), row.get(1));
        next.insert(account, last - counts[&account] + 1);
    }
    for e in &mut entries {
        let at = next.entry(e.account_id.get() as i64).or_default();
        e.seq = *at as u64;
        *at += 1;
    }
    let column = |f: &dyn Fn(&OutboxEntry) -> i64| entries.iter().map(f).collect::<Vec<_>>();
    let accounts = column(&|e| e.account_id.get() as i64);
    let seqs = column(&|e| e.seq as i64);
    let ids: Vec<&str> = entries.iter().map(|e| e.event_id.as_str()).collect();
    let names: Vec<&str> = entries.iter().map(|e| e.event_name.as_str()).collect();
    let times: Vec<Option<time::OffsetDateTime>> = entries.iter().map(|e| e.timestamp).collect();
    let bodies: Vec<&[u8]> = entries.iter().map(|e| e.body.as_slice()).collect();
    tx.execute(insert, &[&accounts, &seqs, &ids, &names, &times, &bodies])
        .await?;
    Ok(())
}

fn entry(row: &Row) -> Result<OutboxEntry, StoreError> {
    let id: String = row.get(2);
    let event_id = id.parse().map_err(|e| {
        StoreError::with_source(
            "postgres: an outbox entry has no event id",
            std::io::Error::other(e),
        )
    })?;
    let name: String = row.get(3);
    let event_name = match name.parse() {
        Ok(name) => name,
        Err(never) => match never {},
    };
    Ok(OutboxEntry {
        account_id: AccountId(row.get::<_, i64>(0) as u64),
        event_id,
        event_name,
        timestamp: row.get(4),
        body: row.get(5),
        seq: row.get::<_, i64>(1) as u64,
        decided_at: row.get(6),
    })
}

impl PostgresStore {
    /// Keeps an outbox (table `alm_outbox`, created by
    /// [`PostgresStore::migrate`]): an entry for every processed event,
    /// written in the transaction of the commit that decides it, for a
    /// relay ([`crate::outbox::Relay`]) to forward. An account's commits
    /// then take its counter row in turn (held from the outbox's insert to
    /// the commit's end).
    ///
    /// # Errors
    ///
    /// When the table is missing (run [`PostgresStore::migrate`]) or the
    /// database fails.
    pub async fn with_outbox(mut self) -> Result<Self, StoreError> {
        let schema = self.schema.clone();
        let check = async {
            let client = self.client().await?;
            client
                .batch_execute(&format!(
                    "SELECT 1 FROM \"{schema}\".alm_outbox, \"{schema}\".alm_outbox_accounts, \
                     \"{schema}\".alm_outbox_relays LIMIT 0"
                ))
                .await
                .map_err(|e| pg_error("alm_outbox is missing (run PostgresStore::migrate)", e))
        };
        bounded(self.timeout, check, timed_out).await?;
        self.outbox = true;
        Ok(self.with_own_hook(Outbox::new(&schema)))
    }
}

impl OutboxStore for PostgresStore {
    fn keeps_outbox(&self) -> bool {
        self.outbox
    }

    async fn lease_outbox(
        &self,
        relay: &str,
        max: usize,
        lease: Duration,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        if !self.outbox {
            return Ok(Vec::new());
        }
        let schema = &self.schema;
        let lease_ms = crate::store::lease_millis(lease) as f64;
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        let read = async {
            let client = self.client().await?;
            // Accounts with entries, leased where free (or ours), in one
            // statement; then their oldest entries.
            let leased = prepared(
                &client,
                &format!(
                        "INSERT INTO \"{schema}\".alm_outbox_relays AS r (account_id, relay, lease_until) \
                         SELECT a.account_id, $1, clock_timestamp() + $2 * interval '1 millisecond' \
                         FROM \"{schema}\".alm_outbox_accounts a WHERE EXISTS \
                         (SELECT 1 FROM \"{schema}\".alm_outbox o WHERE o.account_id = a.account_id) \
                         ORDER BY a.account_id \
                         ON CONFLICT (account_id) DO UPDATE SET relay = EXCLUDED.relay, \
                         lease_until = EXCLUDED.lease_until \
                         WHERE r.relay = EXCLUDED.relay OR r.lease_until <= clock_timestamp() \
                     RETURNING account_id"
                ),
                &[&relay, &lease_ms],
            )
            .await
            .map_err(|e| pg_error("cannot lease the outbox", e))?;
            let mut accounts: Vec<i64> = leased.iter().map(|r| r.get(0)).collect();
            accounts.sort_unstable();
            if accounts.is_empty() {
                return Ok(Vec::new());
            }
            let rows = prepared(
                &client,
                &format!(
                    "SELECT o.* FROM unnest($1::bigint[]) WITH ORDINALITY AS k(a, n) \
                         CROSS JOIN LATERAL (SELECT account_id, seq, event_id, event_name, \
                         event_time, body, decided_at FROM \"{schema}\".alm_outbox \
                         WHERE account_id = k.a ORDER BY seq LIMIT $2) AS o ORDER BY k.n, o.seq \
                     LIMIT $2"
                ),
                &[&accounts, &max],
            )
            .await
            .map_err(|e| pg_error("cannot read the outbox", e))?;
            // Accounts leased but left out by `max`: free them at once for
            // other relays.
            let served: std::collections::BTreeSet<i64> = rows.iter().map(|r| r.get(0)).collect();
            let unserved: Vec<i64> = accounts
                .into_iter()
                .filter(|a| !served.contains(a))
                .collect();
            if !unserved.is_empty() {
                client
                    .execute(
                        &format!(
                            "UPDATE \"{schema}\".alm_outbox_relays SET lease_until = '-infinity' \
                             WHERE account_id = ANY($1) AND relay = $2"
                        ),
                        &[&unserved, &relay],
                    )
                    .await
                    .map_err(|e| pg_error("cannot release outbox leases", e))?;
            }
            Ok(rows)
        };
        let rows = bounded(self.timeout, read, timed_out).await?;
        rows.iter().map(entry).collect()
    }

    async fn mark_sent(&self, relay: &str, sent: &[OutboxEntry]) -> Result<(), StoreError> {
        let highest = highest_sent(sent);
        if highest.is_empty() {
            return Ok(());
        }
        let accounts: Vec<i64> = highest.iter().map(|(a, _)| a.get() as i64).collect();
        let upto: Vec<i64> = highest.iter().map(|(_, s)| *s as i64).collect();
        let schema = &self.schema;
        let mark = async {
            let client = self.client().await?;
            prepared(
                &client,
                &format!(
                    "WITH sent AS (DELETE FROM \"{schema}\".alm_outbox o \
                         USING unnest($1::bigint[], $2::bigint[]) AS s(a, upto) \
                         WHERE o.account_id = s.a AND o.seq <= s.upto RETURNING 1) \
                         UPDATE \"{schema}\".alm_outbox_relays SET lease_until = '-infinity' \
                     WHERE account_id = ANY($1) AND relay = $3"
                ),
                &[&accounts, &upto, &relay],
            )
            .await
            .map_err(|e| pg_error("cannot mark outbox entries sent", e))
        };
        bounded(self.timeout, mark, timed_out).await?;
        Ok(())
    }

    async fn outbox_stats(&self) -> Result<OutboxStats, StoreError> {
        if !self.outbox {
            return Ok(OutboxStats::default());
        }
        let schema = &self.schema;
        let read = async {
            let client = self.client().await?;
            client
                .query_one(
                    &format!("SELECT count(*), min(decided_at) FROM \"{schema}\".alm_outbox"),
                    &[],
                )
                .await
                .map_err(|e| pg_error("cannot read the outbox's size", e))
        };
        let row = bounded(self.timeout, read, timed_out).await?;
        let oldest: Option<SystemTime> = row.get(1);
        Ok(OutboxStats::new(row.get::<_, i64>(0).max(0) as u64, oldest))
    }
}

/// Runs `sql` as a statement prepared once per connection (the relay's
/// statements run every round).
async fn prepared(
    client: &deadpool_postgres::Object,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<Row>, tokio_postgres::Error> {
    let statement = client.prepare_cached(sql).await?;
    client.query(&statement, params).await
}
