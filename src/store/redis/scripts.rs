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
            claim: Script::new(&format!("{SERVER_NOW}{EVENT_FN}{CLAIM_FN}{CLAIM}")),
            claim_many: Script::new(&format!("{SERVER_NOW}{EVENT_FN}{CLAIM_FN}{CLAIM_MANY}")),
            renew: Script::new(&format!("{SERVER_NOW}{EVENT_FN}{RENEW}")),
            renew_many: Script::new(&format!("{SERVER_NOW}{EVENT_FN}{RENEW_MANY}")),
            commit: Script::new(&format!("{EVENT_FN}{COMMIT_FN}{COMMIT}")),
            commit_many: Script::new(&format!("{EVENT_FN}{COMMIT_FN}{COMMIT_MANY}")),
            commit_projected: Script::new(&format!("{EVENT_FN}{COMMIT_FN}{COMMIT_PROJECTED}")),
            commit_projected_outboxed: Script::new(&format!(
                "{SERVER_NOW}{EVENT_FN}{COMMIT_FN}{APPEND}{COMMIT_PROJECTED}{APPEND_END}"
            )),
            release: Script::new(&format!("{EVENT_FN}{RELEASE}")),
            sweep: Script::new(&format!("{SERVER_NOW}{EVENT_FN}{SWEEP}")),
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

/// An event key's value, read by the scripts below. It is a string: a
/// claim `c:{token}:{lease_until_ms}:{claimed_at_ms}` or a decision
/// `d:{remember_until_ms}`, each one `SET` with its expiry. A store
/// written before this form kept a hash (`status`, `token`,
/// `lease_until_ms`, `claimed_at_ms`, `remember_until_ms`); such a key is
/// still read (the string command that met it answered `WRONGTYPE`,
/// caught by `pcall`), and the next write of its event replaces it with
/// the string, so a running store needs no migration.
///
/// `event(key, v)`: `v` is what `GET` (or `SET … GET`) answered through
/// `redis.pcall`. Returns status (`'claimed'`, `'decided'` or nil for no
/// key), token, lease end, claim time, window end. `claim_new(key, value,
/// ttl)` writes a claim where there is no key (`SET … NX PX … GET`, Redis
/// 7.0 or later) and answers what was there.
pub(super) const EVENT_FN: &str = r"
local function event(key, v)
  if not v then return nil end
  if type(v) == 'string' then
    local head = string.sub(v, 1, 2)
    if head == 'd:' then
      local until_ms = tonumber(string.sub(v, 3))
      if until_ms then return 'decided', nil, nil, nil, until_ms end
    elseif head == 'c:' then
      local token, lease, at = string.match(v, '^c:(%x+):(%-?%d+):(%-?%d+)$')
      if token then return 'claimed', token, tonumber(lease), tonumber(at), nil end
    end
    error('malformed event at ' .. key)
  end
  if not (v.err and string.find(v.err, 'WRONGTYPE', 1, true)) then
    error(v.err or ('unreadable event at ' .. key))
  end
  local h = redis.call('HMGET', key, 'status', 'token', 'lease_until_ms', 'claimed_at_ms',
    'remember_until_ms')
  if h[1] == 'claimed' then
    return 'claimed', h[2] or '', tonumber(h[3]) or 0, tonumber(h[4]) or 0, nil
  elseif h[1] == 'decided' then
    return 'decided', nil, nil, nil, tonumber(h[5]) or 0
  end
  error('malformed event at ' .. key)
end
local function claim_value(token, lease_until, at)
  return 'c:' .. token .. ':' .. lease_until .. ':' .. at
end
local function claim_new(key, value, ttl)
  local v = redis.pcall('SET', key, value, 'NX', 'PX', ttl, 'GET')
  if type(v) == 'table' and v.err and not string.find(v.err, 'WRONGTYPE', 1, true) then
    error('SET with NX and GET refused (the store needs Redis 7.0 or later): ' .. v.err)
  end
  return v
end
";

