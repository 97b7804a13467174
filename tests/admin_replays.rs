//! Replay jobs through an endpoint's admin API (what the example receivers
//! serve at `/admin/replays`): refused without the token, a bad body named,
//! a rerun started, watched to its end, listed, and the handler run once
//! more; a job that is over cannot be cancelled, an unknown one is `404`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use alm_webhooks::admin::AdminToken;
use alm_webhooks::inbox::{ArchiveFilter, Inbox, MemoryInbox, WorkerOptions};
use alm_webhooks::{Answer, Authentication, Endpoint};
use http::{HeaderMap, Method};
use serde_json::Value;

const TOKEN: &str = "admin-replays-test-token-2b7e91c4d5a6";

const BODY: &[u8] =
    br#"{"accountId":7,"events":[{"eventId":"e1","eventName":"LEARNING_OBJECT_DRAFT",
  "timestamp":1725519188,"data":{"loId":"course:1","loType":"course"}}]}"#;

fn bearer() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    headers
}

fn json(body: &[u8]) -> Value {
    serde_json::from_slice(body).expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_through_the_admin_api_runs_the_handler_once_more() {
    let inbox = Arc::new(MemoryInbox::new());
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&runs);
    let endpoint = Endpoint::builder(Authentication::None)
        .inbox(Arc::clone(&inbox), WorkerOptions::new())
        .admin_token(AdminToken::new(TOKEN))
        .handler(move |_event| {
            counted.fetch_add(1, Ordering::SeqCst);
            async { Ok(()) }
        })
        .build()
        .unwrap();
    let before = time::OffsetDateTime::now_utc() - time::Duration::seconds(1);
    let answer = endpoint.handle(&HeaderMap::new(), BODY).await;
    assert!(matches!(answer, Answer::Accepted { .. }), "{answer}");
    for _ in 0..1000 {
        if !inbox
            .archived(&ArchiveFilter::new(), None, 1)
            .await
            .unwrap()
            .is_empty()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    let admin = endpoint.admin().unwrap();
    let post = |body: String, headers: HeaderMap| {
        let admin = &admin;
        async move {
            admin
                .handle_with_body(&Method::POST, "/replays", &headers, body.as_bytes())
                .await
        }
    };
    let to = time::OffsetDateTime::now_utc() + time::Duration::seconds(1);
    let rfc = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let body = format!(
        r#"{{"from":"{}","to":"{}","accountId":7,"eventNames":["LEARNING_OBJECT_DRAFT"],"mode":"rerun"}}"#,
        rfc(before),
        rfc(to)
    );
    assert_eq!(post(body.clone(), HeaderMap::new()).await.status(), 401);
    let bad = post(body.replace("rerun", "again"), bearer()).await;
    assert_eq!(bad.status(), 400);
    assert!(
        json(bad.body())["error"]
            .as_str()
            .unwrap()
            .starts_with("`mode`")
    );
    let started = post(body, bearer()).await;
    assert_eq!(started.status(), 202);
    let id = json(started.body())["id"].as_str().unwrap().to_owned();

    let mut status = Value::Null;
    for _ in 0..1000 {
        let read = admin
            .handle(&Method::GET, &format!("/replays/{id}"), &bearer())
            .await;
        assert_eq!(read.status(), 200);
        status = json(read.body());
        if status["state"] != "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(status["state"], "done", "{status}");
    assert_eq!(
        (status["matched"].as_u64(), status["done"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(status["mode"], "rerun");
    assert_eq!(runs.load(Ordering::SeqCst), 2, "the handler ran once more");

    let list = json(
        admin
            .handle(&Method::GET, "/replays", &bearer())
            .await
            .body(),
    );
    assert_eq!(list[0]["id"], id.as_str());
    let over = admin
        .handle(&Method::DELETE, &format!("/replays/{id}"), &bearer())
        .await;
    assert_eq!(over.status(), 409);
    let unknown = admin
        .handle(&Method::DELETE, "/replays/00000000000000aa", &bearer())
        .await;
    assert_eq!(unknown.status(), 404);
    endpoint.shutdown(Duration::from_secs(5)).await;
}
