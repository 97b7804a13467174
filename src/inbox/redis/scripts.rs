//! The inbox's Lua scripts: each operation is one script, so it is atomic
//! with respect to every other client of the same Redis. `ARGV[1]` is always
//! the key prefix (ending in `inbox:`); times are Unix milliseconds. Leases
//! run on the server's clock (`TIME`, read inside the script); every other
//! time (received, retry not before) is the caller's.

use ::redis::Script;

/// The inbox's scripts, loaded once per connection.
#[derive(Clone)]
pub(super) struct Scripts {
    pub(super) append: Script,
    pub(super) take: Script,
    pub(super) renew: Script,
    pub(super) complete: Script,
    pub(super) give_back: Script,
    pub(super) quarantine: Script,
    pub(super) list: Script,
    pub(super) discard: Script,
    pub(super) replay: Script,
    pub(super) requeue: Script,
    pub(super) stats: Script,
    pub(super) kept_of: Script,
    pub(super) most_kept: Script,
    pub(super) complete_archived: Script,
    pub(super) sweep_archive: Script,
}

impl Scripts {
    /// Every script of the inbox.
    pub(super) fn new() -> Self {
        Self {
            append: Script::new(&append()),
            take: Script::new(&format!("{SERVER_NOW}{TAKE}")),
            renew: Script::new(&renew()),
            complete: Script::new(&complete()),
            give_back: Script::new(&give_back()),
            quarantine: Script::new(&format!("{KEPT_FN}{QUARANTINE}")),
            list: Script::new(LIST),
            discard: Script::new(&format!("{KEPT_FN}{DISCARD}")),
            replay: Script::new(&replay()),
            requeue: Script::new(&requeue()),
            stats: Script::new(STATS),
            kept_of: Script::new(&format!("{KEPT_FN}{KEPT_OF}")),
            most_kept: Script::new(&format!("{KEPT_FN}{MOST_KEPT}")),
            complete_archived: Script::new(&super::archive::complete_archived(
                HELD_FN, REMOVE_FN, KEPT_FN,
            )),
            sweep_archive: Script::new(super::archive::SWEEP),
        }
    }
}

/// Appends a delivery to its account's list; an account whose list was empty
/// becomes ready. Shared by the scripts that append.
const APPEND_FN: &str = r"
local function append(p, account, body, at)
  local id = redis.call('INCR', p .. 'seq')
  redis.call('HSET', p .. 'd:' .. id, 'a', account, 'b', body, 'r', at, 'n', 0)
  redis.call('ZADD', p .. 'received', at, id)
  if redis.call('RPUSH', p .. 'a:' .. account, id) == 1 then
    redis.call('ZADD', p .. 'ready', id, account)
  end
  return id
end
";

/// Removes a delivery. When it was its account's head, the account's next
/// one (if any) becomes its head: leased if it was taken behind the head
/// (`leased`, by its lease), waiting if it waits (`retrying`), ready
/// otherwise. A delivery behind the head leaves the account as it is.
const REMOVE_FN: &str = r"
local function remove(p, id)
  id = tostring(id)
  local key = p .. 'd:' .. id
  local account = redis.call('HGET', key, 'a')
  redis.call('DEL', key)
  redis.call('ZREM', p .. 'received', id)
  local list = p .. 'a:' .. account
  if redis.call('LINDEX', list, 0) ~= id then
    redis.call('LREM', list, 1, id)
    return
  end
  redis.call('ZREM', p .. 'ready', account)
  redis.call('ZREM', p .. 'leased', account)
  redis.call('ZREM', p .. 'retrying', account)
  redis.call('LREM', list, 1, id)
  local head = redis.call('LINDEX', list, 0)
  if head then
    local h = redis.call('HMGET', p .. 'd:' .. head, 't', 'l', 'nb')
    if h[1] and h[2] then
      redis.call('ZADD', p .. 'leased', h[2], account)
    elseif h[3] then
      redis.call('ZADD', p .. 'retrying', h[3], account)
    else
      redis.call('ZADD', p .. 'ready', head, account)
    end
  end
end
";

/// Whether delivery `id` is the head of `account` (the first of its list).
const HEAD_FN: &str = r"
local function is_head(p, account, id)
  return redis.call('LINDEX', p .. 'a:' .. account, 0) == tostring(id)
end
";

