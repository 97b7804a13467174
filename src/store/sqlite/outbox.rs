//! The outbox on SQLite: table `alm_outbox`, written by a commit hook in
//! the commit's transaction, and the relay's reads.

use std::time::{Duration, SystemTime};

use rusqlite::{OptionalExtension, Transaction, params};

use super::SqliteStore;
use crate::store::outbox::{OutboxEntry, OutboxStats, OutboxStore, from_millis, highest_sent};
use crate::store::{Decided, StoreError, unix_millis};
use crate::{AccountId, BoxError};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS alm_outbox (
    account_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    event_name TEXT NOT NULL,
    event_time INTEGER,
    body BLOB NOT NULL,
    decided_at INTEGER NOT NULL,
    PRIMARY KEY (account_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alm_outbox_accounts (
    account_id INTEGER PRIMARY KEY,
    next_seq INTEGER NOT NULL,
    relay TEXT,
    lease_until INTEGER NOT NULL DEFAULT 0
);
";

/// The commit hook that writes `alm_outbox`.
#[derive(Debug, Clone, Copy)]
struct Outbox;

impl super::hooks::SqliteHook for Outbox {
    fn on_commit(&self, tx: &Transaction<'_>, decided: &[Decided<'_>]) -> Result<(), BoxError> {
        let now = unix_millis(SystemTime::now());
        let mut next = tx.prepare_cached(
            "INSERT INTO alm_outbox_accounts (account_id, next_seq) VALUES (?1, 1) \
             ON CONFLICT (account_id) DO UPDATE SET next_seq = next_seq + 1 RETURNING next_seq",
        )?;
        let mut insert = tx.prepare_cached(
            "INSERT INTO alm_outbox (account_id, seq, event_id, event_name, event_time, body, \
             decided_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for entry in OutboxEntry::of_processed(decided)? {
            let account = entry.account_id.get() as i64;
            let seq: i64 = next.query_row([account], |r| r.get(0))?;
            insert.execute(params![
                account,
                seq,
                entry.event_id.as_str(),
                entry.event_name.as_str(),
                entry.timestamp_millis(),
                entry.body,
                now,
            ])?;
        }
        Ok(())
    }
}

type Row = (i64, i64, String, String, Option<i64>, Vec<u8>, i64);

fn entry((account, seq, id, name, time, body, at): Row) -> Result<OutboxEntry, StoreError> {
    let event_id = id.parse().map_err(|e| {
        StoreError::with_source(
            "sqlite: an outbox entry has no event id",
            std::io::Error::other(e),
        )
    })?;
    let event_name = match name.parse() {
        Ok(name) => name,
        Err(never) => match never {},
    };
    Ok(OutboxEntry {
        account_id: AccountId(account as u64),
        event_id,
        event_name,
        timestamp: time.and_then(from_millis),
        body,
        seq: seq as u64,
        decided_at: SystemTime::UNIX_EPOCH + Duration::from_millis(at.max(0) as u64),
    })
}

impl SqliteStore {
    /// Keeps an outbox (table `alm_outbox`, created if missing): an entry
    /// for every processed event, written in the transaction of the commit
    /// that decides it, for a relay ([`crate::outbox::Relay`]) to forward.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use alm_webhooks::store::{OutboxStore, SqliteStore};
    /// let store = SqliteStore::open_in_memory().unwrap().with_outbox().await.unwrap();
    /// assert!(store.keeps_outbox());
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// When the table cannot be created.
    pub async fn with_outbox(mut self) -> Result<Self, StoreError> {
        self.run_sql(SCHEMA).await?;
        self.outbox = true;
        Ok(self.with_hook(Outbox))
    }
}

impl OutboxStore for SqliteStore {
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
        let relay = relay.to_owned();
        let now = unix_millis(SystemTime::now());
        let until = now.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX));
        let rows = self
            .run("outbox lease", move |conn| {
                let tx = conn.transaction()?;
                let accounts: Vec<i64> = {
                    let mut free = tx.prepare_cached(
                        "UPDATE alm_outbox_accounts SET relay = ?1, lease_until = ?2 \
                         WHERE (relay IS NULL OR relay = ?1 OR lease_until <= ?3) \
                         AND EXISTS (SELECT 1 FROM alm_outbox o \
                         WHERE o.account_id = alm_outbox_accounts.account_id) \
                         RETURNING account_id",
                    )?;
                    let ids = free.query_map(params![relay, until, now], |r| r.get(0))?;
                    ids.collect::<rusqlite::Result<_>>()?
                };
                let mut rows: Vec<Row> = Vec::new();
                {
                    let mut read = tx.prepare_cached(
                        "SELECT account_id, seq, event_id, event_name, event_time, body, \
                         decided_at FROM alm_outbox WHERE account_id = ?1 ORDER BY seq LIMIT ?2",
                    )?;
                    let mut sorted = accounts;
                    sorted.sort_unstable_by_key(|a| *a as u64);
                    let mut release = tx.prepare_cached(
                        "UPDATE alm_outbox_accounts SET relay = NULL, lease_until = 0 \
                         WHERE account_id = ?1 AND relay = ?2",
                    )?;
                    for account in sorted {
                        let left = max.saturating_sub(rows.len());
                        if left == 0 {
                            // Left out by `max`: free for other relays.
                            release.execute(params![account, relay])?;
                            continue;
                        }
                        let got = read.query_map(params![account, left as i64], |r| {
                            Ok((
                                r.get(0)?,
                                r.get(1)?,
                                r.get(2)?,
                                r.get(3)?,
                                r.get(4)?,
                                r.get(5)?,
                                r.get(6)?,
                            ))
                        })?;
                        for row in got {
                            rows.push(row?);
                        }
                    }
                }
                tx.commit()?;
                Ok(rows)
            })
            .await?;
        rows.into_iter().map(entry).collect()
    }

    async fn mark_sent(&self, relay: &str, sent: &[OutboxEntry]) -> Result<(), StoreError> {
        let highest: Vec<(i64, i64)> = highest_sent(sent)
            .into_iter()
            .map(|(a, s)| (a.get() as i64, s as i64))
            .collect();
        if highest.is_empty() {
            return Ok(());
        }
        let relay = relay.to_owned();
        self.run("outbox mark sent", move |conn| {
            let tx = conn.transaction()?;
            {
                let mut delete = tx
                    .prepare_cached("DELETE FROM alm_outbox WHERE account_id = ?1 AND seq <= ?2")?;
                let mut release = tx.prepare_cached(
                    "UPDATE alm_outbox_accounts SET relay = NULL, lease_until = 0 \
                     WHERE account_id = ?1 AND relay = ?2",
                )?;
                for (account, upto) in &highest {
                    delete.execute(params![account, upto])?;
                    release.execute(params![account, relay])?;
                }
            }
            tx.commit()
        })
        .await
    }

    async fn outbox_stats(&self) -> Result<OutboxStats, StoreError> {
        if !self.outbox {
            return Ok(OutboxStats::default());
        }
        let (pending, oldest) = self
            .run("outbox stats", |conn| {
                conn.query_row(
                    "SELECT count(*), min(decided_at) FROM alm_outbox",
                    [],
                    |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Option<i64>>(1)?)),
                )
                .optional()
                .map(|r| r.unwrap_or((0, None)))
            })
            .await?;
        let oldest =
            oldest.map(|ms| SystemTime::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64));
        Ok(OutboxStats::new(pending.max(0) as u64, oldest))
    }
}
