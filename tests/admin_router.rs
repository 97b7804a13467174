//! `admin::router` nested under a prefix of the application's own, served
//! by a real listener: the page without a token, the API refused without or
//! with a wrong token, dead letters listed, replayed and discarded, and a
//! quarantined body replayed (or refused while it still does not parse).
#![cfg(feature = "axum")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use alm_webhooks::AccountId;
use alm_webhooks::admin::{self, AdminApi, AdminToken};
use alm_webhooks::inbox::{Inbox, MemoryInbox, NewDeadLetter, NewDelivery, NewQuarantined};
use serde_json::Value;
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const TOKEN: &str = "admin-router-test-token-6f1c";

/// One HTTP/1.1 request; (status, content type, body).
async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-length: 0\r\nconnection: close\r\n"
    );
    if let Some(token) = token {
        head.push_str(&format!("authorization: Bearer {token}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut response))
        .await
        .expect("an answer in time")
        .unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a response");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_owned)
        })
        .unwrap_or_default();
    (status, content_type, body.to_owned())
}

/// The router nested at `/ops/alm` in an application with a route of its
/// own, on a spare port; the inbox holds one dead letter and one
/// quarantined body.
async fn serve() -> (SocketAddr, Arc<MemoryInbox>) {
    let inbox = Arc::new(MemoryInbox::new());
    let now = OffsetDateTime::now_utc();
    // A dead letter, kept as a worker keeps one: on completing a delivery.
    inbox
        .append(NewDelivery {
            account_id: AccountId(7),
            body: br#"{"accountId":7,"events":[]}"#,
            received_at: now,
        })
        .await
        .unwrap();
    let taken = inbox
        .take(Duration::from_secs(30), now)
        .await
        .unwrap()
        .expect("the delivery");
    let letter = NewDeadLetter {
        account_id: AccountId(7),
        event_id: Some("ev-admin-1".to_owned()),
        event_name: Some("COURSE_ENROLLMENT".to_owned()),
        event: r#"{"eventId":"ev-admin-1","eventName":"COURSE_ENROLLMENT"}"#.to_owned(),
        error: "the handler failed: ledger down".to_owned(),
        attempts: 3,
        at: now,
    };
    assert!(
        inbox
            .complete(taken.id, taken.token, &[letter])
            .await
            .unwrap()
    );
    inbox
        .quarantine(NewQuarantined {
            account_id: None,
            body: b"{not json",
            error: "expected ident at line 1 column 2",
            received_at: now,
        })
        .await
        .unwrap();

    let engine = alm_webhooks::Engine::in_memory();
    let api = AdminApi::new(Arc::clone(&inbox), AdminToken::new(TOKEN)).counting(&engine);
    let app = axum::Router::new()
        .route("/", axum::routing::get(|| async { "the application" }))
        .nest("/ops/alm", admin::router(api));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, inbox)
}

