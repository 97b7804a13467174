//! A store shared behind an [`Arc`]: several engines (say, one per
//! configuration) on one store.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{
    Claim, ClaimOwner, ClaimRequest, Commit, CommitOutcome, DedupKey, Store, StoreError, Versioned,
};
use crate::rules::StateKey;

/// Every call goes to the shared store.
///
/// ```
/// use std::sync::Arc;
/// use alm_webhooks::{Engine, store::MemoryStore};
/// let store = Arc::new(MemoryStore::new());
/// let (a, b) = (Engine::builder(Arc::clone(&store)).build(), Engine::builder(store).build());
/// # let _ = (a, b);
/// ```
impl<S: Store> Store for Arc<S> {
    async fn claim(
        &self,
        key: &DedupKey,
        owner: ClaimOwner,
        lease: Duration,
        now: SystemTime,
    ) -> Result<Claim, StoreError> {
        S::claim(self, key, owner, lease, now).await
    }

    async fn load(&self, key: &StateKey) -> Result<Versioned, StoreError> {
        S::load(self, key).await
    }

    async fn claim_and_load(
        &self,
        key: &DedupKey,
        state: Option<&StateKey>,
        owner: ClaimOwner,
        lease: Duration,
        now: SystemTime,
    ) -> Result<(Claim, Versioned), StoreError> {
        S::claim_and_load(self, key, state, owner, lease, now).await
    }

    async fn claim_many(
        &self,
        requests: &[ClaimRequest<'_>],
        owner: ClaimOwner,
        lease: Duration,
        now: SystemTime,
    ) -> Result<Vec<(Claim, Versioned)>, StoreError> {
        S::claim_many(self, requests, owner, lease, now).await
    }

    async fn commit(&self, commit: Commit<'_>) -> Result<CommitOutcome, StoreError> {
        S::commit(self, commit).await
    }

    async fn commit_many(&self, commits: &[Commit<'_>]) -> Result<Vec<CommitOutcome>, StoreError> {
        S::commit_many(self, commits).await
    }

    fn wants_decided(&self) -> bool {
        S::wants_decided(self)
    }

    async fn commit_decided(
        &self,
        commits: &[Commit<'_>],
        decided: &[Option<super::Decided<'_>>],
    ) -> Result<Vec<CommitOutcome>, StoreError> {
        S::commit_decided(self, commits, decided).await
    }

    async fn renew(
        &self,
        key: &DedupKey,
        token: ClaimOwner,
        lease: Duration,
        now: SystemTime,
    ) -> Result<bool, StoreError> {
        S::renew(self, key, token, lease, now).await
    }

    async fn renew_many(
        &self,
        claims: &[(&DedupKey, ClaimOwner)],
        lease: Duration,
        now: SystemTime,
    ) -> Result<Vec<bool>, StoreError> {
        S::renew_many(self, claims, lease, now).await
    }

    async fn release(&self, key: &DedupKey, token: ClaimOwner) -> Result<(), StoreError> {
        S::release(self, key, token).await
    }

    async fn sweep(&self, now: SystemTime) -> Result<u64, StoreError> {
        S::sweep(self, now).await
    }
}
