//! The client against ALM's published examples (tests/alm_api/,
//! sources in SOURCES.md there): parsed directly, and served over HTTP to
//! the whole client (token refresh, `Authorization: oauth …`, JSON:API).
#![cfg(feature = "alm-api")]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use alm_webhooks::alm_api::{
    AlmApi, ApiConfig, ApiError, Enrollment, Job, JobStatus, LearningObject, LoInstance, User,
    WhenOverBudget,
};
use alm_webhooks::{LoId, UserId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const USER: &[u8] = include_bytes!("alm_api/user.json");
const LO: &[u8] = include_bytes!("alm_api/learning_object_with_instances.json");
const INSTANCE: &[u8] = include_bytes!("alm_api/learning_object_instance.json");
const ENROLLMENTS: &[u8] = include_bytes!("alm_api/enrollments_page.json");
const JOB: &[u8] = include_bytes!("alm_api/job_completed.json");
const ERROR: &[u8] = include_bytes!("alm_api/error_bad_request.json");
const TOKEN: &[u8] = include_bytes!("alm_api/token_refresh.json");

#[test]
fn the_reference_user_parses() {
    let user = User::from_document(USER).unwrap();
    assert_eq!(user.id, UserId(20919106));
    assert_eq!(user.name.as_deref(), Some("Aglae Cronin"));
    assert_eq!(user.email.as_deref(), Some("zmertz@example.net"));
    assert_eq!(user.attributes["fields"]["Categories"], "Business");
}

#[test]
fn the_reference_learning_object_and_instance_parse() {
    let lo = LearningObject::from_document(LO).unwrap();
    assert_eq!(lo.id.as_str(), "course:13209797");
    assert_eq!(lo.lo_type.as_deref(), Some("course"));
    assert_eq!(lo.name.as_deref(), Some("Workplace Safety"));
    assert_eq!(lo.instance_ids.len(), 1);
    assert_eq!(lo.instance_ids[0].as_str(), "course:13209797_16226533");

    let instance = LoInstance::from_document(INSTANCE).unwrap();
    assert_eq!(instance.state.as_deref(), Some("Active"));
    assert_eq!(instance.is_default, Some(true));
    let start = instance.start_date.expect("startDate");
    assert_eq!(start.instant().year(), 2026);
    assert_eq!(instance.attributes["timeZoneCode"], "IST");
}

#[test]
fn the_reference_enrollment_example_parses_with_its_placeholder_relationships() {
    let (page, next) = Enrollment::from_list_document(ENROLLMENTS).unwrap();
    assert_eq!(page.len(), 1);
    let e = &page[0];
    assert_eq!(e.state.as_deref(), Some("ENROLLED"));
    assert_eq!(e.progress_percent, Some(47));
    assert_eq!(e.has_passed, Some(true));
    assert_eq!(
        e.date_completed.as_ref().unwrap().to_string(),
        "2025-03-15T14:30:00Z"
    );
    // "data": "example-data" is not a resource identifier: no id, no error.
    assert_eq!(e.user_id, None);
    assert_eq!(e.lo_instance_id, None);
    assert_eq!(
        next.as_deref(),
        Some("https://learningmanager.adobe.com/example")
    );
}

#[test]
fn the_reference_job_parses_and_both_status_spellings_are_read() {
    let job = Job::from_document(JOB).unwrap();
    assert_eq!(job.id, "5127384");
    assert_eq!(job.status, JobStatus::Completed);
    assert_eq!(job.job_type.as_deref(), Some("learnerTranscriptExport"));
    assert_eq!(
        job.download_url.as_deref(),
        Some("https://learningmanager.adobe.com/example/report.csv")
    );
    let older =
        br#"{"data":{"id":"1","type":"job","attributes":{"status":{"code":"PENDING"},"url":"u"}}}"#;
    let older = Job::from_document(older).unwrap();
    assert_eq!(older.status, JobStatus::Running("PENDING".into()));
    assert_eq!(older.download_url.as_deref(), Some("u"));
}

/// A server that answers with the fixtures and records what it was asked.
async fn fixture_server(seen: Arc<Mutex<Vec<String>>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                loop {
                    let Ok(n) = socket.read(&mut buffer).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buffer[..n]);
                    let text = String::from_utf8_lossy(&request).to_lowercase();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if request.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                let text = String::from_utf8_lossy(&request).to_string();
                let line = text.lines().next().unwrap_or_default().to_owned();
                let auth = text
                    .lines()
                    .find(|l| l.to_lowercase().starts_with("authorization:"))
                    .map(|l| l[14..].trim().to_owned())
                    .unwrap_or_default();
                seen.lock().unwrap().push(format!("{line} | {auth}"));
                let (status, body): (u16, &[u8]) = if line.starts_with("POST /oauth/token/refresh")
                {
                    (200, TOKEN)
                } else if auth != "oauth 4e8e1025da6457cd4d0597b6fe1ac5af" {
                    (401, ERROR)
                } else if line.contains("/primeapi/v2/users/20919106 ") {
                    (200, USER)
                } else if line.contains("/primeapi/v2/learningObjects/course%3A13209797 ") {
                    (200, LO)
                } else {
                    (400, ERROR)
                };
                let head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/vnd.api+json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(body).await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn the_client_reads_the_reference_documents_over_http() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let base = fixture_server(Arc::clone(&seen)).await;
    let api = AlmApi::new(ApiConfig::new(
        &base,
        "app",
        "client-secret-xyz",
        "refresh-xyz",
    ))
    .unwrap();
    let wait = WhenOverBudget::Wait(Duration::from_secs(5));

    let user = api.user(UserId(20919106), wait).await.unwrap();
    assert_eq!(user.name.as_deref(), Some("Aglae Cronin"));
    let course: LoId = "course:13209797".parse().unwrap();
    let lo = api.learning_object(&course, wait).await.unwrap();
    assert_eq!(lo.name.as_deref(), Some("Workplace Safety"));

    // The reference's error document on a 400: a Status error, no body quoted.
    let other: LoId = "course:1".parse().unwrap();
    let error = api.learning_object(&other, wait).await.unwrap_err();
    assert!(
        matches!(error, ApiError::Status { status: 400, .. }),
        "{error:?}"
    );

    let seen = seen.lock().unwrap().clone();
    assert!(seen[0].starts_with("POST /oauth/token/refresh"), "{seen:?}");
    assert_eq!(
        seen.iter().filter(|l| l.starts_with("POST /oauth")).count(),
        1,
        "one refresh: {seen:?}"
    );
    assert!(
        seen[1].ends_with("| oauth 4e8e1025da6457cd4d0597b6fe1ac5af"),
        "{seen:?}"
    );
}
