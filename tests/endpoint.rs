//! The facade: every `Answer` with its status and body, inline and inbox
//! mode, the handler's error chain, the build errors, and the axum and
//! actix conversions on real routers.

mod support;

use std::sync::Arc;
use std::time::Duration;

use alm_webhooks::auth::{SignatureAuth, UNAUTHORIZED_BODY};
use alm_webhooks::endpoint::{EndpointError, Mode, OnMalformed};
use alm_webhooks::inbox::WorkerOptions;
use alm_webhooks::inbox::{Inbox, MemoryInbox, Progress};
use alm_webhooks::{AccountId, Answer, Authentication, Decision, DeliveryRejection, Endpoint};
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use tokio::sync::mpsc;

const SECRET: &str = "endpoint-test-secret";

fn draft(event_id: &str) -> String {
    format!(
        r#"{{"eventId":"{event_id}","eventName":"LEARNING_OBJECT_DRAFT","timestamp":1725519188,"data":{{"loId":"course:1","loType":"course"}}}}"#
    )
}

fn body(account: u64, events: &[String]) -> Vec<u8> {
    format!(
        r#"{{"accountId":{account},"events":[{}]}}"#,
        events.join(",")
    )
    .into_bytes()
}

fn signed(body: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-alm-signature",
        SignatureAuth::new(SECRET).sign(body).parse().unwrap(),
    );
    headers
}

fn auth() -> Authentication {
    Authentication::Signature(SignatureAuth::new(SECRET))
}

fn json_of(answer: &Answer) -> Value {
    serde_json::from_str(&answer.body()).expect("every answer body is JSON")
}

/// An inline endpoint whose handler sends each event id it runs on `seen`.
fn inline(seen: mpsc::UnboundedSender<String>) -> Endpoint {
    Endpoint::builder(auth())
        .handler(move |event| {
            let seen = seen.clone();
            async move {
                seen.send(event.event_id.to_string())?;
                Ok(())
            }
        })
        .build()
        .unwrap()
}

#[tokio::test]
async fn inline_processed_is_202_with_the_decisions() {
    let (seen, mut ran) = mpsc::unbounded_channel();
    let endpoint = inline(seen);
    let body = body(7, &[draft("e1"), draft("e2")]);
    let answer = endpoint.handle(&signed(&body), &body).await;
    assert_eq!(answer.status(), StatusCode::ACCEPTED);
    assert_eq!(
        json_of(&answer),
        json!({"events": 2, "decisions": {"processed": 2}})
    );
    assert_eq!(answer.account_id(), Some(AccountId(7)));
    assert!(answer.is_acknowledged());
    assert_eq!(ran.recv().await.as_deref(), Some("e1"));
    assert_eq!(ran.recv().await.as_deref(), Some("e2"));

    // The same delivery again: duplicates, still 202, the handler not run.
    let again = endpoint.handle(&signed(&body), &body).await;
    assert_eq!(
        json_of(&again),
        json!({"events": 2, "decisions": {"duplicate": 2}})
    );
    assert!(ran.try_recv().is_err());
}

#[derive(Debug)]
struct CrmRefused(std::io::Error);

impl std::fmt::Display for CrmRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the CRM refused the learner")
    }
}

impl std::error::Error for CrmRefused {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

async fn call_crm() -> Result<(), CrmRefused> {
    Err(CrmRefused(std::io::Error::other(
        "connection reset by peer",
    )))
}

#[tokio::test]
async fn a_handler_error_is_500_and_reports_its_source_chain() {
    let endpoint = Endpoint::builder(Authentication::None)
        .handler(|_event| async {
            call_crm().await?;
            Ok(())
        })
        .build()
        .unwrap();
    let body = body(7, &[draft("e1")]);
    let answer = endpoint.handle(&HeaderMap::new(), &body).await;
    assert_eq!(answer.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        json_of(&answer),
        json!({"events": 1, "decisions": {"failed": 1}})
    );
    let outcome = &answer.report().unwrap().outcomes[0];
    assert_eq!(outcome.decision, Decision::Failed);
    assert_eq!(
        outcome.error_message(),
        Some("the CRM refused the learner: connection reset by peer")
    );
    // The handler's own error is kept, not only its text.
    let failure = outcome.error.as_ref().unwrap();
    assert!(failure.downcast_ref::<CrmRefused>().is_some());
    assert!(!answer.is_acknowledged());
}

#[tokio::test]
async fn refusals_are_401_400_and_413_with_their_bodies() {
    let (seen, mut ran) = mpsc::unbounded_channel();
    let endpoint = inline(seen);

    let body = body(7, &[draft("e1")]);
    let mut forged = signed(&body);
    forged.insert("x-alm-signature", "00".parse().unwrap());
    let answer = endpoint.handle(&forged, &body).await;
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(answer.body(), UNAUTHORIZED_BODY);
    assert!(matches!(
        answer.rejection(),
        Some(DeliveryRejection::Unauthorized(_))
    ));

    let broken = br#"{"accountId":7,"events":[,]}"#;
    let answer = endpoint.handle(&signed(broken), broken).await;
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_of(&answer)["error"], "invalid envelope");
    assert!(json_of(&answer)["detail"].is_string());

