//! The records compared and the comparison itself (pure).

use std::collections::BTreeMap;
use std::future::Future;

use crate::{AccountId, BoxError, LoId, LoInstanceId, Timestamp, UserId};

/// A learner's state in one instance, in the vocabulary of ALM's
/// enrollment `state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum LearnerStatus {
    /// Enrolled, not started.
    Enrolled,
    /// Progress reported.
    Started,
    /// Completed.
    Completed,
}

impl LearnerStatus {
    /// Reads ALM's word (`ENROLLED`, `STARTED`, `COMPLETED`, any case);
    /// `None` for others (`PENDING_APPROVAL`, …), which are not compared.
    pub fn from_alm(word: &str) -> Option<Self> {
        match word.trim().to_ascii_uppercase().as_str() {
            "ENROLLED" => Some(Self::Enrolled),
            "STARTED" | "IN_PROGRESS" => Some(Self::Started),
            "COMPLETED" => Some(Self::Completed),
            _ => None,
        }
    }
}

/// One learner record: the table's row, or ALM's.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LearnerRecord {
    /// The learner.
    pub user_id: UserId,
    /// The instance (the record's key with the learner).
    pub lo_instance_id: LoInstanceId,
    /// The learning object.
    pub lo_id: LoId,
    /// Where the learner is.
    pub status: LearnerStatus,
    /// Progress in percent, when known.
    pub progress_percent: Option<u8>,
    /// When the learner enrolled.
    pub date_enrolled: Option<Timestamp>,
    /// When the learner completed.
    pub date_completed: Option<Timestamp>,
}

impl LearnerRecord {
    /// A record with no progress and no dates.
    ///
    /// ```
    /// use alm_webhooks::alm_api::reconcile::{LearnerRecord, LearnerStatus};
    /// let r = LearnerRecord::new(alm_webhooks::UserId(7), "course:1_2".parse().unwrap(), LearnerStatus::Enrolled);
    /// assert_eq!(r.lo_id.as_str(), "course:1");
    /// ```
    pub fn new(user_id: UserId, lo_instance_id: LoInstanceId, status: LearnerStatus) -> Self {
        Self {
            user_id,
            lo_id: lo_instance_id.lo_id(),
            lo_instance_id,
            status,
            progress_percent: None,
            date_enrolled: None,
            date_completed: None,
        }
    }
}

/// The learner table as this crate keeps it, read-only.
///
/// The learner projection implements it; reconciliation only reads
/// through it and repairs through the engine.
pub trait LearnerTable: Send + Sync {
    /// Every record of `account`.
    fn learner_records(
        &self,
        account: AccountId,
    ) -> impl Future<Output = Result<Vec<LearnerRecord>, BoxError>> + Send;

    /// Every record of one learner of `account` (a targeted check); by
    /// default, [`learner_records`](Self::learner_records) filtered.
    fn learner_records_of_user(
        &self,
        account: AccountId,
        user: UserId,
    ) -> impl Future<Output = Result<Vec<LearnerRecord>, BoxError>> + Send {
        async move {
            let mut records = self.learner_records(account).await?;
            records.retain(|r| r.user_id == user);
            Ok(records)
        }
    }
}

/// What differs for one record.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DifferenceKind {
    /// ALM has the record; the table does not.
    Missing,
    /// The table has a record ALM does not (an unenrollment it missed, or a
    /// record ALM's report leaves out): reported, never repaired.
    NotInAlm,
    /// The status differs.
    Status {
        /// The table's.
        table: LearnerStatus,
        /// ALM's.
        alm: LearnerStatus,
    },
    /// The progress differs (same status).
    Progress {
        /// The table's.
        table: Option<u8>,
        /// ALM's.
        alm: Option<u8>,
    },
    /// The completion date differs (both completed).
    CompletionDate,
    /// ALM has an enrollment date the table lacks or has otherwise (a
    /// dropped enrollment whose later events arrived). Reported beside the
    /// record's other difference, if any.
    EnrollmentDate,
}

/// One difference, with ALM's record when ALM has one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Difference {
    /// The learner.
    pub user_id: UserId,
    /// The instance.
    pub lo_instance_id: LoInstanceId,
    /// What differs.
    pub kind: DifferenceKind,
    /// ALM's record (absent for [`DifferenceKind::NotInAlm`]).
    pub alm: Option<LearnerRecord>,
}

