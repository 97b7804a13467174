//! Where the engine keeps what it decided: which events are done, which are
//! in flight, and each entity's rule state.
//!
//! A store gives three guarantees, within one process or across many:
//!
//! - **One claim at a time.** [`Store::claim`] hands an event to exactly one
//!   owner until that owner commits, releases, or its lease expires; a
//!   later attempt of the same delivery (the same
//!   [holder](ClaimOwner::holder)) takes its own leftover claim over at once.
//! - **Owner-checked commit.** [`Store::commit`] marks the event decided and
//!   swaps the entity's state in one atomic step, only if the claim's
//!   [`ClaimOwner`] is still the current one (an attempt whose lease expired
//!   and was re-claimed, or that a retry took over, cannot commit over the
//!   newer claim) and only if the state's version is the one the decision
//!   was made on.
//! - **Expiry.** Decided events are remembered for the dedup window and then
//!   forgotten; entity states are kept until their own, later expiry
//!   ([`Commit::state_until`]); [`Store::sweep`] removes both without
//!   blocking deliveries.
//!
//! The rules themselves live in [`crate::rules`]; stores only load and swap state.

mod any;
mod arc;
mod boxed;
mod dedup;
mod error;
mod hooks;
mod learner_reads;
mod many;
mod memory;
mod outbox;
mod owner;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub(crate) mod postgres;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub(crate) mod redis;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub(crate) mod sqlite;
#[cfg(any(feature = "redis", feature = "postgres"))]
mod url_params;

use std::future::Future;
use std::time::{Duration, SystemTime};

use crate::rules::{EntityState, StateKey};

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use self::redis::RedisStore;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use self::sqlite::SqliteStore;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use self::sqlite::hooks::SqliteHook;
pub use crate::key_text::{MAX_PLAIN_KEY_BYTES, storage_key};
pub use any::AnyStore;
pub use boxed::{BoxFuture, DynStore};
pub use dedup::DedupKey;
pub use error::{StoreError, StoreErrorKind};
pub use hooks::Decided;
pub use learner_reads::LearnerReads;
pub use many::{ClaimRequest, MANY_CHUNK};
pub use memory::MemoryStore;
pub use outbox::{OutboxEntry, OutboxStats, OutboxStore};
pub use owner::{ClaimOwner, ClaimToken};
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use postgres::{PostgresHook, PostgresStore};
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
#[doc(no_inline)]
pub use rusqlite;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
#[doc(no_inline)]
pub use tokio_postgres;
#[cfg(any(feature = "redis", feature = "postgres"))]
pub(crate) use url_params::take_param;

/// A time in milliseconds since the Unix epoch (negative before it),
/// saturated at `i64`'s bounds: how the stores that keep times as numbers
/// (memory, SQLite, Redis) store the `SystemTime`s of the trait.
pub(crate) fn unix_millis(t: SystemTime) -> i64 {
    match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}

/// A lease in milliseconds, at most about a century: what the shared stores
/// add to their own clock, so the sum stays a valid time.
#[cfg_attr(not(any(feature = "postgres", feature = "redis")), allow(dead_code))]
pub(crate) fn lease_millis(lease: Duration) -> i64 {
    const CENTURY_MS: i64 = 100 * 365 * 24 * 3600 * 1000;
    i64::try_from(lease.as_millis()).map_or(CENTURY_MS, |ms| ms.min(CENTURY_MS))
}

/// The answer to a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The caller holds the event, as the owner it claimed with, until it
    /// commits, releases, or the lease ends.
    Claimed(ClaimOwner),
    /// The event was already decided within the dedup window.
    AlreadyDecided,
    /// Another holder (or this very owner, earlier in the same call) holds
    /// a live claim.
    InFlight,
}

/// A state with the version it was read at. Version 0 is "never written".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Versioned {
    /// The state.
    pub state: EntityState,
    /// Its version, incremented by every committed change.
    pub version: u64,
}

/// A state change to make together with a commit.
#[derive(Debug, Clone, Copy)]
pub struct StateUpdate<'a> {
    /// The entity.
    pub key: &'a StateKey,
    /// The version the decision was made on.
    pub expected_version: u64,
    /// The state to store.
    pub state: &'a EntityState,
}