    let small = Endpoint::builder(Authentication::None)
        .max_body_bytes(16)
        .handler(|_event| async { Ok(()) })
        .build()
        .unwrap();
    let answer = small.handle(&HeaderMap::new(), &body).await;
    assert_eq!(answer.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        json_of(&answer),
        json!({"error": "payload too large", "limitBytes": 16})
    );
    assert!(ran.try_recv().is_err(), "no handler ran for a refusal");
}

#[tokio::test]
async fn inbox_mode_accepts_at_once_and_workers_run_the_handler() {
    let inbox = Arc::new(MemoryInbox::new());
    let (seen, mut ran) = mpsc::unbounded_channel::<String>();
    let endpoint = Endpoint::builder(auth())
        .inbox(
            Arc::clone(&inbox),
            WorkerOptions::new()
                .with_count(2)
                .with_poll_interval(Duration::from_millis(5)),
        )
        .handler(move |event| {
            let seen = seen.clone();
            async move {
                seen.send(event.event_id.to_string())?;
                Ok(())
            }
        })
        .build()
        .unwrap();
    assert_eq!(endpoint.mode(), Mode::Inbox);
    assert_eq!(endpoint.on_malformed(), OnMalformed::Quarantine);

    let body = body(7, &[draft("e1")]);
    let answer = endpoint.handle(&signed(&body), &body).await;
    assert_eq!(answer.status(), StatusCode::ACCEPTED);
    assert_eq!(json_of(&answer), json!({"accepted": true, "delivery": 1}));
    assert!(matches!(
        answer,
        Answer::Accepted {
            account_id: AccountId(7),
            ..
        }
    ));
    let ran = tokio::time::timeout(Duration::from_secs(5), ran.recv()).await;
    assert_eq!(ran.unwrap().as_deref(), Some("e1"));
    assert!(endpoint.shutdown(Duration::from_secs(5)).await);
}

