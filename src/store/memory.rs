//! The in-memory store ([`MemoryStore`]).

mod learners;
mod many;
mod outbox;

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use super::{
    Claim, ClaimOwner, ClaimRequest, Commit, CommitOutcome, DedupKey, Store, StoreError, Versioned,
};
use crate::rules::StateKey;

const SHARDS: usize = 64;

/// The fewest claims between two clean-ups of one shard.
const MIN_CLAIMS_BETWEEN_CLEANUPS: usize = 64;

/// A 128-bit fingerprint: two keyed hashes of an event or a state key.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Key([u64; 2]);

impl std::hash::Hash for Key {
    /// The fingerprint is already a keyed hash: the table uses its first
    /// half as is (the second picks the shard).
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0[0]);
    }
}

/// Hands a [`Key`]'s first half to the table unchanged.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write_u64(&mut self, word: u64) {
        self.0 = word;
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `Key` is hashed here, through `write_u64`; fold anything else
        // in all the same rather than panic.
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(word);
        }
    }
}

type Table<V> = HashMap<Key, V, BuildHasherDefault<PassThrough>>;

#[derive(Default)]
struct Shard {
    /// Decided events: key → expiry in Unix seconds.
    decided: Table<u32>,
    /// Live claims: key → (owner, lease end in Unix milliseconds).
    in_flight: Table<(ClaimOwner, i64)>,
    /// Entity states: key → (state, expiry in Unix seconds).
    states: Table<(Versioned, u32)>,
    /// Claims since the last clean-up.
    claims: usize,
}

impl Shard {
    fn len(&self) -> usize {
        self.decided.len() + self.in_flight.len() + self.states.len()
    }

    /// Drops what expired by `now`; returns how many entries went.
    fn remove_expired(&mut self, now: SystemTime) -> usize {
        let (now_s, now_ms) = (unix_seconds_u32(now), unix_millis(now));
        let before = self.len();
        self.decided.retain(|_, until| *until > now_s);
        self.in_flight.retain(|_, (_, end)| *end > now_ms);
        self.states.retain(|_, (_, until)| *until > now_s);
        self.claims = 0;
        before - self.len()
    }

    /// Counts a claim, and cleans up once enough claims paid for it.
    fn count_claim(&mut self, now: SystemTime) {
        self.claims += 1;
        if self.claims >= MIN_CLAIMS_BETWEEN_CLEANUPS.max(self.len() / 2) {
            self.remove_expired(now);
        }
    }
}

/// The in-memory store: the default, for tests and single-process receivers.
///
/// **State is lost on restart**, and two processes each keep their own: use
/// a shared store (PostgreSQL, Redis) for several replicas, or a durable one
/// to survive restarts.
///
/// It is sharded (64 mutexes, chosen by the key's hash; no global lock on the
/// hot path): [`Store::claim_many`] and [`Store::commit_many`] hash each key
/// once and lock each shard they touch once per call (per 256 events for a
/// longer call), in index order. It is compact: a remembered event id costs a 128-bit fingerprint
/// of (`accountId`, `eventId`) (two `foldhash` hashes under per-store random
/// seeds) and a 32-bit expiry, 24 bytes in the table plus
/// the table's own overhead (see `BENCHMARKS.md` for the measured bytes per
/// id). Two different ids collide with probability about n²/2¹²⁹.
///
/// **It expires by itself.** Each shard drops its expired entries (by the
/// `now` of the claims it sees) once the claims since its last clean-up
/// reach half its size (at least 64): a clean-up costs time in proportion
/// to the shard, paid for by as many claims, so each claim costs O(1)
/// amortised and the store holds about the events of one dedup window,
/// even if [`Store::sweep`] is never called.
///
/// ```
/// use alm_webhooks::store::MemoryStore;
/// let store = MemoryStore::new();
/// assert_eq!(store.remembered_events(), 0);
/// ```
pub struct MemoryStore {
    shards: Box<[Mutex<Shard>]>,
    hashers: [foldhash::quality::RandomState; 2],
    /// The learner projection, when on.
    learners: Option<Mutex<learners::Learners>>,
    /// The outbox, when on.
    outbox: Option<Mutex<outbox::Queue>>,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("shards", &self.shards.len())
            .field("remembered_events", &self.remembered_events())
            .finish()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

fn unix_seconds_u32(t: SystemTime) -> u32 {
    u32::try_from(super::unix_millis(t).max(0) / 1000).unwrap_or(u32::MAX)
}

use super::unix_millis;

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// An empty store with room for about `events` remembered events.
    pub fn with_capacity(events: usize) -> Self {
        let per_shard = events.div_ceil(SHARDS);
        let shards = (0..SHARDS)
            .map(|_| {
                Mutex::new(Shard {
                    decided: Table::with_capacity_and_hasher(per_shard, Default::default()),
                    ..Shard::default()
                })
            })
            .collect();
        Self {
            shards,
            hashers: [
                foldhash::quality::RandomState::default(),
                foldhash::quality::RandomState::default(),
            ],
            learners: None,
            outbox: None,
        }
    }

