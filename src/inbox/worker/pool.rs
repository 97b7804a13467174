//! A running pool of workers: waking them, their health, and a bounded
//! shutdown.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// How long [`WorkerPool::shutdown`] waits, past its grace, for the
/// deliveries still in hand to be given back before it stops the workers
/// where they are.
pub const GIVE_BACK_BOUND: Duration = Duration::from_secs(1);

/// What the workers are told to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    Running,
    /// Take no more work; finish what is in hand.
    Stopping,
    /// Give back what is in hand.
    Abandon,
}

/// How many restarts a pool may make within a window and still be healthy
/// ([`WorkerOptions::with_restart_limit`](super::WorkerOptions::with_restart_limit)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RestartLimit {
    pub(super) restarts: usize,
    pub(super) window: Duration,
}

impl Default for RestartLimit {
    fn default() -> Self {
        Self {
            restarts: 10,
            window: Duration::from_secs(60),
        }
    }
}

/// The workers' panics (each one a restart), shared by the pool's tasks.
#[derive(Debug)]
pub(super) struct Health {
    limit: RestartLimit,
    recent: Mutex<VecDeque<Instant>>,
    total: AtomicU64,
}

impl Health {
    pub(super) fn new(limit: RestartLimit) -> Self {
        Self {
            limit,
            recent: Mutex::new(VecDeque::new()),
            total: AtomicU64::new(0),
        }
    }

    /// A worker panicked and goes on (restarted).
    pub(super) fn restarted(&self) {
        self.total.fetch_add(1, Ordering::Relaxed);
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        recent.push_back(Instant::now());
        self.forget_old(&mut recent);
    }

    fn forget_old(&self, recent: &mut VecDeque<Instant>) {
        while recent
            .front()
            .is_some_and(|at| at.elapsed() > self.limit.window)
        {
            recent.pop_front();
        }
        // Only what the limit needs is kept.
        while recent.len() > self.limit.restarts.saturating_add(1) {
            recent.pop_front();
        }
    }

    /// Within the restart limit.
    fn healthy(&self) -> bool {
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        self.forget_old(&mut recent);
        recent.len() <= self.limit.restarts
    }

    fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
}

/// Wakes an idle worker of a [`WorkerPool`]: see [`WorkerPool::waker`].
#[derive(Debug, Clone)]
pub struct PoolWaker(Arc<Notify>);

impl PoolWaker {
    /// Wakes an idle worker, so that a delivery just appended is taken at
    /// once rather than at the next poll.
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

/// Running workers. Dropping the pool leaves them running; call
/// [`WorkerPool::shutdown`] to stop them.
///
/// Each worker is supervised: a panic anywhere in it (the handler, the
/// observer, the store, the inbox) is caught and reported
/// ([`Progress::Panicked`](super::Progress::Panicked)), the delivery in hand
/// is a failed attempt, and the worker goes on.
/// [`healthy`](WorkerPool::healthy) says whether the pool keeps within its
/// restart limit.
#[derive(Debug)]
pub struct WorkerPool {
    pub(super) phase: watch::Sender<Phase>,
    pub(super) wake: Arc<Notify>,
    pub(super) tasks: Mutex<Vec<JoinHandle<()>>>,
    pub(super) health: Arc<Health>,
}

impl WorkerPool {
    /// Wakes an idle worker: call it after appending a delivery, so it is
    /// taken at once rather than at the next poll.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// A handle that wakes an idle worker as [`WorkerPool::wake`] does, for
    /// code that appends deliveries without holding the pool (such as the
    /// [admin API](crate::admin::AdminApi::waking)).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::sync::Arc;
    /// use alm_webhooks::{Engine, inbox::{MemoryInbox, Workers}};
    ///
    /// let inbox = Arc::new(MemoryInbox::new());
    /// let pool = Workers::new(Engine::in_memory(), inbox)
    ///     .start(|_event| async { Ok(()) });
    /// let waker = pool.waker();
    /// waker.wake();
    /// # }
    /// ```
    pub fn waker(&self) -> PoolWaker {
        PoolWaker(Arc::clone(&self.wake))
    }

