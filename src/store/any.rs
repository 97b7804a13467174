//! A store chosen at run time from a URL, for receivers configured by
//! environment (`ALM_STORE=memory`, `postgres://…`, `redis://…`).

use std::time::Duration;

use time::OffsetDateTime;

use super::{
    Claim, ClaimToken, Commit, CommitOutcome, DedupKey, MemoryStore, Store, StoreError, Versioned,
};
use crate::engine::StateKey;

/// One of the stores this build has, picked by [`AnyStore::from_url`].
#[derive(Debug)]
#[non_exhaustive]
pub enum AnyStore {
    /// The in-memory store.
    Memory(MemoryStore),
}

impl AnyStore {
    /// Opens the store a URL names: `memory` (or an empty string) for the
    /// in-memory store; other schemes when their feature is enabled.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use alm_webhooks::store::AnyStore;
    /// assert!(matches!(AnyStore::from_url("memory").await.unwrap(), AnyStore::Memory(_)));
    /// assert!(AnyStore::from_url("ftp://nowhere").await.is_err());
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// A [`StoreError`] for an unknown scheme (naming the schemes this build
    /// supports) or a store that cannot be reached. The message never
    /// contains the URL's password.
    pub async fn from_url(url: &str) -> Result<Self, StoreError> {
        let scheme = url.split_once(':').map_or(url, |(scheme, _)| scheme);
        match scheme {
            "" | "memory" => Ok(Self::Memory(MemoryStore::new())),
            other => Err(StoreError::new(format!(
                "unsupported store `{other}`: this build supports {}",
                supported().join(", ")
            ))),
        }
    }
}

fn supported() -> Vec<&'static str> {
    vec!["memory"]
}

macro_rules! delegate {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            AnyStore::Memory($store) => $call.await,
        }
    };
}

impl Store for AnyStore {
    async fn claim(
        &self,
        key: &DedupKey,
        lease: Duration,
        now: OffsetDateTime,
    ) -> Result<Claim, StoreError> {
        delegate!(self, s => s.claim(key, lease, now))
    }

    async fn load(&self, key: &StateKey) -> Result<Versioned, StoreError> {
        delegate!(self, s => s.load(key))
    }

    async fn commit(&self, commit: Commit<'_>) -> Result<CommitOutcome, StoreError> {
        delegate!(self, s => s.commit(commit))
    }

    async fn release(&self, key: &DedupKey, token: ClaimToken) -> Result<(), StoreError> {
        delegate!(self, s => s.release(key, token))
    }

    async fn sweep(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        delegate!(self, s => s.sweep(now))
    }
}
