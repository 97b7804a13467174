//! The replay jobs of a process: their progress, which queued delivery
//! belongs to which job, and the wake-up of a job when its step is done.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;

use super::{ReplayId, ReplayMode, ReplayState, ReplayStatus};
use crate::inbox::DeliveryId;

/// Deliveries a replay job queues before it waits for them to be done.
pub const DEFAULT_REPLAY_STEP: usize = 100;

/// How long a job waits for its step without any of it being done before
/// it fails (the workers of this process are stopped, or another process
/// sharing the inbox took the step: see [replaying](crate::inbox#replaying-the-archive)).
pub const DEFAULT_REPLAY_STALL: Duration = Duration::from_secs(600);

/// Finished jobs kept for listing; older ones are forgotten first.
const KEPT_FINISHED: usize = 100;

/// Deliveries completed while a job runs, remembered in case a job learns
/// the id of one it queued after a worker already finished it.
const RECENT_COMPLETIONS: usize = 4096;

/// The replay jobs of one process, started, listed, watched and cancelled
/// here; the workers that take their deliveries must be given them
/// ([`WorkerOptions::with_replays`](crate::inbox::WorkerOptions::with_replays))
/// to report progress and drop a cancelled job's queued deliveries. An
/// [`Endpoint`](crate::Endpoint) with an inbox does both
/// ([`Endpoint::replay`](crate::Endpoint::replay)).
///
/// The jobs live in memory: a restart forgets them. What a job queued
/// before is in the inbox, durable as the inbox is, and is processed after
/// the restart in its mode (a rerun delivery carries its mode); the rest
/// of the range is not queued (start the job again from where it stopped).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::sync::Arc;
/// use alm_webhooks::Engine;
/// use alm_webhooks::inbox::{ArchiveFilter, MemoryInbox, ReplayJobs, ReplayMode, ReplayRequest, WorkerOptions, Workers};
///
/// let inbox = Arc::new(MemoryInbox::new());
/// let jobs = ReplayJobs::new();
/// let _pool = Workers::new(Engine::in_memory(), Arc::clone(&inbox))
///     .with_options(WorkerOptions::new().with_replays(jobs.clone()))
///     .start(|_event| async { Ok(()) });
/// let from = time::OffsetDateTime::now_utc() - time::Duration::days(1);
/// let request = ReplayRequest::new(ArchiveFilter::new().received_from(from), ReplayMode::Unprocessed);
/// let id = jobs.start(Arc::clone(&inbox), request);
/// assert_eq!(jobs.list()[0].id, id);
/// # }
/// ```
#[derive(Clone)]
pub struct ReplayJobs {
    book: Arc<Mutex<Book>>,
    step: usize,
    stall: Duration,
}

impl fmt::Debug for ReplayJobs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayJobs")
            .field("step", &self.step)
            .field("stall", &self.stall)
            .finish_non_exhaustive()
    }
}

impl Default for ReplayJobs {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Default)]
struct Book {
    /// In the order started.
    jobs: Vec<Job>,
    /// The queued deliveries not yet done, and their events.
    queued: HashMap<DeliveryId, (ReplayId, u64)>,
    /// Completions seen while a job runs (see [`RECENT_COMPLETIONS`]).
    recent: VecDeque<DeliveryId>,
    recent_set: HashSet<DeliveryId>,
}

struct Job {
    status: ReplayStatus,
    /// Its deliveries queued and not yet done.
    outstanding: usize,
    wake: Arc<Notify>,
}

impl Book {
    fn job(&mut self, id: ReplayId) -> Option<&mut Job> {
        self.jobs.iter_mut().find(|j| j.status.id == id)
    }

    fn running(&self) -> bool {
        self.jobs
            .iter()
            .any(|j| j.status.state == ReplayState::Running)
    }

    /// Forgets the oldest finished jobs past [`KEPT_FINISHED`].
    fn trim(&mut self) {
        let finished = self
            .jobs
            .iter()
            .filter(|j| j.status.state != ReplayState::Running)
            .count();
        let mut over = finished.saturating_sub(KEPT_FINISHED);
        self.jobs.retain(|j| {
            let drop = over > 0 && j.status.state != ReplayState::Running;
            over -= usize::from(drop);
            !drop
        });
    }
}

/// What [`ReplayJobs::wait_step`] found.
pub(super) enum Waited {
    /// The step is done (or the job was cancelled).
    Go,
    /// Nothing of it was done within the stall limit.
    Stalled,
}

impl ReplayJobs {
    /// No jobs, with steps of [`DEFAULT_REPLAY_STEP`] deliveries and a
    /// stall limit of [`DEFAULT_REPLAY_STALL`].
    ///
    /// ```
    /// assert!(alm_webhooks::inbox::ReplayJobs::new().list().is_empty());
    /// ```
    pub fn new() -> Self {
        Self {
            book: Arc::default(),
            step: DEFAULT_REPLAY_STEP,
            stall: DEFAULT_REPLAY_STALL,
        }
    }

    /// Steps of `deliveries` (at least 1): how many archived deliveries a
    /// job queues before it waits for them to be done, so the live
    /// deliveries of an account queued meanwhile wait behind at most one
    /// step.
    ///
    /// ```
    /// let jobs = alm_webhooks::inbox::ReplayJobs::new().with_step(10);
    /// # let _ = jobs;
    /// ```
    #[must_use]
    pub fn with_step(mut self, deliveries: usize) -> Self {
        self.step = deliveries.max(1);
        self
    }

