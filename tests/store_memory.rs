//! The store conformance suite on the in-memory store, directly and as a
//! store of one's own behind `AnyStore::Custom` (through `DynStore`).

mod support;

use alm_webhooks::store::MemoryStore;

async fn memory() -> Option<MemoryStore> {
    Some(MemoryStore::new())
}

store_conformance!(memory());

/// The same suite through `AnyStore::from_store`: every call goes through
/// the boxed `DynStore` mirror.
mod as_a_custom_any_store {
    use alm_webhooks::store::{AnyStore, MemoryStore};

    async fn custom() -> Option<AnyStore> {
        Some(AnyStore::from_store(MemoryStore::new()))
    }

    crate::store_conformance!(custom());
}

/// A user who never calls `sweep` does not leak: events decided in one
/// window are gone once the claims of the next window have paid for the
/// clean-up.
#[tokio::test]
async fn expires_by_itself_without_sweep() {
    use std::time::Duration;

    use alm_webhooks::store::{Claim, Commit, DedupKey, Store};
    use std::time::SystemTime;

    let store = MemoryStore::new();
    let at = |s: i64| {
        SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(1_750_000_000 + s).unwrap())
    };
    let lease = Duration::from_secs(30);
    for (wave, now, until) in [(0, 0, 10), (1, 20, 1_000)] {
        for n in 0..5_000 {
            let key = DedupKey {
                account_id: alm_webhooks::AccountId(1),
                event_id: format!("w{wave}-{n}").parse().unwrap(),
            };
            let Claim::Claimed(token) = store
                .claim(
                    &key,
                    alm_webhooks::store::ClaimOwner::random(),
                    lease,
                    at(now),
                )
                .await
                .unwrap()
            else {
                panic!("a new event is claimed");
            };
            let commit = Commit {
                key: &key,
                token,
                update: None,
                remember_until: at(until),
                state_until: at(until),
            };
            store.commit(commit).await.unwrap();
        }
    }
    let remembered = store.remembered_events();
    // Without clean-ups: 10,000. Each shard cleaned up at least once
    // during the second wave, after the first wave had expired.
    assert!(remembered < 7_500, "remembered {remembered}");
    assert!(remembered >= 5_000, "the second wave is kept: {remembered}");
}
