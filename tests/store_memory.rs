//! The store conformance suite on the in-memory store.

mod support;

use alm_webhooks::store::MemoryStore;

async fn memory() -> Option<MemoryStore> {
    Some(MemoryStore::new())
}

store_conformance!(memory());
