//! Running a reconciliation and turning its differences into synthetic
//! events for the engine.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::diff::{
    Difference, DifferenceKind, LearnerRecord, LearnerStatus, LearnerTable, compare,
    parse_transcript_csv,
};
use crate::alm_api::{AlmApi, ApiError, ReportKind, WhenOverBudget};
use crate::{AccountId, Envelope, Timestamp, UserId};

/// What a reconciliation does with what it finds (`ALM_RECONCILE`).
///
/// ```
/// use alm_webhooks::alm_api::reconcile::ReconcileMode;
/// assert_eq!("report".parse::<ReconcileMode>().unwrap(), ReconcileMode::Report);
/// assert_eq!(ReconcileMode::default(), ReconcileMode::Off);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReconcileMode {
    /// No reconciliation (the default).
    #[default]
    Off,
    /// Dry run: report the differences only.
    Report,
    /// Report, and feed the repairs through the engine.
    Repair,
}

impl std::str::FromStr for ReconcileMode {
    type Err = ApiError;
    fn from_str(text: &str) -> Result<Self, ApiError> {
        match text.trim() {
            "off" | "" => Ok(Self::Off),
            "report" => Ok(Self::Report),
            "repair" => Ok(Self::Repair),
            other => Err(ApiError::Config(format!(
                "ALM_RECONCILE is off, report or repair, not {other:?}"
            ))),
        }
    }
}

/// The field every synthetic event carries, beside ALM's own: handlers and
/// the audit trail see that reconciliation made it.
pub const ORIGIN_FIELD: &str = "origin";
/// Its value.
pub const ORIGIN_RECONCILIATION: &str = "reconciliation";

/// Why a reconciliation did not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReconcileError {
    /// The API failed (or the budget had no room).
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The learner table could not be read.
    #[error("the learner table could not be read")]
    Table(#[source] crate::BoxError),
    /// The day's report jobs are spent.
    #[error("{per_day} report job(s) a day are spent; the next one fits in {} s", next_in.as_secs())]
    ReportLimit {
        /// The limit.
        per_day: u32,
        /// When the next one fits.
        next_in: Duration,
    },
}

/// What one run found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reconciliation {
    /// The account.
    pub account: AccountId,
    /// Every difference.
    pub differences: Vec<Difference>,
}

impl Reconciliation {
    /// The synthetic events that repair what can be repaired: a completion,
    /// an enrollment or a progress event as ALM would have sent it, dated
    /// with ALM's own date (so a newer webhook event still wins), with an
    /// `eventId` starting `reconcile-` and [`ORIGIN_FIELD`] set. A
    /// missing record or a differing enrollment date also gets the
    /// enrollment, dated with ALM's `dateEnrolled`. Differences where the
    /// table is *ahead* of ALM, [`NotInAlm`] and completion dates are
    /// reported, not repaired.
    ///
    /// [`NotInAlm`]: DifferenceKind::NotInAlm
    pub fn repair_events(&self) -> Vec<Value> {
        let now = Timestamp::from_instant_seconds(time::OffsetDateTime::now_utc());
        self.differences
            .iter()
            .flat_map(|d| repair(d, &now))
            .collect()
    }

    /// [`repair_events`](Self::repair_events) as one envelope of the
    /// account, to give to `Engine::process`; `None` when nothing is to
    /// repair.
    pub fn repair_envelope(&self) -> Option<Envelope> {
        let events = self.repair_events();
        if events.is_empty() {
            return None;
        }
        let body = json!({"accountId": self.account.0, "events": events}).to_string();
        Envelope::from_slice(body.as_bytes()).ok()
    }
}

fn repair(difference: &Difference, now: &Timestamp) -> Vec<Value> {
    let Some(alm) = difference.alm.as_ref() else {
        return Vec::new();
    };
    let status = match &difference.kind {
        DifferenceKind::Missing => true,
        DifferenceKind::Status { table, alm } => table < alm,
        DifferenceKind::Progress { table, alm } => alm.unwrap_or(0) > table.unwrap_or(0),
        _ => false,
    };
    // A missing record gets its enrollment too (when ALM dates it), as
    // does a record whose enrollment date differs.
    let enrollment = match difference.kind {
        DifferenceKind::Missing => alm.status != LearnerStatus::Enrolled,
        DifferenceKind::EnrollmentDate => true,
        _ => false,
    } && alm.date_enrolled.is_some();
    let mut events = Vec::new();
    if enrollment {
        events.push(synthetic(alm, LearnerStatus::Enrolled, now));
    }
    if status {
        events.push(synthetic(alm, alm.status, now));
    }
    events
}