/// What is kept of each account, in three hashes by account: `kdl` (dead
/// letters), `kq` (quarantined bodies of a known account), `kqb` (their
/// bytes). `counted()` builds them once from what is kept (an inbox
/// written before they existed) and marks them built (`kv`); `kept()`
/// adds to an account's counts, dropping an account that keeps nothing.
const KEPT_FN: &str = r"
local function kept(p, account, dl, q, qb)
  if account == nil or account == '' or account == false then return end
  for key, by in pairs({kdl = dl, kq = q, kqb = qb}) do
    if by ~= 0 and redis.call('HINCRBY', p .. key, account, by) <= 0 then
      redis.call('HDEL', p .. key, account)
    end
  end
end
local function counted(p)
  if redis.call('EXISTS', p .. 'kv') == 1 then return end
  redis.call('DEL', p .. 'kdl', p .. 'kq', p .. 'kqb')
  for _, n in ipairs(redis.call('ZRANGE', p .. 'dl', 0, -1)) do
    local json = redis.call('GET', p .. 'dl:' .. n)
    if json then kept(p, cjson.decode(json).account, 1, 0, 0) end
  end
  for _, n in ipairs(redis.call('ZRANGE', p .. 'q', 0, -1)) do
    local account = redis.call('HGET', p .. 'q:' .. n, 'a')
    kept(p, account, 0, 1, redis.call('HSTRLEN', p .. 'q:' .. n, 'b'))
  end
  redis.call('SET', p .. 'kv', 1)
end
";

/// Whether `token` holds delivery `id`'s lease.
const HELD_FN: &str = r"
local function held(p, id, token)
  return redis.call('HGET', p .. 'd:' .. id, 't') == token
end
";

/// ARGV: prefix, account, body, received_ms. Returns the id.
pub(super) fn append() -> String {
    format!("{APPEND_FN} return append(ARGV[1], ARGV[2], ARGV[3], ARGV[4])")
}

/// The server's clock in Unix milliseconds, for the lease scripts.
const SERVER_NOW: &str = "
local function server_now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
";

/// ARGV: prefix, now_ms (the caller's, for retries), token, lease_ms, the
/// note for an abandoned attempt, the most to take. Takes nothing while
/// every account is paused (`pausedall`); a paused account (in `paused`)
/// popped from `ready` is parked in `held` (by head id) until resumed.
/// Takes the oldest ready account's head and the deliveries behind it, up
/// to the most, stopping before one that is leased (a live lease) or
/// waiting, all under the token. Counts each attempt; a lease that ran out
/// (a token still there) counts as an abandoned attempt (`x`) and records
/// the note as the last error. Returns a list of {id, account, body,
/// received_ms, attempts, abandoned, last_error or false}, in order.
pub(super) const TAKE: &str = r"
local p, now, clock = ARGV[1], tonumber(ARGV[2]), server_now()
if redis.call('EXISTS', p .. 'pausedall') == 1 then return {} end
for _, due in ipairs({{'retrying', now}, {'leased', clock}}) do
  for _, account in ipairs(redis.call('ZRANGEBYSCORE', p .. due[1], '-inf', due[2])) do
    redis.call('ZREM', p .. due[1], account)
    local head = redis.call('LINDEX', p .. 'a:' .. account, 0)
    if head then redis.call('ZADD', p .. 'ready', head, account) end
  end
end
local account
while not account do
  local first = redis.call('ZPOPMIN', p .. 'ready')
  if #first == 0 then return {} end
  if redis.call('HEXISTS', p .. 'paused', first[1]) == 0 then
    account = first[1]
  else
    redis.call('ZADD', p .. 'held', first[2], first[1])
  end
end
local ids = redis.call('LRANGE', p .. 'a:' .. account, 0, tonumber(ARGV[6]) - 1)
local lease_until = string.format('%d', clock + tonumber(ARGV[4]))
local out = {}
for i, id in ipairs(ids) do
  local key = p .. 'd:' .. id
  local d = redis.call('HMGET', key, 'a', 'b', 'r', 'n', 'e', 't', 'x', 'l', 'nb')
  if i > 1 and ((d[6] and tonumber(d[8] or 0) > clock) or d[9]) then break end
  local attempts, abandoned, err = (tonumber(d[4]) or 0) + 1, tonumber(d[7]) or 0, d[5]
  if d[6] then
    abandoned, err = abandoned + 1, ARGV[5]
    redis.call('HSET', key, 'x', abandoned, 'e', err)
  end
  redis.call('HSET', key, 't', ARGV[3], 'l', lease_until, 'n', attempts)
  redis.call('HDEL', key, 'nb')
  table.insert(out, {tonumber(id), d[1], d[2], tonumber(d[3]), attempts, abandoned, err})
