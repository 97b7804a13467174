//! The Redis inbox's archive. Keys (after the inbox's prefix):
//!
//! - `ar:{id}`: a hash per archived delivery: account, body, time
//!   received, its events (JSON), and the index entries it holds;
//! - `ar`: every archived delivery by time received (members are the ids
//!   written with 20 digits, so ties come in id order);
//! - `ax:e:{eventId}`, `ax:u:{userId}`, `ax:i:{loInstanceId}`: sorted sets
//!   of `{id}:{position}` by time received, the search's indexes.
//!
//! The script that completes a delivery writes them all (the body moves
//! inside Redis); the sweep removes a delivery, its events and its index
//! entries in one script.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::archive_index::{index_entries, index_groups};
use super::stored::{ToArg, account, encode_letters};
use super::{RedisInbox, redis_error};
use crate::inbox::types::{from_millis, unix_millis};
use crate::inbox::{
    ArchiveCursor, ArchiveFilter, ArchivedDelivery, ArchivedEvent, DeliveryId, FoundEvent,
    InboxError, LeaseToken, NewDeadLetter,
};
use crate::{AccountId, UserId};

/// How many members a read of a sorted set asks for at once.
const PAGE: usize = 500;

/// ARGV: prefix, id, token, events (JSON), the index entries as the
/// archive's `k` field keeps them (JSON: key, member, key, member, ...),
/// G, the entries again as G groups of one key's members (key, n, then n
/// members; see [`index_groups`]), then one dead letter (JSON) per
/// argument. Returns 1 if completed. The keys and members are made by the
/// caller ([`index_entries`]), so the script only writes them, one `ZADD`
/// per group.
pub(super) fn complete_archived(held: &str, remove: &str, kept: &str) -> String {
    format!(
        "{held}{remove}{kept}
local p, id = ARGV[1], ARGV[2]
if not held(p, id, ARGV[3]) then return 0 end
local key, archived = p .. 'd:' .. id, p .. 'ar:' .. id
local received = redis.call('HGET', key, 'r')
local a = 7
for _ = 1, tonumber(ARGV[6]) do
  local n = tonumber(ARGV[a + 1])
  local add = {{}}
  for j = 1, n do
    add[2 * j - 1] = received
    add[2 * j] = ARGV[a + 1 + j]
  end
  redis.call('ZADD', ARGV[a], unpack(add))
  a = a + 2 + n
end
-- The delivery's hash becomes the archived one inside Redis (its body
-- never passes through Lua), keeping only its account, body and time.
redis.call('COPY', key, archived, 'REPLACE')
local drop = {{}}
for _, f in ipairs(redis.call('HKEYS', archived)) do
  if f ~= 'a' and f ~= 'b' and f ~= 'r' then drop[#drop + 1] = f end
end
if #drop > 0 then redis.call('HDEL', archived, unpack(drop)) end
redis.call('HSET', archived, 'v', ARGV[4], 'k', ARGV[5])
redis.call('ZADD', p .. 'ar', received, string.format('%020d', tonumber(id)))
remove(p, id)
counted(p)
for i = a, #ARGV do
  local n = redis.call('INCR', p .. 'dlseq')
  redis.call('SET', p .. 'dl:' .. n, ARGV[i])
  redis.call('ZADD', p .. 'dl', n, n)
  kept(p, cjson.decode(ARGV[i]).account, 1, 0, 0)
end
return 1"
    )
}