/// Everything one commit writes, atomically.
#[derive(Debug, Clone, Copy)]
pub struct Commit<'a> {
    /// The event being decided.
    pub key: &'a DedupKey,
    /// The claim that allows it.
    pub token: ClaimOwner,
    /// The entity's new state, if the event changes one.
    pub update: Option<StateUpdate<'a>>,
    /// Until when the decided event is remembered (now + dedup window).
    pub remember_until: SystemTime,
    /// Until when the entity's state written by `update` is kept (now + the
    /// engine's state retention, at least `remember_until`): rule state
    /// outlives the dedup window. Unused without an `update`.
    pub state_until: SystemTime,
}

/// The answer to a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    /// The event is decided and the state swapped.
    Committed,
    /// The state's version moved since it was read; nothing was written.
    /// Reload, decide again, commit again.
    StateChanged,
    /// The claim is no longer this caller's; nothing was written.
    LeaseLost,
}

/// The storage behind the engine. Implementations must make `claim` and
/// `commit` atomic with respect to every other caller that shares the store.
///
/// **Times are [`SystemTime`]s**: the standard library's, so a store needs
/// no date crate (and the trait names no foreign type), and it can turn
/// one into what its database keeps, milliseconds since the epoch here
/// (`duration_since(UNIX_EPOCH)`; times before the epoch do not occur) or
/// a `TIMESTAMPTZ` (`tokio-postgres` takes a `SystemTime` as it is).
///
/// **Whose clock.** Dedup windows follow the caller's clock (the `now` and
/// `remember_until` the engine passes). A store shared by several hosts
/// keeps leases on its own clock instead, ignoring `now` for them
/// (PostgreSQL's `clock_timestamp()`, Redis's `TIME`), so that replicas
/// whose clocks disagree never both hold an event; a store on one host
/// (memory, SQLite) uses `now`.
///
#[doc = include_str!("skeleton.md")]
pub trait Store: Send + Sync + 'static {
    /// Claims an event for `owner`, for `lease`, unless it is decided or in
    /// flight. A live claim of the same [holder](ClaimOwner::holder) under
    /// another lease is taken over at once (the earlier attempt is fenced);
    /// one of another holder, or of this very owner, is in flight.
    fn claim(
        &self,
        key: &DedupKey,
        owner: ClaimOwner,
        lease: Duration,
        now: SystemTime,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send;

    /// Reads an entity's state (the default state at version 0 if none).
    fn load(&self, key: &StateKey) -> impl Future<Output = Result<Versioned, StoreError>> + Send;

    /// Claims an event and, if the claim is won and `state` is given, reads
    /// that entity's state: what the engine does first for every event, in
    /// one call, so a shared store can answer it in one round trip. The
    /// state is the default (version 0) when the claim is not won or
    /// `state` is `None`.
    ///
    /// The default implementation calls [`Store::claim`], then
    /// [`Store::load`]; stores override it to save the second round trip.
    fn claim_and_load(
        &self,
        key: &DedupKey,
        state: Option<&StateKey>,
        owner: ClaimOwner,
        lease: Duration,
        now: SystemTime,
    ) -> impl Future<Output = Result<(Claim, Versioned), StoreError>> + Send {
        async move {
            let claim = self.claim(key, owner, lease, now).await?;
            let loaded = match (claim, state) {
                (Claim::Claimed(_), Some(state)) => self.load(state).await?,
                _ => Versioned::default(),
            };
            Ok((claim, loaded))
        }
    }

    /// Claims many events at once, each as [`Store::claim_and_load`] would,
    /// one after another in order; returns one answer per request, in
    /// order. A shared store answers a slice of up to [`MANY_CHUNK`]
    /// events in one round trip (one statement on PostgreSQL, one script on
    /// Redis, one transaction on SQLite); a longer slice in one round trip
    /// per chunk.
    ///
    /// What the engine can rely on:
    ///
    /// - **One owner for the call**: every event is claimed for `owner`;
    ///   an event whose live claim is held by the same
    ///   [holder](ClaimOwner::holder) under another lease (an earlier
    ///   attempt of the delivery) is taken over, as by [`Store::claim`].
    /// - **The same event twice** in one call: the first occurrence is
    ///   answered as a lone claim would be; a later one sees the claim the
    ///   first made (this very owner's), so it is [`Claim::InFlight`] (the
    ///   lease is live) and reads no state. A caller recognises its own
    ///   repeat by comparing keys: no other caller can hold a claim this
    ///   call just won.
    /// - **The same state twice**: every winner reads the state as it was
    ///   before the call (claims do not write states), with its version.
    /// - Each claim is atomic on its own; the call as a whole is not a
    ///   snapshot (a commit by another caller may land between two claims
    ///   of one slice, and the later claim then reads the newer state).
    /// - **A failed call** should leave nothing claimed (one transaction on
    ///   PostgreSQL and SQLite; the default implementation releases what it
    ///   won before the failure): after a permanent error the engine claims
    ///   the events one by one, so that only the event the error is about
    ///   fails, and an event a failed call left claimed is answered busy
    ///   until its lease ends, like one held elsewhere.
    ///
    /// The default implementation calls [`Store::claim_and_load`] for each;
    /// when one fails, it releases the claims it won before it.
    fn claim_many(
        &self,
        requests: &[ClaimRequest<'_>],
        owner: ClaimOwner,
        lease: Duration,
        now: SystemTime,
    ) -> impl Future<Output = Result<Vec<(Claim, Versioned)>, StoreError>> + Send {
        async move {
            let mut answers = Vec::with_capacity(requests.len());
            for request in requests {
                match self
                    .claim_and_load(request.key, request.state, owner, lease, now)
                    .await
                {
                    Ok(answer) => answers.push(answer),
                    Err(error) => {
                        for (request, (claim, _)) in requests.iter().zip(&answers) {
                            if let Claim::Claimed(token) = claim {
                                // Best effort: a claim not released ends
                                // with its lease.
                                let _ = self.release(request.key, *token).await;
                            }
                        }
                        return Err(error);
                    }
                }
            }
            Ok(answers)
        }
    }

    /// Marks the event decided and applies the state update, atomically, if
    /// the token and version still hold.
    fn commit(
        &self,
        commit: Commit<'_>,
    ) -> impl Future<Output = Result<CommitOutcome, StoreError>> + Send;

    /// Commits several decisions as if by [`Store::commit`], one after
    /// another in order (a later commit sees what an earlier one wrote), each
    /// atomic on its own; returns one outcome per commit. When it returns
    /// `Ok`, all of them are durable. The engine uses it when
    /// [`EngineBuilder::commit_batch`](crate::engine::EngineBuilder::commit_batch)
    /// is above 1. A shared store commits a slice of up to [`MANY_CHUNK`]
    /// decisions in one round trip and one transaction (PostgreSQL, SQLite)
    /// or one script (Redis).
    ///
    /// What the engine can rely on, as one commit after another (but for
    /// the rest of a broken chain, below):
    ///
    /// - **The same event twice**: the first commit decides it; a later one
    ///   finds no claim to commit, [`CommitOutcome::LeaseLost`], and writes
    ///   nothing.
    /// - **The same state twice**: each update is checked against the
    ///   version the earlier ones left. A state updated by two commits of
    ///   one call, at `expected_version` v and then v + 1, ends at version
    ///   v + 2; a second update still at v is [`CommitOutcome::StateChanged`]
    ///   and writes nothing.
    /// - **The rest of a chain**: a commit that updates a state an earlier
    ///   commit of the call updated (or tried to) is a link of that
    ///   state's chain, decided after the earlier links on the view they
    ///   lead to. It is made only if the state's current version was
    ///   written by this call; otherwise (the chain's first update was
    ///   refused, and the version it expects, if there, was written by
    ///   someone else) it is [`CommitOutcome::StateChanged`] and writes
    ///   nothing. So a refused link refuses the rest of its chain, and the
    ///   engine decides them again on the state it finds, instead of
    ///   writing over another delivery's commit.
    /// - Any other refused commit writes nothing and does not stop the
    ///   others.
    ///
    /// The default implementation calls [`Store::commit`] for each, and
    /// refuses the rest of a broken chain itself.
    fn commit_many(
        &self,
        commits: &[Commit<'_>],
    ) -> impl Future<Output = Result<Vec<CommitOutcome>, StoreError>> + Send {
        async move {
            let mut outcomes = Vec::with_capacity(commits.len());
            // States whose chain broke: updated (tried) by the call, their
            // current version not written by it. Usually empty.
            let mut broken: Vec<&StateKey> = Vec::new();
            for (at, commit) in commits.iter().enumerate() {
                let state = commit.update.map(|u| u.key);
                let outcome = match state {
                    Some(k) if broken.contains(&k) => CommitOutcome::StateChanged,
                    _ => self.commit(*commit).await?,
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
            Ok(outcomes)
        }
    }

    /// Whether this store runs commit hooks (a learner projection, hooks of
    /// your own), so that the engine passes the decided events to
    /// [`Store::commit_decided`]. `false` unless a store says otherwise.
    fn wants_decided(&self) -> bool {
        false
    }

    /// [`Store::commit_many`], with the event each commit decides (`None`
    /// where there is none to pass on): a store that runs commit hooks runs
    /// them on the events whose commit succeeds, in the same atomic step
    /// (see [`Decided`]). The commits follow every rule of
    /// [`Store::commit_many`] (the owner check, the rest of a broken chain
    /// refused); a refused commit's event reaches no hook. By default the
    /// events are not used.
    fn commit_decided(
        &self,
        commits: &[Commit<'_>],
        decided: &[Option<Decided<'_>>],
    ) -> impl Future<Output = Result<Vec<CommitOutcome>, StoreError>> + Send {
        let _ = decided;
        self.commit_many(commits)
    }

    /// Extends a claim this caller holds, so that a handler or a commit
    /// batch that runs longer than the lease keeps it: the lease then ends
    /// `lease` after now. Now is the store's clock where the store keeps
    /// leases on its own clock (PostgreSQL, Redis: `now` is ignored), else
    /// `now` (memory, SQLite: one host, one clock). Returns `false` when
    /// the claim is no longer this caller's (committed, released, or taken
    /// over after its lease ended): its commit would be
    /// [`CommitOutcome::LeaseLost`]. A claim whose lease ended but that no
    /// one took over is still held, and is renewed.
    ///
    /// The default implementation fails: every store of this crate
    /// overrides it.
    fn renew(
        &self,
        key: &DedupKey,
        token: ClaimOwner,
        lease: Duration,
        now: SystemTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        let _ = (key, token, lease, now);
        async { Err(StoreError::new("this store cannot renew a claim")) }
    }

    /// Extends many claims this caller holds, each as [`Store::renew`]
    /// would; returns one answer per claim, in order (`false`: that claim is
    /// no longer this caller's). The engine calls it while the handlers of
    /// a chunk of claimed events run longer than a third of the lease.
    ///
    /// The default implementation calls [`Store::renew`] for each (one
    /// round trip each on a shared store); a store may override it with one
    /// round trip per chunk.
    fn renew_many(
        &self,
        claims: &[(&DedupKey, ClaimOwner)],
        lease: Duration,
        now: SystemTime,
    ) -> impl Future<Output = Result<Vec<bool>, StoreError>> + Send {
        async move {
            let mut answers = Vec::with_capacity(claims.len());
            for (key, token) in claims {
                answers.push(self.renew(key, *token, lease, now).await?);
            }
            Ok(answers)
        }
    }

    /// Gives a claim up (the handler failed): the event can be claimed again
    /// at once. Releasing a claim that is no longer held does nothing.
    fn release(
        &self,
        key: &DedupKey,
        token: ClaimOwner,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Removes decided events and states that expired before `now`; returns
    /// how many entries went.
    fn sweep(&self, now: SystemTime) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_are_capped_at_a_century() {
        assert_eq!(lease_millis(Duration::from_secs(30)), 30_000);
        assert_eq!(lease_millis(Duration::MAX), 100 * 365 * 24 * 3600 * 1000);
    }
}
