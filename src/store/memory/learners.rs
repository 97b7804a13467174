//! The learner projection in memory: merged under the locks of the commit
//! that decides the events.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::{Mutex, PoisonError};

use time::OffsetDateTime;

use super::{MemoryStore, apply_commit, lock};
use crate::projection::{self, LearnerChanges, LearnerEvent, LearnerRecord, TranscriptCsv};
use crate::store::many::chained;
use crate::store::{Commit, CommitOutcome, Decided, StoreError};
use crate::{AccountId, LoInstanceId, UserId};

type RecordKey = (AccountId, UserId, LoInstanceId);

/// The records, and the change feed's order. A record is boxed: the table
/// then moves a key and a pointer when it grows, not a whole record (a
/// table of new learners grows with every event).
#[derive(Debug, Default)]
pub(super) struct Learners {
    rows: HashMap<RecordKey, Box<(u64, LearnerRecord)>>,
    feed: BTreeMap<u64, RecordKey>,
    seq: u64,
}

impl Learners {
    fn merge(&mut self, decided: &Decided<'_>) {
        let Some(fact) = LearnerEvent::from_event(decided.event) else {
            return;
        };
        let key = (fact.account_id, fact.user_id, fact.lo_instance_id.clone());
        self.seq += 1;
        let now = OffsetDateTime::now_utc();
        match self.rows.get_mut(&key) {
            Some(row) => {
                let (seq, record) = &mut **row;
                *record = projection::merge(Some(&*record), &fact, now);
                self.feed.remove(seq);
                *seq = self.seq;
                self.feed.insert(self.seq, key);
            }
            None => {
                let record = projection::merge(None, &fact, now);
                self.feed.insert(self.seq, key.clone());
                self.rows.insert(key, Box::new((self.seq, record)));
            }
        }
    }
}

impl MemoryStore {
    /// Keeps the learner projection in memory, merged under the locks of
    /// every commit: see [`crate::projection`].
    ///
    /// ```
    /// use alm_webhooks::{AccountId, UserId, store::MemoryStore};
    /// let store = MemoryStore::new().with_learner_projection();
    /// assert!(store.learner_records_of_user(AccountId(1), UserId(7)).is_empty());
    /// ```
    #[must_use]
    pub fn with_learner_projection(mut self) -> Self {
        self.learners = Some(Mutex::new(Learners::default()));
        self
    }

