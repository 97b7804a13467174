//! Reconciliation runs started by an operator or a timer, each with an id
//! and a state to ask for: what the admin API's `POST /reconcile` and
//! `GET /reconcile/{id}` answer.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use super::diff::{DifferenceKind, LearnerTable};
use super::run::{ReconcileMode, Reconciler};
use crate::store::BoxFuture;
use crate::{BoxError, Envelope, Timestamp};

type Bulk = Arc<dyn Fn(Timestamp, Timestamp) -> BoxFuture<'static, BulkResult> + Send + Sync>;
type BulkResult = Result<super::Reconciliation, super::ReconcileError>;
type Repair = Arc<dyn Fn(Envelope) -> BoxFuture<'static, Result<(), BoxError>> + Send + Sync>;

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RunState {
    /// The report job runs, or the repairs are being fed.
    Running,
    /// Finished: differences found (and, in repair mode, repaired).
    Done,
    /// Failed (the error says why, without secrets).
    Failed,
}

impl RunState {
    /// `running`, `done`, `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }
}

/// One run's state, as `GET /reconcile/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunStatus {
    /// Its id.
    pub id: u64,
    /// Report only, or repair.
    pub mode: ReconcileMode,
    /// Where it is.
    pub state: RunState,
    /// Records that differ (each counted once).
    pub found: usize,
    /// Records whose repair events the feed took (an engine processed
    /// them, or an inbox holds them for its workers).
    pub repaired: usize,
    /// Differences by kind (`missing`, `status`, `progress`,
    /// `enrollment_date`, `completion_date`, `not_in_alm`).
    pub by_kind: BTreeMap<&'static str, usize>,
    /// Why it failed.
    pub error: Option<String>,
}

impl RunStatus {
    /// As JSON: `{"id", "mode", "state", "found", "repaired", "byKind", "error"}`.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id.to_string(),
            "mode": match self.mode { ReconcileMode::Repair => "repair", ReconcileMode::Report => "report", _ => "off" },
            "state": self.state.as_str(),
            "found": self.found,
            "repaired": self.repaired,
            "byKind": self.by_kind,
            "error": self.error,
        })
    }
}

fn kind_name(kind: &DifferenceKind) -> &'static str {
    match kind {
        DifferenceKind::Missing => "missing",
        DifferenceKind::NotInAlm => "not_in_alm",
        DifferenceKind::Status { .. } => "status",
        DifferenceKind::Progress { .. } => "progress",
        DifferenceKind::CompletionDate => "completion_date",
        DifferenceKind::EnrollmentDate => "enrollment_date",
    }
}

/// Runs of one [`Reconciler`], in report or repair mode, each started in
/// the background with an id to ask about. Repairs go where
/// [`repairing`](Self::repairing) says: an inbox or an engine, never the
/// table itself.
///
/// ```no_run
/// # async fn run(api: alm_webhooks::alm_api::AlmApi) {
/// use std::time::Duration;
/// use alm_webhooks::{AccountId, Engine};
/// use alm_webhooks::alm_api::reconcile::{ReconcileMode, ReconcileRuns, Reconciler, RunState};
/// use alm_webhooks::store::MemoryStore;
///
/// let engine = Engine::builder(MemoryStore::new().with_learner_projection()).build();
/// let reconciler = Reconciler::new(api, engine.clone(), AccountId(1234));
/// let runs = ReconcileRuns::new(reconciler, ReconcileMode::Repair).repairing({
///     let engine = engine.clone();
///     move |repairs| {
///         let engine = engine.clone();
///         async move { engine.process(repairs, |_event| async { Ok(()) }).await.map(drop).map_err(Into::into) }
///     }
/// });
/// let id = runs.start();
/// tokio::time::sleep(Duration::from_secs(60)).await;
/// let status = runs.status(id).unwrap();
/// println!("{} found, {} repaired", status.found, status.repaired);
/// # }
/// ```
#[derive(Clone)]
pub struct ReconcileRuns {
    bulk: Bulk,
    repair: Option<Repair>,
    mode: ReconcileMode,
    lookback: Duration,
    runs: Arc<Mutex<BTreeMap<u64, RunStatus>>>,
    next: Arc<AtomicU64>,
}

impl fmt::Debug for ReconcileRuns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReconcileRuns")
            .field("mode", &self.mode)
            .field("lookback", &self.lookback)
            .field("repairing", &self.repair.is_some())
            .finish_non_exhaustive()
    }
}

/// How long a run polls its report job, at most.
const REPORT_DEADLINE: Duration = Duration::from_secs(3600);
/// How often.
const REPORT_POLL: Duration = Duration::from_secs(5);
/// At most this many runs are remembered (the oldest are forgotten).
const KEPT_RUNS: usize = 100;