/// Compares the table with ALM's records. Pure: no I/O.
///
/// ```
/// use alm_webhooks::UserId;
/// use alm_webhooks::alm_api::reconcile::{compare, DifferenceKind, LearnerRecord, LearnerStatus};
/// let alm = vec![LearnerRecord::new(UserId(1), "course:1_1".parse().unwrap(), LearnerStatus::Completed)];
/// let table = vec![LearnerRecord::new(UserId(1), "course:1_1".parse().unwrap(), LearnerStatus::Started)];
/// let found = compare(&table, &alm);
/// assert_eq!(found[0].kind, DifferenceKind::Status { table: LearnerStatus::Started, alm: LearnerStatus::Completed });
/// assert!(compare(&alm, &alm).is_empty());
/// ```
pub fn compare(table: &[LearnerRecord], alm: &[LearnerRecord]) -> Vec<Difference> {
    let key = |r: &LearnerRecord| (r.user_id, r.lo_instance_id.clone());
    let table: BTreeMap<_, _> = table.iter().map(|r| (key(r), r)).collect();
    let alm: BTreeMap<_, _> = alm.iter().map(|r| (key(r), r)).collect();
    let mut found = Vec::new();
    for ((user_id, lo_instance_id), theirs) in &alm {
        let kind = match table.get(&(*user_id, lo_instance_id.clone())) {
            None => Some(DifferenceKind::Missing),
            Some(ours) if ours.status != theirs.status => Some(DifferenceKind::Status {
                table: ours.status,
                alm: theirs.status,
            }),
            Some(ours)
                if ours.status == LearnerStatus::Started
                    && theirs.progress_percent.is_some()
                    && ours.progress_percent != theirs.progress_percent =>
            {
                Some(DifferenceKind::Progress {
                    table: ours.progress_percent,
                    alm: theirs.progress_percent,
                })
            }
            Some(ours)
                if ours.status == LearnerStatus::Completed
                    && theirs.date_completed.is_some()
                    && ours.date_completed.is_some()
                    && ours.date_completed != theirs.date_completed =>
            {
                Some(DifferenceKind::CompletionDate)
            }
            Some(_) => None,
        };
        let enrolled_differs = table
            .get(&(*user_id, lo_instance_id.clone()))
            .is_some_and(|ours| {
                theirs.date_enrolled.is_some() && ours.date_enrolled != theirs.date_enrolled
            });
        let enrolled = enrolled_differs.then_some(DifferenceKind::EnrollmentDate);
        for kind in kind.into_iter().chain(enrolled) {
            found.push(Difference {
                user_id: *user_id,
                lo_instance_id: lo_instance_id.clone(),
                kind,
                alm: Some((*theirs).clone()),
            });
        }
    }
    for (user_id, lo_instance_id) in table.keys() {
        if !alm.contains_key(&(*user_id, lo_instance_id.clone())) {
            found.push(Difference {
                user_id: *user_id,
                lo_instance_id: lo_instance_id.clone(),
                kind: DifferenceKind::NotInAlm,
                alm: None,
            });
        }
    }
    found
}

/// Reads a learner-transcript CSV into records, by column name:
/// `userId`, `loId`, `loInstanceId`, `state`, `progressPercent`,
/// `dateEnrolled`, `dateCompleted` (the double's columns; ALM has not
/// published its own, so a real account's may need mapping). Rows whose
/// state is not compared (`PENDING_APPROVAL`, …) or whose ids do not parse
/// are skipped. Values must not contain commas or quotes.
///
/// ```
/// use alm_webhooks::alm_api::reconcile::{parse_transcript_csv, LearnerStatus};
/// let csv = "userId,loId,loInstanceId,state,progressPercent,dateEnrolled,dateStarted,dateCompleted\n\
///            7,course:1,course:1_2,COMPLETED,100,1725000000,,1725000500\n";
/// let records = parse_transcript_csv(csv);
/// assert_eq!(records[0].status, LearnerStatus::Completed);
/// assert_eq!(records[0].progress_percent, Some(100));
/// ```
pub fn parse_transcript_csv(csv: &str) -> Vec<LearnerRecord> {
    let mut lines = csv.lines();
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let columns: Vec<&str> = header.split(',').map(str::trim).collect();
    let at = |name: &str| columns.iter().position(|c| c.eq_ignore_ascii_case(name));
    let (Some(user), Some(instance), Some(state)) = (at("userId"), at("loInstanceId"), at("state"))
    else {
        return Vec::new();
    };
    let (progress, enrolled, completed) = (
        at("progressPercent"),
        at("dateEnrolled"),
        at("dateCompleted"),
    );
    lines
        .filter_map(|line| {
            let cells: Vec<&str> = line.split(',').map(str::trim).collect();
            let cell = |i: Option<usize>| {
                i.and_then(|i| cells.get(i))
                    .copied()
                    .filter(|c| !c.is_empty())
            };
            let time = |i| cell(i).and_then(parse_time);
            let mut record = LearnerRecord::new(
                UserId(cell(Some(user))?.parse().ok()?),
                cell(Some(instance))?.parse().ok()?,
                LearnerStatus::from_alm(cell(Some(state))?)?,
            );
            record.progress_percent = cell(progress).and_then(|p| p.parse().ok());
            record.date_enrolled = time(enrolled);
            record.date_completed = time(completed);
            Some(record)
        })
        .collect()
}

fn parse_time(text: &str) -> Option<Timestamp> {
    match text.parse::<i64>() {
        Ok(epoch) => Timestamp::from_epoch(epoch).ok(),
        Err(_) => Timestamp::from_rfc3339(text).ok(),
    }
}