/// Inline, a handler that never returns is cancelled when the delivery's
/// budget is spent: the answer is a 500 (ALM sends it again) and says the
/// handler timed out; the redelivery processes what is left.
#[tokio::test]
async fn inline_a_hung_handler_is_500_within_the_budget() {
    let hang = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let (seen, mut ran) = mpsc::unbounded_channel::<String>();
    let endpoint = {
        let hang = Arc::clone(&hang);
        Endpoint::builder(auth())
            .inline_budget(Duration::from_millis(200))
            .handler(move |event| {
                let (hang, seen) = (Arc::clone(&hang), seen.clone());
                async move {
                    if event.event_id.as_str() == "e2"
                        && hang.load(std::sync::atomic::Ordering::SeqCst)
                    {
                        std::future::pending::<()>().await;
                    }
                    seen.send(event.event_id.to_string())?;
                    Ok(())
                }
            })
            .build()
            .unwrap()
    };
    let body = body(7, &[draft("e1"), draft("e2")]);
    let started = std::time::Instant::now();
    let answer = endpoint.handle(&signed(&body), &body).await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(answer.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let outcomes = &answer.report().unwrap().outcomes;
    assert_eq!(outcomes[0].decision, Decision::Processed);
    assert_eq!(outcomes[1].decision, Decision::Failed);
    let error = outcomes[1].error.as_ref().unwrap();
    assert!(
        error.message().starts_with("handler timed out after"),
        "{error}"
    );
    assert!(
        error
            .message()
            .ends_with("(the rest of the delivery's 200 ms budget)")
    );
    assert!(
        error
            .downcast_ref::<alm_webhooks::inbox::HandlerTimedOut>()
            .is_some()
    );
    assert_eq!(ran.recv().await.as_deref(), Some("e1"));

    hang.store(false, std::sync::atomic::Ordering::SeqCst);
    let answer = endpoint.handle(&signed(&body), &body).await;
    assert_eq!(answer.status(), StatusCode::ACCEPTED);
    let decisions: Vec<_> = answer
        .report()
        .unwrap()
        .outcomes
        .iter()
        .map(|o| o.decision)
        .collect();
    assert_eq!(decisions, [Decision::Duplicate, Decision::Processed]);
    assert_eq!(ran.recv().await.as_deref(), Some("e2"));
}

/// The endpoint is ready while its workers keep alive, and not once they
/// are stopped or keep panicking.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_follows_the_workers_health() {
    let inbox = Arc::new(MemoryInbox::new());
    let endpoint = Endpoint::builder(auth())
        .inbox(
            Arc::clone(&inbox),
            WorkerOptions::new()
                .with_count(1)
                .with_poll_interval(Duration::from_millis(5))
                .with_restart_limit(1, Duration::from_secs(60))
                .with_observer(|progress| {
                    if let Progress::Decided { .. } = progress {
                        panic!("an observer that cannot take a decision");
                    }
                }),
        )
        .handler(|_event| async { Ok(()) })
        .build()
        .unwrap();
    assert!(endpoint.workers_healthy());
    for n in 0..3 {
        let body = body(n, &[draft(&format!("e{n}"))]);
        assert_eq!(
            endpoint.handle(&signed(&body), &body).await.status(),
            StatusCode::ACCEPTED
        );
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while endpoint.workers_healthy() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        !endpoint.workers_healthy(),
        "more panics than the restart limit"
    );
    assert!(
        !endpoint.shutdown(Duration::from_secs(1)).await,
        "workers panicked"
    );
}

#[tokio::test]
async fn a_malformed_body_is_quarantined_with_its_account_or_refused() {
    let inbox = Arc::new(MemoryInbox::new());
    let endpoint = Endpoint::builder(auth())
        .inbox(Arc::clone(&inbox), WorkerOptions::new())
        .handler(|_event| async { Ok(()) })
        .build()
        .unwrap();
    let broken = br#"{"accountId": 42, "events": [,]}"#;
    let answer = endpoint.handle(&signed(broken), broken).await;
    assert_eq!(answer.status(), StatusCode::ACCEPTED);
    let Answer::Quarantined {
        account_id,
        id,
        error,
    } = &answer
    else {
        panic!("expected a quarantined body, got {answer:?}");
    };
    assert_eq!(*account_id, Some(AccountId(42)));
    assert_eq!(
        json_of(&answer),
        json!({"quarantined": id.get(), "error": error})
    );
    let kept = inbox.quarantined(10).await.unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].body, broken);

    // A body that fails authentication is refused, never quarantined.
    let answer = endpoint.handle(&HeaderMap::new(), broken).await;
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(inbox.quarantined(10).await.unwrap().len(), 1);
    endpoint.shutdown(Duration::from_secs(1)).await;

    // Refused instead, when asked, even with an inbox.
    let refusing = Endpoint::builder(auth())
        .inbox(Arc::clone(&inbox), WorkerOptions::new())
        .on_malformed(OnMalformed::Refuse)
        .handler(|_event| async { Ok(()) })
        .build()
        .unwrap();
    let answer = refusing.handle(&signed(broken), broken).await;
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    assert_eq!(inbox.quarantined(10).await.unwrap().len(), 1);
    refusing.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn inline_mode_with_an_inbox_processes_inside_the_request() {
    let inbox = Arc::new(MemoryInbox::new());
    let (progress, mut reported) = mpsc::unbounded_channel::<String>();
    let endpoint = Endpoint::builder(Authentication::None)
        .inbox(
            Arc::clone(&inbox),
            WorkerOptions::new().with_observer(move |p| {
                if let Progress::Decided { outcome, .. } = p {
                    let _ = progress.send(outcome.decision.as_str().to_owned());
                }
            }),
        )
        .mode(Mode::Inline)
        .handler(|_event| async { Ok(()) })
        .build()
        .unwrap();
    let body = body(7, &[draft("e1")]);
    let answer = endpoint.handle(&HeaderMap::new(), &body).await;
    assert!(matches!(answer, Answer::Processed { .. }));
    let now = time::OffsetDateTime::now_utc();
    assert_eq!(
        inbox.stats(now).await.unwrap().pending,
        0,
        "nothing appended"
    );
    assert!(reported.try_recv().is_err(), "the workers ran nothing");
    endpoint.shutdown(Duration::from_secs(1)).await;
}