end
if #out > 0 then redis.call('ZADD', p .. 'leased', lease_until, account) end
return out
";

/// ARGV: prefix, id, token, lease_ms (on the server's clock). Returns 1 if
/// renewed. The account's lease follows its head's.
pub(super) fn renew() -> String {
    format!(
        "{HELD_FN}{HEAD_FN}{SERVER_NOW}
local p, id = ARGV[1], ARGV[2]
if not held(p, id, ARGV[3]) then return 0 end
local account = redis.call('HGET', p .. 'd:' .. id, 'a')
local lease_until = string.format('%d', server_now() + tonumber(ARGV[4]))
redis.call('HSET', p .. 'd:' .. id, 'l', lease_until)
if is_head(p, account, id) then
  redis.call('ZREM', p .. 'ready', account)
  redis.call('ZADD', p .. 'leased', lease_until, account)
end
return 1"
    )
}

/// ARGV: prefix, id, token, then one dead letter (JSON) per argument.
/// Returns 1 if completed.
pub(super) fn complete() -> String {
    format!(
        "{HELD_FN}{REMOVE_FN}{KEPT_FN}
local p, id = ARGV[1], ARGV[2]
if not held(p, id, ARGV[3]) then return 0 end
remove(p, id)
counted(p)
for i = 4, #ARGV do
  local n = redis.call('INCR', p .. 'dlseq')
  redis.call('SET', p .. 'dl:' .. n, ARGV[i])
  redis.call('ZADD', p .. 'dl', n, n)
  kept(p, cjson.decode(ARGV[i]).account, 1, 0, 0)
end
return 1"
    )
}

/// ARGV: prefix, id, token, attempts to take back, then optionally
/// not_before_ms and error. Ends the lease: with a retry time the delivery
/// waits for it, with the error as its last error; without, it is ready
/// at once. A delivery behind its account's head (taken in a run) leaves
/// the account as it is. Returns 1 if given back.
pub(super) fn give_back() -> String {
    format!(
        "{HELD_FN}{HEAD_FN}
local p, id = ARGV[1], ARGV[2]
if not held(p, id, ARGV[3]) then return 0 end
local key = p .. 'd:' .. id
local account = redis.call('HGET', key, 'a')
local attempts = (tonumber(redis.call('HGET', key, 'n')) or 0) - tonumber(ARGV[4])
redis.call('HDEL', key, 't', 'l')
redis.call('HSET', key, 'n', math.max(attempts, 0))
if #ARGV >= 6 then redis.call('HSET', key, 'nb', ARGV[5], 'e', ARGV[6]) end
if not is_head(p, account, id) then return 1 end
redis.call('ZREM', p .. 'leased', account)
if #ARGV >= 6 then
  redis.call('ZREM', p .. 'ready', account)
  redis.call('ZADD', p .. 'retrying', ARGV[5], account)
else
  redis.call('ZADD', p .. 'ready', id, account)
end
return 1"
    )
}

/// ARGV: prefix, account or '', body, error, received_ms. Returns the id.
pub(super) const QUARANTINE: &str = r"
local p = ARGV[1]
counted(p)
local n = redis.call('INCR', p .. 'qseq')
redis.call('HSET', p .. 'q:' .. n, 'a', ARGV[2], 'b', ARGV[3], 'e', ARGV[4], 'r', ARGV[5])
redis.call('ZADD', p .. 'q', n, n)
kept(p, ARGV[2], 0, 1, string.len(ARGV[3]))
return n
";

/// ARGV: prefix, 'dl' or 'q', limit (or a single id as `-id`), and the id
/// the listing starts after. Returns {id, entry, id, entry, …}, oldest
/// first: a dead letter's JSON, or a quarantined body's {account, body,
/// error, received_ms}.
pub(super) const LIST: &str = r"
local p, kind, limit, after = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local ids
if limit < 0 then
  ids = redis.call('ZRANGEBYSCORE', p .. kind, -limit, -limit)
else
  ids = redis.call('ZRANGEBYSCORE', p .. kind, '(' .. after, '+inf', 'LIMIT', 0, limit)
end
local out = {}
for _, n in ipairs(ids) do
  local entry
  if kind == 'dl' then
    entry = redis.call('GET', p .. 'dl:' .. n)
  else
    entry = redis.call('HMGET', p .. 'q:' .. n, 'a', 'b', 'e', 'r')
  end
  table.insert(out, tonumber(n))
  table.insert(out, entry)
