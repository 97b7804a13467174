//! Forwarding to RabbitMQ against the machine's server (127.0.0.1:5672,
//! guest/guest): every processed event arrives, in each account's order,
//! persistent, with `message_id` and the headers; duplicates, ignored and
//! malformed events do not; the sink's connection closed by the broker
//! (`rabbitmqctl close_connection`) in the middle loses nothing. Without a
//! server the test is skipped, except under `CI=true`, where it fails.
#![cfg(feature = "rabbitmq")]

mod support;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alm_webhooks::Engine;
use alm_webhooks::outbox::{Forwarding, RabbitSink, Relay};
use alm_webhooks::store::{MemoryStore, OutboxStore};
use lapin::options::{
    BasicGetOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Connection, ConnectionProperties, ExchangeKind};
use support::forwarding::{deliver, total};

fn unique() -> String {
    format!(
        "{}_{:08x}",
        std::process::id(),
        alm_webhooks::store::ClaimToken::random().0 as u32
    )
}

fn url() -> Option<String> {
    let url = std::env::var("ALM_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    if std::net::TcpStream::connect_timeout(
        &"127.0.0.1:5672".parse().unwrap(),
        Duration::from_secs(2),
    )
    .is_ok()
    {
        return Some(url);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("RabbitMQ is not reachable at 127.0.0.1:5672; CI needs it");
    }
    eprintln!("skipped: RabbitMQ not reachable");
    None
}