#[test]
fn build_names_what_is_missing() {
    let error = Endpoint::builder(Authentication::None).build().unwrap_err();
    assert_eq!(error, EndpointError::MissingHandler);
    assert!(error.to_string().contains("handler"));

    let error = Endpoint::builder(Authentication::None)
        .mode(Mode::Inbox)
        .handler(|_event| async { Ok(()) })
        .build()
        .unwrap_err();
    assert_eq!(error, EndpointError::InboxModeWithoutInbox);

    let error = Endpoint::builder(Authentication::None)
        .on_malformed(OnMalformed::Quarantine)
        .handler(|_event| async { Ok(()) })
        .build()
        .unwrap_err();
    assert_eq!(error, EndpointError::QuarantineWithoutInbox);

    // Outside a runtime, the workers cannot start: an error, not a panic.
    let error = Endpoint::builder(Authentication::None)
        .inbox(Arc::new(MemoryInbox::new()), WorkerOptions::new())
        .handler(|_event| async { Ok(()) })
        .build()
        .unwrap_err();
    assert_eq!(error, EndpointError::NoRuntime);
}

#[tokio::test]
async fn question_mark_works_in_the_handler_and_into_http_carries_the_answer() {
    let endpoint = Endpoint::builder(Authentication::None)
        .handler(|event| async move {
            let _: u32 = event.event_id.as_str().parse()?;
            Ok(())
        })
        .build()
        .unwrap();
    let body = body(7, &[draft("not-a-number")]);
    let request = http::Request::post("/webhooks").body(body).unwrap();
    let response = endpoint.handle_request(request).await.into_http();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(response.headers()["content-type"], "application/json");
    let value: Value = serde_json::from_slice(response.body()).unwrap();
    assert_eq!(value, json!({"events": 1, "decisions": {"failed": 1}}));
}

#[cfg(feature = "redis")]
mod outage {
    //! The `503`s: the store (inline) and the inbox going away, through a
    //! proxy to the shared Redis that the test cuts.

    use super::*;
    use alm_webhooks::Engine;
    use alm_webhooks::inbox::AnyInbox;
    use alm_webhooks::store::AnyStore;
    use tokio::net::{TcpListener, TcpStream};
    use tokio::task::JoinHandle;

    /// The test Redis (`ALM_TEST_REDIS_URL`) as `host:port`, or `None` (the
    /// test is skipped; a failure under CI) when it is not reachable.
    fn redis() -> Option<String> {
        let url = std::env::var("ALM_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
        if !support::services::reachable(&url, 6379) {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "CI needs Redis at {url}"
            );
            eprintln!("skipped: Redis is not reachable at {url}");
            return None;
        }
        let host_port = url.split("://").nth(1)?.split(['/', '?']).next()?;
        Some(if host_port.contains(':') {
            host_port.to_owned()
        } else {
            format!("{host_port}:6379")
        })
    }

    /// Forwards a local port to Redis until cut.
    struct Proxy {
        port: u16,
        accept: JoinHandle<()>,
        links: Arc<std::sync::Mutex<Vec<JoinHandle<()>>>>,
    }

