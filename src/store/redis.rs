//! A shared store on Redis, for several replicas of a receiver.
//!
//! Every replica that connects with the same URL and prefix shares one dedup
//! history and one set of rule states. `claim`, `commit` and `release` are
//! each a single Lua script, so they are atomic with respect to every other
//! caller of the same Redis.
//!
//! # Key layout
//!
//! Every key starts with the prefix (default `"alm-webhooks:"`):
//!
//! - `{prefix}ev:{accountId}:{hex(eventId)}`: a hash, one per event, with
//!   `status` (`claimed` or `decided`), and for a claim `token` (32 hex
//!   digits), `lease_until_ms` and `claimed_at_ms`, for a decided event
//!   `remember_until_ms`. The event id is hex-encoded, so no id, whatever it
//!   holds (`:`, `*`, `{`…), can reach another key.
//! - `{prefix}st:{StateKey}`: a string, `{"v":version,"e":expiry_ms,"s":state}`,
//!   the entity's state as JSON with its version and expiry. The state key's
//!   [`Display`](std::fmt::Display) form (`learner/1234/7/course:1_2`) is used
//!   as is, after the `st:` namespace.
//!
//! # Whose clock
//!
//! The store decides with the `now` it is given, never with Redis's clock:
//! lease ends and dedup windows are values inside the stored data, compared
//! in Lua against the caller's `now`. So an engine with a test clock (or a
//! clock that disagrees with Redis's host) gets the same answers as from
//! [`MemoryStore`](super::MemoryStore).
//! (Times are compared in milliseconds here; the memory store keeps decided
//! events to the second, so the two can differ within the last second of a
//! window.)
//!
//! Each key also carries a real Redis TTL, only to collect garbage: the time
//! left by the caller's clock (lease end or window end minus the claim's
//! `now`), plus a minute of grace, at least one second. As long as the clock
//! passed to the store advances at least as fast as real time (the system
//! clock does), Redis only ever drops a key that is already expired by that
//! clock. A test clock that stands still sees entries vanish after their
//! length in real time.
//!
//! [`Store::sweep`] is therefore optional here: Redis drops expired keys on
//! its own. `sweep(now)` scans the prefix's keys (`SCAN`, in batches) and
//! deletes those expired by `now` that Redis has not dropped yet (because
//! their TTL includes the grace, or the caller's clock runs ahead of real
//! time); it returns how many it deleted, not counting those Redis dropped.
//! Its cost grows with the number of keys, so run it rarely if at all.
//!
//! # Durability
//!
//! What Redis forgets, the store forgets. With `appendonly no` (and no RDB
//! snapshots), a Redis restart loses the dedup history and the rule states:
//! an event ALM redelivers afterwards is processed again, and an out-of-order
//! event may no longer be recognised as stale. For production use AOF with
//! `appendfsync everysec` (at most about a second of decisions lost on a
//! crash) or `appendfsync always`, and a replica with failover only if you
//! accept that acknowledged writes not yet replicated can be lost.
//!
//! # Redis Cluster
//!
//! A commit touches the event's key and the state's key in one script, so on
//! a cluster both must be in one slot: put a hash tag in the prefix
//! (`"{alm}:"`), which sends every key of the store to one node.
//!
//! # Secrets
//!
//! The URL may carry a password. It never appears in a [`StoreError`], in
//! this type's [`Debug`](std::fmt::Debug) output (host and port only) or in
//! logs.

use std::fmt;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, Script};
use serde::Deserialize;
use time::OffsetDateTime;

use super::{Claim, ClaimToken, Commit, CommitOutcome, DedupKey, Store, StoreError, Versioned};
use crate::engine::{EntityState, StateKey};

/// The prefix [`RedisStore::connect`] uses.
pub const DEFAULT_PREFIX: &str = "alm-webhooks:";

/// Added to every garbage-collection TTL, in milliseconds.
const GRACE_MS: i64 = 60_000;

/// How many keys one `SCAN` step of [`Store::sweep`] asks for.
const SWEEP_BATCH: usize = 500;