/// ARGV: prefix, before_ms, limit. Removes the oldest archived deliveries
/// received before `before_ms`, at most `limit`; how many.
pub(super) const SWEEP: &str = r"
local p = ARGV[1]
local old = redis.call('ZRANGEBYSCORE', p .. 'ar', '-inf', '(' .. ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
for _, m in ipairs(old) do
  local key = p .. 'ar:' .. string.format('%d', tonumber(m))
  local k = redis.call('HGET', key, 'k')
  if k then
    local index = cjson.decode(k)
    for i = 1, #index, 2 do redis.call('ZREM', index[i], index[i + 1]) end
  end
  redis.call('DEL', key)
  redis.call('ZREM', p .. 'ar', m)
end
return #old";

/// An event as the archive hash keeps it.
#[derive(Serialize, Deserialize)]
struct StoredEvent {
    i: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    n: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    u: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    li: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    t: Option<i64>,
    d: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    r: Option<String>,
    a: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    e: Option<String>,
}

impl From<&ArchivedEvent> for StoredEvent {
    fn from(e: &ArchivedEvent) -> Self {
        Self {
            i: e.index,
            id: e.event_id.as_ref().map(|i| i.as_str().to_owned()),
            n: e.event_name.as_ref().map(|n| n.as_str().to_owned()),
            u: e.user_id.map(UserId::get),
            li: e.lo_instance_id.as_ref().map(|i| i.as_str().to_owned()),
            t: e.timestamp.map(unix_millis),
            d: e.decision.clone(),
            r: e.reason.clone(),
            a: e.attempts,
            e: e.error.clone(),
        }
    }
}

impl StoredEvent {
    fn into_event(self) -> ArchivedEvent {
        ArchivedEvent {
            index: self.i,
            event_id: self.id.and_then(|s| s.parse().ok()),
            event_name: self.n.map(|s| s.as_str().into()),
            user_id: self.u.map(UserId),
            lo_instance_id: self.li.and_then(|s| s.parse().ok()),
            timestamp: self.t.map(from_millis),
            decision: self.d,
            reason: self.r,
            attempts: self.a,
            error: self.e,
        }
    }
}

/// The events' JSON.
fn encode(events: &[ArchivedEvent]) -> Result<String, InboxError> {
    let stored: Vec<StoredEvent> = events.iter().map(StoredEvent::from).collect();
    serde_json::to_string(&stored)
        .map_err(|e| InboxError::with_source("redis: cannot encode the archived events", e))
}

/// One archived delivery as read from its hash.
struct Stored {
    id: u64,
    account: String,
    body: Vec<u8>,
    received_ms: i64,
    events: Vec<ArchivedEvent>,
}

impl RedisInbox {
    /// Reads the archive by `key` (the `ar` set, or an index) between the
    /// filter's times, a page at a time, handing each delivery once, in
    /// order, to `keep` until it says `false`.
    async fn walk(
        &self,
        key: &str,
        filter: &ArchiveFilter,
        min_ms: Option<i64>,
        mut keep: impl FnMut(Stored) -> bool,
    ) -> Result<(), InboxError> {
        let min = filter
            .from
            .map(unix_millis)
            .into_iter()
            .chain(min_ms)
            .max()
            .map_or_else(|| "-inf".to_owned(), |m| m.to_string());
        let max = filter
            .to
            .map_or_else(|| "+inf".to_owned(), |t| format!("({}", unix_millis(t)));
        let mut conn = self.conn.clone();
        let mut offset = 0;
        let mut last = None;
        loop {
            let members: Vec<String> = ::redis::cmd("ZRANGEBYSCORE")
                .arg(key)
                .arg(&min)
                .arg(&max)
                .arg("LIMIT")
                .arg(offset)
                .arg(PAGE)
                .query_async(&mut conn)
                .await
                .map_err(|e| redis_error("cannot read the archive", e))?;
            offset += members.len();
            let mut ids: Vec<u64> = Vec::new();
            for m in &members {
                let id: u64 = m
                    .split(':')
                    .next()
                    .and_then(|i| i.parse().ok())
                    .unwrap_or(0);
                if last != Some(id) {
                    ids.push(id);
                    last = Some(id);
                }
            }
            let mut pipe = ::redis::pipe();
            for id in &ids {
                pipe.cmd("HMGET")
                    .arg(format!("{}ar:{id}", self.prefix))
                    .arg(&["a", "b", "r", "v"]);
            }
            type Fields = (Option<String>, Option<Vec<u8>>, Option<i64>, Option<String>);
            let rows: Vec<Fields> = if ids.is_empty() {
                Vec::new()
            } else {
                pipe.query_async(&mut conn)
                    .await
                    .map_err(|e| redis_error("cannot read the archive", e))?
            };
            for (id, row) in ids.into_iter().zip(rows) {
                let (Some(account), Some(body), Some(received_ms), Some(v)) = row else {
                    continue; // swept meanwhile
                };
                let events: Vec<StoredEvent> = serde_json::from_str(&v)
                    .map_err(|e| InboxError::with_source("redis: unreadable archived events", e))?;
                let events = events.into_iter().map(StoredEvent::into_event).collect();
                let stored = Stored {
                    id,
                    account,
                    body,
                    received_ms,
                    events,
                };
                if !keep(stored) {
                    return Ok(());
                }
            }
            if members.len() < PAGE {
                return Ok(());
            }
        }
    }

    /// The most selective key to read for `filter`: an index if it asks for
    /// an `eventId`, an instance or a learner; else every delivery.
    fn archive_key(&self, filter: &ArchiveFilter) -> String {
        let p = &self.prefix;
        if let Some(id) = &filter.event_id {
            format!("{p}ax:e:{}", id.as_str())
        } else if let Some(instance) = &filter.lo_instance_id {
            format!("{p}ax:i:{}", instance.as_str())
        } else if let Some(user) = filter.user_id {
            format!("{p}ax:u:{user}")
        } else {
            format!("{p}ar")
        }
    }

    pub(super) async fn archive_search(
        &self,
        filter: &ArchiveFilter,
        limit: usize,
    ) -> Result<Vec<FoundEvent>, InboxError> {
        let mut found = Vec::new();
        let mut bad = None;
        self.walk(&self.archive_key(filter), filter, None, |d| {
            let Some(account) = decoded(&d.account, &mut bad) else {
                return false;
            };
            let received = from_millis(d.received_ms);
            if filter.delivery_matches(account, received) {
                for e in d.events.into_iter().filter(|e| filter.event_matches(e)) {
                    if found.len() < limit {
                        found.push(FoundEvent::new(DeliveryId(d.id), account, received, e));
                    }
                }
            }
            found.len() < limit
        })
        .await?;
        bad.map_or(Ok(found), Err)
    }

    pub(super) async fn archive_read(
        &self,
        filter: &ArchiveFilter,
        after: Option<ArchiveCursor>,
        limit: usize,
    ) -> Result<Vec<ArchivedDelivery>, InboxError> {
        let mut found = Vec::new();
        let mut bad = None;
        let min = after.map(|a| unix_millis(a.received_at));
        self.walk(&self.archive_key(filter), filter, min, |d| {
            let Some(account) = decoded(&d.account, &mut bad) else {
                return false;
            };
            let received = from_millis(d.received_ms);
            let delivery =
                ArchivedDelivery::new(DeliveryId(d.id), account, d.body, received, d.events);
            let matches = filter.delivery_matches(account, received)
                && after.is_none_or(|a| delivery.cursor() > a)
                && (!filter.has_event_condition()
                    || delivery.events.iter().any(|e| filter.event_matches(e)));
            if matches && found.len() < limit {
                found.push(delivery);
            }
            found.len() < limit
        })
        .await?;
        bad.map_or(Ok(found), Err)
    }

    pub(super) async fn archive_sweep(
        &self,
        before: OffsetDateTime,
        limit: usize,
    ) -> Result<u64, InboxError> {
        let script = &self.scripts.sweep_archive;
        self.call("sweep the archive", script, &[&unix_millis(before), &limit])
            .await
    }

    pub(super) async fn archive_complete(
        &self,
        id: DeliveryId,
        token: LeaseToken,
        dead_letters: &[NewDeadLetter],
        events: &[ArchivedEvent],
    ) -> Result<bool, InboxError> {
        let letters = encode_letters(dead_letters)?;
        let json = encode(events)?;
        let entries = index_entries(&self.prefix, id, events);
        let kept = serde_json::to_string(&entries)
            .map_err(|e| InboxError::with_source("redis: cannot encode the archive's index", e))?;
        let groups = index_groups(&entries);
        let sizes: Vec<usize> = groups.iter().map(|(_, members)| members.len()).collect();
        let count = groups.len();
        let mut more: Vec<&dyn ToArg> = vec![&json, &kept, &count];
        for ((key, members), size) in groups.iter().zip(&sizes) {
            more.push(key);
            more.push(size);
            more.extend(members.iter().map(|m| m as &dyn ToArg));
        }
        more.extend(letters.iter().map(|l| l as &dyn ToArg));
        let script = &self.scripts.complete_archived;
        self.held("complete", script, id, token, &more).await
    }
}

/// The account of an archived delivery; a bad one is kept in `bad` (the
/// walk then stops and the call fails with it).
fn decoded(text: &str, bad: &mut Option<InboxError>) -> Option<AccountId> {
    account(text).map_err(|e| *bad = Some(e)).ok()
}
