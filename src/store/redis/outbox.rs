//! The outbox on Redis: one stream per account (`{prefix}ob:{accountId}`,
//! entry ids `{seq}-0`), appended by the commit script in the same atomic
//! step as the decisions; the accounts with entries in a set
//! (`{prefix}ob:accounts`), each account's next number in a hash
//! (`{prefix}ob:seq`), relays' leases in `{prefix}ob:lease:{accountId}`
//! (on the server's clock).

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use ::redis::Script;

use super::codec::redis_error;
use super::scripts::{APPEND, APPEND_END, COMMIT_FN, COMMIT_MANY, EVENT_FN, SERVER_NOW};
use super::{RedisStore, duration_millis};
use crate::store::outbox::{OutboxEntry, OutboxStats, OutboxStore, from_millis, highest_sent};
use crate::store::{Commit, CommitOutcome, Decided, StoreError};
use crate::{AccountId, EventName};

/// Leases accounts and reads their oldest entries. ARGV: prefix, relay,
/// lease_ms, max. Returns {account, entry id, fields} per entry.
const LEASE: &str = r"
local prefix, relay, lease, max = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local accounts = redis.call('SMEMBERS', prefix .. 'ob:accounts')
table.sort(accounts, function(x, y) return tonumber(x) < tonumber(y) end)
local out = {}
for _, account in ipairs(accounts) do
  if #out >= max then break end
  local stream = prefix .. 'ob:' .. account
  if redis.call('XLEN', stream) == 0 then
    redis.call('SREM', prefix .. 'ob:accounts', account)
  else
    local lk = prefix .. 'ob:lease:' .. account
    local holder = redis.call('GET', lk)
    if (not holder) or holder == relay then
      redis.call('SET', lk, relay, 'PX', lease)
      for _, row in ipairs(redis.call('XRANGE', stream, '-', '+', 'COUNT', max - #out)) do
        out[#out + 1] = {account, row[1], row[2]}
      end
    end
  end
end
return out
";

/// Deletes what was sent and ends the relay's leases. ARGV: prefix, relay,
/// then (account, highest seq sent) pairs.
const MARK: &str = r"
local prefix, relay = ARGV[1], ARGV[2]
for i = 3, #ARGV, 2 do
  local account = ARGV[i]
  redis.call('XTRIM', prefix .. 'ob:' .. account, 'MINID', string.format('%d-0', tonumber(ARGV[i + 1]) + 1))
  local lk = prefix .. 'ob:lease:' .. account
  if redis.call('GET', lk) == relay then redis.call('DEL', lk) end
end
return 0
";

/// {pending, oldest `at` or -1}. ARGV: prefix.
const STATS: &str = r"
local prefix = ARGV[1]
local pending, oldest = 0, -1
for _, account in ipairs(redis.call('SMEMBERS', prefix .. 'ob:accounts')) do
  local stream = prefix .. 'ob:' .. account
  pending = pending + redis.call('XLEN', stream)
  local first = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)[1]
  if first then
    for f = 1, #first[2], 2 do
      if first[2][f] == 'at' then
        local at = tonumber(first[2][f + 1])
        if oldest < 0 or at < oldest then oldest = at end
      end
    end
  end
end
return {pending, oldest}
";

struct OutboxScripts {
    commit: Script,
    lease: Script,
    mark: Script,
    stats: Script,
}

fn scripts() -> &'static OutboxScripts {
    static SCRIPTS: OnceLock<OutboxScripts> = OnceLock::new();
    SCRIPTS.get_or_init(|| OutboxScripts {
        commit: Script::new(&format!(
            "{SERVER_NOW}{EVENT_FN}{COMMIT_FN}{APPEND}{COMMIT_MANY}{APPEND_END}"
        )),

        lease: Script::new(LEASE),
        mark: Script::new(MARK),
        stats: Script::new(STATS),
    })
}

fn undecodable(what: &str) -> StoreError {
    StoreError::new(format!("redis: an outbox entry does not decode ({what})"))
}

fn entry(account: &str, id: &str, fields: Vec<Vec<u8>>) -> Result<OutboxEntry, StoreError> {
    let mut event_id = None;
    let mut name = None;
    let (mut time, mut body, mut at) = (None, Vec::new(), 0i64);
    let text = |v: Vec<u8>| String::from_utf8(v).map_err(|_| undecodable("not UTF-8"));
    let mut pairs = fields.into_iter();
    while let (Some(k), Some(v)) = (pairs.next(), pairs.next()) {
        match k.as_slice() {
            b"id" => event_id = Some(text(v)?),
            b"name" => name = Some(text(v)?),
            b"time" => time = text(v)?.parse::<i64>().ok(),
            b"body" => body = v,
            b"at" => at = text(v)?.parse().map_err(|_| undecodable("at"))?,
            _ => {}
        }
    }
    let seq = id
        .split_once('-')
        .and_then(|(s, _)| s.parse::<u64>().ok())
        .ok_or_else(|| undecodable("entry id"))?;
    let event_name: EventName = match name.ok_or_else(|| undecodable("name"))?.parse() {
        Ok(n) => n,
        Err(never) => match never {},
    };
    Ok(OutboxEntry {
        account_id: AccountId(account.parse().map_err(|_| undecodable("account"))?),
        event_id: event_id
            .ok_or_else(|| undecodable("id"))?
            .parse()
            .map_err(|_| undecodable("id"))?,
        event_name,
        timestamp: time.and_then(from_millis),
        body,
        seq,
        decided_at: SystemTime::UNIX_EPOCH + Duration::from_millis(at.max(0) as u64),
    })
}

impl RedisStore {
    /// Keeps an outbox: an entry for every processed event, appended to
    /// its account's stream by the script that commits the decision, for
    /// a relay ([`crate::outbox::Relay`]) to forward.
    pub fn with_outbox(mut self) -> Self {
        self.outbox = true;
        self
    }

    /// [`Store::commit_decided`](crate::store::Store::commit_decided) with
    /// the outbox: the commit script, then the stream entries, in one
    /// script per chunk.
    pub(super) async fn commit_outboxed(
        &self,
        commits: &[Commit<'_>],
        decided: &[Option<Decided<'_>>],
    ) -> Result<Vec<CommitOutcome>, StoreError> {
        let script = &scripts().commit;
        let mut invocations = self.commit_invocations(script, commits)?;
        let chunks = commits.chunks(crate::store::MANY_CHUNK).enumerate();
        for ((at, chunk), invocation) in chunks.zip(&mut invocations) {
            let base = at * crate::store::MANY_CHUNK;
            let decided = &decided[base.min(decided.len())..];
            self.append_outbox_args(invocation, chunk.len(), decided, 1 + 6 * chunk.len())?;
        }
        self.run_commits(script, &invocations, commits.len()).await
    }

    /// The outbox's arguments after a commit script's `script_args`
    /// arguments for `commits` commits, whose decided events are the first
    /// of `decided`: five per commit (empty for an event not processed),
    /// then the commit script's argument count, then the prefix.
    pub(super) fn append_outbox_args(
        &self,
        invocation: &mut ::redis::ScriptInvocation<'_>,
        commits: usize,
        decided: &[Option<Decided<'_>>],
        script_args: usize,
    ) -> Result<(), StoreError> {
        for i in 0..commits {
            match decided
                .get(i)
                .copied()
                .flatten()
                .filter(|d| d.is_processed())
            {
                Some(d) => {
                    let e = OutboxEntry::of(d.event).map_err(|e| {
                        StoreError::with_source("redis: an event does not serialize", e)
                    })?;
                    invocation
                        .arg(e.account_id.get())
                        .arg(e.event_id.as_str())
                        .arg(e.event_name.as_str())
                        .arg(
                            e.timestamp_millis()
                                .map_or(String::new(), |t| t.to_string()),
                        )
                        .arg(e.body);
                }
                None => {
                    invocation.arg("").arg("").arg("").arg("").arg("");
                }
            }
        }
        invocation.arg(script_args).arg(&self.prefix);
        Ok(())
    }
}

impl OutboxStore for RedisStore {
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
        let mut conn = self.conn.clone();
        let rows: Vec<(String, String, Vec<Vec<u8>>)> = scripts()
            .lease
            .arg(&self.prefix)
            .arg(relay)
            .arg(duration_millis(lease).max(1))
            .arg(max)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| redis_error("cannot lease the outbox", e))?;
        rows.into_iter()
            .map(|(account, id, fields)| entry(&account, &id, fields))
            .collect()
    }

    async fn mark_sent(&self, relay: &str, sent: &[OutboxEntry]) -> Result<(), StoreError> {
        let highest = highest_sent(sent);
        if highest.is_empty() {
            return Ok(());
        }
        let mut invocation = scripts().mark.prepare_invoke();
        invocation.arg(&self.prefix).arg(relay);
        for (account, upto) in highest {
            invocation.arg(account.get()).arg(upto);
        }
        let mut conn = self.conn.clone();
        let _: i64 = invocation
            .invoke_async(&mut conn)
            .await
            .map_err(|e| redis_error("cannot mark outbox entries sent", e))?;
        Ok(())
    }

    async fn outbox_stats(&self) -> Result<OutboxStats, StoreError> {
        if !self.outbox {
            return Ok(OutboxStats::default());
        }
        let mut conn = self.conn.clone();
        let (pending, oldest): (i64, i64) = scripts()
            .stats
            .arg(&self.prefix)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| redis_error("cannot read the outbox's size", e))?;
        let oldest =
            (oldest >= 0).then(|| SystemTime::UNIX_EPOCH + Duration::from_millis(oldest as u64));
        Ok(OutboxStats::new(pending.max(0) as u64, oldest))
    }
}