/// Claims an event and, when won, reads a state with it. KEYS: event[,
/// state]. ARGV: now_ms, token, lease_until_ms, ttl_ms. Returns {0, state
/// or nil} (claimed), {1, nil} (decided), {2, nil} (in flight).
const CLAIM: &str = r"
local h = redis.call('HMGET', KEYS[1], 'status', 'lease_until_ms', 'remember_until_ms')
local now = tonumber(ARGV[1])
if h[1] == 'decided' and (tonumber(h[3]) or 0) > now then return {1, false} end
if h[1] == 'claimed' and (tonumber(h[2]) or 0) > now then return {2, false} end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'status', 'claimed', 'token', ARGV[2],
  'lease_until_ms', ARGV[3], 'claimed_at_ms', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if #KEYS == 2 then return {0, redis.call('GET', KEYS[2])} end
return {0, false}
";

/// Commits. KEYS: event[, state]. ARGV: token, remember_until_ms, grace_ms
/// [, expected_version, state_json, state_until_ms]. Returns 0 (committed),
/// 1 (state changed), 2 (lease lost).
const COMMIT: &str = r#"
local h = redis.call('HMGET', KEYS[1], 'status', 'token', 'claimed_at_ms')
if h[1] ~= 'claimed' or h[2] ~= ARGV[1] then return 2 end
local until_ms = ARGV[2]
local ttl = tonumber(until_ms) - (tonumber(h[3]) or 0) + tonumber(ARGV[3])
if ttl < 1000 then ttl = 1000 end
ttl = math.floor(ttl)
if #KEYS == 2 then
  local current = redis.call('GET', KEYS[2])
  local version = 0
  if current then
    version = tonumber(string.match(current, '^{"v":(%d+),'))
    if not version then return redis.error_reply('malformed state at ' .. KEYS[2]) end
  end
  if version ~= tonumber(ARGV[4]) then return 1 end
  local state_ttl = tonumber(ARGV[6]) - (tonumber(h[3]) or 0) + tonumber(ARGV[3])
  if state_ttl < ttl then state_ttl = ttl end
  redis.call('SET', KEYS[2],
    '{"v":' .. string.format('%d', version + 1) .. ',"e":' .. ARGV[6] .. ',"s":' .. ARGV[5] .. '}',
    'PX', string.format('%d', math.floor(state_ttl)))
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'status', 'decided', 'remember_until_ms', until_ms)
redis.call('PEXPIRE', KEYS[1], string.format('%d', ttl))
return 0
"#;

/// Releases a claim. KEYS: event. ARGV: token.
const RELEASE: &str = r"
local h = redis.call('HMGET', KEYS[1], 'status', 'token')
if h[1] == 'claimed' and h[2] == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
";

/// Deletes the given keys that are expired by ARGV[1] (now_ms). Returns how
/// many it deleted.
const SWEEP: &str = r#"
local now = tonumber(ARGV[1])
local removed = 0
for _, key in ipairs(KEYS) do
  local kind = redis.call('TYPE', key)['ok']
  local expired = false
  if kind == 'hash' then
    local h = redis.call('HMGET', key, 'status', 'lease_until_ms', 'remember_until_ms')
    if h[1] == 'decided' then
      expired = (tonumber(h[3]) or 0) <= now
    elseif h[1] == 'claimed' then
      expired = (tonumber(h[2]) or 0) <= now
    end
  elseif kind == 'string' then
    local e = string.match(redis.call('GET', key), '^{"v":%d+,"e":(%-?%d+),')
    expired = e ~= nil and tonumber(e) <= now
  end
  if expired then
    redis.call('DEL', key)
    removed = removed + 1
  end
end
return removed
"#;

/// The Redis store. See the [module docs](self).
///
/// Cloning is cheap and shares the connection.
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    /// `host:port` (or the socket path): never the password.
    addr: String,
    prefix: String,
    scripts: Scripts,
}

#[derive(Clone)]
struct Scripts {
    claim: Script,
    commit: Script,
    release: Script,
    sweep: Script,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("addr", &self.addr)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn redis_error(what: &str, e: ::redis::RedisError) -> StoreError {
    StoreError::with_source(format!("redis: {what}"), e)
}

fn unix_millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn duration_millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Escapes the glob characters of `text` for `SCAN … MATCH`.
fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[derive(Deserialize)]
struct StoredState {
    v: u64,
    s: EntityState,
}

impl RedisStore {
    /// Connects to Redis at `url` with the [default prefix](DEFAULT_PREFIX).
    ///
    /// The URL is the `redis` crate's: `redis://[:password@]host[:port][/db]`,
    /// `rediss://` for TLS (if the `redis` crate is built with a TLS feature),
    /// `redis+unix:///path`. The connection reconnects on its own; a call
    /// made while Redis is down fails with a [`StoreError`] (answered `503`).
    ///
    /// ```no_run
    /// use alm_webhooks::Engine;
    /// use alm_webhooks::store::RedisStore;
    ///
    /// # async fn run() -> Result<(), alm_webhooks::store::StoreError> {
    /// let store = RedisStore::connect("redis://:password@redis.internal:6379/").await?;
    /// let engine = Engine::builder(store).build();
    /// # let _ = engine;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with_prefix(url, DEFAULT_PREFIX).await
    }

