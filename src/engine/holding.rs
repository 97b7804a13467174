//! What a delivery holds while it runs, released (best effort) if its
//! future is dropped before it ends: a handler timeout, a shutdown, a
//! client gone. A later attempt of the same holder takes such claims over
//! anyway; this frees them for everyone else too.

use super::Engine;
use super::batch::{Batch, Item};
use crate::store::{ClaimOwner, DedupKey, Store};

/// A delivery's batch and current chunk, with what to release if it is
/// dropped unfinished.
pub(super) struct Holding<S: Store> {
    engine: Engine<S>,
    batch: Batch,
    chunk: Vec<Option<Item>>,
    finished: bool,
}

impl<S: Store> Holding<S> {
    pub(super) fn new(engine: Engine<S>, batch: Batch) -> Self {
        Self {
            engine,
            batch,
            chunk: Vec::new(),
            finished: false,
        }
    }

    /// The batch and the chunk, to work on.
    pub(super) fn parts(&mut self) -> (&mut Batch, &mut Vec<Option<Item>>) {
        (&mut self.batch, &mut self.chunk)
    }

    /// The delivery ran to its end (its error paths release what they
    /// hold themselves): nothing to release on drop.
    pub(super) fn finish(&mut self) {
        self.finished = true;
    }
}

impl<S: Store> Drop for Holding<S> {
    /// Releases the claims of the decisions awaiting their commit and of
    /// the chunk's events not decided yet, in a task (a drop cannot wait);
    /// the event whose handler was running keeps its claim until its lease
    /// ends or the same holder takes it over.
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let held: Vec<(DedupKey, ClaimOwner)> = self
            .batch
            .pending
            .iter()
            .map(|p| (p.key.clone(), p.token))
            .chain(
                self.chunk
                    .iter()
                    .flatten()
                    .filter_map(Item::held)
                    .map(|(key, owner)| (key.clone(), owner)),
            )
            .collect();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if held.is_empty() {
            return;
        }
        let engine = self.engine.clone();
        runtime.spawn(async move {
            for (key, owner) in held {
                // Best effort: a claim not released ends with its lease.
                let _ = engine.inner.store.release(&key, owner).await;
            }
        });
    }
}
