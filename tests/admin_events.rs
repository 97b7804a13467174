//! `GET /admin/events`: the archive searched through the admin API, after
//! real workers processed a delivery (memory and SQLite inboxes): the
//! events of a learner, an `eventId` or an instance with their decisions,
//! a time range, and a `400` naming a bad parameter.

use std::sync::Arc;

use alm_webhooks::admin::{AdminApi, AdminToken};
use alm_webhooks::inbox::{Inbox, MemoryInbox, NewDelivery, Workers};
use alm_webhooks::{AccountId, BoxError, Engine, Event};
use http::{HeaderMap, Method};
use serde_json::{Value, json};
use time::OffsetDateTime;

const TOKEN: &str = "admin-events-test-token-3b9e0c71a2";

const BODY: &str = r#"{"accountId":7,"events":[
 {"eventId":"done","eventName":"COURSE_COMPLETED","timestamp":1750000000000,
  "data":{"userId":42,"loId":"course:1","loInstanceId":"course:1_2"}},
 {"eventId":"late","eventName":"LEARNER_PROGRESS","timestamp":1749999990000,
  "data":{"userId":42,"loId":"course:1","loInstanceId":"course:1_2","progressPercent":50}},
 {"eventId":"crm","eventName":"COURSE_ENROLLMENT","timestamp":1750000000000,
  "data":{"userId":43,"loId":"course:1","loInstanceId":"course:1_2"}}]}"#;

async fn get<I: Inbox>(api: &AdminApi<I>, path: &str, token: bool) -> (u16, Value) {
    let mut headers = HeaderMap::new();
    if token {
        headers.insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    }
    let answer = api.handle(&Method::GET, path, &headers).await;
    let body = serde_json::from_slice(answer.body()).unwrap_or(Value::Null);
    (answer.status().as_u16(), body)
}

async fn searched<I: Inbox>(inbox: Arc<I>) {
    let received = OffsetDateTime::from_unix_timestamp(1_750_000_100).unwrap();
    let delivery = NewDelivery {
        account_id: AccountId(7),
        body: BODY.as_bytes(),
        received_at: received,
    };
    inbox.append(delivery).await.unwrap();
    let handler = |event: Event| async move {
        if event.event_id.as_str() == "crm" {
            return Err::<(), BoxError>("CRM refused".into());
        }
        Ok(())
    };
    let once = alm_webhooks::inbox::RetryPolicy {
        max_attempts: 1,
        ..Default::default()
    };
    let workers = Workers::new(Engine::in_memory(), Arc::clone(&inbox))
        .with_options(alm_webhooks::inbox::WorkerOptions::new().with_retry(once));
    assert!(workers.run_once(&handler).await.unwrap());
    let api = AdminApi::new(Arc::clone(&inbox), AdminToken::new(TOKEN));

    let (status, found) = get(&api, "/events?userId=42", true).await;
    assert_eq!(status, 200);
    assert_eq!(
        found,
        json!([
            {"accountId": 7, "eventId": "done", "eventName": "COURSE_COMPLETED",
             "timestamp": "2025-06-15T15:06:40.000Z", "receivedAt": "2025-06-15T15:08:20.000Z",
             "decision": "processed", "reason": null, "attempts": 1, "error": null},
            {"accountId": 7, "eventId": "late", "eventName": "LEARNER_PROGRESS",
             "timestamp": "2025-06-15T15:06:30.000Z", "receivedAt": "2025-06-15T15:08:20.000Z",
             "decision": "ignored", "reason": "progress_after_completion", "attempts": 1, "error": null}
        ])
    );
    let (_, crm) = get(&api, "/events?eventId=crm", true).await;
    assert_eq!(crm[0]["decision"], "failed");
    assert_eq!(crm[0]["reason"], "dead_lettered");
    assert_eq!(crm[0]["error"], "CRM refused");
    let (_, of_instance) = get(&api, "/events?loInstanceId=course%3A1_2&limit=2", true).await;
    assert_eq!(of_instance.as_array().unwrap().len(), 2, "limited");
    let (_, before) = get(&api, "/events?userId=42&to=2025-06-15T15:08:20Z", true).await;
    assert_eq!(before, json!([]), "received in [from, to)");
    let (_, within) = get(
        &api,
        "/events?userId=42&from=2025-06-15T15:08:20Z&to=2025-06-15T15:08:21Z",
        true,
    )
    .await;
    assert_eq!(within.as_array().unwrap().len(), 2);

    for (query, named) in [
        ("userId=x", "userId"),
        ("eventId=done&from=today", "from"),
        ("loInstanceId=nope", "loInstanceId"),
        ("userId=42&limit=5000", "limit"),
        ("userId=42&sort=desc", "sort"),
        (
            "from=2025-06-15T15:08:20Z",
            "eventId, userId or loInstanceId",
        ),
    ] {
        let (status, answer) = get(&api, &format!("/events?{query}"), true).await;
        assert_eq!(status, 400, "{query}");
        let error = answer["error"].as_str().unwrap();
        assert!(error.starts_with(named), "{query}: {error}");
    }
    assert_eq!(
        get(&api, "/events?userId=42", false).await.0,
        401,
        "under the admin token"
    );
}

#[tokio::test]
async fn the_archive_is_searched_on_the_memory_inbox() {
    searched(Arc::new(MemoryInbox::new())).await;
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn the_archive_is_searched_on_the_sqlite_inbox() {
    let inbox = alm_webhooks::inbox::SqliteInbox::open_in_memory().unwrap();
    searched(Arc::new(inbox)).await;
}
