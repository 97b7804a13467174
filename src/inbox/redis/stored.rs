//! Dead letters and quarantined bodies as Redis stores them, read back.

use ::redis::Value;
use serde::{Deserialize, Serialize};

use super::RedisInbox;
use crate::AccountId;
use crate::inbox::types::from_millis;
use crate::inbox::{
    DeadLetter, DeadLetterId, DeliveryId, InboxError, KeptCounts, LeaseToken, NewDeadLetter,
    QuarantineId, Quarantined, Taken,
};

/// A dead letter's stored form (the account as text, for Lua).
#[derive(Serialize, Deserialize)]
pub(super) struct StoredLetter {
    pub(super) account: String,
    #[serde(rename = "eventId")]
    pub(super) event_id: Option<String>,
    #[serde(rename = "eventName")]
    pub(super) event_name: Option<String>,
    pub(super) event: String,
    pub(super) error: String,
    pub(super) attempts: u32,
    pub(super) at_ms: i64,
}

/// An argument of a script call.
pub(super) trait ToArg: Sync {
    fn push_to(&self, invocation: &mut ::redis::ScriptInvocation<'_>);
}

impl<T: ::redis::ToRedisArgs + Sync> ToArg for T {
    fn push_to(&self, invocation: &mut ::redis::ScriptInvocation<'_>) {
        invocation.arg(self);
    }
}

/// What the take script answers for each delivery: id, account, body,
/// received (ms), attempts, abandoned attempts, last error.
pub(super) type TakenRow = (u64, String, Vec<u8>, i64, u32, u32, Option<String>);

/// A delivery taken under `token`, from the take script's answer.
pub(super) fn taken(row: TakenRow, token: LeaseToken) -> Result<Taken, InboxError> {
    let (id, acct, body, at, attempts, abandoned, error) = row;
    Ok(Taken::new(
        DeliveryId(id),
        token,
        account(&acct)?,
        body,
        from_millis(at),
        attempts,
        error,
    )
    .with_abandoned(abandoned))
}

pub(super) fn account(text: &str) -> Result<AccountId, InboxError> {
    text.parse()
        .map(AccountId)
        .map_err(|_| InboxError::new(format!("redis: stored account {text:?} is not a number")))
}

pub(super) fn dead_letter(id: u64, entry: Value) -> Result<DeadLetter, InboxError> {
    let json: String = ::redis::from_redis_value(entry)
        .map_err(|e| InboxError::with_source("redis: unexpected dead letter", e))?;
    let s: StoredLetter = serde_json::from_str(&json)
        .map_err(|e| InboxError::with_source("redis: unreadable dead letter", e))?;
    Ok(DeadLetter::new(
        DeadLetterId(id),
        NewDeadLetter {
            account_id: account(&s.account)?,
            event_id: s.event_id,
            event_name: s.event_name,
            event: s.event,
            error: s.error,
            attempts: s.attempts,
            at: from_millis(s.at_ms),
        },
    ))
}

pub(super) fn quarantined(id: u64, entry: Value) -> Result<Quarantined, InboxError> {
    let (acct, body, error, at): (String, Vec<u8>, String, i64) = ::redis::from_redis_value(entry)
        .map_err(|e| InboxError::with_source("redis: unexpected quarantine", e))?;
    let account_id = if acct.is_empty() {
        None
    } else {
        Some(account(&acct)?)
    };
    Ok(Quarantined::new(
        QuarantineId(id),
        account_id,
        body,
        error,
        from_millis(at),
    ))
}

impl RedisInbox {
    /// What is kept of `account`, or (`None`) the most one account keeps
    /// of each: from the counters the scripts keep.
    pub(super) async fn counts(
        &self,
        account: Option<AccountId>,
    ) -> Result<KeptCounts, InboxError> {
        let (dl, q, qb) = match account {
            Some(a) => {
                let account = a.get().to_string();
                self.call("kept of", &self.scripts.kept_of, &[&account])
                    .await?
            }
            None => self.call("most kept", &self.scripts.most_kept, &[]).await?,
        };
        Ok(KeptCounts::new(dl, q, qb))
    }

    /// `limit` entries of `kind` after the id `after`, or the one whose id
    /// is `-limit`.
    pub(super) async fn list(
        &self,
        kind: &str,
        limit: i64,
        after: u64,
    ) -> Result<Vec<(u64, Value)>, InboxError> {
        let flat: Vec<Value> = self
            .call("list", &self.scripts.list, &[&kind, &limit, &after])
            .await?;
        let mut out = Vec::with_capacity(flat.len() / 2);
        let mut items = flat.into_iter();
        while let (Some(id), Some(entry)) = (items.next(), items.next()) {
            let id: u64 = ::redis::from_redis_value(id)
                .map_err(|e| InboxError::with_source("redis: unexpected list entry", e))?;
            out.push((id, entry));
        }
        Ok(out)
    }
}

/// Dead letters in their stored form (JSON), for the scripts.
pub(super) fn encode_letters(letters: &[NewDeadLetter]) -> Result<Vec<String>, InboxError> {
    letters
        .iter()
        .map(|l| {
            serde_json::to_string(&StoredLetter {
                account: l.account_id.get().to_string(),
                event_id: l.event_id.clone(),
                event_name: l.event_name.clone(),
                event: l.event.clone(),
                error: l.error.clone(),
                attempts: l.attempts,
                at_ms: crate::inbox::types::unix_millis(l.at),
            })
            .map_err(|e| InboxError::with_source("redis: cannot encode a dead letter", e))
        })
        .collect()
}
