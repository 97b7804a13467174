//! The inbox on Redis: shared by every replica of a receiver.

mod archive;
mod archive_index;
mod pause;
mod scripts;
mod stored;

use scripts::Scripts;

use std::fmt;
use std::time::Duration;

use ::redis::Script;
use ::redis::aio::ConnectionManager;
use time::OffsetDateTime;

use super::types::{from_millis, lease_millis, unix_millis};
use super::{
    DeadLetter, DeadLetterId, DeliveryId, Inbox, InboxError, InboxStats, KeptCounts, LEASE_RAN_OUT,
    LeaseToken, NewDeadLetter, NewDelivery, NewQuarantined, QuarantineId, Quarantined, Taken,
};
use crate::AccountId;
use stored::{ToArg, dead_letter, quarantined};

/// The inbox on Redis: shared by every replica of a receiver.
///
/// Every operation is one Lua script (one round trip, atomic). **Leases run
/// on Redis's clock** (`TIME`, read inside the scripts): processes whose
/// clocks disagree never hold one delivery at once. Keys start
/// with the prefix followed by `inbox:` (so an inbox and a
/// [`RedisStore`](crate::store::RedisStore) can share a prefix):
///
/// - `d:{id}`: a hash per delivery (account, body, received time, attempts,
///   abandoned attempts, last error, retry time, lease token and end);
///   `seq` numbers them.
/// - `a:{accountId}`: a list per account, its deliveries in order.
/// - `ready`, `leased`, `retrying`: sorted sets of accounts whose head may be
///   taken (by head id), is leased (by lease end), waits for a retry (by
///   retry time). Taking moves due accounts back to `ready` and pops the
///   oldest, so one account's deliveries go out one at a time, in order.
/// - `paused` (a hash, account → since), `pausedall` (since), `held`
///   (paused accounts popped from `ready`, by head id, put back on resume).
/// - `received`: every delivery by time received (counts and the oldest).
/// - `dl`, `dl:{n}`: dead letters (JSON); `q`, `q:{n}`: quarantined bodies.
/// - `kdl`, `kq`, `kqb`: what is kept of each account (hashes by account,
///   kept by the scripts; `kv` marks them counted: delete it to recount).
///
/// **Durability** is Redis's own: an append is acknowledged once Redis has
/// it in memory. Only with `appendonly yes` (and `appendfsync always`, or
/// `everysec` to risk one second) does it survive a restart of Redis or of
/// its machine; without persistence a restart loses every delivery not yet
/// processed, which ALM will not send again. Keys never expire: completed
/// deliveries are deleted, and dead letters and quarantined bodies stay
/// until discarded or replayed. The scripts name keys the caller did not
/// declare, so the inbox needs one Redis (not a cluster).
/// Clones share the
/// connection; `Debug` shows the address and prefix, never a password.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use alm_webhooks::inbox::{Inbox, RedisInbox};
///
/// let inbox = RedisInbox::connect_with_prefix("redis://redis.internal:6379/", "alm:").await.unwrap();
/// println!("keys under {}", inbox.prefix());
/// let stats = inbox.stats(time::OffsetDateTime::now_utc()).await.unwrap();
/// println!("{} pending", stats.pending);
/// # }
/// ```
#[derive(Clone)]
pub struct RedisInbox {
    conn: ConnectionManager,
    addr: String,
    prefix: String,
    scripts: std::sync::Arc<Scripts>,
}

impl fmt::Debug for RedisInbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisInbox")
            .field("addr", &self.addr)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn redis_error(what: &str, e: ::redis::RedisError) -> InboxError {
    InboxError::with_source(format!("redis: {what}"), e)
}

fn token_text(token: LeaseToken) -> String {
    format!("{:032x}", token.0)
}

impl RedisInbox {
    /// Connects to Redis at `url`, with every key under `{prefix}inbox:`.
    /// The connection is the store's kind
    /// ([`RedisStore::connect`](crate::store::RedisStore::connect)): it
    /// reconnects on its own, an attempt to connect takes at most 2 s, and
    /// a call waits at most 3 s for its answer (then fails: an append is
    /// answered `503`).
    ///
    /// # Errors
    ///
    /// An [`InboxError`] for an invalid URL or an unreachable server (the
    /// message names the address, never a password).
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use alm_webhooks::inbox::RedisInbox;
    /// let inbox = RedisInbox::connect_with_prefix("rediss://:password@redis.internal:6380/0", "alm:").await.unwrap();
    /// // Its Debug shows the address and the prefix, never the password.
    /// println!("{inbox:?}");
    /// # }
    /// ```
    pub async fn connect_with_prefix(url: &str, prefix: &str) -> Result<Self, InboxError> {
        let (conn, addr) = crate::store::redis::open_manager(url)
            .await
            .map_err(|(what, e)| redis_error(&what, e))?;
        Ok(Self {
            conn,
            addr,
            prefix: format!("{prefix}inbox:"),
            scripts: std::sync::Arc::new(Scripts::new()),
        })
    }