/// The event ALM would have sent for `alm` being at `status`.
fn synthetic(alm: &LearnerRecord, status: LearnerStatus, now: &Timestamp) -> Value {
    let family = match alm.lo_id.as_str().split(':').next().unwrap_or_default() {
        "learningProgram" | "learning_program" => "LEARNING_PATH",
        "certification" => "CERTIFICATION",
        _ => "COURSE",
    };
    let mut data = json!({
        "userId": alm.user_id.0,
        "loId": alm.lo_id.as_str(),
        "loInstanceId": alm.lo_instance_id.as_str(),
    });
    let (name, at) = match status {
        LearnerStatus::Completed => {
            let at = alm.date_completed.clone().unwrap_or_else(|| now.clone());
            data["dateCompleted"] = json!(at);
            (format!("{family}_COMPLETED"), at)
        }
        LearnerStatus::Enrolled => {
            let at = alm.date_enrolled.clone().unwrap_or_else(|| now.clone());
            data["dateEnrolled"] = json!(at);
            (format!("{family}_ENROLLMENT"), at)
        }
        LearnerStatus::Started => {
            data["progressPercent"] = json!(alm.progress_percent.unwrap_or(0));
            ("LEARNER_PROGRESS".to_owned(), now.clone())
        }
    };
    json!({
        "eventId": format!("reconcile-{}-{}-{}-{}", alm.user_id.0, alm.lo_instance_id, name, at.unix_millis()),
        "eventName": name,
        "timestamp": at,
        "data": data,
        ORIGIN_FIELD: ORIGIN_RECONCILIATION,
    })
}

/// Compares one account's learner table with ALM: in bulk through a
/// report job (at most `max_reports_per_day`, default 1), or for one
/// learner through their enrollments, within the API budget.
///
/// ```no_run
/// # async fn run<T: alm_webhooks::alm_api::reconcile::LearnerTable>(
/// #     api: alm_webhooks::alm_api::AlmApi, table: T,
/// #     engine: alm_webhooks::Engine<alm_webhooks::store::MemoryStore>,
/// # ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// use std::time::Duration;
/// use alm_webhooks::{AccountId, Timestamp};
/// use alm_webhooks::alm_api::reconcile::Reconciler;
/// let reconciler = Reconciler::new(api, table, AccountId(1234));
/// let (from, to) = (Timestamp::from_epoch(1_725_000_000)?, Timestamp::from_epoch(1_725_604_800)?);
/// let found = reconciler.bulk(from, to, Duration::from_secs(30), Duration::from_secs(3600)).await?;
/// for difference in &found.differences {
///     println!("{} in {}: {:?}", difference.user_id, difference.lo_instance_id, difference.kind);
/// }
/// // Repair mode: the repairs go through the engine, like any event.
/// if let Some(repairs) = found.repair_envelope() {
///     engine.process(repairs, |event| async move { Ok(()) }).await?;
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Reconciler<T> {
    api: AlmApi,
    table: T,
    account: AccountId,
    max_reports_per_day: u32,
    reports: Arc<Mutex<Vec<Instant>>>,
}

const DAY: Duration = Duration::from_secs(24 * 3600);

impl<T: LearnerTable> Reconciler<T> {
    /// A reconciler of `account` over `table`, through `api`.
    pub fn new(api: AlmApi, table: T, account: AccountId) -> Self {
        Self {
            api,
            table,
            account,
            max_reports_per_day: 1,
            reports: Arc::default(),
        }
    }

    /// At most `per_day` report jobs a day.
    pub fn with_max_reports_per_day(mut self, per_day: u32) -> Self {
        self.max_reports_per_day = per_day;
        self
    }

    /// The table it reads.
    pub fn table(&self) -> &T {
        &self.table
    }

    /// Runs a learner-transcript report job for `from`..`to` (polling every
    /// `poll_every`, at most `deadline`) and compares it with the table.
    pub async fn bulk(
        &self,
        from: Timestamp,
        to: Timestamp,
        poll_every: Duration,
        deadline: Duration,
    ) -> Result<Reconciliation, ReconcileError> {
        {
            let mut reports = self.reports.lock().unwrap_or_else(|e| e.into_inner());
            reports.retain(|at| at.elapsed() < DAY);
            if reports.len() >= self.max_reports_per_day as usize {
                let next_in = reports
                    .first()
                    .map_or(DAY, |oldest| DAY.saturating_sub(oldest.elapsed()));
                return Err(ReconcileError::ReportLimit {
                    per_day: self.max_reports_per_day,
                    next_in,
                });
            }
            reports.push(Instant::now());
        }
        let csv = self
            .api
            .run_report(
                &ReportKind::LearnerTranscript,
                from,
                to,
                poll_every,
                deadline,
            )
            .await?;
        let alm = parse_transcript_csv(&csv);
        let table = self
            .table
            .learner_records(self.account)
            .await
            .map_err(ReconcileError::Table)?;
        Ok(Reconciliation {
            account: self.account,
            differences: compare(&table, &alm),
        })
    }

    /// Compares one learner's records with their enrollments in ALM (one
    /// budgeted request per page of 10).
    pub async fn check_user(
        &self,
        user: UserId,
        when: WhenOverBudget,
    ) -> Result<Reconciliation, ReconcileError> {
        let enrollments = self.api.enrollments(user, when).await?;
        let alm: Vec<LearnerRecord> = enrollments
            .iter()
            .filter_map(|e| {
                let mut record = LearnerRecord::new(
                    e.user_id.unwrap_or(user),
                    e.lo_instance_id.clone()?,
                    LearnerStatus::from_alm(e.state.as_deref()?)?,
                );
                record.progress_percent = e.progress_percent;
                record.date_enrolled = e.date_enrolled.clone();
                record.date_completed = e.date_completed.clone();
                Some(record)
            })
            .collect();
        let table = self
            .table
            .learner_records_of_user(self.account, user)
            .await
            .map_err(ReconcileError::Table)?;
        Ok(Reconciliation {
            account: self.account,
            differences: compare(&table, &alm),
        })
    }
}
