//! The buffers of a delivery (its chunk, pending and settled decisions,
//! the states its decisions lead to, its claim requests and commits, its
//! event spans), kept by the engine between deliveries: once warm, a
//! delivery allocates none of them, and an event nothing of its own.

use std::sync::{Mutex, PoisonError};

use super::batch::{Batch, Item};
use super::spans::EventSpans;
use crate::store::ClaimOwner;

/// The most sets of buffers kept: one per delivery decided at the same
/// time, beyond which a delivery allocates its own.
const KEPT: usize = 8;

/// A set of buffers with room for more events than this is dropped rather
/// than kept, so that a very large delivery does not pin its memory: a
/// kept set is at most about 2.5 MB (an event takes about 1.2 KB across
/// the chunk, its pending and settled decisions and the tables), 20 MB
/// for all of them.
const KEPT_EVENTS: usize = 2048;

/// A delivery's buffers.
pub(super) struct Buffers {
    pub(super) batch: Batch,
    /// The chunk's events, decided in order.
    pub(super) chunk: Vec<Option<Item>>,
    pub(super) spans: EventSpans,
}

impl Buffers {
    fn capacity(&self) -> usize {
        self.batch
            .capacity()
            .max(self.chunk.capacity())
            .max(self.spans.capacity())
    }
}

/// The buffers kept between deliveries, each set boxed: a delivery moves
/// its set from the pool and back as one pointer, not as the several
/// hundred bytes of its vectors' and tables' headers.
#[derive(Default)]
pub(super) struct Pool {
    // Not `Vec<Buffers>`: the set stays where it is when it moves.
    #[allow(clippy::vec_box)]
    kept: Mutex<Vec<Box<Buffers>>>,
}

impl Pool {
    /// Buffers for a delivery whose claims `owner` holds: kept ones if
    /// any, else new ones.
    pub(super) fn take(&self, owner: ClaimOwner) -> Box<Buffers> {
        let kept = self
            .kept
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        match kept {
            Some(mut buffers) => {
                buffers.batch.restart(owner);
                buffers
            }
            None => Box::new(Buffers {
                batch: Batch::new(owner),
                chunk: Vec::new(),
                spans: EventSpans::default(),
            }),
        }
    }

    /// Keeps a finished delivery's buffers, emptied, for the next one
    /// (unless enough are kept, or they grew too large).
    pub(super) fn give(&self, mut buffers: Box<Buffers>) {
        buffers.batch.clear();
        buffers.chunk.clear();
        buffers.spans.clear();
        if buffers.capacity() > KEPT_EVENTS {
            return;
        }
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.len() < KEPT {
            kept.push(buffers);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_kept_up_to_a_bound_and_restarted_for_their_owner() {
        let pool = Pool::default();
        let (first, second) = (ClaimOwner::random(), ClaimOwner::random());
        let mut buffers = pool.take(first);
        assert_eq!(buffers.batch.owner, first);
        buffers.chunk.reserve(8);
        buffers.batch.reported = 3;
        pool.give(buffers);
        let again = pool.take(second);
        assert_eq!(again.batch.owner, second);
        assert_eq!(again.batch.reported, 0);
        assert!(again.chunk.capacity() >= 8, "the chunk's buffer was kept");
        let mut large = again;
        large.chunk.reserve(KEPT_EVENTS + 1);
        pool.give(large);
        assert_eq!(pool.take(first).chunk.capacity(), 0, "too large to keep");
        for _ in 0..KEPT + 1 {
            pool.give(pool.take(first));
        }
        let many: Vec<_> = (0..KEPT + 1).map(|_| pool.take(first)).collect();
        many.into_iter().for_each(|b| pool.give(b));
        assert_eq!(pool.kept.lock().unwrap().len(), KEPT);
    }
}
