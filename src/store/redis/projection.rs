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

use super::{GRACE_MS, RedisStore, unix_millis};
use crate::projection::{LearnerEvent, slots_of, sort_key};
use crate::store::{Commit, CommitOutcome, Decided, MANY_CHUNK, StoreError};
use crate::{AccountId, LoInstanceId, UserId};

impl RedisStore {
    /// `{account}:{user}:{hex(instance)}`: a record's name in the change
    /// feed, and its key after `{prefix}lr:`.
    pub(super) fn record_member(
        account: AccountId,
        user: UserId,
        instance: &LoInstanceId,
    ) -> String {
        let hex = base16ct::lower::encode_string(instance.as_str().as_bytes());
        format!("{}:{}:{hex}", account.get(), user.get())
    }

    pub(super) fn record_key(&self, member: &str) -> String {
        format!("{}lr:{member}", self.prefix)
    }

    pub(super) fn user_key(&self, account: AccountId, user: UserId) -> String {
        format!("{}lr-user:{}:{}", self.prefix, account.get(), user.get())
    }

    pub(super) fn instance_key(&self, account: AccountId, instance: &LoInstanceId) -> String {
        let hex = base16ct::lower::encode_string(instance.as_str().as_bytes());
        format!("{}lr-instance:{}:{hex}", self.prefix, account.get())
    }

    pub(super) fn account_key(&self, account: AccountId) -> String {
        format!("{}lr-account:{}", self.prefix, account.get())
    }

    pub(super) fn feed_key(&self) -> String {
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
        let now = unix_millis(std::time::SystemTime::now());
        // With the outbox too, the same script wrapped by its appends.
        let script = if self.outbox {
            &self.scripts.commit_projected_outboxed
        } else {
            &self.scripts.commit_projected
        };
        let mut invocations = Vec::new();
        for (c, chunk) in commits.chunks(MANY_CHUNK).enumerate() {
            let mut invocation = script.prepare_invoke();
            invocation
                .key(format!("{}lr-seq", self.prefix))
                .key(self.feed_key());
            invocation.arg(GRACE_MS).arg(now).arg(chunk.len());
            // The script's own arguments, counted for the outbox's.
            let mut args = 3;
            for commit in chunk {
                invocation.key(self.event_key(commit.key));
            }
            let mut keys = 2 + chunk.len();
            for (i, commit) in chunk.iter().enumerate() {
                self.commit_args(&mut invocation, commit, &mut keys)?;
                let fact = decided
                    .get(c * MANY_CHUNK + i)
                    .copied()
                    .flatten()
                    .and_then(|d| LearnerEvent::from_event(d.event));
                // Token, remembered until, and the state's four.
                args += 6;
                let Some(fact) = fact else {
                    invocation.arg(0);
                    args += 1;
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
                args += 7 + 2 * slots.len();
                for (slot, value) in slots {
                    invocation.arg(slot).arg(value);
                }
            }
            if self.outbox {
                let decided = &decided[(c * MANY_CHUNK).min(decided.len())..];
                self.append_outbox_args(&mut invocation, chunk.len(), decided, args)?;
            }
            invocations.push(invocation);
        }
        self.run_commits(script, &invocations, commits.len()).await
    }
}
