//! Where the engine keeps what it decided: which events are done, which are
//! in flight, and each entity's rule state.
//!
//! A store gives three guarantees, within one process or across many:
//!
//! - **One claim at a time.** [`Store::claim`] hands an event to exactly one
//!   caller until that caller commits, releases, or its lease expires.
//! - **Token-checked commit.** [`Store::commit`] marks the event decided and
//!   swaps the entity's state in one atomic step, only if the claim token is
//!   still the current one (a holder whose lease expired and was re-claimed
//!   cannot commit over the newer claim) and only if the state's version is
//!   the one the decision was made on.
//! - **Expiry.** Decided events are remembered for the dedup window and then
//!   forgotten; entity states are kept until their own, later expiry
//!   ([`Commit::state_until`]); [`Store::sweep`] removes both without
//!   blocking deliveries.
//!
//! The rules themselves live in [`crate::engine::rules`]; stores only load
//! and swap state.

mod any;
pub mod memory;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub mod sqlite;

use std::future::Future;
use std::time::Duration;

use http::StatusCode;
use time::OffsetDateTime;

use crate::engine::{EntityState, StateKey};
use crate::{AccountId, EventId};

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use self::redis::RedisStore;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use self::sqlite::SqliteStore;
pub use any::AnyStore;
#[cfg_attr(
    not(any(feature = "redis", feature = "postgres")),
    allow(unused_imports)
)]
pub(crate) use any::take_param;
pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use postgres::PostgresStore;

/// The deduplication key: (`accountId`, `eventId`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DedupKey {
    /// The account.
    pub account_id: AccountId,
    /// The event.
    pub event_id: EventId,
}

/// Proof of a claim; required to commit or release it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClaimToken(pub u128);

impl ClaimToken {
    /// A fresh token that no other claim holds (random, 128 bits).
    pub fn random() -> Self {
        use std::hash::{BuildHasher, Hasher};
        let half = || {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos()),
            );
            h.finish()
        };
        Self((u128::from(half()) << 64) | u128::from(half()))
    }
}

/// The answer to a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The caller holds the event until it commits, releases, or the lease
    /// ends.
    Claimed(ClaimToken),
    /// The event was already decided within the dedup window.
    AlreadyDecided,
    /// Another caller holds a live claim.
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
    pub token: ClaimToken,
    /// The entity's new state, if the event changes one.
    pub update: Option<StateUpdate<'a>>,
    /// Until when the decided event is remembered (now + dedup window).
    pub remember_until: OffsetDateTime,
    /// Until when the entity's state written by `update` is kept (now + the
    /// engine's state retention, at least `remember_until`): rule state
    /// outlives the dedup window. Unused without an `update`.
    pub state_until: OffsetDateTime,
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

/// A store could not be reached or answered wrongly. Deliveries are then
/// answered `503`, so ALM redelivers; nothing is lost.
#[derive(Debug, thiserror::Error)]
#[error("store unavailable: {message}")]
pub struct StoreError {
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StoreError {
    /// An error with a message (no secrets: connection strings must be
    /// stripped of passwords before they get here).
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// An error caused by another.
    pub fn with_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }

    /// The HTTP status this means: `503 Service Unavailable`.
    pub fn status(&self) -> StatusCode {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

/// The storage behind the engine. Implementations must make `claim` and
/// `commit` atomic with respect to every other caller that shares the store.
pub trait Store: Send + Sync + 'static {
    /// Claims an event for `lease`, unless it is decided or in flight.
    fn claim(
        &self,
        key: &DedupKey,
        lease: Duration,
        now: OffsetDateTime,
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
        lease: Duration,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(Claim, Versioned), StoreError>> + Send {
        async move {
            let claim = self.claim(key, lease, now).await?;
            let loaded = match (claim, state) {
                (Claim::Claimed(_), Some(state)) => self.load(state).await?,
                _ => Versioned::default(),
            };
            Ok((claim, loaded))
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
    /// is above 1.
    ///
    /// The default implementation calls [`Store::commit`] for each; a store
    /// whose commits wait for a disk flush overrides it to flush once.
    fn commit_many(
        &self,
        commits: &[Commit<'_>],
    ) -> impl Future<Output = Result<Vec<CommitOutcome>, StoreError>> + Send {
        async move {
            let mut outcomes = Vec::with_capacity(commits.len());
            for commit in commits {
                outcomes.push(self.commit(*commit).await?);
            }
            Ok(outcomes)
        }
    }

    /// Gives a claim up (the handler failed): the event can be claimed again
    /// at once. Releasing a claim that is no longer held does nothing.
    fn release(
        &self,
        key: &DedupKey,
        token: ClaimToken,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Removes decided events and states that expired before `now`; returns
    /// how many entries went.
    fn sweep(&self, now: OffsetDateTime) -> impl Future<Output = Result<u64, StoreError>> + Send;
}
