//! A shared store on Redis, for several replicas of a receiver.

use std::fmt;
use std::time::{Duration, SystemTime};

use ::redis::aio::ConnectionManager;

mod codec;
mod many;
mod outbox;
mod projection;
mod records;
mod scripts;
mod setup;

use scripts::Scripts;
pub(crate) use setup::open_manager;

use super::lease_millis as duration_millis;
use super::{
    Claim, ClaimOwner, ClaimRequest, Commit, CommitOutcome, Decided, DedupKey, Store, StoreError,
    Versioned, unix_millis,
};
use crate::rules::StateKey;
use codec::{bad_data, commit_outcome, glob_escape, parse_state, redis_error, stored_state};

/// The prefix [`RedisStore::connect`] uses.
pub(crate) const DEFAULT_PREFIX: &str = "alm-webhooks:";

/// Added to every garbage-collection TTL, in milliseconds.
const GRACE_MS: i64 = 60_000;

/// How many keys one `SCAN` step of [`Store::sweep`] asks for.
const SWEEP_BATCH: usize = 500;

/// A shared store on Redis, for several replicas of a receiver.
///
/// Every replica that connects with the same URL and prefix shares one dedup
/// history and one set of rule states. `claim`, `commit` and `release` are
/// each a single Lua script, so they are atomic with respect to every other
/// caller of the same Redis.
///
/// Needs Redis 7.0 or later (a claim of a new event is one `SET` with
/// both `NX` and `GET`), or a server that speaks it.
///
/// # Key layout
///
/// Every key starts with the prefix (default `"alm-webhooks:"`):
///
/// - `{prefix}ev:{accountId}:{hex(storage_key(eventId))}`: a string, one
///   per event: a claim `c:{token}:{lease_until_ms}:{claimed_at_ms}` (the
///   token is its [`ClaimOwner`](super::ClaimOwner): 64 hex digits, the
///   holder's 32 then the lease's) or a decided event
///   `d:{remember_until_ms}`, each written with its expiry by one `SET`
///   (a new event's claim is one `SET … NX GET`). A key of a store written
///   before this form is a hash with the same fields (`status`, `token`,
///   `lease_until_ms`, `claimed_at_ms`, `remember_until_ms`); it is still
///   read, and replaced by the string at its event's next write. (A replica
///   of that earlier version cannot read the strings: stop it before this
///   one writes.) The event id (in its [stored form](super::storage_key),
///   so a 2.7 KB id makes a short key) is hex-encoded, so no id, whatever it
///   holds (`:`, `*`, `{`, a NUL byte…), can reach another key.
/// - `{prefix}st:{StateKey}`: a string, `{"v":version,"e":expiry_ms,"s":state}`,
///   the entity's state as JSON with its version and expiry. The state key's
///   [`Display`](std::fmt::Display) form (`learner/1234/7/course:1_2`), in its
///   [stored form](super::storage_key), is used after the `st:` namespace.
///
/// # Whose clock
///
/// **Leases are on Redis's clock** (`TIME`, read inside each script): a
/// claim's lease ends `lease` after the server's now, and is live until
/// then whatever the callers' clocks say, so two replicas whose clocks
/// disagree by seconds or minutes never both hold an event. The `now`
/// passed to [`Store::claim`] and [`Store::renew`] is not used for leases.
///
/// **Dedup windows are on the caller's clock**: a decided event's window
/// end is the `remember_until` the engine computed, compared in Lua
/// against the caller's `now`, so an engine with a test clock gets the same
/// dedup answers as from [`MemoryStore`](super::MemoryStore).
/// (Times are compared in milliseconds here; the memory store keeps decided
/// events to the second, so the two can differ within the last second of a
/// window.)
///
/// Each key also carries a real Redis TTL, only to collect garbage: the
/// lease, or the window end minus the claim's `now` (the caller's clock),
/// plus a minute of grace, at least one second. As long as the clock
/// passed to the store advances at least as fast as real time (the system
/// clock does), Redis only ever drops a key that is already expired by that
/// clock. A test clock that stands still sees entries vanish after their
/// length in real time.
///
/// [`Store::sweep`] is therefore optional here: Redis drops expired keys on
/// its own. `sweep(now)` scans the prefix's keys (`SCAN`, in batches) and
/// deletes those expired (decided events by `now`, claims by the server's
/// clock) that Redis has not dropped yet (because
/// their TTL includes the grace, or the caller's clock runs ahead of real
/// time); it returns how many it deleted, not counting those Redis dropped.
/// Its cost grows with the number of keys, so run it rarely if at all.
///
/// # Durability
///
/// What Redis forgets, the store forgets. With `appendonly no` (and no RDB
/// snapshots), a Redis restart loses the dedup history and the rule states:
/// an event ALM redelivers afterwards is processed again, and an out-of-order
/// event may no longer be recognised as stale. For production use AOF with
/// `appendfsync everysec` (at most about a second of decisions lost on a
/// crash) or `appendfsync always`, and a replica with failover only if you
/// accept that acknowledged writes not yet replicated can be lost.
///
/// # Timeouts
///
/// A connection attempt takes at most [`RedisStore::CONNECTION_TIMEOUT`]
/// (2 s) and a call waits at most [`RedisStore::RESPONSE_TIMEOUT`] (3 s)
/// for its answer, so a Redis that stops answering (a network that drops
/// packets) fails calls as transient (`503`) instead of hanging them; the
/// connection is reopened in the background. Other values: build the
/// manager from [`RedisStore::manager_config`] and use
/// [`RedisStore::from_manager`]. [`RedisInbox`](crate::inbox::RedisInbox)
/// uses the same settings, or the store's manager itself
/// ([`RedisStore::manager`]).
///
/// # Redis Cluster is not supported
///
/// The store talks to one Redis server (a primary, which may have replicas
/// and Sentinel failover) over a single connection; it does not follow a
/// cluster's `MOVED` redirections, so it does not work against Redis
/// Cluster. Shard by running one Redis per group of accounts instead.
///
/// # Secrets
///
/// The URL may carry a password. It never appears in a [`StoreError`], in
/// this type's [`Debug`](std::fmt::Debug) output (host and port only) or in
/// logs.
///
///
/// Cloning is cheap and shares the connection.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), alm_webhooks::store::StoreError> {
/// use alm_webhooks::Engine;
/// use alm_webhooks::store::RedisStore;
///
/// let store = RedisStore::connect_with_prefix("redis://cache.internal:6379/0", "alm:prod:").await?;
/// let engine = Engine::builder(store).build();
/// # let _ = engine;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    /// `host:port` (or the socket path): never the password.
    addr: String,
    prefix: String,
    scripts: Scripts,
    /// Whether commits keep the learner projection.
    projection: bool,
    /// Whether commits append to the outbox.
    outbox: bool,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("addr", &self.addr)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    fn event_key(&self, key: &DedupKey) -> String {
        format!(
            "{}ev:{}:{}",
            self.prefix,
            key.account_id.get(),
            base16ct::lower::encode_string(key.storage_key().1.as_bytes())
        )
    }

    fn state_key(&self, key: &StateKey) -> String {
        format!("{}st:{}", self.prefix, key.storage_key())
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
        owner: ClaimOwner,
        lease: Duration,
        now: SystemTime,
    ) -> Result<Claim, StoreError> {
        Ok(self.claim_and_load(key, None, owner, lease, now).await?.0)
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
        owner: ClaimOwner,
        lease: Duration,
        now: SystemTime,
    ) -> Result<(Claim, Versioned), StoreError> {
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
            .arg(owner.to_hex())
            .arg(lease_ms)
            .arg(ttl_ms)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| redis_error("claim failed", e))?;
        match answer {
            0 => Ok((Claim::Claimed(owner), parse_state(stored)?)),
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

    /// One round trip: one script per chunk of [`MANY_CHUNK`](super::MANY_CHUNK)
    /// commits, the chunks in one pipeline (the script loaded first, in the
    /// same pipeline, so a restarted server has it). The rest of a broken
    /// chain is refused within a chunk: a chain that spans two chunks
    /// starts afresh in the second (its version check still holds).
    async fn commit_many(&self, commits: &[Commit<'_>]) -> Result<Vec<CommitOutcome>, StoreError> {
        self.commit_chunks(commits).await
    }

    fn wants_decided(&self) -> bool {
        self.projection || self.outbox
    }

    /// With the learner projection: one script per chunk, as
    /// [`commit_many`](Store::commit_many), that also merges the event of
    /// each commit it makes into its record; with the outbox, that also
    /// appends each processed event to its account's stream; with both,
    /// one script does all three (all or nothing).
    async fn commit_decided(
        &self,
        commits: &[Commit<'_>],
        decided: &[Option<Decided<'_>>],
    ) -> Result<Vec<CommitOutcome>, StoreError> {
        if self.projection {
            self.commit_projected(commits, decided).await
        } else if self.outbox {
            self.commit_outboxed(commits, decided).await
        } else {
            self.commit_chunks(commits).await
        }
    }

    /// One round trip: one script per chunk of [`MANY_CHUNK`](super::MANY_CHUNK)
    /// events, the chunks in one pipeline.
    async fn claim_many(
        &self,
        requests: &[ClaimRequest<'_>],
        owner: ClaimOwner,
        lease: Duration,
        now: SystemTime,
    ) -> Result<Vec<(Claim, Versioned)>, StoreError> {
        self.claim_chunks(requests, owner, lease, now).await
    }

    /// One script; the lease ends `lease` after the server's clock.
    async fn renew(
        &self,
        key: &DedupKey,
        token: ClaimOwner,
        lease: Duration,
        _now: SystemTime,
    ) -> Result<bool, StoreError> {
        let lease_ms = duration_millis(lease);
        let mut conn = self.conn.clone();
        let renewed: i64 = self
            .scripts
            .renew
            .key(self.event_key(key))
            .arg(token.to_hex())
            .arg(lease_ms)
            .arg(lease_ms.saturating_add(GRACE_MS).max(1000))
            .invoke_async(&mut conn)
            .await
            .map_err(|e| redis_error("renew failed", e))?;
        Ok(renewed == 1)
    }

    /// One round trip: one script per chunk of [`MANY_CHUNK`](super::MANY_CHUNK)
    /// claims, the chunks in one pipeline.
    async fn renew_many(
        &self,
        claims: &[(&DedupKey, ClaimOwner)],
        lease: Duration,
        _now: SystemTime,
    ) -> Result<Vec<bool>, StoreError> {
        self.renew_chunks(claims, lease).await
    }

    async fn release(&self, key: &DedupKey, token: ClaimOwner) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: i64 = self
            .scripts
            .release
            .key(self.event_key(key))
            .arg(token.to_hex())
            .invoke_async(&mut conn)
            .await
            .map_err(|e| redis_error("release failed", e))?;
        Ok(())
    }

    async fn sweep(&self, now: SystemTime) -> Result<u64, StoreError> {
        let now_ms = unix_millis(now);
        let prefix = glob_escape(&self.prefix);
        let events = self.sweep_pattern(&format!("{prefix}ev:*"), now_ms).await?;
        let states = self.sweep_pattern(&format!("{prefix}st:*"), now_ms).await?;
        Ok(events + states)
    }
}