    /// How many decided events are remembered (expired ones included until
    /// their shard cleans up or the next sweep).
    pub fn remembered_events(&self) -> usize {
        self.shards.iter().map(|s| lock(s).decided.len()).sum()
    }

    /// Records an event as decided without going through a claim, as a
    /// bulk load would (used to measure memory, or to seed a store).
    pub fn remember(&self, key: &DedupKey, until: SystemTime) {
        let k = self.event_key(key);
        lock(self.shard(k))
            .decided
            .insert(k, unix_seconds_u32(until));
    }

    fn hash(&self, parts: impl Fn(&mut dyn Hasher)) -> Key {
        Key(self.hashers.each_ref().map(|state| {
            let mut h = state.build_hasher();
            parts(&mut h);
            h.finish()
        }))
    }

    fn event_key(&self, key: &DedupKey) -> Key {
        self.hash(|h| {
            h.write_u64(key.account_id.get());
            h.write(key.event_id.as_str().as_bytes());
            h.write_u8(0xff);
        })
    }

    fn state_key(&self, key: &StateKey) -> Key {
        self.hash(|mut h| {
            h.write_u8(0xfe);
            std::hash::Hash::hash(key, &mut h);
        })
    }

    fn shard(&self, key: Key) -> &Mutex<Shard> {
        &self.shards[Self::shard_index(key)]
    }

    fn shard_index(key: Key) -> usize {
        (key.0[1] % SHARDS as u64) as usize
    }
}

fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    // A panic while holding a shard cannot leave it half-written (every
    // change is a single insert or remove), so a poisoned lock is usable.
    shard
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Store for MemoryStore {
    async fn claim(
        &self,
        key: &DedupKey,
        owner: ClaimOwner,
        lease: Duration,
        now: SystemTime,
    ) -> Result<Claim, StoreError> {
        let k = self.event_key(key);
        Ok(claim_in(&mut lock(self.shard(k)), k, owner, lease, now))
    }

    async fn claim_many(
        &self,
        requests: &[ClaimRequest<'_>],
        owner: ClaimOwner,
        lease: Duration,
        now: SystemTime,
    ) -> Result<Vec<(Claim, Versioned)>, StoreError> {
        Ok(self.claim_set(requests, owner, lease, now))
    }

    async fn load(&self, key: &StateKey) -> Result<Versioned, StoreError> {
        let k = self.state_key(key);
        let shard = lock(self.shard(k));
        Ok(shard
            .states
            .get(&k)
            .map(|(v, _)| v.clone())
            .unwrap_or_default())
    }

    async fn commit(&self, commit: Commit<'_>) -> Result<CommitOutcome, StoreError> {
        let ek = self.event_key(commit.key);
        let update = commit.update.map(|u| (self.state_key(u.key), u));
        let ei = Self::shard_index(ek);
        let outcome = match update.as_ref().map(|(sk, _)| Self::shard_index(*sk)) {
            // Two shards: lock them in index order, so commits never deadlock.
            Some(si) if si != ei => {
                let mut low = lock(&self.shards[ei.min(si)]);
                let mut high = lock(&self.shards[ei.max(si)]);
                let (events, states) = if ei < si {
                    (&mut *low, &mut *high)
                } else {
                    (&mut *high, &mut *low)
                };
                apply_commit(events, Some(states), ek, update, &commit, || {})
            }
            _ => apply_commit(
                &mut lock(&self.shards[ei]),
                None,
                ek,
                update,
                &commit,
                || {},
            ),
        };
        Ok(outcome)
    }

    async fn commit_many(&self, commits: &[Commit<'_>]) -> Result<Vec<CommitOutcome>, StoreError> {
        Ok(self.commit_set(commits))
    }

    fn wants_decided(&self) -> bool {
        self.learners.is_some() || self.outbox.is_some()
    }

    async fn commit_decided(
        &self,
        commits: &[Commit<'_>],
        decided: &[Option<super::Decided<'_>>],
    ) -> Result<Vec<CommitOutcome>, StoreError> {
        Ok(self.commit_projected(commits, decided))
    }

    async fn renew(
        &self,
        key: &DedupKey,
        token: ClaimOwner,
        lease: Duration,
        now: SystemTime,
    ) -> Result<bool, StoreError> {
        let k = self.event_key(key);
        let mut shard = lock(self.shard(k));
        let Some(held) = shard.in_flight.get_mut(&k).filter(|(t, _)| *t == token) else {
            return Ok(false);
        };
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        held.1 = unix_millis(now).saturating_add(lease_ms);
        Ok(true)
    }

    async fn release(&self, key: &DedupKey, token: ClaimOwner) -> Result<(), StoreError> {
        let k = self.event_key(key);
        let mut shard = lock(self.shard(k));
        if shard.in_flight.get(&k).map(|&(t, _)| t) == Some(token) {
            shard.in_flight.remove(&k);
        }
        Ok(())
    }

    async fn sweep(&self, now: SystemTime) -> Result<u64, StoreError> {
        let mut removed = 0u64;
        for shard in self.shards.iter() {
            removed += lock(shard).remove_expired(now) as u64;
        }
        Ok(removed)
    }
}

/// A claim of the event keyed `k`, under the lock of its shard.
fn claim_in(
    shard: &mut Shard,
    k: Key,
    owner: ClaimOwner,
    lease: Duration,
    now: SystemTime,
) -> Claim {
    shard.count_claim(now);
    let now_s = unix_seconds_u32(now);
    if shard.decided.get(&k).is_some_and(|&until| until > now_s) {
        return Claim::AlreadyDecided;
    }
    let now_ms = unix_millis(now);
    if let Some(&(held, end)) = shard.in_flight.get(&k) {
        // A live claim: another holder's (or this owner's own, the same
        // event twice) is in flight; the same holder's under another
        // lease is an earlier attempt's, taken over.
        if end > now_ms && (held == owner || !held.same_holder(owner)) {
            return Claim::InFlight;
        }
    }
    let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
    shard
        .in_flight
        .insert(k, (owner, now_ms.saturating_add(lease_ms)));
    Claim::Claimed(owner)
}

/// The commit itself, under the shard locks: token check, version check,
/// then both writes.
fn apply_commit(
    events: &mut Shard,
    states: Option<&mut Shard>,
    ek: Key,
    update: Option<(Key, super::StateUpdate<'_>)>,
    commit: &Commit<'_>,
    then: impl FnOnce(),
) -> CommitOutcome {
    if events.in_flight.get(&ek).map(|&(t, _)| t) != Some(commit.token) {
        return CommitOutcome::LeaseLost;
    }
    let until = unix_seconds_u32(commit.remember_until);
    if let Some((sk, update)) = update {
        let table = match states {
            Some(shard) => &mut shard.states,
            None => &mut events.states,
        };
        let current = table.get(&sk).map_or(0, |(v, _)| v.version);
        if current != update.expected_version {
            return CommitOutcome::StateChanged;
        }
        let next = Versioned {
            state: update.state.clone(),
            version: current + 1,
        };
        table.insert(sk, (next, unix_seconds_u32(commit.state_until)));
    }
    events.in_flight.remove(&ek);
    events.decided.insert(ek, until);
    then(); // under the commit's locks
    CommitOutcome::Committed
}
