//! The learner projection on Redis: merged inside the commit script, so a
//! commit's decisions and its rows are written together or not at all.
//!
//! Each record is a hash of *slots* (see `projection::slots`): for each
//! field of the record's merge summary, the winning event's sort key
//! (`k:{slot}`, bytes whose order is the merge order) and its value
//! (`w:{slot}`, JSON). Rust computes the slots one event feeds and its
//! sort key; the script keeps, slot by slot, the greater key. That is the
//! whole merge (a join), so the row rebuilt from the slots is the row
//! [`projection::merge`](crate::projection::merge) makes on the other
//! stores, and the script stays short and set-based.

use std::collections::HashMap;
use std::io::Write;

use super::{GRACE_MS, RedisStore, commit_outcome, redis_error, unix_millis};
use crate::projection::{
    LearnerChanges, LearnerEvent, LearnerRecord, TranscriptCsv, from_millis, record_from_slots,
    slots_of, sort_key,
};
use crate::store::{Commit, CommitOutcome, Decided, MANY_CHUNK, StoreError};
use crate::{AccountId, LoInstanceId, UserId};

/// How many records one read of the export asks for.
const EXPORT_PAGE: isize = 2_000;

/// Commits many as `COMMIT_MANY` does, and merges the event of each commit
/// made into its record. KEYS: the sequence counter, the change feed, the
/// events, then per commit its state (if any) and, if it carries a
/// learner event, its record, the user's set of instances, the
/// instance's set of users, the account's set of records and the set of
/// accounts. ARGV: grace_ms, now_ms (`updated_at`), the
/// number of commits, then per commit: token, remember_until_ms, the
/// state's index in KEYS (0: none), expected version, state JSON,
/// state_until_ms, the record's index in KEYS (0: no learner event) and,
/// when there is one: account, user, instance, feed member, sort key, the
/// number of slots, then (slot, value) per slot. Returns one answer per
/// commit.
pub(super) const COMMIT_PROJECTED: &str = r"
local function newer(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x > y end
  end
  return #a > #b
end
local grace, now, n = ARGV[1], ARGV[2], tonumber(ARGV[3])
local seq_key, feed_key = KEYS[1], KEYS[2]
local answers, written = {}, {}
local a = 4
for i = 1, n do
  local si = tonumber(ARGV[a + 2])
  local st = nil
  if si > 0 then st = KEYS[si] end
  if st and written[st] == false then
    answers[i] = 1
  else
    answers[i] = commit(KEYS[2 + i], st, ARGV[a], ARGV[a + 1], grace, ARGV[a + 3], ARGV[a + 4],
      ARGV[a + 5])
  end
  if st then written[st] = (written[st] == true) or answers[i] == 0 end
  a = a + 6
  local ri = tonumber(ARGV[a])
  a = a + 1
  if ri > 0 then
    local account, user, instance, member, key = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3],
      ARGV[a + 4]
    local slots = tonumber(ARGV[a + 5])
    a = a + 6
    if answers[i] == 0 then
      local row = KEYS[ri]
      for s = 0, slots - 1 do
        local slot = ARGV[a + 2 * s]
        local held = redis.call('HGET', row, 'k:' .. slot)
        if not held or newer(key, held) then
          redis.call('HSET', row, 'k:' .. slot, key, 'w:' .. slot, ARGV[a + 2 * s + 1])
        end
      end
      local seq = redis.call('INCR', seq_key)
      redis.call('HSET', row, 'account', account, 'user', user, 'instance', instance,
        'seq', seq, 'u', now)
      redis.call('SADD', KEYS[ri + 1], instance)
      redis.call('SADD', KEYS[ri + 2], user)
      redis.call('SADD', KEYS[ri + 3], member)
      redis.call('SADD', KEYS[ri + 4], account)
      redis.call('ZADD', feed_key, seq, member)
    end
    a = a + 2 * slots
  end
end
return answers
";

type Hash = HashMap<String, String>;

impl RedisStore {
    /// `{account}:{user}:{hex(instance)}`: a record's name in the change
    /// feed, and its key after `{prefix}lr:`.
    fn record_member(account: AccountId, user: UserId, instance: &LoInstanceId) -> String {
        let hex = base16ct::lower::encode_string(instance.as_str().as_bytes());
        format!("{}:{}:{hex}", account.get(), user.get())
    }

    fn record_key(&self, member: &str) -> String {
        format!("{}lr:{member}", self.prefix)
    }

    fn user_key(&self, account: AccountId, user: UserId) -> String {
        format!("{}lr-user:{}:{}", self.prefix, account.get(), user.get())
    }

