//! Report jobs: create a learner-transcript or training report job, poll it,
//! download its CSV (ALM's recommended path for bulk loads).
//!
//! Shapes: `POST /primeapi/v2/jobs` with
//! `{"data": {"type": "job", "attributes": {"jobType", "description",
//! "payload"}}}` and `GET /primeapi/v2/jobs/{id}` answering a `job`
//! resource with `jobType`, `status` (`Submitted`, `InProgress`,
//! `Completed`, `Failed`), `dateCreated`, `dateCompleted` and
//! `downloadUrl`: the API reference's `Job` and `JobCreateRequest` schemas
//! as published in the Prime API description
//! (<https://schemas.apis.io/schemas/adobe-captivate/prime-api-job/>,
//! <https://apis.io/json-structure/adobe-captivate/prime-api-job-create-request-structure/>).
//! Older answers spell the status as an object (`{"code": "COMPLETED"}`)
//! and the link as `url`: both are read.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::model::Document;
use super::{AlmApi, ApiError, WhenOverBudget};
use crate::Timestamp;

/// Which report a job builds.
///
/// ```
/// use alm_webhooks::alm_api::ReportKind;
/// assert_eq!(ReportKind::LearnerTranscript.job_type(), "learnerTranscriptExport");
/// assert_eq!(ReportKind::Other("userEnrollmentReport".into()).job_type(), "userEnrollmentReport");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReportKind {
    /// Every learner's records (`learnerTranscriptExport`).
    LearnerTranscript,
    /// Training progress per learning object (`trainingReportExport`).
    TrainingReport,
    /// Another `jobType`, sent as written.
    Other(String),
}

impl ReportKind {
    /// The `jobType` sent.
    pub fn job_type(&self) -> &str {
        match self {
            Self::LearnerTranscript => "learnerTranscriptExport",
            Self::TrainingReport => "trainingReportExport",
            Self::Other(name) => name,
        }
    }
}

/// Where a job is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JobStatus {
    /// Submitted or in progress (ALM's word kept).
    Running(String),
    /// Done: the CSV can be downloaded.
    Completed,
    /// Failed.
    Failed,
}

/// A report job as ALM describes it.
///
/// ```
/// use alm_webhooks::alm_api::{Job, JobStatus};
/// let job = Job::from_document(br#"{"data":{"id":"9","type":"job","attributes":{
///   "jobType":"learnerTranscriptExport","status":"Completed",
///   "downloadUrl":"https://cdn.example/report.csv"}}}"#).unwrap();
/// assert_eq!(job.status, JobStatus::Completed);
/// assert_eq!(job.download_url.as_deref(), Some("https://cdn.example/report.csv"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Job {
    /// The job's id.
    pub id: String,
    /// `jobType`.
    pub job_type: Option<String>,
    /// `status`.
    pub status: JobStatus,
    /// `downloadUrl` (or `url`), once completed.
    pub download_url: Option<String>,
}