/// One event's claim, shared by [`CLAIM`] and [`CLAIM_MANY`]:
/// `claim_one(key, value, ttl, now, server, token)` writes the claim
/// `value` (of `token`) unless the event is decided by `now` or a live
/// claim by `server`'s clock blocks it, and answers 0 (claimed), 1
/// (decided) or 2 (in flight). A live claim blocks unless it is the same
/// holder's (the first 32 hex digits) under another lease, an earlier
/// attempt's, which the claim takes over.
const CLAIM_FN: &str = r"
local function blocks(held, token)
  held = held or ''
  return held == token or string.sub(held, 1, 32) ~= string.sub(token, 1, 32)
end
local function claim_one(key, value, ttl, now, server, token)
  local v = claim_new(key, value, ttl)
  if not v then return 0 end
  local status, held, lease, _, remember = event(key, v)
  if status == 'decided' and remember > now then return 1 end
  if status == 'claimed' and lease > server and blocks(held, token) then return 2 end
  redis.call('SET', key, value, 'PX', ttl)
  return 0
end
";

/// Claims an event and, when won, reads a state with it. KEYS: event[,
/// state]. ARGV: now_ms (the caller's), token (the owner), lease_ms,
/// ttl_ms. Returns {0, state or nil} (claimed), {1, nil} (decided), {2,
/// nil} (in flight).
pub(super) const CLAIM: &str = r"
local now = tonumber(ARGV[1])
local server = server_now()
local value = claim_value(ARGV[2], string.format('%d', server + tonumber(ARGV[3])), ARGV[1])
local code = claim_one(KEYS[1], value, ARGV[4], now, server, ARGV[2])
if code ~= 0 then return {code, false} end
if #KEYS == 2 then return {0, redis.call('GET', KEYS[2])} end
return {0, false}
";

