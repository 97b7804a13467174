//! Set-based operations: what [`Store::claim_many`](super::Store::claim_many)
//! takes, and how many events a store sends at once.

use std::collections::HashMap;
use std::hash::Hash;

use super::{CommitOutcome, DedupKey};
use crate::rules::StateKey;

/// The most events a store sends in one statement or script; a longer
/// slice goes out in chunks of this size (one round trip each).
pub const MANY_CHUNK: usize = 2_000;

/// One event to claim with [`Store::claim_many`](super::Store::claim_many):
/// its dedup key and, if it has one, the entity whose state to read when
/// the claim is won.
///
/// ```
/// use alm_webhooks::store::{ClaimRequest, DedupKey};
/// use alm_webhooks::AccountId;
///
/// let key = DedupKey { account_id: AccountId(1), event_id: "e1".parse().unwrap() };
/// let request = ClaimRequest { key: &key, state: None };
/// assert_eq!(request.key.event_id.as_str(), "e1");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ClaimRequest<'a> {
    /// The event.
    pub key: &'a DedupKey,
    /// Its entity, or `None` for an event without state.
    pub state: Option<&'a StateKey>,
}

/// The chains of one [`Store::commit_many`](super::Store::commit_many)
/// call: for each state an earlier commit of the call updated (or tried
/// to), whether its current version was written by the call. A later
/// update of that state is made only if it was.
#[derive(Debug)]
pub(crate) struct Chains<K> {
    written: HashMap<K, bool, foldhash::fast::RandomState>,
}

impl<K> Default for Chains<K> {
    fn default() -> Self {
        Self {
            written: HashMap::default(),
        }
    }
}

impl<K: Hash + Eq> Chains<K> {
    /// Whether an update of `state` may be tried: the first of the call,
    /// or a link after one the call wrote.
    pub(crate) fn may_write(&self, state: &K) -> bool {
        self.written.get(state).copied().unwrap_or(true)
    }

    /// Notes the outcome of an update of `state` (a refusal leaves the
    /// state as it was).
    pub(crate) fn note(&mut self, state: K, outcome: CommitOutcome) {
        let wrote = outcome == CommitOutcome::Committed;
        let known = self.written.entry(state).or_insert(false);
        *known |= wrote;
    }
}