impl Job {
    /// Parses a `job` document.
    pub fn from_document(body: &[u8]) -> Result<Self, serde_json::Error> {
        let document: Document = serde_json::from_slice(body)?;
        let attributes = &document.data.attributes;
        let text = |name: &str| {
            attributes
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let status_word = match attributes.get("status") {
            Some(Value::String(word)) => word.clone(),
            Some(Value::Object(object)) => object
                .get("code")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            _ => String::new(),
        };
        let status = match status_word.to_ascii_lowercase().as_str() {
            "completed" | "complete" | "done" | "success" => JobStatus::Completed,
            "failed" | "error" | "failure" => JobStatus::Failed,
            _ => JobStatus::Running(status_word),
        };
        Ok(Self {
            id: document.data.id,
            job_type: text("jobType"),
            status,
            download_url: text("downloadUrl").or_else(|| text("url")),
        })
    }
}

impl AlmApi {
    /// `POST /primeapi/v2/jobs`: asks for a report of what happened
    /// between `from` and `to`. Outside the budget (one job a day), but
    /// held back by ALM's `Retry-After`.
    pub async fn create_report_job(
        &self,
        kind: &ReportKind,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Job, ApiError> {
        let rfc3339 = |t: Timestamp| {
            t.instant()
                .format(&time::format_description::well_known::Rfc3339)
                .map_err(|e| ApiError::Config(format!("a report date cannot be written: {e}")))
        };
        let (from, to) = (rfc3339(from)?, rfc3339(to)?);
        let body = json!({"data": {"type": "job", "attributes": {
            "jobType": kind.job_type(),
            "description": "alm-webhooks reconciliation",
            "payload": {"startDate": from, "endDate": to},
        }}})
        .to_string();
        let url = self.api_url("jobs");
        let answer = self
            .send(
                "jobs",
                WhenOverBudget::Wait(Duration::from_secs(300)),
                false,
                "jobs",
                |http| {
                    http.post(&url)
                        .header(http::header::CONTENT_TYPE, super::client::JSON_API)
                        .body(body.clone())
                },
            )
            .await?;
        Job::from_document(&answer).map_err(|e| ApiError::decode("jobs", e))
    }

    /// `GET /primeapi/v2/jobs/{id}`.
    pub async fn job(&self, id: &str) -> Result<Job, ApiError> {
        let url = self.api_url(&format!("jobs/{}", super::client::segment(id)));
        let what = format!("job {id}");
        let answer = self
            .send(
                "jobs",
                WhenOverBudget::Wait(Duration::from_secs(300)),
                false,
                &what,
                |http| http.get(&url),
            )
            .await?;
        Job::from_document(&answer).map_err(|e| ApiError::decode("jobs", e))
    }

    /// Downloads a completed job's CSV. The access token is sent only when
    /// the link is on the account's own host (a pre-signed link elsewhere
    /// needs none, and must not receive it).
    pub async fn download_report(&self, job: &Job) -> Result<String, ApiError> {
        let Some(link) = job.download_url.as_deref() else {
            return Err(ApiError::Job {
                job_id: job.id.clone(),
                state: "has no download link",
            });
        };
        let link = if link.starts_with('/') {
            format!("{}{link}", self.inner.config.base)
        } else {
            link.to_owned()
        };
        let bytes = if self.same_host(&link) {
            let what = format!("report of job {}", job.id);
            self.send(
                "jobs",
                WhenOverBudget::Wait(Duration::from_secs(300)),
                false,
                &what,
                |http| http.get(&link),
            )
            .await?
        } else {
            let response = self
                .inner
                .http
                .get(&link)
                .send()
                .await
                .map_err(|e| ApiError::transport("jobs", e.without_url()))?;
            if !response.status().is_success() {
                return Err(ApiError::Status {
                    status: response.status().as_u16(),
                    endpoint: "jobs",
                });
            }
            response
                .bytes()
                .await
                .map_err(|e| ApiError::transport("jobs", e.without_url()))?
                .to_vec()
        };
        String::from_utf8(bytes).map_err(|e| ApiError::decode("jobs", e))
    }

    /// Creates a report job, polls it every `poll_every` until it completes
    /// (at most `deadline`), and downloads its CSV.
    pub async fn run_report(
        &self,
        kind: &ReportKind,
        from: Timestamp,
        to: Timestamp,
        poll_every: Duration,
        deadline: Duration,
    ) -> Result<String, ApiError> {
        let started = Instant::now();
        let mut job = self.create_report_job(kind, from, to).await?;
        loop {
            match job.status {
                JobStatus::Completed => return self.download_report(&job).await,
                JobStatus::Failed => {
                    return Err(ApiError::Job {
                        job_id: job.id,
                        state: "failed",
                    });
                }
                JobStatus::Running(_) if started.elapsed() + poll_every > deadline => {
                    return Err(ApiError::Job {
                        job_id: job.id,
                        state: "did not finish in time",
                    });
                }
                JobStatus::Running(_) => {
                    tokio::time::sleep(poll_every).await;
                    job = self.job(&job.id).await?;
                }
            }
        }
    }
}