    impl Proxy {
        async fn start(redis: String) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let links: Arc<std::sync::Mutex<Vec<JoinHandle<()>>>> = Arc::default();
            let held = Arc::clone(&links);
            let accept = tokio::spawn(async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    let redis = redis.clone();
                    let link = tokio::spawn(async move {
                        if let Ok(mut redis) = TcpStream::connect(redis).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut redis).await;
                        }
                    });
                    held.lock().unwrap().push(link);
                }
            });
            Self {
                port,
                accept,
                links,
            }
        }

        /// Closes the port and every open connection.
        fn cut(&self) {
            self.accept.abort();
            for link in self.links.lock().unwrap().drain(..) {
                link.abort();
            }
        }
    }

    fn prefix(what: &str) -> String {
        format!(
            "alm-test-endpoint-{what}-{}-{}:",
            std::process::id(),
            time::OffsetDateTime::now_utc().unix_timestamp_nanos()
        )
    }

    #[tokio::test]
    async fn the_store_going_away_is_503_store_unavailable() {
        let Some(redis) = redis() else { return };
        let proxy = Proxy::start(redis.clone()).await;
        let prefix = prefix("store");
        let _purge = support::services::Purge(format!("redis://{redis}/?prefix={prefix}"));
        let url = format!("redis://127.0.0.1:{}/?prefix={prefix}", proxy.port);
        let store = AnyStore::from_url(&url).await.expect("Redis answers");
        let endpoint = Endpoint::builder(Authentication::None)
            .engine(Engine::builder(store).build())
            .handler(|_event| async { Ok(()) })
            .build()
            .unwrap();
        let first = body(7, &[draft("e1")]);
        let answer = endpoint.handle(&HeaderMap::new(), &first).await;
        assert_eq!(answer.status(), StatusCode::ACCEPTED, "{answer}");

        proxy.cut();
        let second = body(7, &[draft("e2")]);
        let answer = endpoint.handle(&HeaderMap::new(), &second).await;
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(answer.body(), r#"{"error":"store unavailable"}"#);
        assert!(matches!(answer, Answer::StoreUnavailable(_)));
        assert!(answer.error().is_some());
    }

    #[tokio::test]
    async fn the_inbox_going_away_is_503_inbox_unavailable() {
        let Some(redis) = redis() else { return };
        let proxy = Proxy::start(redis.clone()).await;
        let prefix = prefix("inbox");
        let _purge = support::services::Purge(format!("redis://{redis}/?prefix={prefix}"));
        let url = format!("redis://127.0.0.1:{}/?prefix={prefix}", proxy.port);
        let inbox = Arc::new(AnyInbox::from_url(&url).await.expect("Redis answers"));
        let endpoint = Endpoint::builder(Authentication::None)
            .engine(Engine::in_memory())
            .inbox(inbox, WorkerOptions::new().with_count(1))
            .handler(|_event| async { Ok(()) })
            .build()
            .unwrap();
        let delivery = body(7, &[draft("e1")]);
        let answer = endpoint.handle(&HeaderMap::new(), &delivery).await;
        assert_eq!(answer.status(), StatusCode::ACCEPTED, "{answer}");

        proxy.cut();
        let answer = endpoint.handle(&HeaderMap::new(), &delivery).await;
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(answer.body(), r#"{"error":"inbox unavailable"}"#);
        let broken = br#"{"accountId":7,"events":[,]}"#;
        let answer = endpoint.handle(&HeaderMap::new(), broken).await;
        assert_eq!(
            answer.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "quarantine needs the inbox too"
        );
        assert!(matches!(answer, Answer::InboxUnavailable(_)));
        endpoint.shutdown(Duration::from_millis(200)).await;
    }
}

#[cfg(feature = "axum")]
mod on_axum {
    use super::*;
    use axum::extract::{Request, State};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn webhooks(State(endpoint): State<Arc<Endpoint>>, request: Request) -> Answer {
        endpoint.handle_axum(request).await
    }

    /// Sends raw HTTP/1.1 and reads the whole answer.
    async fn exchange(addr: std::net::SocketAddr, request: &[u8]) -> (u16, String, String) {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.unwrap();
        let answer = String::from_utf8(answer).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        let status = head[9..12].parse().unwrap();
        (status, head.to_ascii_lowercase(), body.to_owned())
    }

    fn post(body: &[u8], headers: &HeaderMap) -> Vec<u8> {
        let mut request = format!(
            "POST /webhooks HTTP/1.1\r\nhost: test\r\nconnection: close\r\ncontent-length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap()));
        }
        request.push_str("\r\n");
        let mut request = request.into_bytes();
        request.extend_from_slice(body);
        request
    }

    #[tokio::test]
    async fn an_axum_router_answers_with_the_answer() {
        let (seen, mut ran) = mpsc::unbounded_channel();
        let endpoint = Endpoint::builder(auth())
            .max_body_bytes(1024)
            .handler(move |event| {
                let seen = seen.clone();
                async move {
                    seen.send(event.event_id.to_string())?;
                    Ok(())
                }
            })
            .build()
            .unwrap();
        let app = axum::Router::new()
            .route("/webhooks", axum::routing::post(webhooks))
            .with_state(Arc::new(endpoint));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });

        let good = body(7, &[draft("e1")]);
        let (status, head, text) = exchange(addr, &post(&good, &signed(&good))).await;
        assert_eq!(status, 202);
        assert!(head.contains("content-type: application/json"), "{head}");
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value, json!({"events": 1, "decisions": {"processed": 1}}));
        assert_eq!(ran.recv().await.as_deref(), Some("e1"));

        let (status, _, text) = exchange(addr, &post(&good, &HeaderMap::new())).await;
        assert_eq!((status, text.as_str()), (401, UNAUTHORIZED_BODY));

        // Over the limit by its Content-Length: 413 before the body is read.
        let large = vec![b' '; 2048];
        let (status, _, text) = exchange(addr, &post(&large, &HeaderMap::new())).await;
        assert_eq!(status, 413);
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap(),
            json!({"error": "payload too large", "limitBytes": 1024})
        );

        let get = b"GET /webhooks HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n";
        assert_eq!(exchange(addr, get).await.0, 405, "405 is the framework's");
    }
}