async fn wait_drained<O: OutboxStore>(store: &O, limit: Duration) {
    let deadline = Instant::now() + limit;
    while store.outbox_stats().await.unwrap().pending > 0 {
        assert!(Instant::now() < deadline, "the outbox did not drain");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Closes the broker side of the connections named `name` (their
/// `connection_name` client property).
fn close_connections(name: &str) -> bool {
    let Ok(out) = std::process::Command::new("rabbitmqctl")
        .args([
            "list_connections",
            "-q",
            "--no-table-headers",
            "pid",
            "client_properties",
        ])
        .output()
    else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut closed = false;
    for line in text.lines() {
        let Some((pid, properties)) = line.split_once('\t') else {
            continue;
        };
        if properties.contains(&format!("{{\"connection_name\",\"{name}\"}}")) {
            let status = std::process::Command::new("rabbitmqctl")
                .args([
                    "close_connection",
                    pid.trim(),
                    "test closes the relay's connection",
                ])
                .status();
            closed |= status.is_ok_and(|s| s.success());
        }
    }
    closed
}

fn text(table: &FieldTable, name: &str) -> String {
    match table.inner().get(name) {
        Some(AMQPValue::LongString(s)) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        other => panic!("header {name}: {other:?}"),
    }
}

#[tokio::test]
async fn every_processed_event_arrives_in_order_and_a_closed_connection_loses_nothing() {
    let Some(url) = url() else { return };
    let exchange = format!("alm-test-{}", unique());
    let name = format!("alm-test-relay-{}", unique());
    // A queue of the test's own, bound to every key of the exchange.
    let conn = Connection::connect(&url, ConnectionProperties::default())
        .await
        .unwrap();
    let channel = conn.create_channel().await.unwrap();
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    channel
        .exchange_declare(
            &exchange,
            ExchangeKind::Topic,
            durable,
            FieldTable::default(),
        )
        .await
        .unwrap();
    let queue = channel
        .queue_declare(
            "",
            QueueDeclareOptions {
                exclusive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let queue = queue.name().as_str().to_owned();
    channel
        .queue_bind(
            &queue,
            &exchange,
            "#",
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();

    let engine = Engine::builder(Arc::new(MemoryStore::new().with_outbox())).build();
    let mut expected = deliver(&engine, 200, 3, 10, "r").await;
    let sink = RabbitSink::new(&format!("{url}?exchange={exchange}"))
        .unwrap()
        .connection_name(name.clone());
    let _forwarding = Forwarding::start(Relay::new(Arc::clone(engine.store()), sink).batch(5));
    wait_drained(engine.store(), Duration::from_secs(30)).await;
    // The broker closes the relay's connection; forwarding goes on.
    let closed = close_connections(&name);
    eprintln!("closed the relay's connection: {closed}");
    if std::env::var("CI").as_deref() == Ok("true") {
        assert!(closed, "rabbitmqctl closes the connection");
    }
    let more = deliver(&engine, 200, 3, 10, "s").await;
    for ((_, ids), (_, new)) in expected.iter_mut().zip(more) {
        ids.extend(new);
    }
    wait_drained(engine.store(), Duration::from_secs(60)).await;

    let mut by_account: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    while let Some(got) = channel
        .basic_get(&queue, BasicGetOptions { no_ack: true })
        .await
        .unwrap()
    {
        let m = got.delivery;
        let headers = m.properties.headers().clone().expect("headers");
        let account: u64 = text(&headers, "alm-account-id").parse().unwrap();
        let id = text(&headers, "alm-event-id");
        assert!(text(&headers, "alm-timestamp").ends_with('Z'));
        assert!(!text(&headers, "alm-event-name").is_empty());
        assert_eq!(
            m.properties.content_type().as_ref().map(|c| c.as_str()),
            Some("application/json")
        );
        assert_eq!(*m.properties.delivery_mode(), Some(2), "persistent");
        let message_id = m
            .properties
            .message_id()
            .as_ref()
            .expect("message_id")
            .as_str()
            .to_owned();
        assert!(message_id.starts_with("alm-"));
        assert!(m.routing_key.as_str().starts_with(&format!("{account}.")));
        let body: serde_json::Value = serde_json::from_slice(&m.data).unwrap();
        assert_eq!(body["eventId"], id.as_str());
        *seen.entry(message_id).or_default() += 1;
        // A re-publish (none expected here) is dropped as a consumer would.
        let ids = by_account.entry(account).or_default();
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    let expected: BTreeMap<u64, Vec<String>> = expected.iter().cloned().collect();
    assert_eq!(by_account, expected);
    assert_eq!(
        seen.len(),
        total(&expected.clone().into_iter().collect::<Vec<_>>())
    );
    let _ = channel.exchange_delete(&exchange, Default::default()).await;
}

#[cfg(feature = "sink-conformance")]
#[tokio::test]
async fn the_rabbitmq_sink_keeps_the_sink_contract() {
    use alm_webhooks::conformance::sink::{self, Fixture, Received};
    let Some(url) = url() else { return };
    let exchange = format!("alm-conf-{}", unique());
    let conn = Connection::connect(&url, ConnectionProperties::default())
        .await
        .unwrap();
    let channel = conn.create_channel().await.unwrap();
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    channel
        .exchange_declare(
            &exchange,
            ExchangeKind::Topic,
            durable,
            FieldTable::default(),
        )
        .await
        .unwrap();
    let queue = channel
        .queue_declare(
            "",
            QueueDeclareOptions {
                exclusive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap()
        .name()
        .as_str()
        .to_owned();
    channel
        .queue_bind(
            &queue,
            &exchange,
            "#",
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let sink = RabbitSink::new(&format!("{url}?exchange={exchange}")).unwrap();
    let kept: Arc<tokio::sync::Mutex<Vec<Received>>> = Arc::default();
    let fixture = Fixture::new(sink, move || {
        let (channel, queue, kept) = (channel.clone(), queue.clone(), Arc::clone(&kept));
        async move {
            let mut kept = kept.lock().await;
            while let Some(got) = channel
                .basic_get(&queue, BasicGetOptions { no_ack: true })
                .await
                .unwrap()
            {
                let m = got.delivery;
                let mut headers: Vec<(String, String)> = m
                    .properties
                    .headers()
                    .as_ref()
                    .map(|t| {
                        t.inner()
                            .keys()
                            .map(|k| (k.as_str().to_owned(), text(t, k.as_str())))
                            .collect()
                    })
                    .unwrap_or_default();
                if let Some(c) = m.properties.content_type() {
                    headers.push(("content-type".to_owned(), c.as_str().to_owned()));
                }
                kept.push(Received {
                    headers,
                    body: m.data.clone(),
                    stable_id: m
                        .properties
                        .message_id()
                        .as_ref()
                        .map(|i| i.as_str().to_owned()),
                });
            }
            kept.clone()
        }
    });
    sink::check_all(&fixture).await;
}