    /// The inbox on a connection the application already has, such as the
    /// store's ([`RedisStore::manager`](crate::store::RedisStore::manager)),
    /// so the store and the inbox share one connection; keys under
    /// `{prefix}inbox:` (the store's prefix will do: their keys do not
    /// collide). Nothing is sent until the first call; the manager's
    /// timeouts apply (those of [`connect_with_prefix`](Self::connect_with_prefix)
    /// are [`RedisStore::manager_config`](crate::store::RedisStore::manager_config)'s:
    /// a 3 s response timeout).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use alm_webhooks::inbox::RedisInbox;
    /// use alm_webhooks::store::RedisStore;
    ///
    /// let store = RedisStore::connect_with_prefix("redis://redis.internal:6379/", "alm:").await?;
    /// let inbox = RedisInbox::from_manager(store.manager().clone(), store.prefix());
    /// assert_eq!(inbox.prefix(), "alm:inbox:");
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_manager(conn: ConnectionManager, prefix: &str) -> Self {
        Self {
            conn,
            addr: "(a connection the application opened)".to_owned(),
            prefix: format!("{prefix}inbox:"),
            scripts: std::sync::Arc::new(Scripts::new()),
        }
    }

    /// The prefix every key of this inbox starts with (ends in `inbox:`).
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use alm_webhooks::inbox::RedisInbox;
    /// let inbox = RedisInbox::connect_with_prefix("redis://127.0.0.1:6379/", "app:").await.unwrap();
    /// assert_eq!(inbox.prefix(), "app:inbox:");
    /// # }
    /// ```
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Runs `script` with the prefix and `args`.
    async fn call<T: ::redis::FromRedisValue>(
        &self,
        what: &str,
        script: &Script,
        args: &[&dyn ToArg],
    ) -> Result<T, InboxError> {
        let mut invocation = script.arg(&self.prefix);
        for arg in args {
            arg.push_to(&mut invocation);
        }
        let mut conn = self.conn.clone();
        invocation
            .invoke_async(&mut conn)
            .await
            .map_err(|e| redis_error(&format!("{what} failed"), e))
    }

    async fn held(
        &self,
        what: &str,
        script: &Script,
        id: DeliveryId,
        token: LeaseToken,
        more: &[&dyn ToArg],
    ) -> Result<bool, InboxError> {
        let token = token_text(token);
        let mut args: Vec<&dyn ToArg> = vec![&id.0, &token];
        args.extend_from_slice(more);
        Ok(self.call::<i64>(what, script, &args).await? == 1)
    }
}

impl Inbox for RedisInbox {
    delegate_pause!();
    delegate_archive!();

    async fn append(&self, delivery: NewDelivery<'_>) -> Result<DeliveryId, InboxError> {
        let account = delivery.account_id.get().to_string();
        let id: u64 = self
            .call(
                "append",
                &self.scripts.append,
                &[&account, &delivery.body, &unix_millis(delivery.received_at)],
            )
            .await?;
        Ok(DeliveryId(id))
    }

    async fn take(
        &self,
        lease: Duration,
        now: OffsetDateTime,
    ) -> Result<Option<Taken>, InboxError> {
        Ok(self.take_many(lease, now, 1).await?.into_iter().next())
    }