#[cfg(feature = "actix")]
mod on_actix {
    use super::*;
    use actix_web::{App, HttpRequest, test, web};

    async fn webhooks(
        request: HttpRequest,
        payload: web::Payload,
        endpoint: web::Data<Endpoint>,
    ) -> Answer {
        endpoint.handle_actix(&request, payload).await
    }

    #[actix_web::test]
    async fn an_actix_service_answers_with_the_answer() {
        let endpoint = Endpoint::builder(auth())
            .max_body_bytes(1024)
            .handler(|_event| async { Ok(()) })
            .build()
            .unwrap();
        let app = test::init_service(
            App::new()
                .app_data(web::Data::new(endpoint))
                .route("/webhooks", web::post().to(webhooks)),
        )
        .await;

        let good = body(7, &[draft("e1")]);
        let mut request = test::TestRequest::post()
            .uri("/webhooks")
            .set_payload(good.clone());
        for (name, value) in &signed(&good) {
            request = request.insert_header((name.as_str(), value.to_str().unwrap()));
        }
        let response = test::call_service(&app, request.to_request()).await;
        assert_eq!(response.status().as_u16(), 202);
        assert_eq!(
            response.headers().get("content-type").unwrap(),
            "application/json"
        );
        let value: Value = serde_json::from_slice(&test::read_body(response).await).unwrap();
        assert_eq!(value, json!({"events": 1, "decisions": {"processed": 1}}));

        let request = test::TestRequest::post()
            .uri("/webhooks")
            .set_payload(good.clone())
            .to_request();
        let response = test::call_service(&app, request).await;
        assert_eq!(response.status().as_u16(), 401);
        assert_eq!(
            test::read_body(response).await,
            UNAUTHORIZED_BODY.as_bytes()
        );

        let request = test::TestRequest::post()
            .uri("/webhooks")
            .set_payload(vec![b' '; 2048])
            .to_request();
        let response = test::call_service(&app, request).await;
        assert_eq!(response.status().as_u16(), 413);
    }
}