    fn learners(&self) -> Option<std::sync::MutexGuard<'_, Learners>> {
        self.learners
            .as_ref()
            .map(|l| l.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Each commit as [`Store::commit`](crate::store::Store::commit), with
    /// its event merged into the projection (and queued in the outbox)
    /// under the commit's locks when it is made; the rest of a broken chain refused as
    /// [`Store::commit_many`](crate::store::Store::commit_many) does.
    pub(super) fn commit_projected(
        &self,
        commits: &[Commit<'_>],
        decided: &[Option<Decided<'_>>],
    ) -> Vec<CommitOutcome> {
        let states: Vec<_> = commits.iter().map(|c| c.update.map(|u| u.key)).collect();
        let made = chained(&states, |at| {
            let merge = || {
                if let Some(Some(d)) = decided.get(at) {
                    if let Some(mut learners) = self.learners() {
                        learners.merge(d);
                    }
                    if let Some(mut queue) = self.queue() {
                        queue.push(d);
                    }
                }
            };
            Ok::<_, std::convert::Infallible>(self.commit_locked(&commits[at], merge))
        });
        match made {
            Ok(outcomes) => outcomes,
            Err(never) => match never {},
        }
    }

    /// [`Store::commit`](crate::store::Store::commit), running `then` under
    /// its locks when it succeeds.
    fn commit_locked(&self, commit: &Commit<'_>, then: impl FnOnce()) -> CommitOutcome {
        let ek = self.event_key(commit.key);
        let update = commit.update.map(|u| (self.state_key(u.key), u));
        let ei = Self::shard_index(ek);
        match update.as_ref().map(|(sk, _)| Self::shard_index(*sk)) {
            Some(si) if si != ei => {
                let mut low = lock(&self.shards[ei.min(si)]);
                let mut high = lock(&self.shards[ei.max(si)]);
                let (events, states) = if ei < si {
                    (&mut *low, &mut *high)
                } else {
                    (&mut *high, &mut *low)
                };
                apply_commit(events, Some(states), ek, update, commit, then)
            }
            _ => apply_commit(&mut lock(&self.shards[ei]), None, ek, update, commit, then),
        }
    }

    /// The record of a learner in an instance (either spelling of a
    /// learning path), if any event of it was decided.
    pub fn learner_record(
        &self,
        account: AccountId,
        user: UserId,
        lo_instance: &LoInstanceId,
    ) -> Option<LearnerRecord> {
        let key = (account, user, lo_instance.canonical());
        self.learners()?.rows.get(&key).map(|row| row.1.clone())
    }

    fn learners_where(&self, keep: impl Fn(&RecordKey) -> bool) -> Vec<LearnerRecord> {
        let Some(learners) = self.learners() else {
            return Vec::new();
        };
        let mut rows: Vec<(&RecordKey, &LearnerRecord)> = learners
            .rows
            .iter()
            .filter(|(k, _)| keep(k))
            .map(|(k, row)| (k, &row.1))
            .collect();
        rows.sort_by(|a, b| a.0.cmp(b.0));
        rows.into_iter().map(|(_, r)| r.clone()).collect()
    }

    /// The accounts that have learner records, in order.
    pub fn learner_accounts(&self) -> Vec<AccountId> {
        let Some(learners) = self.learners() else {
            return Vec::new();
        };
        let accounts: std::collections::BTreeSet<AccountId> =
            learners.rows.keys().map(|(a, _, _)| *a).collect();
        accounts.into_iter().collect()
    }

    /// Every record of a learner, by instance id.
    pub fn learner_records_of_user(&self, account: AccountId, user: UserId) -> Vec<LearnerRecord> {
        self.learners_where(|(a, u, _)| *a == account && *u == user)
    }

    /// Every record of an instance, by user id.
    pub fn learner_records_of_instance(
        &self,
        account: AccountId,
        lo_instance: &LoInstanceId,
    ) -> Vec<LearnerRecord> {
        let instance = lo_instance.canonical();
        self.learners_where(|(a, _, i)| *a == account && *i == instance)
    }

    /// Every record of an account, by user id then instance id.
    ///
    /// ```
    /// use alm_webhooks::{AccountId, store::MemoryStore};
    /// let store = MemoryStore::new().with_learner_projection();
    /// assert!(store.learner_records_of_account(AccountId(1)).is_empty());
    /// ```
    pub fn learner_records_of_account(&self, account: AccountId) -> Vec<LearnerRecord> {
        self.learners_where(|(a, _, _)| *a == account)
    }

    /// Whether it keeps the learner projection
    /// ([`with_learner_projection`](Self::with_learner_projection)).
    #[cfg_attr(not(feature = "alm-api"), allow(dead_code))]
    pub(crate) fn keeps_learner_projection(&self) -> bool {
        self.learners.is_some()
    }

    /// Up to `limit` records changed after `cursor` (0 for all), oldest
    /// change first.
    pub fn learner_changes_since(&self, cursor: u64, limit: usize) -> LearnerChanges {
        let Some(learners) = self.learners() else {
            return LearnerChanges::from_rows(Vec::new(), cursor);
        };
        let rows = learners
            .feed
            .range(cursor.saturating_add(1)..)
            .take(limit)
            .filter_map(|(seq, key)| learners.rows.get(key).map(|row| (*seq, row.1.clone())))
            .collect();
        LearnerChanges::from_rows(rows, cursor)
    }

    /// Writes every learner record as CSV ([`TranscriptCsv`]) into `out`,
    /// holding the projection's lock (commits wait) while it writes.
    ///
    /// # Errors
    ///
    /// When `out` fails.
    pub fn export_learner_csv<W: Write>(&self, out: W) -> Result<(W, u64), StoreError> {
        let io = |e: std::io::Error| StoreError::with_source("memory: the export failed", e);
        let mut csv = TranscriptCsv::new(out).map_err(io)?;
        if let Some(learners) = self.learners() {
            let mut keys: Vec<&RecordKey> = learners.rows.keys().collect();
            keys.sort();
            for key in keys {
                csv.write(&learners.rows[key].1).map_err(io)?;
            }
        }
        let n = csv.rows();
        Ok((csv.finish().map_err(io)?, n))
    }
}
