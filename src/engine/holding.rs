//! What a delivery holds while it runs, released (best effort) if its
//! future is dropped before it ends: a handler timeout, a shutdown, a
//! client gone. A later attempt of the same holder takes such claims over
//! anyway; this frees them for everyone else too. Either way, the
//! delivery's metrics are recorded and its buffers go back to the
//! engine's pool.

use super::Engine;
use super::batch::{Batch, Item};
use super::pool::Buffers;
use super::spans::EventSpans;
use crate::store::{ClaimOwner, DedupKey, Store};

/// A delivery's claims and buffers, from the engine's pool.
pub(super) struct Holding<S: Store> {
    engine: Engine<S>,
    /// Taken back by the pool when dropped.
    buffers: Option<Box<Buffers>>,
    finished: bool,
}

impl<S: Store> Holding<S> {
    /// The buffers of a delivery whose claims `owner` holds.
    pub(super) fn new(engine: Engine<S>, owner: ClaimOwner) -> Self {
        let buffers = Some(engine.inner.pool.take(owner));
        Self {
            engine,
            buffers,
            finished: false,
        }
    }

    /// The delivery's batch, chunk and spans.
    pub(super) fn parts(&mut self) -> (&mut Batch, &mut Vec<Option<Item>>, &mut EventSpans) {
        let buffers = self.buffers.as_mut().expect("held until dropped");
        (&mut buffers.batch, &mut buffers.chunk, &mut buffers.spans)
    }

    /// Marks the delivery finished: nothing left to release.
    pub(super) fn finish(&mut self) {
        self.finished = true;
    }
}

impl<S: Store> Drop for Holding<S> {
    fn drop(&mut self) {
        let Some(mut buffers) = self.buffers.take() else {
            return;
        };
        if !self.finished {
            release_held(&self.engine, &buffers);
        }
        buffers.batch.tally.record();
        self.engine.inner.pool.give(buffers);
    }
}

/// Releases, in a task of its own, the claims an unfinished delivery held.
fn release_held<S: Store>(engine: &Engine<S>, buffers: &Buffers) {
    let held: Vec<(DedupKey, ClaimOwner)> = buffers
        .batch
        .pending
        .iter()
        .map(|p| (p.key.clone(), p.token))
        .chain(
            buffers
                .chunk
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
    let engine = engine.clone();
    runtime.spawn(async move {
        for (key, owner) in held {
            // Best effort: a claim not released ends with its lease.
            let _ = engine.inner.store.release(&key, owner).await;
        }
    });
}