/// One commit as a Lua function, shared by [`COMMIT`] and [`COMMIT_MANY`]:
/// the token check, the version check and both writes. `st` is `nil` for a
/// commit without a state; `value` is the state's stored value, whole
/// (`{"v":expected + 1,"e":state_until_ms,"s":…}`, made by the caller).
/// Returns 0 (committed), 1 (state changed), 2 (lease lost). Needs
/// [`EVENT_FN`] before it.
///
/// The usual commit is checked by plain `string.find`s: the claim value
/// begins `c:{token}:` (its claim time is after the next `:`), the state
/// begins `{"v":{expected},` or is absent for expected version 0. Any
/// other case (another holder, a decision, an old hash, a state of
/// another version or a malformed one) is read by `event()` and the
/// version's pattern, as before: the answers are the same, only the Lua
/// string work of the usual case is saved (captures, `tonumber`s, the
/// state's concatenation).
pub(super) const COMMIT_FN: &str = r#"
local function claim_time(v, token)
  if type(v) ~= 'string' or string.byte(v, 1) ~= 99 or string.byte(v, 2) ~= 58 then return nil end
  if string.find(v, token, 3, true) ~= 3 or string.byte(v, 3 + #token) ~= 58 then return nil end
  local sep = string.find(v, ':', 4 + #token, true)
  return sep and tonumber(string.sub(v, sep + 1))
end
local function version_is(current, st, expected)
  if expected == '0' then
    if not current then return true end
  elseif current and string.find(current, '{"v":' .. expected .. ',', 1, true) == 1 then
    return true
  end
  if current and not string.match(current, '^{"v":(%d+),') then
    error('malformed state at ' .. st)
  end
  return false
end
local function commit(ev, st, token, until_ms, grace, expected, value, state_until_ms)
  local v = redis.pcall('GET', ev)
  local claimed_at = claim_time(v, token)
  if not claimed_at then
    local status, held, _, at = event(ev, v)
    if status ~= 'claimed' or held ~= token then return 2 end
    claimed_at = at
  end
  local ttl = tonumber(until_ms) - claimed_at + tonumber(grace)
  if ttl < 1000 then ttl = 1000 end
  ttl = math.floor(ttl)
  if st then
    local current = redis.call('GET', st)
    if not version_is(current, st, expected) then return 1 end
    local state_ttl = tonumber(state_until_ms) - claimed_at + tonumber(grace)
    if state_ttl < ttl then state_ttl = ttl end
    redis.call('SET', st, value, 'PX', string.format('%d', math.floor(state_ttl)))
  end
  redis.call('SET', ev, 'd:' .. until_ms, 'PX', string.format('%d', ttl))
  return 0
end
"#;

/// Commits. KEYS: event[, state]. ARGV: token, remember_until_ms, grace_ms
/// [, expected_version, the state's stored value, state_until_ms]. Returns 0 (committed),
/// 1 (state changed), 2 (lease lost).
pub(super) const COMMIT: &str =
    "return commit(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6])";

/// Commits many, one after another, as [`COMMIT`] each; a later update
/// of a state an earlier commit of the script updated (or tried to) is
/// made only if the script wrote the state's current version (1, state
/// changed, otherwise: the rest of a broken chain). KEYS: the events, then
/// the states. ARGV: grace_ms, then six per commit: token,
/// remember_until_ms, the state's index in KEYS (0: none), expected
/// version, the state's stored value, state_until_ms. Returns one answer
/// per commit.
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
/// event, the common case) is claimed by its one `SET … NX GET`.
pub(super) const CLAIM_MANY: &str = r"
local now = tonumber(ARGV[1])
local server = server_now()
local token = ARGV[4]
local value = claim_value(token, string.format('%d', server + tonumber(ARGV[2])), ARGV[1])
local ttl = ARGV[3]
local codes, states = {}, {}
for i = 1, #ARGV - 4 do
  local key = KEYS[i]
  local si = tonumber(ARGV[4 + i])
  local code = claim_one(key, value, ttl, now, server, token)
  codes[i] = code
  states[i] = false
  if code == 0 and si > 0 then states[i] = redis.call('GET', KEYS[si]) end
end
return {codes, states}
";

/// Renews a held claim: its lease ends lease_ms after the server's clock.
/// KEYS: event. ARGV: token, lease_ms, ttl_ms. Returns 1 (renewed) or 0
/// (not held).
pub(super) const RENEW: &str = r"
local status, held, _, at = event(KEYS[1], redis.pcall('GET', KEYS[1]))
if status ~= 'claimed' or held ~= ARGV[1] then return 0 end
local lease_until = string.format('%d', server_now() + tonumber(ARGV[2]))
redis.call('SET', KEYS[1], claim_value(held, lease_until, string.format('%d', at)), 'PX', ARGV[3])
return 1
";

/// Renews many held claims, each as [`RENEW`]. KEYS: the events. ARGV:
/// lease_ms, ttl_ms, then one token per event. Returns 1 (renewed) or 0
/// (not held) per event.
pub(super) const RENEW_MANY: &str = r"
local lease_until = string.format('%d', server_now() + tonumber(ARGV[1]))
local answers = {}
for i, key in ipairs(KEYS) do
  local status, held, _, at = event(key, redis.pcall('GET', key))
  if status == 'claimed' and held == ARGV[2 + i] then
    redis.call('SET', key, claim_value(held, lease_until, string.format('%d', at)), 'PX', ARGV[2])
    answers[i] = 1
  else
    answers[i] = 0
  end
end
return answers
";

/// Releases a claim. KEYS: event. ARGV: token.
pub(super) const RELEASE: &str = r"
local status, held = event(KEYS[1], redis.pcall('GET', KEYS[1]))
if status == 'claimed' and held == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
";

/// Deletes the given keys that are expired by ARGV[1] (now_ms): events
/// (either stored form) and states. Returns how many it deleted.
pub(super) const SWEEP: &str = r#"
local now = tonumber(ARGV[1])
local server = server_now()
local removed = 0
for _, key in ipairs(KEYS) do
  local v = redis.pcall('GET', key)
  local expired = false
  if type(v) == 'string' and string.sub(v, 1, 1) == '{' then
    local e = string.match(v, '^{"v":%d+,"e":(%-?%d+),')
    expired = e ~= nil and tonumber(e) <= now
  elseif v and (type(v) == 'string' or redis.call('TYPE', key)['ok'] == 'hash') then
    local ok, status, _, lease, _, remember = pcall(event, key, v)
    if ok and status == 'decided' then
      expired = remember <= now
    elseif ok and status == 'claimed' then
      expired = lease <= server
    end
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
/// state's index in KEYS (0: none), expected version, the state's stored value,
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
