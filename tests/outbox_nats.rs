//! Forwarding to NATS JetStream against real servers: the machine's
//! (127.0.0.1:4222, with JetStream) for what arrives, and a `nats-server`
//! this test starts on its own port and data directory for a restart in
//! the middle of forwarding. Every processed event arrives once (JetStream
//! holds no duplicate), in each account's order, with the headers;
//! duplicates, ignored and malformed events do not. Without a server the
//! tests are skipped, except under `CI=true`, where they fail.
#![cfg(feature = "nats")]

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use alm_webhooks::Engine;
use alm_webhooks::outbox::{Forwarding, NatsSink, Relay, Sink};
use alm_webhooks::store::{MemoryStore, OutboxStore};
use async_nats::jetstream;
use support::forwarding::{Expected, deliver, total, wait_drained};
use support::nats_server::OwnServer;
use support::own::unique;

fn shared_server() -> Option<String> {
    let addr = std::env::var("ALM_TEST_NATS_ADDR").unwrap_or_else(|_| "127.0.0.1:4222".into());
    if std::net::TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(2)).is_ok() {
        return Some(addr);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("NATS is not reachable at {addr}; CI needs it");
    }
    eprintln!("skipped: NATS not reachable at {addr}");
    None
}

/// Every message of `stream`, in stream order.
async fn messages(addr: &str, stream: &str) -> Vec<jetstream::message::StreamMessage> {
    let client = async_nats::connect(addr).await.unwrap();
    let js = jetstream::new(client);
    let mut stream = js.get_stream(stream).await.unwrap();
    let state = stream.info().await.unwrap().state.clone();
    let mut out = Vec::new();
    for seq in state.first_sequence..=state.last_sequence {
        if let Ok(m) = stream.get_raw_message(seq).await {
            out.push(m);
        }
    }
    assert_eq!(out.len() as u64, state.messages);
    out
}

/// Checks what the stream holds against what was processed: each once,
/// in each account's order, with subject and headers.
fn check(messages: &[jetstream::message::StreamMessage], prefix: &str, expected: &Expected) {
    let mut by_account: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    let mut ids = std::collections::HashSet::new();
    for m in messages {
        let header = |name: &str| {
            m.headers
                .get(name)
                .map(|v| v.as_str().to_owned())
                .unwrap_or_default()
        };
        let account: u64 = header("alm-account-id").parse().unwrap();
        let id = header("alm-event-id");
        let name = header("alm-event-name");
        assert_eq!(header("content-type"), "application/json");
        assert!(
            header("alm-timestamp").ends_with('Z'),
            "{}",
            header("alm-timestamp")
        );
        let msg_id = m
            .headers
            .get(async_nats::header::NATS_MESSAGE_ID)
            .map(|v| v.as_str().to_owned());
        let msg_id = msg_id.expect("Nats-Msg-Id");
        assert!(msg_id.starts_with("alm-"));
        assert!(ids.insert(msg_id), "a duplicate in the stream: {id}");
        let family = if name == "SOMETHING_NEW" {
            "unknown"
        } else if name.ends_with("ENROLLMENT") {
            "enrollment"
        } else {
            "completion"
        };
        assert_eq!(m.subject.as_str(), format!("{prefix}.{account}.{family}"));
        let body: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
        assert_eq!(body["eventId"], id.as_str());
        assert_eq!(body["eventName"], name.as_str());
        by_account.entry(account).or_default().push(id);
    }
    let expected: BTreeMap<u64, Vec<String>> = expected.iter().cloned().collect();
    assert_eq!(by_account, expected);
}

#[tokio::test]
async fn every_processed_event_arrives_once_in_order_with_its_headers() {
    let Some(addr) = shared_server() else { return };
    let (prefix, stream) = (
        format!("almtest{}", unique()),
        format!("ALMTEST_{}", unique()),
    );
    let engine = Engine::builder(Arc::new(MemoryStore::new().with_outbox())).build();
    let expected = deliver(&engine, 100, 3, 20, "n").await;
    let sink = NatsSink::connect(&format!("nats://{addr}/{prefix}?stream={stream}"))
        .await
        .unwrap();
    let relay = Relay::new(Arc::clone(engine.store()), sink).batch(25);
    let _forwarding = Forwarding::start(relay);
    wait_drained(engine.store(), Duration::from_secs(30)).await;
    let got = messages(&addr, &stream).await;
    assert_eq!(got.len(), total(&expected));
    check(&got, &prefix, &expected);
    let js = jetstream::new(async_nats::connect(&addr).await.unwrap());
    js.delete_stream(&stream).await.unwrap();
}