    /// Connects, with every key starting with `prefix` (several receivers, or
    /// tests, can share one Redis with different prefixes).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), alm_webhooks::store::StoreError> {
    /// use alm_webhooks::store::RedisStore;
    /// let store = RedisStore::connect_with_prefix("redis://127.0.0.1/", "{crm-sync}:").await?;
    /// # let _ = store;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect_with_prefix(url: &str, prefix: &str) -> Result<Self, StoreError> {
        let client = Client::open(url).map_err(|e| redis_error("invalid URL", e))?;
        let addr = client.get_connection_info().addr().to_string();
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(3)
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(10)));
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|e| redis_error(&format!("cannot connect to {addr}"), e))?;
        Ok(Self {
            conn,
            addr,
            prefix: prefix.to_owned(),
            scripts: Scripts {
                claim: Script::new(CLAIM),
                commit: Script::new(COMMIT),
                release: Script::new(RELEASE),
                sweep: Script::new(SWEEP),
            },
        })
    }

    /// The prefix every key of this store starts with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The commit script, ready to run for `commit`.
    fn commit_invocation(
        &self,
        commit: &Commit<'_>,
    ) -> Result<::redis::ScriptInvocation<'_>, StoreError> {
        let state_json = commit
            .update
            .map(|u| serde_json::to_string(u.state))
            .transpose()
            .map_err(|e| StoreError::with_source("redis: cannot serialize the state", e))?;
        let mut invocation = self.scripts.commit.prepare_invoke();
        invocation
            .key(self.event_key(commit.key))
            .arg(format!("{:032x}", commit.token.0))
            .arg(unix_millis(commit.remember_until))
            .arg(GRACE_MS);
        if let (Some(update), Some(json)) = (commit.update, state_json) {
            invocation
                .key(self.state_key(update.key))
                .arg(update.expected_version)
                .arg(json)
                .arg(unix_millis(commit.state_until));
        }
        Ok(invocation)
    }

    fn event_key(&self, key: &DedupKey) -> String {
        format!(
            "{}ev:{}:{}",
            self.prefix,
            key.account_id.get(),
            hex(key.event_id.as_str().as_bytes())
        )
    }

    fn state_key(&self, key: &StateKey) -> String {
        format!("{}st:{key}", self.prefix)
    }

    /// Deletes the keys matching `pattern` that are expired by `now_ms`.
    async fn sweep_pattern(&self, pattern: &str, now_ms: i64) -> Result<u64, StoreError> {
        let mut conn = self.conn.clone();
        let mut cursor: u64 = 0;
        let mut removed = 0u64;
        loop {
            let (next, keys): (u64, Vec<String>) = ::redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(SWEEP_BATCH)
                .query_async(&mut conn)
                .await
                .map_err(|e| redis_error("sweep scan failed", e))?;
            if !keys.is_empty() {
                let mut invocation = self.scripts.sweep.prepare_invoke();
                for key in &keys {
                    invocation.key(key);
                }
                let n: u64 = invocation
                    .arg(now_ms)
                    .invoke_async(&mut conn)
                    .await
                    .map_err(|e| redis_error("sweep failed", e))?;
                removed += n;
            }
            if next == 0 {
                return Ok(removed);
            }
            cursor = next;
        }
    }
}

impl Store for RedisStore {
    async fn claim(
        &self,
        key: &DedupKey,
        lease: Duration,
        now: OffsetDateTime,
    ) -> Result<Claim, StoreError> {
        Ok(self.claim_and_load(key, None, lease, now).await?.0)
    }

