//! Pauses on Redis: `paused` (a hash, account → since in Unix ms),
//! `pausedall` (since), and `held`, the paused accounts the take parked
//! (by head id), put back in `ready` when resumed.

use std::sync::LazyLock;

use ::redis::Script;
use time::OffsetDateTime;

use super::RedisInbox;
use super::stored::account;
use crate::inbox::types::{from_millis, unix_millis};
use crate::inbox::{InboxError, Pause, PauseScope};

/// ARGV: prefix, account or '' (every account), now_ms. Keeps the first
/// pause's time.
const PAUSE: &str = r"
local p = ARGV[1]
if ARGV[2] == '' then
  redis.call('SET', p .. 'pausedall', ARGV[3], 'NX')
else
  redis.call('HSETNX', p .. 'paused', ARGV[2], ARGV[3])
end
return 1
";

/// ARGV: prefix, account or '' (every pause). Puts the resumed accounts
/// the take parked back in `ready`. Returns how many pauses were lifted.
const RESUME: &str = r"
local p = ARGV[1]
local function unpark(account, head)
  redis.call('ZREM', p .. 'held', account)
  redis.call('ZADD', p .. 'ready', head, account)
end
if ARGV[2] ~= '' then
  local head = redis.call('ZSCORE', p .. 'held', ARGV[2])
  if head then unpark(ARGV[2], head) end
  return redis.call('HDEL', p .. 'paused', ARGV[2])
end
local lifted = redis.call('DEL', p .. 'pausedall') + redis.call('HLEN', p .. 'paused')
redis.call('DEL', p .. 'paused')
local held = redis.call('ZRANGE', p .. 'held', 0, -1, 'WITHSCORES')
for i = 1, #held, 2 do unpark(held[i], held[i + 1]) end
return lifted
";

/// ARGV: prefix. Returns {pausedall since or false, {account, since, …}}.
const LIST: &str = r"
local p = ARGV[1]
return {redis.call('GET', p .. 'pausedall') or false, redis.call('HGETALL', p .. 'paused')}
";

/// The scripts, hashed once.
static SCRIPTS: LazyLock<[Script; 3]> =
    LazyLock::new(|| [Script::new(PAUSE), Script::new(RESUME), Script::new(LIST)]);

fn scope_arg(scope: PauseScope) -> String {
    scope
        .account_id()
        .map(|a| a.get().to_string())
        .unwrap_or_default()
}

impl RedisInbox {
    pub(super) async fn pause_scope(
        &self,
        scope: PauseScope,
        now: OffsetDateTime,
    ) -> Result<(), InboxError> {
        let args: [&dyn super::ToArg; 2] = [&scope_arg(scope), &unix_millis(now)];
        self.call::<i64>("pause", &SCRIPTS[0], &args)
            .await
            .map(drop)
    }

    pub(super) async fn resume_scope(&self, scope: PauseScope) -> Result<bool, InboxError> {
        let lifted: i64 = self
            .call("resume", &SCRIPTS[1], &[&scope_arg(scope)])
            .await?;
        Ok(lifted > 0)
    }

    pub(super) async fn pause_list(&self) -> Result<Vec<Pause>, InboxError> {
        let (all, accounts): (Option<i64>, Vec<(String, i64)>) =
            self.call("list pauses", &SCRIPTS[2], &[]).await?;
        let mut pauses: Vec<Pause> = all
            .map(|since| Pause::new(PauseScope::All, from_millis(since)))
            .into_iter()
            .collect();
        for (id, since) in accounts {
            pauses.push(Pause::new(
                PauseScope::Account(account(&id)?),
                from_millis(since),
            ));
        }
        pauses.sort_by_key(|p| p.scope);
        Ok(pauses)
    }
}
