//! The Lua scripts: each runs atomically on the Redis server.
//!
//! Leases are kept on the server's clock (`TIME`, read inside the script),
//! so replicas whose clocks disagree never see one claim as live and
//! expired at once. Dedup windows are kept on the caller's clock.

use ::redis::Script;

/// The store's scripts, loaded once per connection.
#[derive(Clone)]
pub(super) struct Scripts {
    pub(super) claim: Script,
    pub(super) claim_many: Script,
    pub(super) commit: Script,
    pub(super) commit_many: Script,
    pub(super) commit_projected: Script,
    /// [`COMMIT_PROJECTED`] wrapped by the outbox's [`APPEND`] and
    /// [`APPEND_END`], for a store that keeps both.
    pub(super) commit_projected_outboxed: Script,
    pub(super) renew: Script,
    pub(super) renew_many: Script,
    pub(super) release: Script,
    pub(super) sweep: Script,
}

impl Scripts {
    /// Every script of the store.
    pub(super) fn new() -> Self {
        Self {
            claim: Script::new(&format!("{SERVER_NOW}{BLOCKS_FN}{CLAIM}")),
            claim_many: Script::new(&format!("{SERVER_NOW}{BLOCKS_FN}{CLAIM_MANY}")),
            renew: Script::new(&format!("{}{}", SERVER_NOW, RENEW)),
            renew_many: Script::new(&format!("{}{}", SERVER_NOW, RENEW_MANY)),
            commit: Script::new(&format!("{}{}", COMMIT_FN, COMMIT)),
            commit_many: Script::new(&format!("{}{}", COMMIT_FN, COMMIT_MANY)),
            commit_projected: Script::new(&format!("{COMMIT_FN}{COMMIT_PROJECTED}")),
            commit_projected_outboxed: Script::new(&format!(
                "{SERVER_NOW}{COMMIT_FN}{APPEND}{COMMIT_PROJECTED}{APPEND_END}"
            )),
            release: Script::new(RELEASE),
            sweep: Script::new(&format!("{}{}", SERVER_NOW, SWEEP)),
        }
    }
}

/// The server's clock in Unix milliseconds, for the scripts below.
pub(super) const SERVER_NOW: &str = "
local function server_now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
";

/// Whether a live claim held under `held` blocks a claim by `token`: it
/// does unless it is the same holder's (the first 32 hex digits) under
/// another lease, an earlier attempt's, which the claim takes over.
const BLOCKS_FN: &str = r"
local function blocks(held, token)
  held = held or ''
  return held == token or string.sub(held, 1, 32) ~= string.sub(token, 1, 32)
end
";

/// Claims an event and, when won, reads a state with it. KEYS: event[,
/// state]. ARGV: now_ms (the caller's), token (the owner), lease_ms,
/// ttl_ms. Returns {0, state or nil} (claimed), {1, nil} (decided), {2,
/// nil} (in flight).
pub(super) const CLAIM: &str = r"
local h = redis.call('HMGET', KEYS[1], 'status', 'lease_until_ms', 'remember_until_ms', 'token')
local now = tonumber(ARGV[1])
local server = server_now()
if h[1] == 'decided' and (tonumber(h[3]) or 0) > now then return {1, false} end
if h[1] == 'claimed' and (tonumber(h[2]) or 0) > server and blocks(h[4], ARGV[2]) then
  return {2, false}
