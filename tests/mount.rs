//! `Endpoint` mounted in one line: `router()` (the webhook route behind the
//! guard, `/healthz`, `/readyz`, the admin API with a token), the tower
//! `Service`, `admin_router`, clones that share the workers, a handler with
//! an error type of its own, and the answer observer.
#![cfg(feature = "axum")]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use alm_webhooks::admin::AdminToken;
use alm_webhooks::endpoint::EndpointError;
use alm_webhooks::inbox::MemoryInbox;
use alm_webhooks::inbox::WorkerOptions;
use alm_webhooks::prelude::*;
use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

const SECRET: &str = "mount signing secret";
const TOKEN: &str = "0123456789abcdef0123456789abcdef";

fn enrollment(id: &str) -> String {
    format!(
        r#"{{"accountId":7,"events":[{{"eventId":"{id}","eventName":"COURSE_ENROLLMENT","timestamp":1750000000,"data":{{"userId":5,"loId":"course:77","loInstanceId":"course:77_1","loType":"course","enrollmentSource":"SELF_ENROLL","dateEnrolled":1750000000}}}}]}}"#
    )
}

fn signed(path: &str, body: &str) -> Request<Body> {
    Request::post(path)
        .header(
            "x-alm-signature",
            SignatureAuth::new(SECRET).sign(body.as_bytes()),
        )
        .header("content-length", body.len())
        .body(Body::from(body.to_owned()))
        .unwrap()
}