end
return out
";

/// ARGV: prefix, 'dl' or 'q', id. Returns 1 if there was one to delete.
pub(super) const DISCARD: &str = r"
local p, kind, n = ARGV[1], ARGV[2], ARGV[3]
counted(p)
if redis.call('ZREM', p .. kind, n) == 0 then return 0 end
local key = p .. kind .. ':' .. n
if kind == 'dl' then
  local json = redis.call('GET', key)
  if json then kept(p, cjson.decode(json).account, -1, 0, 0) end
else
  kept(p, redis.call('HGET', key, 'a'), 0, -1, -redis.call('HSTRLEN', key, 'b'))
end
redis.call('DEL', key)
return 1
";

/// ARGV: prefix, dead letter id, now_ms. Returns the new delivery's id, or
/// false.
pub(super) fn replay() -> String {
    format!(
        "{APPEND_FN}{KEPT_FN}
local p, n = ARGV[1], ARGV[2]
counted(p)
local json = redis.call('GET', p .. 'dl:' .. n)
if not json then return false end
redis.call('DEL', p .. 'dl:' .. n)
redis.call('ZREM', p .. 'dl', n)
local letter = cjson.decode(json)
kept(p, letter.account, -1, 0, 0)
local body = '{{\"accountId\":' .. letter.account .. ',\"events\":[' .. letter.event .. ']}}'
return append(p, letter.account, body, ARGV[3])"
    )
}

/// ARGV: prefix, quarantine id, account, now_ms. Returns the new
/// delivery's id, or false.
pub(super) fn requeue() -> String {
    format!(
        "{APPEND_FN}{KEPT_FN}
local p, n = ARGV[1], ARGV[2]
counted(p)
local body = redis.call('HGET', p .. 'q:' .. n, 'b')
if not body then return false end
kept(p, redis.call('HGET', p .. 'q:' .. n, 'a'), 0, -1, -string.len(body))
redis.call('DEL', p .. 'q:' .. n)
redis.call('ZREM', p .. 'q', n)
return append(p, ARGV[3], body, ARGV[4])"
    )
}

/// What [`STATS`] returns.
pub(super) type StatsRow = (u64, u64, u64, Option<i64>, u64, u64, u64);

/// ARGV: prefix, account. Returns {dead_letters, quarantined,
/// quarantined_bytes} of the account.
const KEPT_OF: &str = r"
local p, account = ARGV[1], ARGV[2]
counted(p)
return {
  tonumber(redis.call('HGET', p .. 'kdl', account)) or 0,
  tonumber(redis.call('HGET', p .. 'kq', account)) or 0,
  tonumber(redis.call('HGET', p .. 'kqb', account)) or 0
}
";

/// ARGV: prefix. Returns, for each of {dead_letters, quarantined,
/// quarantined_bytes}, the most one account keeps (reads every account's
/// counters).
const MOST_KEPT: &str = r"
local p = ARGV[1]
counted(p)
local most = {}
for i, key in ipairs({'kdl', 'kq', 'kqb'}) do
  most[i] = 0
  for _, v in ipairs(redis.call('HVALS', p .. key)) do
    most[i] = math.max(most[i], tonumber(v))
  end
end
return most
";

/// ARGV: prefix, now_ms (the caller's; leases on the server's clock).
/// Returns {total, in_flight, retrying,
/// oldest_received_ms or false, dead_letters, quarantined,
/// quarantined_bytes}.
pub(super) const STATS: &str = r"
local p, now = ARGV[1], ARGV[2]
local bytes = 0
for _, n in ipairs(redis.call('ZRANGE', p .. 'q', 0, -1)) do
  bytes = bytes + redis.call('HSTRLEN', p .. 'q:' .. n, 'b')
end
local t = redis.call('TIME')
local clock = string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
local oldest = redis.call('ZRANGE', p .. 'received', 0, 0, 'WITHSCORES')
return {
  redis.call('ZCARD', p .. 'received'),
  redis.call('ZCOUNT', p .. 'leased', '(' .. clock, '+inf'),
  redis.call('ZCOUNT', p .. 'retrying', '(' .. now, '+inf'),
  oldest[2] and tonumber(oldest[2]) or false,
  redis.call('ZCARD', p .. 'dl'),
  redis.call('ZCARD', p .. 'q'),
  bytes
}
";