    fn instance_key(&self, account: AccountId, instance: &LoInstanceId) -> String {
        let hex = base16ct::lower::encode_string(instance.as_str().as_bytes());
        format!("{}lr-instance:{}:{hex}", self.prefix, account.get())
    }

    fn account_key(&self, account: AccountId) -> String {
        format!("{}lr-account:{}", self.prefix, account.get())
    }

    fn feed_key(&self) -> String {
        format!("{}lr-feed", self.prefix)
    }

    /// Keeps the learner projection, merged inside the script that
    /// commits the decisions (all or nothing): see [`crate::projection`]
    /// for what each field holds. Keys, after the prefix: `lr:{account}:{user}:{hex(instance)}`
    /// (a record: a hash), `lr-user:…`, `lr-instance:…`, `lr-account:…` and
    /// `lr-accounts` (sets, for the reads), `lr-seq` and `lr-feed` (the change feed). Records never
    /// expire.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), alm_webhooks::store::StoreError> {
    /// use alm_webhooks::{AccountId, UserId, store::RedisStore};
    /// let store = RedisStore::connect("redis://127.0.0.1/").await?.with_learner_projection();
    /// let rows = store.learner_records_of_user(AccountId(1), UserId(7)).await?;
    /// # let _ = rows;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn with_learner_projection(mut self) -> Self {
        self.projection = true;
        self
    }

    /// Whether commits keep the learner projection
    /// ([`with_learner_projection`](Self::with_learner_projection)).
    pub fn keeps_learner_projection(&self) -> bool {
        self.projection
    }

    /// [`Store::commit_decided`](crate::store::Store::commit_decided) with
    /// the projection: one script per chunk, every chunk in one pipeline.
    pub(super) async fn commit_projected(
        &self,
        commits: &[Commit<'_>],
        decided: &[Option<Decided<'_>>],
    ) -> Result<Vec<CommitOutcome>, StoreError> {
        if commits.is_empty() {
            return Ok(Vec::new());
        }
        let now = unix_millis(std::time::SystemTime::now());
        let mut pipe = ::redis::pipe();
        pipe.load_script(&self.scripts.commit_projected).ignore();
        let mut invocations = Vec::new();
        for (c, chunk) in commits.chunks(MANY_CHUNK).enumerate() {
            let mut invocation = self.scripts.commit_projected.prepare_invoke();
            invocation
                .key(format!("{}lr-seq", self.prefix))
                .key(self.feed_key());
            invocation.arg(GRACE_MS).arg(now).arg(chunk.len());
            for commit in chunk {
                invocation.key(self.event_key(commit.key));
            }
            let mut keys = 2 + chunk.len();
            for (i, commit) in chunk.iter().enumerate() {
                invocation
                    .arg(commit.token.to_hex())
                    .arg(unix_millis(commit.remember_until));
                match commit.update {
                    Some(update) => {
                        let json = serde_json::to_string(update.state)
                            .map_err(|e| super::bad_data("cannot serialize the state", e))?;
                        invocation.key(self.state_key(update.key));
                        keys += 1;
                        invocation
                            .arg(keys)
                            .arg(update.expected_version)
                            .arg(json)
                            .arg(unix_millis(commit.state_until));
                    }
                    None => {
                        invocation.arg(0).arg(0).arg("").arg(0);
                    }
                }
                let fact = decided
                    .get(c * MANY_CHUNK + i)
                    .copied()
                    .flatten()
                    .and_then(|d| LearnerEvent::from_event(d.event));
                let Some(fact) = fact else {
                    invocation.arg(0);
                    continue;
                };
                let member =
                    Self::record_member(fact.account_id, fact.user_id, &fact.lo_instance_id);
                invocation
                    .key(self.record_key(&member))
                    .key(self.user_key(fact.account_id, fact.user_id))
                    .key(self.instance_key(fact.account_id, &fact.lo_instance_id))
                    .key(self.account_key(fact.account_id))
                    .key(format!("{}lr-accounts", self.prefix));
                invocation
                    .arg(keys + 1)
                    .arg(fact.account_id.get())
                    .arg(fact.user_id.get())
                    .arg(fact.lo_instance_id.as_str())
                    .arg(member)
                    .arg(sort_key(&fact.key));
                keys += 5;
                let slots = slots_of(&fact);
                invocation.arg(slots.len());
                for (slot, value) in slots {
                    invocation.arg(slot).arg(value);
                }
            }
            invocations.push(invocation);
        }
        for invocation in &invocations {
            pipe.invoke_script(invocation);
        }
        let mut conn = self.conn.clone();
        let answers: Vec<Vec<i64>> = pipe
            .query_async(&mut conn)
            .await
            .map_err(|e| redis_error("commit failed", e))?;
        let outcomes = answers
            .into_iter()
            .flatten()
            .map(commit_outcome)
            .collect::<Result<Vec<_>, _>>()?;
        if outcomes.len() != commits.len() {
            return Err(StoreError::new(format!(
                "redis: commit answered {} commits of {}",
                outcomes.len(),
                commits.len()
            )));
        }
        Ok(outcomes)
    }

    /// The records (with their sequence numbers) stored at `members`, in
    /// that order, in one round trip (`None` where there is none).
    async fn records_at(
        &self,
        members: &[String],
    ) -> Result<Vec<Option<(u64, LearnerRecord)>>, StoreError> {
        if members.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = ::redis::pipe();
        for member in members {
            pipe.hgetall(self.record_key(member));
        }
        let mut conn = self.conn.clone();
        let hashes: Vec<Hash> = pipe
            .query_async(&mut conn)
            .await
            .map_err(|e| redis_error("learner records read failed", e))?;
        hashes
            .into_iter()
            .map(|h| (!h.is_empty()).then(|| decode(h)).transpose())
            .collect()
    }

    /// The record of a learner in an instance (either spelling of a
    /// learning path), if any event of it was decided.
    ///
    /// # Errors
    ///
    /// When Redis fails, or a stored record does not decode.
    pub async fn learner_record(
        &self,
        account: AccountId,
        user: UserId,
        lo_instance: &LoInstanceId,
    ) -> Result<Option<LearnerRecord>, StoreError> {
        let member = Self::record_member(account, user, &lo_instance.canonical());
        Ok(self
            .records_at(&[member])
            .await?
            .pop()
            .flatten()
            .map(|(_, r)| r))
    }

    /// Every record of a learner, by instance id.
    ///
    /// # Errors
    ///
    /// When Redis fails, or a stored record does not decode.
    pub async fn learner_records_of_user(
        &self,
        account: AccountId,
        user: UserId,
    ) -> Result<Vec<LearnerRecord>, StoreError> {
        let mut instances = self.members(self.user_key(account, user)).await?;
        instances.sort();
        let members: Vec<_> = instances
            .iter()
            .filter_map(|i| i.parse::<LoInstanceId>().ok())
            .map(|i| Self::record_member(account, user, &i))
            .collect();
        Ok(self
            .records_at(&members)
            .await?
            .into_iter()
            .flatten()
            .map(|(_, r)| r)
            .collect())
    }

    /// Every record of an instance, by user id.
    ///
    /// # Errors
    ///
    /// When Redis fails, or a stored record does not decode.
    pub async fn learner_records_of_instance(
        &self,
        account: AccountId,
        lo_instance: &LoInstanceId,
    ) -> Result<Vec<LearnerRecord>, StoreError> {
        let instance = lo_instance.canonical();
        let users = self.members(self.instance_key(account, &instance)).await?;
        let mut users: Vec<u64> = users.iter().filter_map(|u| u.parse().ok()).collect();
        users.sort_unstable();
        let members: Vec<_> = users
            .into_iter()
            .map(|u| Self::record_member(account, UserId(u), &instance))
            .collect();
        Ok(self
            .records_at(&members)
            .await?
            .into_iter()
            .flatten()
            .map(|(_, r)| r)
            .collect())
    }

    /// The accounts that have learner records, in order.
    ///
    /// # Errors
    ///
    /// When Redis fails.
    pub async fn learner_accounts(&self) -> Result<Vec<AccountId>, StoreError> {
        let ids = self.members(format!("{}lr-accounts", self.prefix)).await?;
        let mut ids: Vec<u64> = ids.iter().filter_map(|a| a.parse().ok()).collect();
        ids.sort_unstable();
        Ok(ids.into_iter().map(AccountId).collect())
    }

    /// Every record of an account, by user id then instance id.
    ///
    /// # Errors
    ///
    /// When Redis fails, or a stored record does not decode.
    pub async fn learner_records_of_account(
        &self,
        account: AccountId,
    ) -> Result<Vec<LearnerRecord>, StoreError> {
        let members = self.members(self.account_key(account)).await?;
        let mut records = Vec::with_capacity(members.len());
        for page in members.chunks(EXPORT_PAGE as usize) {
            records.extend(
                self.records_at(page)
                    .await?
                    .into_iter()
                    .flatten()
                    .map(|(_, r)| r),
            );
        }
        records.sort_by(|a, b| {
            (a.user_id, a.lo_instance_id.as_str()).cmp(&(b.user_id, b.lo_instance_id.as_str()))
        });
        Ok(records)
    }

    async fn members(&self, key: String) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn.clone();
        ::redis::cmd("SMEMBERS")
            .arg(key)
            .query_async(&mut conn)
            .await
            .map_err(|e| redis_error("learner records read failed", e))
    }

    /// The feed's members after `cursor`, with their sequence numbers.
    async fn feed_after(
        &self,
        cursor: u64,
        limit: isize,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let mut conn = self.conn.clone();
        ::redis::cmd("ZRANGEBYSCORE")
            .arg(self.feed_key())
            .arg(format!("({cursor}"))
            .arg("+inf")
            .arg("WITHSCORES")
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .query_async(&mut conn)
            .await
            .map_err(|e| redis_error("learner changes read failed", e))
    }

    /// Up to `limit` records changed after `cursor` (0 for all), oldest
    /// change first: a change feed for incremental sync. A record changed
    /// twice appears once, at its latest change.
    ///
    /// # Errors
    ///
    /// When Redis fails, or a stored record does not decode.
    pub async fn learner_changes_since(
        &self,
        cursor: u64,
        limit: usize,
    ) -> Result<LearnerChanges, StoreError> {
        let limit = isize::try_from(limit).unwrap_or(isize::MAX);
        let feed = self.feed_after(cursor, limit).await?;
        let members: Vec<_> = feed.iter().map(|(m, _)| m.clone()).collect();
        let rows = self.records_at(&members).await?;
        // A record changed since the feed was read is given as it is now,
        // at the feed's place (it comes again at its new one).
        let rows = feed
            .into_iter()
            .zip(rows)
            .filter_map(|((_, seq), row)| Some((seq, row?.1)))
            .collect();
        Ok(LearnerChanges::from_rows(rows, cursor))
    }

    /// Writes every learner record as CSV ([`TranscriptCsv`]) into `out`,
    /// in the change feed's order, a page of records at a time (nothing
    /// else is kept in memory), and gives `out` back with the number of
    /// rows. Redis has no snapshot to read from: a record that changes
    /// while the export runs is written where the feed then places it, so
    /// it may appear twice (the later line is the newer), never not at all.
    ///
    /// # Errors
    ///
    /// When Redis or `out` fails.
    pub async fn export_learner_csv<W: Write + Send + 'static>(
        &self,
        out: W,
    ) -> Result<(W, u64), StoreError> {
        let failed = |e: std::io::Error| StoreError::with_source("redis: the export failed", e);
        let mut csv = TranscriptCsv::new(out).map_err(failed)?;
        let mut cursor = 0;
        loop {
            let feed = self.feed_after(cursor, EXPORT_PAGE).await?;
            let Some((_, last)) = feed.last() else {
                break;
            };
            cursor = *last;
            let members: Vec<_> = feed.iter().map(|(m, _)| m.clone()).collect();
            let rows = self.records_at(&members).await?;
            for ((_, seq), row) in feed.iter().zip(&rows) {
                // Moved on since the page was read: written at its new place.
                if let Some((_, record)) = row.as_ref().filter(|(s, _)| s == seq) {
                    csv.write(record).map_err(failed)?;
                }
            }
        }
        let rows = csv.rows();
        Ok((csv.finish().map_err(failed)?, rows))
    }
}

/// A record's hash as its record and sequence number.
fn decode(hash: Hash) -> Result<(u64, LearnerRecord), StoreError> {
    let bad = |what: &str| StoreError::new(format!("redis: a learner record {what}"));
    let field = |name: &str| hash.get(name).ok_or_else(|| bad(&format!("has no {name}")));
    let account = AccountId(
        field("account")?
            .parse()
            .map_err(|_| bad("has a bad account"))?,
    );
    let user = UserId(field("user")?.parse().map_err(|_| bad("has a bad user"))?);
    let instance: LoInstanceId = field("instance")?
        .parse()
        .map_err(|_| bad("has a bad instance"))?;
    let seq: u64 = field("seq")?.parse().map_err(|_| bad("has a bad seq"))?;
    let updated: i64 = field("u")?.parse().map_err(|_| bad("has a bad time"))?;
    let slots = hash
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("w:")?.to_owned(), v.clone())));
    let record = record_from_slots(account, user, instance, slots, from_millis(updated))
        .map_err(|e| super::bad_data("a learner record does not decode", e))?;
    Ok((seq, record))
}