impl ReconcileRuns {
    /// Runs of `reconciler` in `mode` ([`Report`](ReconcileMode::Report)
    /// or [`Repair`](ReconcileMode::Repair); `Off` runs report only),
    /// each comparing the report of the last 30 days
    /// ([`lookback`](Self::lookback)).
    pub fn new<T: LearnerTable + 'static>(reconciler: Reconciler<T>, mode: ReconcileMode) -> Self {
        let reconciler = Arc::new(reconciler);
        let bulk: Bulk = Arc::new(move |from, to| {
            let reconciler = Arc::clone(&reconciler);
            Box::pin(async move {
                reconciler
                    .bulk(from, to, REPORT_POLL, REPORT_DEADLINE)
                    .await
            })
        });
        Self {
            bulk,
            repair: None,
            mode,
            lookback: Duration::from_secs(30 * 24 * 3600),
            runs: Arc::default(),
            next: Arc::new(AtomicU64::new(1)),
        }
    }

    /// Each run compares the report of this period, up to now.
    #[must_use]
    pub fn lookback(mut self, period: Duration) -> Self {
        self.lookback = period;
        self
    }

    /// In repair mode, the repair envelope of each run goes to `feed`:
    /// `Engine::process` with the application's handler, or an inbox's
    /// `append` so that workers process it like any delivery. Without it,
    /// repair mode reports only.
    #[must_use]
    pub fn repairing<F, Fut>(mut self, feed: F) -> Self
    where
        F: Fn(Envelope) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        self.repair = Some(Arc::new(move |envelope| Box::pin(feed(envelope))));
        self
    }

    /// The mode runs are started in.
    pub fn mode(&self) -> ReconcileMode {
        self.mode
    }

    /// Starts a run in the background (on the current tokio runtime) and
    /// gives its id.
    pub fn start(&self) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let mode = match self.mode {
            ReconcileMode::Repair if self.repair.is_some() => ReconcileMode::Repair,
            _ => ReconcileMode::Report,
        };
        let status = RunStatus {
            id,
            mode,
            state: RunState::Running,
            found: 0,
            repaired: 0,
            by_kind: BTreeMap::new(),
            error: None,
        };
        {
            let mut runs = self.lock();
            runs.insert(id, status);
            while runs.len() > KEPT_RUNS {
                runs.pop_first();
            }
        }
        let this = self.clone();
        tokio::spawn(async move {
            let outcome = this.run(id, mode).await;
            let mut runs = this.lock();
            if let Some(status) = runs.get_mut(&id) {
                match outcome {
                    Ok(()) => status.state = RunState::Done,
                    Err(error) => {
                        status.state = RunState::Failed;
                        status.error = Some(error);
                    }
                }
            }
        });
        id
    }

    async fn run(&self, id: u64, mode: ReconcileMode) -> Result<(), String> {
        let now = time::OffsetDateTime::now_utc();
        let to = Timestamp::from_instant_seconds(now);
        let from = Timestamp::from_instant_seconds(now - self.lookback);
        let found = (self.bulk)(from, to).await.map_err(|e| e.to_string())?;
        let mut keys = std::collections::BTreeSet::new();
        {
            let mut runs = self.lock();
            let Some(status) = runs.get_mut(&id) else {
                return Ok(());
            };
            for difference in &found.differences {
                keys.insert((difference.user_id, difference.lo_instance_id.clone()));
                *status
                    .by_kind
                    .entry(kind_name(&difference.kind))
                    .or_default() += 1;
            }
            status.found = keys.len();
        }
        let (ReconcileMode::Repair, Some(repair)) = (mode, &self.repair) else {
            return Ok(());
        };
        let Some(envelope) = found.repair_envelope() else {
            return Ok(());
        };
        let repaired: std::collections::BTreeSet<_> = envelope
            .parsed()
            .filter_map(|e| Some((e.user_id()?, e.lo_instance_id()?.clone())))
            .collect();
        repair(envelope)
            .await
            .map_err(|e| format!("the repairs could not be fed: {e}"))?;
        if let Some(status) = self.lock().get_mut(&id) {
            status.repaired = repaired.len();
        }
        Ok(())
    }

    /// A run's state; `None` for an unknown (or long forgotten) id.
    pub fn status(&self, id: u64) -> Option<RunStatus> {
        self.lock().get(&id).cloned()
    }

    /// Starts a run every `period` (the first one a `period` from now),
    /// until the returned task is aborted.
    pub fn every(&self, period: Duration) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            loop {
                tick.tick().await;
                this.start();
            }
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, RunStatus>> {
        self.runs.lock().unwrap_or_else(|e| e.into_inner())
    }
}
