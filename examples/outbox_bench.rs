//! Relay throughput from PostgreSQL: fills the outbox by deciding
//! deliveries through an engine on PostgreSQL (and the same without the
//! outbox, for its cost), then times one or more relays draining it to a
//! sink. Numbers go to BENCHMARKS.md.
//!
//! ```sh
//! cargo run --release --example outbox_bench --features postgres,nats,rabbitmq -- \
//!   nats://127.0.0.1:4222/almbench?stream=ALMBENCH 50000
//! cargo run --release --example outbox_bench --features postgres,nats,rabbitmq,kafka -- \
//!   kafka://127.0.0.1:9092/almbench?partitions=4 50000
//! ```
//!
//! Arguments: the sink URL (as in `ALM_FORWARD`), the number of events
//! (default 50,000), the number of accounts (default 4), relays (default 1).
//! Needs PostgreSQL at `ALM_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`); uses a schema of its own,
//! dropped at the end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use alm_webhooks::outbox::{AnySink, Relay};
use alm_webhooks::store::{ClaimToken, OutboxStore, PostgresStore};
use alm_webhooks::{Engine, Envelope};

const PER_DELIVERY: usize = 100;

async fn fill(engine: &Engine<PostgresStore>, events: usize, accounts: u64, tag: &str) -> Duration {
    let deliveries = events / PER_DELIVERY;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for _ in 0..8 {
        let (engine, next, tag) = (engine.clone(), Arc::clone(&next), tag.to_owned());
        tasks.spawn(async move {
            loop {
                let d = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if d >= deliveries {
                    return;
                }
                let account = d as u64 % accounts + 1;
                let events: Vec<String> = (0..PER_DELIVERY)
                    .map(|i| format!(r#"{{"eventId":"{tag}-{d}-{i}","eventName":"SOMETHING_NEW","timestamp":1725600000,"data":{{"userId":{i},"status":"SUCCESS"}}}}"#))
                    .collect();
                let body = format!(r#"{{"accountId":{account},"events":[{}]}}"#, events.join(","));
                let envelope = Envelope::from_slice(body.as_bytes()).expect("valid");
                engine.process(envelope, |_| async { Ok(()) }).await.expect("decided");
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    started.elapsed()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let sink_url = args
        .first()
        .expect("a sink URL (as in ALM_FORWARD)")
        .clone();
    let events: usize = args
        .get(1)
        .map_or(50_000, |n| n.parse().expect("a number of events"));
    let accounts: u64 = args
        .get(2)
        .map_or(4, |n| n.parse().expect("a number of accounts"));
    let relays: usize = args
        .get(3)
        .map_or(1, |n| n.parse().expect("a number of relays"));
    let url = std::env::var("ALM_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let id = format!("{:08x}", ClaimToken::random().0 as u32);

    // The cost of the outbox on deciding: the same deliveries without it.
    let plain_schema = format!("alm_bench_plain_{id}");
    PostgresStore::migrate(&url, &plain_schema)
        .await
        .expect("migrate");
    let plain = PostgresStore::connect_with_schema(&url, &plain_schema)
        .await
        .expect("connect");
    let took = fill(
        &Engine::builder(plain.clone()).build(),
        events,
        accounts,
        "p",
    )
    .await;
    println!(
        "decide without outbox: {events} events in {took:.2?} = {:.0} ev/s",
        events as f64 / took.as_secs_f64()
    );
    plain.drop_schema().await.expect("drop");

    let schema = format!("alm_bench_outbox_{id}");
    PostgresStore::migrate(&url, &schema)
        .await
        .expect("migrate");
    let store = PostgresStore::connect_with_schema(&url, &schema)
        .await
        .expect("connect");
    let keep = store.clone();
    let store = store.with_outbox().await.expect("outbox");
    let engine = Engine::builder(store.clone()).build();
    let took = fill(&engine, events, accounts, "o").await;
    println!(
        "decide with outbox:    {events} events in {took:.2?} = {:.0} ev/s",
        events as f64 / took.as_secs_f64()
    );
    assert_eq!(store.outbox_stats().await.unwrap().pending, events as u64);

    // RabbitMQ returns a message no queue takes: bind one (exclusive,
    // gone with this process) to every key of the exchange.
    let _consumer = match sink_url.split_once("?exchange=") {
        Some((amqp, exchange)) if sink_url.starts_with("amqp") => {
            use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
            use lapin::types::FieldTable;
            let conn = lapin::Connection::connect(amqp, lapin::ConnectionProperties::default())
                .await
                .expect("amqp");
            let channel = conn.create_channel().await.expect("channel");
            let durable = ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            };
            channel
                .exchange_declare(
                    exchange,
                    lapin::ExchangeKind::Topic,
                    durable,
                    FieldTable::default(),
                )
                .await
                .expect("exchange");
            let exclusive = QueueDeclareOptions {
                exclusive: true,
                ..Default::default()
            };
            let queue = channel
                .queue_declare("", exclusive, FieldTable::default())
                .await
                .expect("queue");
            channel
                .queue_bind(
                    queue.name().as_str(),
                    exchange,
                    "#",
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .expect("bind");
            Some((conn, channel))
        }
        _ => None,
    };
    let sink = Arc::new(AnySink::from_urls(&sink_url).await.expect("the sink"));
    // Warm the connection (and create the stream) outside the timing.
    let warm = Relay::new(store.clone(), Arc::clone(&sink)).batch(1);
    warm.relay_once().await.expect("first publish");
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..relays {
        let relay = Relay::new(store.clone(), Arc::clone(&sink)).batch(1000);
        tasks.spawn(async move {
            let mut sent = 0;
            loop {
                match relay.relay_once().await {
                    Ok(0) => return sent,
                    Ok(n) => sent += n,
                    Err(e) => panic!("relay: {e}"),
                }
            }
        });
    }
    let mut sent = 0;
    while let Some(n) = tasks.join_next().await {
        sent += n.expect("relay task");
    }
    let took = started.elapsed();
    println!(
        "relay {sink}: {sent} events in {took:.2?} = {:.0} ev/s ({relays} relay(s), {accounts} accounts, batch 1000)",
        sent as f64 / took.as_secs_f64(),
        sink = sink_url.split("://").next().unwrap_or("?"),
    );
    assert_eq!(store.outbox_stats().await.unwrap().pending, 0);
    keep.drop_schema().await.expect("drop");
}