#[cfg(feature = "metrics")]
#[test]
fn every_answer_is_counted_by_its_outcome() {
    use alm_webhooks::metrics::names;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    ::metrics::with_local_recorder(&recorder, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async {
            let endpoint = Endpoint::builder(auth())
                .max_body_bytes(200)
                .handler(|_event| async { Ok(()) })
                .build()
                .unwrap();
            let good = body(7, &[draft("e1")]);
            let broken = br#"{"accountId":7,"events":[,]}"#;
            let large = vec![b' '; 300];
            let statuses = [
                endpoint.handle(&signed(&good), &good).await.status(),
                endpoint.handle(&HeaderMap::new(), &good).await.status(),
                endpoint.handle(&signed(broken), broken).await.status(),
                endpoint.handle(&signed(&large), &large).await.status(),
            ];
            assert_eq!(statuses.map(|s| s.as_u16()), [202, 401, 400, 413]);
        });
    });
    let counted: Vec<(String, u64)> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(key, ..)| key.key().name() == names::DELIVERIES_TOTAL)
        .map(|(key, _, _, value)| {
            let outcome = key.key().labels().next().unwrap().value().to_owned();
            match value {
                DebugValue::Counter(n) => (outcome, n),
                other => panic!("not a counter: {other:?}"),
            }
        })
        .collect();
    let mut counted = counted;
    counted.sort();
    let want = [
        ("accepted", 1),
        ("malformed", 1),
        ("too_large", 1),
        ("unauthorized", 1),
    ];
    assert_eq!(
        counted,
        want.map(|(o, n)| (o.to_owned(), n)).to_vec(),
        "one count per answer"
    );
}

#[test]
fn debug_never_shows_the_secret() {
    let builder = Endpoint::builder(auth()).handler(|_event| async { Ok(()) });
    assert!(!format!("{builder:?}").contains(SECRET));
    let endpoint = builder.build().unwrap();
    let shown = format!("{endpoint:?}");
    assert!(shown.contains("Endpoint"), "{shown}");
    assert!(!shown.contains(SECRET), "{shown}");
}

/// `sweep_every` sweeps the engine's store in the background, and stops
/// when the endpoint is dropped; without a runtime, `build` says so.
#[tokio::test]
async fn the_endpoint_sweeps_the_store_until_it_is_dropped() {
    use alm_webhooks::Engine;
    use alm_webhooks::store::MemoryStore;
    use support::counting::Counting;

    let store = Arc::new(Counting::new(MemoryStore::new()));
    let endpoint = Endpoint::builder(Authentication::None)
        .engine(Engine::builder(Arc::clone(&store)).build())
        .sweep_every(Duration::from_millis(20))
        .handler(|_event| async { Ok(()) })
        .build()
        .unwrap();
    let answer = endpoint
        .handle(&HeaderMap::new(), &body(1, &[draft("swept")]))
        .await;
    assert_eq!(answer.status(), StatusCode::ACCEPTED);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sweeps = store.take().get("sweep").copied().unwrap_or(0);
    assert!(sweeps >= 2, "{sweeps} sweeps in 300 ms at one per 20 ms");
    drop(endpoint);
    tokio::time::sleep(Duration::from_millis(50)).await;
    store.take();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(store.take().get("sweep"), None, "no sweep after the drop");
}

#[test]
fn a_sweep_needs_a_runtime() {
    let error = Endpoint::builder(Authentication::None)
        .sweep_every(Duration::from_secs(3600))
        .handler(|_event| async { Ok(()) })
        .build()
        .unwrap_err();
    assert_eq!(error, EndpointError::NoRuntime);
}

/// A durable inbox without a store would pair with the in-memory engine:
/// after a restart the inbox's redeliveries would be processed again.
#[cfg(feature = "sqlite")]
#[tokio::test]
async fn a_durable_inbox_without_a_store_is_refused_naming_what_to_add() {
    let inbox = Arc::new(alm_webhooks::inbox::SqliteInbox::open_in_memory().unwrap());
    let error = Endpoint::builder(Authentication::None)
        .inbox(Arc::clone(&inbox), WorkerOptions::new())
        .handler(|_event| async { Ok(()) })
        .build()
        .unwrap_err();
    assert_eq!(error, EndpointError::DurableInboxWithoutStore);
    assert!(
        error.to_string().contains("EndpointBuilder::engine"),
        "{error}"
    );
    // The memory inbox keeps the in-memory default (tests and the demo).
    let endpoint = Endpoint::builder(Authentication::None)
        .inbox(Arc::new(MemoryInbox::new()), WorkerOptions::new())
        .handler(|_event| async { Ok(()) })
        .build()
        .unwrap();
    endpoint.shutdown(Duration::from_millis(200)).await;
}
