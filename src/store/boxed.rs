//! [`DynStore`]: the [`Store`] trait with boxed futures, so that a store
//! can sit behind `dyn` (in [`AnyStore::Custom`](super::AnyStore::Custom)).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use super::{
    Claim, ClaimOwner, ClaimRequest, Commit, CommitOutcome, DedupKey, Store, StoreError, Versioned,
};
use crate::rules::StateKey;

/// A boxed future that can cross threads: what [`DynStore`] returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The object-safe mirror of [`Store`]: the same calls, each returning a
/// [`BoxFuture`]. Every `S: Store + Debug` implements it, so there is
/// nothing to write: put a store of your own in
/// [`AnyStore::from_store`](super::AnyStore::from_store) and choose it at
/// run time beside this crate's stores. Its methods carry a `_boxed`
/// suffix so that they never shadow [`Store`]'s.
///
/// ```
/// use std::sync::Arc;
/// use alm_webhooks::store::{DynStore, MemoryStore};
/// let stores: Vec<Arc<dyn DynStore>> = vec![Arc::new(MemoryStore::new())];
/// assert_eq!(stores.len(), 1);
/// ```
#[allow(missing_docs)] // each method is documented on `Store`
pub trait DynStore: fmt::Debug + Send + Sync + 'static {
    /// [`Store::claim`].
    fn claim_boxed<'a>(
        &'a self,
        key: &'a DedupKey,
        owner: ClaimOwner,
        lease: Duration,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<Claim, StoreError>>;

    /// [`Store::load`].
    fn load_boxed<'a>(&'a self, key: &'a StateKey) -> BoxFuture<'a, Result<Versioned, StoreError>>;

    /// [`Store::claim_and_load`].
    fn claim_and_load_boxed<'a>(
        &'a self,
        key: &'a DedupKey,
        state: Option<&'a StateKey>,
        owner: ClaimOwner,
        lease: Duration,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<(Claim, Versioned), StoreError>>;

    /// [`Store::claim_many`].
    fn claim_many_boxed<'a>(
        &'a self,
        requests: &'a [ClaimRequest<'a>],
        owner: ClaimOwner,
        lease: Duration,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<Vec<(Claim, Versioned)>, StoreError>>;

    /// [`Store::wants_decided`].
    fn wants_decided_boxed(&self) -> bool;

    /// [`Store::commit_decided`].
    fn commit_decided_boxed<'a>(
        &'a self,
        commits: &'a [Commit<'a>],
        decided: &'a [Option<super::Decided<'a>>],
    ) -> BoxFuture<'a, Result<Vec<CommitOutcome>, StoreError>>;

    /// [`Store::commit`].
    fn commit_boxed<'a>(
        &'a self,
        commit: Commit<'a>,
    ) -> BoxFuture<'a, Result<CommitOutcome, StoreError>>;

    /// [`Store::commit_many`].
    fn commit_many_boxed<'a>(
        &'a self,
        commits: &'a [Commit<'a>],
    ) -> BoxFuture<'a, Result<Vec<CommitOutcome>, StoreError>>;

    /// [`Store::renew`].
    fn renew_boxed<'a>(
        &'a self,
        key: &'a DedupKey,
        token: ClaimOwner,
        lease: Duration,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// [`Store::renew_many`].
    fn renew_many_boxed<'a>(
        &'a self,
        claims: &'a [(&'a DedupKey, ClaimOwner)],
        lease: Duration,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<Vec<bool>, StoreError>>;

    /// [`Store::release`].
    fn release_boxed<'a>(
        &'a self,
        key: &'a DedupKey,
        token: ClaimOwner,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// [`Store::sweep`].
    fn sweep_boxed(&self, now: SystemTime) -> BoxFuture<'_, Result<u64, StoreError>>;
}

impl<S: Store + fmt::Debug> DynStore for S {
    fn claim_boxed<'a>(
        &'a self,
        key: &'a DedupKey,
        owner: ClaimOwner,
        lease: Duration,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<Claim, StoreError>> {
        Box::pin(self.claim(key, owner, lease, now))
    }

    fn load_boxed<'a>(&'a self, key: &'a StateKey) -> BoxFuture<'a, Result<Versioned, StoreError>> {
        Box::pin(self.load(key))
    }

    fn claim_and_load_boxed<'a>(
        &'a self,
        key: &'a DedupKey,
        state: Option<&'a StateKey>,
        owner: ClaimOwner,
        lease: Duration,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<(Claim, Versioned), StoreError>> {
        Box::pin(self.claim_and_load(key, state, owner, lease, now))
    }

    fn claim_many_boxed<'a>(
        &'a self,
        requests: &'a [ClaimRequest<'a>],
        owner: ClaimOwner,
        lease: Duration,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<Vec<(Claim, Versioned)>, StoreError>> {
        Box::pin(self.claim_many(requests, owner, lease, now))
    }

    fn wants_decided_boxed(&self) -> bool {
        self.wants_decided()
    }

    fn commit_decided_boxed<'a>(
        &'a self,
        commits: &'a [Commit<'a>],
        decided: &'a [Option<super::Decided<'a>>],
    ) -> BoxFuture<'a, Result<Vec<CommitOutcome>, StoreError>> {
        Box::pin(self.commit_decided(commits, decided))
    }

    fn commit_boxed<'a>(
        &'a self,
        commit: Commit<'a>,
    ) -> BoxFuture<'a, Result<CommitOutcome, StoreError>> {
        Box::pin(self.commit(commit))
    }

    fn commit_many_boxed<'a>(
        &'a self,
        commits: &'a [Commit<'a>],
    ) -> BoxFuture<'a, Result<Vec<CommitOutcome>, StoreError>> {
        Box::pin(self.commit_many(commits))
    }

    fn renew_boxed<'a>(
        &'a self,
        key: &'a DedupKey,
        token: ClaimOwner,
        lease: Duration,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(self.renew(key, token, lease, now))
    }

    fn renew_many_boxed<'a>(
        &'a self,
        claims: &'a [(&'a DedupKey, ClaimOwner)],
        lease: Duration,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<Vec<bool>, StoreError>> {
        Box::pin(self.renew_many(claims, lease, now))
    }

    fn release_boxed<'a>(
        &'a self,
        key: &'a DedupKey,
        token: ClaimOwner,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.release(key, token))
    }

    fn sweep_boxed(&self, now: SystemTime) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(self.sweep(now))
    }
}