#[tokio::test]
async fn the_page_loads_without_a_token_under_the_prefix() {
    let (addr, _) = serve().await;
    let (status, content_type, body) = call(addr, "GET", "/ops/alm", None).await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/html; charset=utf-8");
    assert_eq!(body, admin::PAGE_HTML);
    // The application's own routes are untouched.
    let (status, _, body) = call(addr, "GET", "/", None).await;
    assert_eq!((status, body.as_str()), (200, "the application"));
    // The page asks for its API relative to its own path: the prefix.
    assert!(admin::PAGE_HTML.contains(r#"location.pathname.replace(/\/+$/, "") + "/""#));
}

#[tokio::test]
async fn the_api_refuses_a_missing_or_wrong_token_alike() {
    let (addr, _) = serve().await;
    for path in [
        "/ops/alm/inbox",
        "/ops/alm/dead-letters",
        "/ops/alm/quarantine",
    ] {
        for token in [
            None,
            Some("wrong"),
            Some(&TOKEN[..TOKEN.len() - 1]),
            Some(""),
        ] {
            let (status, _, body) = call(addr, "GET", path, token).await;
            assert_eq!(status, 401, "{path} with {token:?}");
            assert_eq!(body, r#"{"error":"unauthorized"}"#);
        }
    }
    let (status, _, _) = call(
        addr,
        "POST",
        "/ops/alm/dead-letters/1/replay",
        Some("wrong"),
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn dead_letters_are_listed_and_replayed() {
    let (addr, inbox) = serve().await;
    let (status, content_type, body) =
        call(addr, "GET", "/ops/alm/dead-letters", Some(TOKEN)).await;
    assert_eq!((status, content_type.as_str()), (200, "application/json"));
    let list: Value = serde_json::from_str(&body).unwrap();
    let letters = list.as_array().unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0]["eventId"], "ev-admin-1");
    assert_eq!(letters[0]["eventName"], "COURSE_ENROLLMENT");
    assert_eq!(letters[0]["accountId"], 7);
    assert_eq!(letters[0]["attempts"], 3);
    assert_eq!(letters[0]["error"], "the handler failed: ledger down");
    assert!(
        letters[0]["preview"]
            .as_str()
            .unwrap()
            .contains("ev-admin-1")
    );
    assert!(
        letters[0].get("event").is_none(),
        "a listing carries a preview only"
    );
    let id = letters[0]["id"].as_u64().unwrap();
    let path = format!("/ops/alm/dead-letters/{id}");
    let (status, _, one) = call(addr, "GET", &path, Some(TOKEN)).await;
    assert_eq!(status, 200);
    let one: Value = serde_json::from_str(&one).unwrap();
    assert_eq!(
        one["event"]["eventId"], "ev-admin-1",
        "the whole event by id"
    );

    let (status, _, figures) = call(addr, "GET", "/ops/alm/inbox", Some(TOKEN)).await;
    assert_eq!(status, 200);
    let figures: Value = serde_json::from_str(&figures).unwrap();
    assert_eq!(
        (
            figures["pending"].as_u64(),
            figures["dead_letters"].as_u64()
        ),
        (Some(0), Some(1))
    );

    let replay = format!("/ops/alm/dead-letters/{id}/replay");
    let (status, _, body) = call(addr, "POST", &replay, Some(TOKEN)).await;
    assert_eq!(status, 202, "{body}");
    assert!(serde_json::from_str::<Value>(&body).unwrap()["delivery"].is_u64());
    let stats = inbox.stats(OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!((stats.pending, stats.dead_letters), (1, 0));
    // Replayed once: it is gone.
    let (status, _, _) = call(addr, "POST", &replay, Some(TOKEN)).await;
    assert_eq!(status, 404);
    let (status, _, _) = call(
        addr,
        "DELETE",
        &format!("/ops/alm/dead-letters/{id}"),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _, _) = call(
        addr,
        "POST",
        "/ops/alm/dead-letters/not-a-number/replay",
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _, body) = call(addr, "GET", "/ops/alm/decisions", Some(TOKEN)).await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["processed"],
        0
    );
}

#[tokio::test]
async fn quarantined_bodies_are_listed_refused_while_invalid_and_discarded() {
    let (addr, inbox) = serve().await;
    let (status, _, body) = call(addr, "GET", "/ops/alm/quarantine", Some(TOKEN)).await;
    assert_eq!(status, 200);
    let list: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list[0]["preview"], "{not json");
    assert_eq!(list[0]["bytes"], 9);
    let id = list[0]["id"].as_u64().unwrap();
    let path = format!("/ops/alm/quarantine/{id}");
    let (status, _, one) = call(addr, "GET", &path, Some(TOKEN)).await;
    assert_eq!(status, 200);
    let one: Value = serde_json::from_str(&one).unwrap();
    assert_eq!(one["body"], "{not json", "the whole body by id");
    let (status, _, body) = call(
        addr,
        "POST",
        &format!("/ops/alm/quarantine/{id}/replay"),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 422);
    assert!(serde_json::from_str::<Value>(&body).unwrap()["error"].is_string());
    let (status, _, body) = call(
        addr,
        "DELETE",
        &format!("/ops/alm/quarantine/{id}"),
        Some(TOKEN),
    )
    .await;
    assert_eq!((status, body.as_str()), (204, ""));
    assert_eq!(
        inbox
            .stats(OffsetDateTime::now_utc())
            .await
            .unwrap()
            .quarantined,
        0
    );
    let (status, _, _) = call(addr, "GET", "/ops/alm/no-such-call", Some(TOKEN)).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn listings_carry_previews_and_every_answer_security_headers() {
    let (addr, inbox) = serve().await;
    // A large quarantined body: the listing must not carry it.
    let big = format!("{{\"accountId\":7,\"x\":\"{}\"", "a".repeat(2_000_000));
    inbox
        .quarantine(NewQuarantined {
            account_id: Some(alm_webhooks::AccountId(7)),
            body: big.as_bytes(),
            error: "not an envelope",
            received_at: time::OffsetDateTime::now_utc(),
        })
        .await
        .unwrap();
    let (status, _, body) = call(addr, "GET", "/ops/alm/quarantine", Some(TOKEN)).await;
    assert_eq!(status, 200);
    assert!(
        body.len() < 4_000,
        "a listing of 2 MB bodies took {} bytes",
        body.len()
    );
    let list: Value = serde_json::from_str(&body).unwrap();
    let last = list.as_array().unwrap().last().unwrap();
    assert_eq!(last["bytes"], big.len());
    assert!(last["preview"].as_str().unwrap().ends_with('…'));

    let response = reqwest_like(addr, "/ops/alm/inbox", Some(TOKEN)).await;
    for page in [response, reqwest_like(addr, "/ops/alm", None).await] {
        let lower = page.to_ascii_lowercase();
        assert!(
            lower.contains("content-security-policy: default-src 'none'"),
            "{page}"
        );
        assert!(lower.contains("frame-ancestors 'none'"), "{page}");
        assert!(lower.contains("x-content-type-options: nosniff"), "{page}");
        assert!(lower.contains("cache-control: no-store"), "{page}");
    }
}

#[tokio::test]
async fn failed_tokens_are_rate_limited() {
    let (addr, _inbox) = serve().await;
    let mut statuses = Vec::new();
    for _ in 0..25 {
        statuses.push(
            call(addr, "GET", "/ops/alm/inbox", Some("a wrong guess"))
                .await
                .0,
        );
    }
    assert_eq!(&statuses[..20], &[401; 20]);
    assert!(statuses[20..].iter().all(|s| *s == 429), "{statuses:?}");
    // Even the right token waits for the window to pass.
    assert_eq!(
        call(addr, "GET", "/ops/alm/inbox", Some(TOKEN)).await.0,
        429
    );
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    assert_eq!(
        call(addr, "GET", "/ops/alm/inbox", Some(TOKEN)).await.0,
        200
    );
}

#[test]
fn a_short_admin_token_is_refused() {
    assert!(alm_webhooks::admin::AdminToken::parse("t").is_err());
    assert!(
        alm_webhooks::admin::AdminToken::parse(TOKEN).is_err(),
        "{} characters",
        TOKEN.len()
    );
}

/// The raw response (head and body) to a GET.
async fn reqwest_like(addr: std::net::SocketAddr, path: &str, token: Option<&str>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = token.map_or(String::new(), |t| format!("authorization: Bearer {t}\r\n"));
    let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n{auth}\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test]
async fn listings_come_in_pages_after_an_id() {
    let (addr, inbox) = serve().await;
    let now = OffsetDateTime::now_utc();
    // 150 quarantined bodies in all (one from `serve`).
    for n in 0..149 {
        inbox
            .quarantine(NewQuarantined {
                account_id: None,
                body: format!("not json {n}").as_bytes(),
                error: "expected value",
                received_at: now,
            })
            .await
            .unwrap();
    }
    let ids = |body: &str| -> Vec<u64> {
        let list: Value = serde_json::from_str(body).unwrap();
        list.as_array()
            .unwrap()
            .iter()
            .map(|q| q["id"].as_u64().unwrap())
            .collect()
    };
    let (status, _, first) = call(addr, "GET", "/ops/alm/quarantine", Some(TOKEN)).await;
    assert_eq!(status, 200, "{first}");
    let first = ids(&first);
    assert_eq!(first.len(), 100, "a page holds 100");
    let last = first[99];
    let (status, _, second) = call(
        addr,
        "GET",
        &format!("/ops/alm/quarantine?after={last}"),
        Some(TOKEN),
    )
    .await;
    assert_eq!(status, 200, "{second}");
    let second = ids(&second);
    assert_eq!(second.len(), 50, "the other 50");
    assert!(second[0] > last && second.windows(2).all(|w| w[0] < w[1]));
    let end = second[49];
    let (status, _, rest) = call(
        addr,
        "GET",
        &format!("/ops/alm/quarantine?after={end}"),
        Some(TOKEN),
    )
    .await;
    assert_eq!((status, rest.as_str()), (200, "[]"));
    // Dead letters page the same way (`serve` keeps one).
    let (status, _, letters) = call(addr, "GET", "/ops/alm/dead-letters", Some(TOKEN)).await;
    assert_eq!(status, 200, "{letters}");
    let letter = ids(&letters)[0];
    let (status, _, letters) = call(
        addr,
        "GET",
        &format!("/ops/alm/dead-letters?after={letter}"),
        Some(TOKEN),
    )
    .await;
    assert_eq!((status, letters.as_str()), (200, "[]"));
    let (status, _, refused) =
        call(addr, "GET", "/ops/alm/quarantine?after=last", Some(TOKEN)).await;
    assert_eq!(status, 400, "{refused}");
}