    /// Whether the pool is running and its workers keep alive: `false` once
    /// it is shut down, or while its workers panicked more often than the
    /// restart limit allows (10 times within 60 s by default,
    /// [`WorkerOptions::with_restart_limit`](super::WorkerOptions::with_restart_limit)).
    /// What a readiness check asks ([`Endpoint::ready`](crate::Endpoint::ready)).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::sync::Arc;
    /// use alm_webhooks::{Engine, inbox::{MemoryInbox, Workers}};
    ///
    /// let pool = Workers::new(Engine::in_memory(), Arc::new(MemoryInbox::new()))
    ///     .start(|_event| async { Ok(()) });
    /// assert!(pool.healthy());
    /// assert!(pool.shutdown(std::time::Duration::from_secs(1)).await);
    /// assert!(!pool.healthy(), "stopped");
    /// # }
    /// ```
    pub fn healthy(&self) -> bool {
        *self.phase.borrow() == Phase::Running && self.health.healthy()
    }

    /// How many times a worker panicked (and went on) since the pool
    /// started.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::sync::Arc;
    /// use alm_webhooks::{Engine, inbox::{MemoryInbox, Workers}};
    ///
    /// let pool = Workers::new(Engine::in_memory(), Arc::new(MemoryInbox::new()))
    ///     .start(|_event| async { Ok(()) });
    /// assert_eq!(pool.restarts(), 0);
    /// # }
    /// ```
    pub fn restarts(&self) -> u64 {
        self.health.total()
    }

    /// Stops the workers: none takes new work; deliveries in hand are
    /// finished within `grace`, and those still unfinished then are given
    /// back to the inbox untouched (their handlers are cancelled; the
    /// engine's claims on their events run out with the engine's lease),
    /// within [`GIVE_BACK_BOUND`] more; a worker still busy past that (a
    /// store or inbox call that does not answer, an idle `take` included)
    /// is stopped where it is. So it returns within `grace` +
    /// [`GIVE_BACK_BOUND`].
    ///
    /// Returns `true` if everything in hand finished within `grace` and no
    /// worker ever panicked ([`WorkerPool::restarts`] is 0).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::sync::Arc;
    /// use std::time::{Duration, Instant};
    /// use alm_webhooks::inbox::{GIVE_BACK_BOUND, MemoryInbox, Workers};
    /// use alm_webhooks::Engine;
    ///
    /// let pool = Workers::new(Engine::in_memory(), Arc::new(MemoryInbox::new()))
    ///     .start(|_event| async { Ok(()) });
    /// let started = Instant::now();
    /// assert!(pool.shutdown(Duration::from_secs(5)).await, "nothing in hand");
    /// assert!(started.elapsed() < Duration::from_secs(5) + GIVE_BACK_BOUND);
    /// # }
    /// ```
    pub async fn shutdown(&self, grace: Duration) -> bool {
        let _ = self.phase.send(Phase::Stopping);
        let mut tasks: Vec<_> =
            std::mem::take(&mut *self.tasks.lock().unwrap_or_else(PoisonError::into_inner));
        let finished = tokio::time::timeout(grace, join(&mut tasks)).await.is_ok();
        if !finished {
            let _ = self.phase.send(Phase::Abandon);
            if tokio::time::timeout(GIVE_BACK_BOUND, join(&mut tasks))
                .await
                .is_err()
            {
                for task in &tasks {
                    task.abort();
                }
            }
        }
        finished && self.health.total() == 0
    }
}

/// Waits for every task; a finished one is skipped on a second call.
async fn join(tasks: &mut [JoinHandle<()>]) {
    for task in tasks.iter_mut() {
        if !task.is_finished() {
            let _ = task.await;
        }
    }
}