fn get(path: &str, token: Option<&str>) -> Request<Body> {
    let mut request = Request::get(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    request.body(Body::empty()).unwrap()
}

async fn send(app: &axum::Router, request: Request<Body>) -> (StatusCode, String) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn inbox_endpoint(handled: Arc<Mutex<Vec<String>>>, token: Option<AdminToken>) -> Endpoint {
    let builder = Endpoint::builder(SignatureAuth::new(SECRET))
        .engine(Engine::in_memory())
        .inbox(
            Arc::new(MemoryInbox::new()),
            WorkerOptions::new().with_poll_interval(Duration::from_millis(10)),
        )
        .handler(move |event| {
            let handled = Arc::clone(&handled);
            async move {
                handled.lock().unwrap().push(event.event_id.to_string());
                Ok(())
            }
        });
    match token {
        Some(token) => builder.admin_token(token),
        None => builder,
    }
    .build()
    .unwrap()
}

#[tokio::test]
async fn the_router_serves_the_webhook_health_readiness_and_admin() {
    let handled = Arc::new(Mutex::new(Vec::new()));
    let endpoint = inbox_endpoint(Arc::clone(&handled), Some(AdminToken::new(TOKEN)));
    let app = endpoint.router();

    let (status, body) = send(&app, signed("/webhooks", &enrollment("m-1"))).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::ACCEPTED, r#"{"accepted":true,"delivery":1}"#)
    );
    // The guard refuses a missing signature before the body.
    let unsigned = Request::post("/webhooks")
        .body(Body::from(enrollment("m-2")))
        .unwrap();
    assert_eq!(send(&app, unsigned).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        send(&app, get("/webhooks", None)).await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(
        send(&app, get("/healthz", None)).await,
        (StatusCode::OK, r#"{"status":"up"}"#.to_owned())
    );
    assert_eq!(
        send(&app, get("/readyz", None)).await,
        (StatusCode::OK, r#"{"status":"ready"}"#.to_owned())
    );

    // The admin page and API, with the builder's token.
    let (status, page) = send(&app, get("/admin", None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page, alm_webhooks::admin::PAGE_HTML);
    assert_eq!(
        send(&app, get("/admin/inbox", None)).await.0,
        StatusCode::UNAUTHORIZED
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while handled.lock().unwrap().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(*handled.lock().unwrap(), vec!["m-1".to_owned()]);
    let (status, decisions) = send(&app, get("/admin/decisions", Some(TOKEN))).await;
    assert_eq!(status, StatusCode::OK);
    let decisions: serde_json::Value = serde_json::from_str(&decisions).unwrap();
    assert_eq!(decisions["processed"], 1, "{decisions}");

    // Stopped workers: not ready, and the body says which part.
    endpoint.shutdown(Duration::from_secs(2)).await;
    let (status, body) = send(&app, get("/readyz", None)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["store"], "ok");
    assert_eq!(body["inbox"], "ok");
    assert_ne!(body["workers"], "ok");
}

#[tokio::test]
async fn without_a_token_there_is_no_admin_route_and_admin_router_mounts_it_elsewhere() {
    let endpoint = inbox_endpoint(Arc::default(), None);
    let app = endpoint.router();
    assert_eq!(
        send(&app, get("/admin", None)).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(&app, get("/admin/inbox", Some(TOKEN))).await.0,
        StatusCode::NOT_FOUND
    );

    let admin = endpoint
        .admin_router(AdminToken::new(TOKEN))
        .expect("an inbox");
    let app = endpoint.router().nest("/ops/alm", admin);
    let (status, stats) = send(&app, get("/ops/alm/inbox", Some(TOKEN))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(stats.contains(r#""pending":0"#), "{stats}");
    assert_eq!(
        send(&app, get("/ops/alm/inbox", Some("wrong"))).await.0,
        StatusCode::UNAUTHORIZED
    );
    endpoint.shutdown(Duration::from_secs(2)).await;

    // The admin API lists and replays what an inbox keeps: none, no API.
    let refused = Endpoint::builder(Authentication::None)
        .admin_token(AdminToken::new(TOKEN))
        .handler(|_event| async { Ok(()) })
        .build();
    assert_eq!(refused.unwrap_err(), EndpointError::AdminWithoutInbox);
}

#[tokio::test]
async fn the_webhook_path_is_configurable_and_the_service_takes_any_body() {
    let endpoint = Endpoint::builder(SignatureAuth::new(SECRET))
        .webhook_path("hooks/alm")
        .handler(|_event| async { Ok(()) })
        .build()
        .unwrap();
    let app = endpoint.router();
    assert_eq!(
        send(&app, signed("/hooks/alm", &enrollment("p-1"))).await.0,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        send(&app, signed("/webhooks", &enrollment("p-2"))).await.0,
        StatusCode::NOT_FOUND
    );

    // The endpoint itself is a tower service, over a `String` body here;
    // inline, the redelivery is a duplicate.
    let body = enrollment("p-1");
    let request = Request::post("/anything")
        .header(
            "x-alm-signature",
            SignatureAuth::new(SECRET).sign(body.as_bytes()),
        )
        .body(body)
        .unwrap();
    let response = endpoint.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(
        response.body(),
        r#"{"decisions":{"duplicate":1},"events":1}"#
    );
}

#[derive(Debug, thiserror::Error)]
#[error("the CRM refused learner {0}")]
struct CrmRefused(u64);

async fn to_crm(_event: Event) -> Result<(), CrmRefused> {
    Err(CrmRefused(5))
}

#[tokio::test]
async fn a_handler_with_its_own_error_type_and_the_answer_observer() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let endpoint = Endpoint::builder(Authentication::None)
        .handler_with_error(to_crm)
        .on_answer(move |answer| log.lock().unwrap().push(answer.status().as_u16()))
        .build()
        .unwrap();
    let answer = endpoint
        .handle(&http::HeaderMap::new(), enrollment("e-1").as_bytes())
        .await;
    assert_eq!(answer.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let outcome = &answer.report().unwrap().outcomes[0];
    assert_eq!(outcome.error_message(), Some("the CRM refused learner 5"));
    let error = outcome.error.as_ref().unwrap();
    assert!(
        error.downcast_ref::<CrmRefused>().is_some(),
        "the handler's own error is kept"
    );
    endpoint.handle(&http::HeaderMap::new(), b"not json").await;
    assert_eq!(*seen.lock().unwrap(), vec![500, 400]);
}

#[tokio::test]
async fn clones_share_the_workers() {
    let endpoint = inbox_endpoint(Arc::default(), None);
    let clone = endpoint.clone();
    assert!(endpoint.workers_healthy() && clone.workers_healthy());
    assert!(clone.shutdown(Duration::from_secs(2)).await);
    assert!(!endpoint.workers_healthy(), "one pool for every clone");
}
