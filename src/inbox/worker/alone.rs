//! Suspects run alone: a delivery taken after an attempt that a dead
//! process abandoned runs with no other delivery in hand in its process,
//! so that a death while it runs is its own and costs no other delivery an
//! attempt.
//!
//! A process that aborts (or is killed, or runs out of memory) takes down
//! every delivery its workers hold: each of them is counted an abandoned
//! attempt, although at most one caused the death. Were they all run side
//! by side again, an event that aborts the process every time would spend
//! the attempts of every delivery beside it, and those would be given up
//! for deaths they did not cause. So the workers of a pool share one
//! [`Alone`]: a worker takes a delivery while holding its shared side; a
//! *suspect* (a delivery whose [`Taken::abandoned`](crate::inbox::Taken::abandoned)
//! is not zero) gives that up and waits for the exclusive side, which it
//! gets once the deliveries already in hand are finished, and meanwhile no
//! worker of the process takes another delivery. At most one suspect is in
//! hand at a time: a worker that takes a second one while the first is
//! there gives it back untouched ([`Inbox::release`](crate::inbox::Inbox::release),
//! the attempt not counted) and waits its turn.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

/// The pool-wide turn that lets a suspect run alone.
#[derive(Debug, Default)]
pub(super) struct Alone {
    turn: Arc<RwLock<()>>,
    suspect_in_hand: AtomicBool,
}

/// The shared side of [`Alone`]: held while a worker takes a delivery and
/// while it works on an ordinary one.
pub(super) type Shared = OwnedRwLockReadGuard<()>;

/// A suspect in hand: the exclusive side once [`Suspect::alone`] returned.
#[derive(Debug)]
pub(super) struct Suspect<'a> {
    alone: &'a Alone,
    exclusive: Option<OwnedRwLockWriteGuard<()>>,
}

impl Alone {
    /// Waits for the shared side: at once unless a suspect runs, or waits
    /// for its turn (tokio's lock is fair, so a waiting suspect holds the
    /// later takers back).
    pub(super) async fn shared(&self) -> Shared {
        Arc::clone(&self.turn).read_owned().await
    }

    /// Claims the one suspect place of the process, giving up `shared`
    /// (if the caller holds it); `None` (and `shared` given up too) when
    /// another suspect holds it.
    pub(super) fn suspect(&self, shared: Option<Shared>) -> Option<Suspect<'_>> {
        drop(shared);
        self.suspect_in_hand
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| Suspect {
                alone: self,
                exclusive: None,
            })
    }
}

impl Suspect<'_> {
    /// Waits until the deliveries in hand are finished; from then on,
    /// until the suspect is dropped, no other delivery is in hand.
    pub(super) async fn alone(&mut self) {
        if self.exclusive.is_none() {
            self.exclusive = Some(Arc::clone(&self.alone.turn).write_owned().await);
        }
    }
}

impl Drop for Suspect<'_> {
    fn drop(&mut self) {
        self.exclusive = None;
        self.alone.suspect_in_hand.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_suspect_waits_for_the_ordinary_deliveries_and_holds_the_takers_back() {
        let alone = Alone::default();
        let ordinary = alone.shared().await;
        let mut suspect = alone
            .suspect(Some(alone.shared().await))
            .expect("the first suspect");
        assert!(
            alone.suspect(Some(alone.shared().await)).is_none(),
            "one suspect at a time"
        );
        let waiting = tokio::time::timeout(Duration::from_millis(50), suspect.alone()).await;
        assert!(waiting.is_err(), "an ordinary delivery is still in hand");
        drop(ordinary);
        suspect.alone().await;
        let taker = tokio::time::timeout(Duration::from_millis(50), alone.shared()).await;
        assert!(
            taker.is_err(),
            "no delivery is taken while the suspect runs"
        );
        drop(suspect);
        let _taker = alone.shared().await;
        let again = alone.suspect(Some(alone.shared().await));
        assert!(again.is_some(), "the place is free again");
    }
}
