//! A run: the deliveries of one account that a worker takes in one step
//! ([`Inbox::take_many`], up to [`WorkerOptions::with_take_batch`](super::WorkerOptions::with_take_batch)),
//! worked on one after another, in order.
//!
//! The first is held as a lone delivery is (its lease renewed while it
//! runs, given back if the pool abandons its work, a failed attempt if
//! anything panics on it). The others wait in hand, their leases renewed
//! every third of the lease, and each starts only once the one before it
//! was completed: the account's order holds. The rest of the run is given
//! back untouched ([`Inbox::release`], the attempt not counted) as soon as
//! one is not completed (retried, postponed, lost, panicked), the pool
//! stops running, a lease in hand is lost, or the next is a suspect (taken
//! after an abandoned attempt): a suspect runs alone, so it is taken again
//! on its own. A run whose first delivery is a suspect gives the others
//! back at once.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Mutex, PoisonError};

use time::OffsetDateTime;
use tokio::sync::watch;

use super::alone::Shared;
use super::pool::Phase;
use super::supervise::Pooled;
use super::{Progress, Workers};
use crate::inbox::{Inbox, Taken};
use crate::store::Store;
use crate::{BoxError, Event};

/// The deliveries of a run not yet started, in order, each with whether
/// its lease was found lost by a renewal.
type Waiting = Mutex<VecDeque<(Taken, bool)>>;

impl<S: Store, I: Inbox> Workers<S, I> {
    /// Works on `run` (one account's deliveries, in order; see the
    /// [module docs](self)), holding the pool's shared turn `shared` for
    /// all of it.
    pub(super) async fn hold_run<H, Fut>(
        &self,
        run: Vec<Taken>,
        handler: &H,
        phase: &mut watch::Receiver<Phase>,
        pool: Pooled<'_>,
        shared: Shared,
    ) where
        H: Fn(Event) -> Fut + Send + Sync,
        Fut: Future<Output = Result<(), BoxError>> + Send,
    {
        let mut run = run.into_iter();
        let Some(first) = run.next() else {
            return;
        };
        let waiting: Waiting = Mutex::new(run.map(|t| (t, false)).collect());
        if first.abandoned > 0 {
            // A suspect runs alone: the rest goes back first.
            self.give_back_waiting(&waiting).await;
            self.hold(first, handler, phase, pool, Some(shared)).await;
            return;
        }
        let work = async {
            let mut next = Some(first);
            while let Some(taken) = next.take() {
                let completed = self.hold(taken, handler, phase, pool, None).await;
                if !completed || *phase.borrow() != Phase::Running {
                    return;
                }
                let mut rest = lock(&waiting);
                if rest
                    .front()
                    .is_some_and(|(t, lost)| !lost && t.abandoned == 0)
                {
                    next = rest.pop_front().map(|(t, _)| t);
                }
            }
        };
        tokio::select! {
            () = work => {}
            () = self.renew_waiting(&waiting) => {}
        }
        self.give_back_waiting(&waiting).await;
        drop(shared);
    }

    /// Renews the leases of the deliveries waiting in a run every third
    /// of the lease, marking those found lost; never returns.
    async fn renew_waiting(&self, waiting: &Waiting) {
        let lease = self.options.lease;
        loop {
            tokio::time::sleep(lease / 3).await;
            let held: Vec<_> = lock(waiting)
                .iter()
                .filter(|(_, lost)| !lost)
                .map(|(t, _)| (t.id, t.token))
                .collect();
            for (id, token) in held {
                let now = OffsetDateTime::now_utc();
                if let Ok(false) = self.inbox.renew(id, token, lease, now).await {
                    for (t, lost) in lock(waiting).iter_mut() {
                        *lost |= t.id == id;
                    }
                }
            }
        }
    }

    /// Gives back, untouched, the deliveries of a run not started (the
    /// attempt not counted).
    async fn give_back_waiting(&self, waiting: &Waiting) {
        let rest: Vec<_> = lock(waiting).drain(..).collect();
        for (taken, lost) in rest {
            if lost {
                continue;
            }
            if let Err(e) = self.inbox.release(taken.id, taken.token).await {
                self.report(Progress::Unavailable { error: &e });
            }
        }
    }
}

fn lock(waiting: &Waiting) -> std::sync::MutexGuard<'_, VecDeque<(Taken, bool)>> {
    waiting.lock().unwrap_or_else(PoisonError::into_inner)
}