end
if h[1] then redis.call('DEL', KEYS[1]) end
redis.call('HSET', KEYS[1], 'status', 'claimed', 'token', ARGV[2],
  'lease_until_ms', string.format('%d', server + tonumber(ARGV[3])), 'claimed_at_ms', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if #KEYS == 2 then return {0, redis.call('GET', KEYS[2])} end
return {0, false}
";

/// One commit as a Lua function, shared by [`COMMIT`] and [`COMMIT_MANY`]:
/// the token check, the version check and both writes. `st` is `nil` for a
/// commit without a state. Returns 0 (committed), 1 (state changed), 2
/// (lease lost).
pub(super) const COMMIT_FN: &str = r#"
local function commit(ev, st, token, until_ms, grace, expected, json, state_until_ms)
  local h = redis.call('HMGET', ev, 'status', 'token', 'claimed_at_ms')
  if h[1] ~= 'claimed' or h[2] ~= token then return 2 end
  local ttl = tonumber(until_ms) - (tonumber(h[3]) or 0) + tonumber(grace)
  if ttl < 1000 then ttl = 1000 end
  ttl = math.floor(ttl)
  if st then
    local current = redis.call('GET', st)
    local version = 0
    if current then
      version = tonumber(string.match(current, '^{"v":(%d+),'))
      if not version then error('malformed state at ' .. st) end
    end
    if version ~= tonumber(expected) then return 1 end
    local state_ttl = tonumber(state_until_ms) - (tonumber(h[3]) or 0) + tonumber(grace)
    if state_ttl < ttl then state_ttl = ttl end
    redis.call('SET', st,
      '{"v":' .. string.format('%d', version + 1) .. ',"e":' .. state_until_ms .. ',"s":' .. json .. '}',
      'PX', string.format('%d', math.floor(state_ttl)))
  end
  redis.call('DEL', ev)
  redis.call('HSET', ev, 'status', 'decided', 'remember_until_ms', until_ms)
  redis.call('PEXPIRE', ev, string.format('%d', ttl))
  return 0
end
"#;

/// Commits. KEYS: event[, state]. ARGV: token, remember_until_ms, grace_ms
/// [, expected_version, state_json, state_until_ms]. Returns 0 (committed),
/// 1 (state changed), 2 (lease lost).
pub(super) const COMMIT: &str =
    "return commit(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6])";

/// Commits many, one after another, as [`COMMIT`] each; a later update
/// of a state an earlier commit of the script updated (or tried to) is
/// made only if the script wrote the state's current version (1, state
/// changed, otherwise: the rest of a broken chain). KEYS: the events, then
/// the states. ARGV: grace_ms, then six per commit: token,
/// remember_until_ms, the state's index in KEYS (0: none), expected
/// version, state JSON, state_until_ms. Returns one answer per commit.
pub(super) const COMMIT_MANY: &str = r"
local grace = ARGV[1]
local answers = {}
local written = {}
for i = 1, (#ARGV - 1) / 6 do
  local a = 1 + (i - 1) * 6
  local si = tonumber(ARGV[a + 3])
  local st = nil
  if si > 0 then st = KEYS[si] end
  if st and written[st] == false then
    answers[i] = 1
  else
    answers[i] = commit(KEYS[i], st, ARGV[a + 1], ARGV[a + 2], grace, ARGV[a + 4], ARGV[a + 5],
      ARGV[a + 6])
  end
  if st then written[st] = (written[st] == true) or answers[i] == 0 end
end
return answers
";

/// Claims many, one after another, as [`CLAIM`] each, for one owner.
/// KEYS: the events, then the states. ARGV: now_ms, lease_ms, ttl_ms,
/// token (the owner), then one per event: the state's index in KEYS (0:
/// none). Returns {codes, states}: per event 0 (claimed, with its state or
/// nil), 1 (decided), 2 (in flight). A key that does not exist yet (a new
/// event, the common case) is written without a `DEL` first.
pub(super) const CLAIM_MANY: &str = r"
local now = tonumber(ARGV[1])
local server = server_now()
local lease_until = string.format('%d', server + tonumber(ARGV[2]))
local token = ARGV[4]
local codes, states = {}, {}
for i = 1, #ARGV - 4 do
  local key = KEYS[i]
  local si = tonumber(ARGV[4 + i])
  local h = redis.call('HMGET', key, 'status', 'lease_until_ms', 'remember_until_ms', 'token')
  local code = 0
  if h[1] == 'decided' and (tonumber(h[3]) or 0) > now then code = 1
  elseif h[1] == 'claimed' and (tonumber(h[2]) or 0) > server and blocks(h[4], token) then
    code = 2
  end
  codes[i] = code
  states[i] = false
  if code == 0 then
    if h[1] then redis.call('DEL', key) end
    redis.call('HSET', key, 'status', 'claimed', 'token', token,
      'lease_until_ms', lease_until, 'claimed_at_ms', ARGV[1])
    redis.call('PEXPIRE', key, ARGV[3])
    if si > 0 then states[i] = redis.call('GET', KEYS[si]) end
  end
end
return {codes, states}
";

/// Renews a held claim: its lease ends lease_ms after the server's clock.
/// KEYS: event. ARGV: token, lease_ms, ttl_ms. Returns 1 (renewed) or 0
/// (not held).
pub(super) const RENEW: &str = r"
local h = redis.call('HMGET', KEYS[1], 'status', 'token')
if h[1] ~= 'claimed' or h[2] ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'lease_until_ms', string.format('%d', server_now() + tonumber(ARGV[2])))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
";

/// Renews many held claims, each as [`RENEW`]. KEYS: the events. ARGV:
/// lease_ms, ttl_ms, then one token per event. Returns 1 (renewed) or 0
/// (not held) per event.
pub(super) const RENEW_MANY: &str = r"
local lease_until = string.format('%d', server_now() + tonumber(ARGV[1]))
local answers = {}
for i, key in ipairs(KEYS) do
  local h = redis.call('HMGET', key, 'status', 'token')
  if h[1] == 'claimed' and h[2] == ARGV[2 + i] then
    redis.call('HSET', key, 'lease_until_ms', lease_until)
    redis.call('PEXPIRE', key, ARGV[2])
    answers[i] = 1
  else
    answers[i] = 0
  end
end
return answers
";

/// Releases a claim. KEYS: event. ARGV: token.
pub(super) const RELEASE: &str = r"
local h = redis.call('HMGET', KEYS[1], 'status', 'token')
if h[1] == 'claimed' and h[2] == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
";

/// Deletes the given keys that are expired by ARGV[1] (now_ms). Returns how
/// many it deleted.
pub(super) const SWEEP: &str = r#"
local now = tonumber(ARGV[1])
local server = server_now()
local removed = 0
for _, key in ipairs(KEYS) do
  local kind = redis.call('TYPE', key)['ok']
  local expired = false
  if kind == 'hash' then
    local h = redis.call('HMGET', key, 'status', 'lease_until_ms', 'remember_until_ms')
    if h[1] == 'decided' then
      expired = (tonumber(h[3]) or 0) <= now
    elseif h[1] == 'claimed' then
      expired = (tonumber(h[2]) or 0) <= server
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

/// The commit script's head and tail (wrapped around the plain commit
/// script, or around the learner projection's): after the commits (the
/// commit script's own arguments, their count and the prefix popped off
/// `ARGV` first), one stream entry per committed processed event. ARGV:
/// the commit script's, then five per commit (account or '', event id,
/// name, time ms or '', body), then the commit script's argument count,
/// then the prefix.
pub(super) const APPEND: &str = r"
local prefix = table.remove(ARGV)
local n = tonumber(table.remove(ARGV))
local extra = {}
for i = n + 1, #ARGV do extra[#extra + 1] = ARGV[i] end
for i = #ARGV, n + 1, -1 do ARGV[i] = nil end
local answers = (function()
";

pub(super) const APPEND_END: &str = r"
end)()
local now = string.format('%d', server_now())
for i = 1, #extra / 5 do
  local a = (i - 1) * 5
  local account = extra[a + 1]
  if answers[i] == 0 and account ~= '' then
    local seq = redis.call('HINCRBY', prefix .. 'ob:seq', account, 1)
    redis.call('XADD', prefix .. 'ob:' .. account, string.format('%d-0', seq),
      'id', extra[a + 2], 'name', extra[a + 3], 'time', extra[a + 4], 'body', extra[a + 5],
      'at', now)
    redis.call('SADD', prefix .. 'ob:accounts', account)
  end
end
return answers
";
