//! Set-based operations: what [`Store::claim_many`](super::Store::claim_many)
//! takes, and how many events a store sends at once.

#[cfg(feature = "sqlite")]
use super::CommitOutcome;
use super::DedupKey;
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

/// Makes one call's commits in order, as [`Store::commit_many`](super::Store::commit_many)
/// promises for chains: `states[i]` is the state commit `i` updates (if
/// any), `commit(i)` makes commit `i`. A commit that updates a state whose
/// chain broke in this call (an earlier update of it was refused, and no
/// earlier one was made) is [`CommitOutcome::StateChanged`] without being
/// tried. For SQLite, which checks chains in code (the memory store does
/// the same under its shard locks, in `memory::many`).
#[cfg(feature = "sqlite")]
pub(crate) fn chained<K: PartialEq, E>(
    states: &[Option<K>],
    mut commit: impl FnMut(usize) -> Result<CommitOutcome, E>,
) -> Result<Vec<CommitOutcome>, E> {
    // States whose chain broke: updated (tried) by the call, their current
    // version not written by it. Usually empty.
    let mut broken: Vec<&K> = Vec::new();
    let mut outcomes: Vec<CommitOutcome> = Vec::with_capacity(states.len());
    for (at, state) in states.iter().enumerate() {
        let outcome = match state {
            Some(k) if broken.contains(&k) => CommitOutcome::StateChanged,
            _ => commit(at)?,
        };
        if let Some(k) = state
            .as_ref()
            .filter(|_| outcome != CommitOutcome::Committed)
        {
            let written = states[..at]
                .iter()
                .zip(&outcomes)
                .any(|(s, o)| *o == CommitOutcome::Committed && s.as_ref() == Some(k));
            if !written && !broken.contains(&k) {
                broken.push(k);
            }
        }
        outcomes.push(outcome);
    }
    Ok(outcomes)
}