    /// A job fails when nothing of its step was done for `stall`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let jobs = alm_webhooks::inbox::ReplayJobs::new().with_stall_limit(Duration::from_secs(60));
    /// # let _ = jobs;
    /// ```
    #[must_use]
    pub fn with_stall_limit(mut self, stall: Duration) -> Self {
        self.stall = stall;
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a new running job of `mode`, with a random id.
    pub(super) fn begin(&self, mode: ReplayMode) -> ReplayId {
        let now = time::OffsetDateTime::now_utc();
        let id = ReplayId(getrandom::u64().unwrap_or_else(|_| {
            u64::try_from(now.unix_timestamp_nanos() & i128::from(u64::MAX)).unwrap_or(1)
        }));
        let status = ReplayStatus {
            id,
            mode,
            state: ReplayState::Running,
            matched: 0,
            done: 0,
            error: None,
        };
        let mut book = self.lock();
        book.trim();
        book.jobs.push(Job {
            status,
            outstanding: 0,
            wake: Arc::new(Notify::new()),
        });
        id
    }

    /// The deliveries a job queues per step.
    pub(super) fn step(&self) -> usize {
        self.step
    }

    /// One job's progress; `None` for an unknown (or forgotten) id.
    ///
    /// ```
    /// use alm_webhooks::inbox::{ReplayId, ReplayJobs};
    /// assert!(ReplayJobs::new().status(ReplayId(1)).is_none());
    /// ```
    pub fn status(&self, id: ReplayId) -> Option<ReplayStatus> {
        self.lock()
            .jobs
            .iter()
            .find(|j| j.status.id == id)
            .map(|j| j.status.clone())
    }

    /// Every job this process knows (the last 100 finished, and all that
    /// run), in the order started.
    ///
    /// ```
    /// assert!(alm_webhooks::inbox::ReplayJobs::new().list().is_empty());
    /// ```
    pub fn list(&self) -> Vec<ReplayStatus> {
        self.lock().jobs.iter().map(|j| j.status.clone()).collect()
    }

    /// Cancels a running job: it queues no further step, and its
    /// deliveries already queued and not yet taken are completed by the
    /// workers without being processed (one a worker holds now finishes).
    /// `false` for an unknown id or a job that is over.
    ///
    /// ```
    /// use alm_webhooks::inbox::{ReplayId, ReplayJobs};
    /// assert!(!ReplayJobs::new().cancel(ReplayId(1)));
    /// ```
    pub fn cancel(&self, id: ReplayId) -> bool {
        let mut book = self.lock();
        match book.job(id) {
            Some(job) if job.status.state == ReplayState::Running => {
                job.status.state = ReplayState::Cancelled;
                job.wake.notify_one();
                true
            }
            _ => false,
        }
    }

    /// Whether the job is still running (not cancelled).
    pub(super) fn is_running(&self, id: ReplayId) -> bool {
        self.status(id)
            .is_some_and(|s| s.state == ReplayState::Running)
    }

    /// Notes a delivery of `events` events the job queued.
    pub(super) fn queued(&self, id: ReplayId, delivery: DeliveryId, events: u64) {
        let mut book = self.lock();
        let early = book.recent_set.remove(&delivery);
        let Some(job) = book.job(id) else { return };
        job.status.matched += events;
        if early {
            job.status.done += events;
            return;
        }
        job.outstanding += 1;
        book.queued.insert(delivery, (id, events));
    }

    /// Ends a job: done (unless cancelled), or failed with `error`.
    pub(super) fn finish(&self, id: ReplayId, error: Option<String>) {
        let mut book = self.lock();
        if let Some(job) = book.job(id) {
            match error {
                Some(error) => {
                    job.status.state = ReplayState::Failed;
                    job.status.error = Some(error);
                }
                None if job.status.state == ReplayState::Running => {
                    job.status.state = ReplayState::Done;
                }
                None => {}
            }
        }
        if !book.running() {
            book.recent.clear();
            book.recent_set.clear();
        }
    }

    /// Waits until the job's queued deliveries are done or it is
    /// cancelled; [`Waited::Stalled`] when nothing was done for the stall
    /// limit.
    pub(super) async fn wait_step(&self, id: ReplayId) -> Waited {
        loop {
            let wake = {
                let mut book = self.lock();
                let Some(job) = book.job(id) else {
                    return Waited::Go;
                };
                if job.outstanding == 0 || job.status.state != ReplayState::Running {
                    return Waited::Go;
                }
                Arc::clone(&job.wake)
            };
            if tokio::time::timeout(self.stall, wake.notified())
                .await
                .is_err()
            {
                return Waited::Stalled;
            }
        }
    }

    /// For a worker that took `delivery`: `true` if it belongs to a
    /// cancelled job (complete it without processing it).
    pub(crate) fn is_cancelled(&self, delivery: DeliveryId) -> bool {
        let book = self.lock();
        let Some((job, _)) = book.queued.get(&delivery) else {
            return false;
        };
        book.jobs
            .iter()
            .find(|j| j.status.id == *job)
            .is_none_or(|j| j.status.state == ReplayState::Cancelled)
    }

    /// For a worker that completed `delivery`: counts its events done for
    /// its job, if it is a job's.
    pub(crate) fn completed(&self, delivery: DeliveryId) {
        let mut book = self.lock();
        let Some((id, events)) = book.queued.remove(&delivery) else {
            if book.running() {
                if book.recent.len() == RECENT_COMPLETIONS {
                    if let Some(old) = book.recent.pop_front() {
                        book.recent_set.remove(&old);
                    }
                }
                book.recent.push_back(delivery);
                book.recent_set.insert(delivery);
            }
            return;
        };
        if let Some(job) = book.job(id) {
            job.outstanding = job.outstanding.saturating_sub(1);
            if job.status.state != ReplayState::Cancelled {
                job.status.done += events;
            }
            job.wake.notify_one();
        }
    }
}