#[tokio::test]
async fn a_server_restart_loses_nothing_and_jetstream_drops_the_republishes() {
    let Some(mut server) = OwnServer::start() else {
        return;
    };
    let addr = server.addr();
    let (prefix, stream) = ("alm".to_owned(), "ALM".to_owned());
    let engine = Engine::builder(Arc::new(MemoryStore::new().with_outbox())).build();
    let mut expected = deliver(&engine, 0, 2, 10, "a").await;
    let url = format!("nats://{addr}/{prefix}?stream={stream}");
    // A relay that dies after the broker's ack, before it marks the
    // entries sent: they are published again, and JetStream drops them.
    let dead = NatsSink::connect(&url).await.unwrap();
    let leased = engine
        .store()
        .lease_outbox("dead", 15, Duration::from_millis(100))
        .await
        .unwrap();
    assert_eq!(leased.len(), 15);
    for run in leased.chunk_by(|a, b| a.account_id == b.account_id) {
        dead.publish(run).await.unwrap();
    }
    drop(dead);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let sink = NatsSink::connect(&url).await.unwrap();
    let relay = Relay::new(Arc::clone(engine.store()), sink).batch(5);
    let _forwarding = Forwarding::start(relay);
    // Stop the server while the relay forwards, go on receiving, restart.
    tokio::time::sleep(Duration::from_millis(30)).await;
    server.kill();
    let more = deliver(&engine, 0, 2, 10, "b").await;
    assert!(
        engine.store().outbox_stats().await.unwrap().pending > 0,
        "held while the broker is down"
    );
    for ((_, ids), (_, new)) in expected.iter_mut().zip(more) {
        ids.extend(new);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(server.spawn(), "nats-server restarts");
    wait_drained(engine.store(), Duration::from_secs(60)).await;
    let got = messages(&addr, &stream).await;
    assert_eq!(got.len(), total(&expected), "0 duplicates, nothing lost");
    check(&got, &prefix, &expected);
}

#[cfg(feature = "sink-conformance")]
#[tokio::test]
async fn the_nats_sink_keeps_the_sink_contract() {
    use alm_webhooks::conformance::sink::{self, Fixture, Received};
    let Some(addr) = shared_server() else { return };
    let (prefix, stream) = (
        format!("almconf{}", unique()),
        format!("ALMCONF_{}", unique()),
    );
    let sink = NatsSink::connect(&format!("nats://{addr}/{prefix}?stream={stream}"))
        .await
        .unwrap();
    let (read_addr, read_stream) = (addr.clone(), stream.clone());
    let fixture = Fixture::new(sink, move || {
        let (addr, stream) = (read_addr.clone(), read_stream.clone());
        async move {
            messages(&addr, &stream)
                .await
                .into_iter()
                .map(|m| Received {
                    headers: m
                        .headers
                        .iter()
                        .flat_map(|(k, vs)| {
                            vs.iter()
                                .map(move |v| (k.to_string(), v.as_str().to_owned()))
                        })
                        .collect(),
                    body: m.payload.to_vec(),
                    stable_id: m
                        .headers
                        .get(async_nats::header::NATS_MESSAGE_ID)
                        .map(|v| v.as_str().to_owned()),
                })
                .collect()
        }
    });
    sink::check_all(&fixture).await;
    let js = jetstream::new(async_nats::connect(&addr).await.unwrap());
    // JetStream dropped the re-publish: 23 + 5 messages.
    assert_eq!(
        js.get_stream(&stream)
            .await
            .unwrap()
            .info()
            .await
            .unwrap()
            .state
            .messages,
        28
    );
    js.delete_stream(&stream).await.unwrap();
}