    async fn load(&self, key: &StateKey) -> Result<Versioned, StoreError> {
        let mut conn = self.conn.clone();
        let stored: Option<String> = ::redis::cmd("GET")
            .arg(self.state_key(key))
            .query_async(&mut conn)
            .await
            .map_err(|e| redis_error("load failed", e))?;
        parse_state(stored)
    }

    /// One script: the claim, and the state's `GET` when the claim is won.
    async fn claim_and_load(
        &self,
        key: &DedupKey,
        state: Option<&StateKey>,
        lease: Duration,
        now: OffsetDateTime,
    ) -> Result<(Claim, Versioned), StoreError> {
        let token = ClaimToken::random();
        let now_ms = unix_millis(now);
        let lease_ms = duration_millis(lease);
        let ttl_ms = lease_ms.saturating_add(GRACE_MS).max(1000);
        let mut invocation = self.scripts.claim.key(self.event_key(key));
        if let Some(state) = state {
            invocation.key(self.state_key(state));
        }
        let mut conn = self.conn.clone();
        let (answer, stored): (i64, Option<String>) = invocation
            .arg(now_ms)
            .arg(format!("{:032x}", token.0))
            .arg(now_ms.saturating_add(lease_ms))
            .arg(ttl_ms)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| redis_error("claim failed", e))?;
        match answer {
            0 => Ok((Claim::Claimed(token), parse_state(stored)?)),
            1 => Ok((Claim::AlreadyDecided, Versioned::default())),
            2 => Ok((Claim::InFlight, Versioned::default())),
            other => Err(StoreError::new(format!(
                "redis: claim script answered {other}"
            ))),
        }
    }

    async fn commit(&self, commit: Commit<'_>) -> Result<CommitOutcome, StoreError> {
        let invocation = self.commit_invocation(&commit)?;
        let mut conn = self.conn.clone();
        let answer: i64 = invocation
            .invoke_async(&mut conn)
            .await
            .map_err(|e| redis_error("commit failed", e))?;
        commit_outcome(answer)
    }

    /// One pipeline, one round trip: the commit script (loaded first, in
    /// the same pipeline, so a restarted server has it) once per commit, in
    /// order. Each script is atomic on its own.
    async fn commit_many(&self, commits: &[Commit<'_>]) -> Result<Vec<CommitOutcome>, StoreError> {
        if commits.is_empty() {
            return Ok(Vec::new());
        }
        let invocations = commits
            .iter()
            .map(|c| self.commit_invocation(c))
            .collect::<Result<Vec<_>, _>>()?;
        let mut pipe = ::redis::pipe();
        pipe.load_script(&self.scripts.commit).ignore();
        for invocation in &invocations {
            pipe.invoke_script(invocation);
        }
        let mut conn = self.conn.clone();
        let answers: Vec<i64> = pipe
            .query_async(&mut conn)
            .await
            .map_err(|e| redis_error("commit failed", e))?;
        answers.into_iter().map(commit_outcome).collect()
    }

    async fn release(&self, key: &DedupKey, token: ClaimToken) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: i64 = self
            .scripts
            .release
            .key(self.event_key(key))
            .arg(format!("{:032x}", token.0))
            .invoke_async(&mut conn)
            .await
            .map_err(|e| redis_error("release failed", e))?;
        Ok(())
    }

    async fn sweep(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let now_ms = unix_millis(now);
        let prefix = glob_escape(&self.prefix);
        let events = self.sweep_pattern(&format!("{prefix}ev:*"), now_ms).await?;
        let states = self.sweep_pattern(&format!("{prefix}st:*"), now_ms).await?;
        Ok(events + states)
    }
}
/// The commit script's answer.
fn commit_outcome(answer: i64) -> Result<CommitOutcome, StoreError> {
    match answer {
        0 => Ok(CommitOutcome::Committed),
        1 => Ok(CommitOutcome::StateChanged),
        2 => Ok(CommitOutcome::LeaseLost),
        other => Err(StoreError::new(format!(
            "redis: commit script answered {other}"
        ))),
    }
}

/// A stored state (`{"v":…,"e":…,"s":…}`), or the default when there is none.
fn parse_state(stored: Option<String>) -> Result<Versioned, StoreError> {
    let Some(text) = stored else {
        return Ok(Versioned::default());
    };
    let stored: StoredState = serde_json::from_str(&text)
        .map_err(|e| StoreError::with_source("redis: stored state is malformed", e))?;
    Ok(Versioned {
        state: stored.s,
        version: stored.v,
    })
}
