//! The memory store's set-based calls ([`Store::claim_many`] and
//! [`Store::commit_many`]): each key is hashed once, and each shard a call
//! touches is locked once for the call (for up to [`LOCKED_AT_ONCE`]
//! events; a longer call, one round of locks per that many). The shards
//! are locked in index order, as every call that holds two shards locks
//! them, so calls never deadlock.
//!
//! [`Store::claim_many`]: crate::store::Store::claim_many
//! [`Store::commit_many`]: crate::store::Store::commit_many

use std::cell::RefCell;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use super::{Key, MemoryStore, SHARDS, Shard, apply_commit, claim_in, lock};
use crate::rules::StateKey;
use crate::store::{Claim, ClaimOwner, ClaimRequest, Commit, CommitOutcome, Versioned};

/// The most events handled under one round of shard locks: a long call
/// lets other callers in between rounds, so that a 5,000-event delivery
/// does not hold every shard for the whole of its call.
const LOCKED_AT_ONCE: usize = 256;

// A call's shards are a bit set in a `u64`.
const _: () = assert!(SHARDS <= 64);

thread_local! {
    /// The fingerprints of the events (and their entities) of the round
    /// under way: at most [`LOCKED_AT_ONCE`], kept between calls so that a
    /// warm call allocates nothing.
    static SCRATCH: RefCell<Vec<(Key, Option<Key>)>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's scratch buffer (a fresh one if the thread's
/// is in use or gone).
fn with_scratch<T>(f: impl FnOnce(&mut Vec<(Key, Option<Key>)>) -> T) -> T {
    let mut f = Some(f);
    let kept = SCRATCH.try_with(|scratch| {
        let mut keys = scratch.try_borrow_mut().ok()?;
        keys.clear();
        let run = f.take()?;
        Some(run(&mut keys))
    });
    match (kept, f) {
        (Ok(Some(answer)), _) => answer,
        (_, Some(run)) => run(&mut Vec::with_capacity(LOCKED_AT_ONCE)),
        (_, None) => unreachable!("the scratch closure ran and returned"),
    }
}

/// The bit of `key`'s shard.
fn bit(key: Key) -> u64 {
    1 << MemoryStore::shard_index(key)
}

/// The shards of one round, locked in index order; unlocked when dropped.
struct Locked<'a> {
    guards: [Option<MutexGuard<'a, Shard>>; SHARDS],
}

impl<'a> Locked<'a> {
    fn new(shards: &'a [Mutex<Shard>], touched: u64) -> Self {
        let mut guards = std::array::from_fn(|_| None);
        let mut bits = touched;
        while bits != 0 {
            let at = bits.trailing_zeros() as usize;
            guards[at] = Some(lock(&shards[at]));
            bits &= bits - 1;
        }
        Self { guards }
    }

    /// The shard of `key`, locked by this round.
    fn of(&mut self, key: Key) -> &mut Shard {
        self.guards[MemoryStore::shard_index(key)]
            .as_deref_mut()
            .expect("every shard of the round is locked")
    }

    /// The shard of the event key `ek`, and the one of the state key `sk`
    /// when it is another.
    fn pair(&mut self, ek: Key, sk: Option<Key>) -> (&mut Shard, Option<&mut Shard>) {
        let ei = MemoryStore::shard_index(ek);
        let si = sk.map_or(ei, MemoryStore::shard_index);
        if si == ei {
            return (self.of(ek), None);
        }
        let (low, high) = self.guards.split_at_mut(ei.max(si));
        let locked = "every shard of the round is locked";
        let first = low[ei.min(si)].as_deref_mut().expect(locked);
        let second = high[0].as_deref_mut().expect(locked);
        if ei < si {
            (first, Some(second))
        } else {
            (second, Some(first))
        }
    }
}

impl MemoryStore {
    /// [`Store::claim_many`](crate::store::Store::claim_many): each claim
    /// as [`Store::claim`](crate::store::Store::claim), in order, and the
    /// state read under the same locks when the claim is won.
    pub(super) fn claim_set(
        &self,
        requests: &[ClaimRequest<'_>],
        owner: ClaimOwner,
        lease: Duration,
        now: SystemTime,
    ) -> Vec<(Claim, Versioned)> {
        let mut answers = Vec::with_capacity(requests.len());
        with_scratch(|keys| {
            for round in requests.chunks(LOCKED_AT_ONCE) {
                keys.clear();
                let mut touched = 0;
                for request in round {
                    let ek = self.event_key(request.key);
                    let sk = request.state.map(|s| self.state_key(s));
                    touched |= bit(ek) | sk.map_or(0, bit);
                    keys.push((ek, sk));
                }
                let mut locked = Locked::new(&self.shards, touched);
                for &(ek, sk) in keys.iter() {
                    let claim = claim_in(locked.of(ek), ek, owner, lease, now);
                    let loaded = match (claim, sk) {
                        (Claim::Claimed(_), Some(sk)) => locked
                            .of(sk)
                            .states
                            .get(&sk)
                            .map(|(v, _)| v.clone())
                            .unwrap_or_default(),
                        _ => Versioned::default(),
                    };
                    answers.push((claim, loaded));
                }
            }
        });
        answers
    }

    /// [`Store::commit_many`](crate::store::Store::commit_many): each
    /// commit as [`Store::commit`](crate::store::Store::commit), in order,
    /// the rest of a broken chain refused.
    pub(super) fn commit_set(&self, commits: &[Commit<'_>]) -> Vec<CommitOutcome> {
        self.commit_rounds(commits, || (), |(), _| {})
    }

    /// [`commit_set`](Self::commit_set), with `open` called once per round
    /// of shard locks, after they are taken (what it returns is dropped
    /// before they are let go), and `committed(&mut opened, at)` under
    /// them for each commit `at` made: what the learner table and the
    /// outbox write in the same step as the decision, their own locks
    /// taken once per round rather than once per event.
    pub(super) fn commit_rounds<G>(
        &self,
        commits: &[Commit<'_>],
        mut open: impl FnMut() -> G,
        mut committed: impl FnMut(&mut G, usize),
    ) -> Vec<CommitOutcome> {
        let mut outcomes = Vec::with_capacity(commits.len());
        // States whose chain broke: updated (tried) by the call, their
        // current version not written by it. Usually empty.
        let mut broken: Vec<&StateKey> = Vec::new();
        with_scratch(|keys| {
            for round in commits.chunks(LOCKED_AT_ONCE) {
                keys.clear();
                let mut touched = 0;
                for commit in round {
                    let ek = self.event_key(commit.key);
                    let sk = commit.update.map(|u| self.state_key(u.key));
                    touched |= bit(ek) | sk.map_or(0, bit);
                    keys.push((ek, sk));
                }
                let mut locked = Locked::new(&self.shards, touched);
                let mut opened = open();
                for (commit, &(ek, sk)) in round.iter().zip(keys.iter()) {
                    let state = commit.update.map(|u| u.key);
                    let at = outcomes.len();
                    let outcome = match state {
                        Some(k) if broken.contains(&k) => CommitOutcome::StateChanged,
                        _ => {
                            let update = sk.zip(commit.update);
                            let (events, states) = locked.pair(ek, sk);
                            apply_commit(events, states, ek, update, commit, || {
                                committed(&mut opened, at);
                            })
                        }
                    };
                    if let Some(k) = state.filter(|_| outcome != CommitOutcome::Committed) {
                        let written = commits[..at].iter().zip(&outcomes).any(|(c, o)| {
                            *o == CommitOutcome::Committed && c.update.is_some_and(|u| u.key == k)
                        });
                        if !written && !broken.contains(&k) {
                            broken.push(k);
                        }
                    }
                    outcomes.push(outcome);
                }
            }
        });
        outcomes
    }
}