    /// One script, whatever `max`; the deliveries share one lease token.
    async fn take_many(
        &self,
        lease: Duration,
        now: OffsetDateTime,
        max: usize,
    ) -> Result<Vec<Taken>, InboxError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let token = LeaseToken::random();
        let rows: Vec<stored::TakenRow> = self
            .call(
                "take",
                &self.scripts.take,
                &[
                    &unix_millis(now),
                    &token_text(token),
                    &lease_millis(lease),
                    &LEASE_RAN_OUT,
                    &max,
                ],
            )
            .await?;
        rows.into_iter()
            .map(|row| stored::taken(row, token))
            .collect()
    }

    async fn renew(
        &self,
        id: DeliveryId,
        token: LeaseToken,
        lease: Duration,
        _now: OffsetDateTime,
    ) -> Result<bool, InboxError> {
        let lease = lease_millis(lease);
        self.held("renew", &self.scripts.renew, id, token, &[&lease])
            .await
    }

    async fn complete(
        &self,
        id: DeliveryId,
        token: LeaseToken,
        dead_letters: &[NewDeadLetter],
    ) -> Result<bool, InboxError> {
        let letters = stored::encode_letters(dead_letters)?;
        let more: Vec<&dyn ToArg> = letters.iter().map(|l| l as &dyn ToArg).collect();
        self.held("complete", &self.scripts.complete, id, token, &more)
            .await
    }

    async fn retry_later(
        &self,
        id: DeliveryId,
        token: LeaseToken,
        not_before: OffsetDateTime,
        error: &str,
    ) -> Result<bool, InboxError> {
        let not_before = unix_millis(not_before);
        let more: [&dyn ToArg; 3] = [&0, &not_before, &error];
        self.held("retry", &self.scripts.give_back, id, token, &more)
            .await
    }

    async fn postpone(
        &self,
        id: DeliveryId,
        token: LeaseToken,
        not_before: OffsetDateTime,
        error: &str,
    ) -> Result<bool, InboxError> {
        let not_before = unix_millis(not_before);
        let more: [&dyn ToArg; 3] = [&1, &not_before, &error];
        self.held("postpone", &self.scripts.give_back, id, token, &more)
            .await
    }

    async fn release(&self, id: DeliveryId, token: LeaseToken) -> Result<bool, InboxError> {
        self.held("release", &self.scripts.give_back, id, token, &[&1])
            .await
    }

    async fn quarantine(&self, body: NewQuarantined<'_>) -> Result<QuarantineId, InboxError> {
        let account = body
            .account_id
            .map_or_else(String::new, |a| a.get().to_string());
        let id: u64 = self
            .call(
                "quarantine",
                &self.scripts.quarantine,
                &[
                    &account,
                    &body.body,
                    &body.error,
                    &unix_millis(body.received_at),
                ],
            )
            .await?;
        Ok(QuarantineId(id))
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, InboxError> {
        self.dead_letters_after(None, limit).await
    }

    async fn dead_letters_after(
        &self,
        after: Option<DeadLetterId>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, InboxError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.list("dl", limit, after.map_or(0, |a| a.0))
            .await?
            .into_iter()
            .map(|(id, entry)| dead_letter(id, entry))
            .collect()
    }

    async fn dead_letter(&self, id: DeadLetterId) -> Result<Option<DeadLetter>, InboxError> {
        let found = self.list("dl", -(id.0 as i64), 0).await?.into_iter().next();
        found.map(|(id, entry)| dead_letter(id, entry)).transpose()
    }

    async fn discard_dead_letter(&self, id: DeadLetterId) -> Result<bool, InboxError> {
        let n: i64 = self
            .call("discard", &self.scripts.discard, &[&"dl", &id.0])
            .await?;
        Ok(n == 1)
    }

    async fn replay_dead_letter(
        &self,
        id: DeadLetterId,
        now: OffsetDateTime,
    ) -> Result<Option<DeliveryId>, InboxError> {
        let new: Option<u64> = self
            .call("replay", &self.scripts.replay, &[&id.0, &unix_millis(now)])
            .await?;
        Ok(new.map(DeliveryId))
    }

    async fn quarantined(&self, limit: usize) -> Result<Vec<Quarantined>, InboxError> {
        self.quarantined_after(None, limit).await
    }

    async fn quarantined_after(
        &self,
        after: Option<QuarantineId>,
        limit: usize,
    ) -> Result<Vec<Quarantined>, InboxError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.list("q", limit, after.map_or(0, |a| a.0))
            .await?
            .into_iter()
            .map(|(id, entry)| quarantined(id, entry))
            .collect()
    }

    async fn quarantined_body(&self, id: QuarantineId) -> Result<Option<Quarantined>, InboxError> {
        let found = self.list("q", -(id.0 as i64), 0).await?.into_iter().next();
        found.map(|(id, entry)| quarantined(id, entry)).transpose()
    }

    async fn discard_quarantined(&self, id: QuarantineId) -> Result<bool, InboxError> {
        let n: i64 = self
            .call("discard", &self.scripts.discard, &[&"q", &id.0])
            .await?;
        Ok(n == 1)
    }

    async fn replay_quarantined(
        &self,
        id: QuarantineId,
        account_id: AccountId,
        now: OffsetDateTime,
    ) -> Result<Option<DeliveryId>, InboxError> {
        let account = account_id.get().to_string();
        let new: Option<u64> = self
            .call(
                "requeue",
                &self.scripts.requeue,
                &[&id.0, &account, &unix_millis(now)],
            )
            .await?;
        Ok(new.map(DeliveryId))
    }

    async fn kept_of(&self, account_id: AccountId) -> Result<KeptCounts, InboxError> {
        self.counts(Some(account_id)).await
    }

    async fn most_kept_of_one_account(&self) -> Result<KeptCounts, InboxError> {
        self.counts(None).await
    }

    async fn stats(&self, now: OffsetDateTime) -> Result<InboxStats, InboxError> {
        let (total, in_flight, retrying, oldest, dead, quarantined, bytes): scripts::StatsRow =
            self.call("stats", &self.scripts.stats, &[&unix_millis(now)])
                .await?;
        Ok(InboxStats::new(
            total.saturating_sub(in_flight + retrying),
            in_flight,
            retrying,
            dead,
            quarantined,
            oldest.map(|ms| super::types::age(now, from_millis(ms))),
        )
        .with_quarantined_bytes(bytes))
    }
}
