//! The learner projection in memory: merged under the locks of the commit
//! that decides the events.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::{Mutex, PoisonError};

use time::OffsetDateTime;

use super::MemoryStore;
use crate::projection::{LearnerChanges, LearnerEvent, LearnerRecord, MergeState, TranscriptCsv};
use crate::store::{Commit, CommitOutcome, Decided, StoreError};
use crate::{AccountId, LoInstanceId, UserId};

type RecordKey = (AccountId, UserId, LoInstanceId);

/// A record as kept: its place in the change feed, when it was last
/// written, and its merge state (the record's fields are made from it on
/// read, so that a merge writes a summary, not a whole record).
#[derive(Debug)]
struct Row {
    seq: u64,
    updated_at: OffsetDateTime,
    state: MergeState,
}

impl Row {
    fn record(&self, key: &RecordKey) -> LearnerRecord {
        self.state
            .record(key.0, key.1, &key.2, self.updated_at)
            .expect("a kept row has an event merged into it")
    }
}

/// The records, and the change feed's order. A row is boxed: the table
/// then moves a key and a pointer when it grows, not a whole row (a table
/// of new learners grows with every event). Keys are hashed with
/// `foldhash` (randomly seeded, as the engine's own maps), which takes
/// about a fifth of SipHash's instructions for a key with an id's text.
#[derive(Debug, Default)]
pub(super) struct Learners {
    rows: HashMap<RecordKey, Box<Row>, foldhash::fast::RandomState>,
    feed: BTreeMap<u64, RecordKey>,
    seq: u64,
}

impl Learners {
    /// Merges the decided event into its record (`now`: the commit's
    /// clock reading, the row's `updated_at`).
    fn merge(&mut self, decided: &Decided<'_>, now: OffsetDateTime) {
        let Some(fact) = LearnerEvent::from_event(decided.event) else {
            return;
        };
        self.seq += 1;
        let key = (fact.account_id, fact.user_id, fact.lo_instance_id.clone());
        match self.rows.get_mut(&key) {
            Some(row) => {
                row.state.add(&fact);
                row.updated_at = now;
                self.feed.remove(&row.seq);
                row.seq = self.seq;
                self.feed.insert(self.seq, key);
            }
            None => {
                let mut state = MergeState::default();
                state.add(&fact);
                self.feed.insert(self.seq, key.clone());
                let row = Row {
                    seq: self.seq,
                    updated_at: now,
                    state,
                };
                self.rows.insert(key, Box::new(row));
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

    /// Each commit as [`Store::commit_many`](crate::store::Store::commit_many)
    /// (each shard locked once per round, the rest of a broken chain
    /// refused), with its event merged into the projection (and queued in
    /// the outbox) under the commit's locks when it is made. The
    /// projection's and the outbox's locks are taken once per round, after
    /// the shards', and the rows' `updated_at` is one clock reading for
    /// the call.
    pub(super) fn commit_projected(
        &self,
        commits: &[Commit<'_>],
        decided: &[Option<Decided<'_>>],
    ) -> Vec<CommitOutcome> {
        let now = OffsetDateTime::now_utc();
        self.commit_rounds(
            commits,
            || (self.learners(), self.queue()),
            |(learners, queue), at| {
                let Some(Some(d)) = decided.get(at) else {
                    return;
                };
                if let Some(learners) = learners {
                    learners.merge(d, now);
                }
                if let Some(queue) = queue {
                    queue.push(d);
                }
            },
        )
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
        self.learners()?.rows.get(&key).map(|row| row.record(&key))
    }

    fn learners_where(&self, keep: impl Fn(&RecordKey) -> bool) -> Vec<LearnerRecord> {
        let Some(learners) = self.learners() else {
            return Vec::new();
        };
        let mut rows: Vec<(&RecordKey, &Row)> = learners
            .rows
            .iter()
            .filter(|(k, _)| keep(k))
            .map(|(k, row)| (k, &**row))
            .collect();
        rows.sort_by(|a, b| a.0.cmp(b.0));
        rows.into_iter().map(|(k, row)| row.record(k)).collect()
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
            .filter_map(|(seq, key)| learners.rows.get(key).map(|row| (*seq, row.record(key))))
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
                csv.write(&learners.rows[key].record(key)).map_err(io)?;
            }
        }
        let n = csv.rows();
        Ok((csv.finish().map_err(io)?, n))
    }
}
