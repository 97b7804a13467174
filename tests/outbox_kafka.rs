//! Forwarding to Kafka against a real Kafka-protocol broker: tansu (a
//! Kafka-compatible broker from crates.io; Apache Kafka itself cannot be
//! installed on these machines), the one `.ci/services` starts on
//! 127.0.0.1:9092 for what arrives, and one this test starts on its own
//! port for a restart in the middle of forwarding. Every processed event
//! arrives, in each account's order, keyed by account, with the headers;
//! duplicates, ignored and malformed events do not; a broker restart and a
//! `kill -9` of the example receiver lose nothing, with at most one
//! re-publish per kill. Without a broker the tests are skipped, except
//! under `CI=true`, where they fail.
#![cfg(feature = "kafka")]

mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alm_webhooks::Engine;
use alm_webhooks::outbox::{Forwarding, KafkaSink, Relay, Sink, SinkError};
use alm_webhooks::store::{MemoryStore, OutboxEntry, OutboxStore};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use support::forwarding::{deliver, receiver_env, total, wait_drained};
use support::own::{delivery, free_port, reachable, unique, wait_for_port};

fn ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

fn shared_broker() -> Option<String> {
    let addr = std::env::var("ALM_TEST_KAFKA_ADDR").unwrap_or_else(|_| "127.0.0.1:9092".into());
    if std::net::TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(2)).is_ok() {
        return Some(addr);
    }
    if ci() {
        panic!("no Kafka-compatible broker at {addr} (tansu, .ci/services); CI needs it");
    }
    eprintln!("skipped: no Kafka-compatible broker at {addr}");
    None
}

/// The `tansu` binary: on `PATH`, or where `cargo install` puts it.
fn tansu() -> Option<std::path::PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cargo")));
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain(home.map(|h| h.join("bin")))
        .map(|dir| dir.join("tansu"))
        .find(|path| path.is_file())
}

/// A tansu broker of this test's own, in memory, on a free port: a
/// restart starts it empty (the in-memory storage keeps nothing).
struct OwnBroker {
    child: Option<Child>,
    port: u16,
    binary: std::path::PathBuf,
}

impl OwnBroker {
    fn start() -> Option<Self> {
        let port = free_port()?;
        let Some(binary) = tansu() else {
            if ci() {
                panic!("no tansu binary (cargo install tansu --features dynostore); CI needs it");
            }
            eprintln!("skipped: no tansu binary to start");
            return None;
        };
        let mut broker = Self {
            child: None,
            port,
            binary,
        };
        assert!(broker.spawn(), "tansu starts on port {port}");
        Some(broker)
    }

    fn spawn(&mut self) -> bool {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let child = Command::new(&self.binary)
            .args(["broker", "--storage-engine", "memory://tansu/"])
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(child) = child else { return false };
        self.child = Some(child);
        wait_for_port(self.port)
    }

    /// `kill -9`.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A message as read back.
#[derive(Debug, Clone)]
struct Got {
    partition: i32,
    key: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Got {
    fn header(&self, name: &str) -> String {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }
}

fn consumer(addr: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("group.id", format!("alm-test-{}", unique()))
        .set("enable.auto.commit", "false")
        .create()
        .expect("a consumer")
}

/// The topic's partitions (none when the broker has no such topic).
fn partitions(consumer: &BaseConsumer, topic: &str) -> Vec<i32> {
    let Ok(metadata) = consumer.fetch_metadata(Some(topic), Duration::from_secs(5)) else {
        return Vec::new();
    };
    metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect()
}

/// Every message of `topic`, each partition in offset order: read until
/// there are at least `at_least`, then until none came for 1.5 s (a late
/// copy would show). tansu 0.6 reports a wrong high watermark after
/// batches of several records (ListOffsets), so the messages are counted
/// by reading them, not by the watermarks.
fn read_topic(addr: &str, topic: &str, at_least: usize) -> Vec<Got> {
    const QUIET: Duration = Duration::from_millis(1500);
    let consumer = consumer(addr);
    let deadline = Instant::now() + Duration::from_secs(90);
    let partitions = loop {
        let partitions = partitions(&consumer, topic);
        if !partitions.is_empty() || at_least == 0 {
            break partitions;
        }
        assert!(Instant::now() < deadline, "no topic {topic}");
        std::thread::sleep(Duration::from_millis(100));
    };
    if partitions.is_empty() {
        return Vec::new();
    }
    let mut list = TopicPartitionList::new();
    for p in &partitions {
        list.add_partition_offset(topic, *p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&list).unwrap();
    let mut out = Vec::new();
    let mut last = Instant::now();
    while out.len() < at_least || last.elapsed() < QUIET {
        assert!(
            Instant::now() < deadline,
            "read {} of {at_least} messages of {topic}",
            out.len()
        );
        let Some(m) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let m = m.expect("a message");
        last = Instant::now();
        out.push(Got {
            partition: m.partition(),
            key: String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
            headers: m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| {
                            (
                                h.key.to_owned(),
                                String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
            body: m.payload().unwrap_or_default().to_vec(),
        });
    }
    out
}

/// Checks each message (key, headers, body) and returns, per account, the
/// event ids in arrival order (first copies) and how often each came.
fn arrivals(messages: &[Got]) -> (BTreeMap<u64, Vec<String>>, HashMap<String, usize>) {
    let mut by_account: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    let mut copies: HashMap<String, usize> = HashMap::new();
    let mut partition_of: HashMap<u64, i32> = HashMap::new();
    for m in messages {
        let account: u64 = m.header("alm-account-id").parse().unwrap();
        let id = m.header("alm-event-id");
        let name = m.header("alm-event-name");
        assert_eq!(m.key, account.to_string(), "key = the account id");
        assert_eq!(m.header("content-type"), "application/json");
        assert!(
            m.header("alm-timestamp").ends_with('Z'),
            "{}",
            m.header("alm-timestamp")
        );
        let body: serde_json::Value = serde_json::from_slice(&m.body).unwrap();
        assert_eq!(body["eventId"], id.as_str());
        assert_eq!(body["eventName"], name.as_str());
        assert_eq!(
            *partition_of.entry(account).or_insert(m.partition),
            m.partition,
            "an account's messages stay in one partition"
        );
        let n = copies.entry(id.clone()).or_default();
        *n += 1;
        if *n == 1 {
            by_account.entry(account).or_default().push(id);
        }
    }
    (by_account, copies)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_processed_event_arrives_in_order_keyed_by_account_with_its_headers() {
    let Some(addr) = shared_broker() else { return };
    let topic = format!("alm-test-{}", unique());
    let engine = Engine::builder(Arc::new(MemoryStore::new().with_outbox())).build();
    let expected = deliver(&engine, 300, 6, 10, "k").await;
    let sink = KafkaSink::new(&format!("kafka://{addr}/{topic}?partitions=3")).unwrap();
    let relay = Relay::new(Arc::clone(engine.store()), sink).batch(25);
    let _forwarding = Forwarding::start(relay);
    wait_drained(engine.store(), Duration::from_secs(60)).await;
    let (addr2, topic2, want) = (addr.clone(), topic.clone(), total(&expected));
    let got = tokio::task::spawn_blocking(move || read_topic(&addr2, &topic2, want))
        .await
        .unwrap();
    assert_eq!(
        got.len(),
        total(&expected),
        "no re-publish without a failure"
    );
    let (by_account, copies) = arrivals(&got);
    assert!(copies.values().all(|n| *n == 1));
    let expected: BTreeMap<u64, Vec<String>> = expected.into_iter().collect();
    assert_eq!(by_account, expected, "every processed event, in order");
    // The topic the sink created has 3 partitions, and the accounts' keys
    // spread over more than one (Kafka's murmur2 of "301"…"306").
    let used: HashSet<i32> = got.iter().map(|m| m.partition).collect();
    assert!(used.len() > 1, "{used:?}");
    assert_eq!(partitions(&consumer(&addr), &topic).len(), 3);
}

/// A sink that notes what the broker acknowledged.
#[derive(Debug)]
struct Noting {
    inner: KafkaSink,
    acked: Arc<Mutex<Vec<(u64, String)>>>,
}

impl Sink for Noting {
    async fn publish(&self, entries: &[OutboxEntry]) -> Result<(), SinkError> {
        self.inner.publish(entries).await?;
        self.acked.lock().unwrap().extend(
            entries
                .iter()
                .map(|e| (e.account_id.get(), e.event_id.to_string())),
        );
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_holds_the_outbox_and_loses_nothing_the_relay_had() {
    let Some(mut broker) = OwnBroker::start() else {
        return;
    };
    let addr = broker.addr();
    let topic = "alm-restart";
    let engine = Engine::builder(Arc::new(MemoryStore::new().with_outbox())).build();
    let mut expected = deliver(&engine, 0, 2, 40, "a").await;
    let acked = Arc::new(Mutex::new(Vec::new()));
    let sink = Noting {
        inner: KafkaSink::new(&format!("kafka://{addr}/{topic}?partitions=2")).unwrap(),
        acked: Arc::clone(&acked),
    };
    let _forwarding = Forwarding::start(Relay::new(Arc::clone(engine.store()), sink).batch(5));
    // Kill the broker (SIGKILL) while the relay forwards, go on receiving.
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "nothing was acknowledged");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    broker.kill();
    let more = deliver(&engine, 0, 2, 10, "b").await;
    for ((_, ids), (_, new)) in expected.iter_mut().zip(more) {
        ids.extend(new);
    }
    // The relay retries against no broker: the outbox holds, nothing is
    // dropped or dead-lettered.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let held = engine.store().outbox_stats().await.unwrap().pending;
    assert!(held > 0, "held while the broker is down");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        engine.store().outbox_stats().await.unwrap().pending,
        held,
        "nothing leaves the outbox while the broker is down"
    );
    let by_old: Vec<(u64, String)> = acked.lock().unwrap().clone();
    // The broker comes back empty (in-memory storage): the topic is
    // created again and the relay publishes everything it held.
    assert!(broker.spawn(), "tansu restarts");
    wait_drained(engine.store(), Duration::from_secs(90)).await;
    let (addr2, want) = (addr.clone(), held as usize);
    let got = tokio::task::spawn_blocking(move || read_topic(&addr2, topic, want))
        .await
        .unwrap();
    let (after, copies) = arrivals(&got);
    eprintln!(
        "{} events acknowledged before the kill, {held} held in the outbox, {} messages after the restart",
        by_old.len(),
        got.len()
    );
    assert!(
        copies.values().all(|n| *n <= 2),
        "at most one re-publish: {copies:?}"
    );
    // Per account: what the first broker acknowledged is a prefix of the
    // decision order, and the restarted broker holds all the rest, in order.
    for (account, ids) in &expected {
        let old: Vec<&String> = by_old
            .iter()
            .filter(|(a, _)| a == account)
            .map(|(_, id)| id)
            .collect();
        let new = after.get(account).cloned().unwrap_or_default();
        let k = old.len();
        assert_eq!(old, ids[..k].iter().collect::<Vec<_>>(), "acked in order");
        assert_eq!(
            new,
            ids[k..].to_vec(),
            "account {account}: the rest arrives after the restart, in order"
        );
    }
    assert_eq!(
        by_old.len() + after.values().map(Vec::len).sum::<usize>(),
        total(&expected),
        "nothing lost by the relay"
    );
}

#[cfg(feature = "sink-conformance")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kafka_sink_keeps_the_sink_contract() {
    use alm_webhooks::conformance::sink::{self, Fixture, Received};
    let Some(addr) = shared_broker() else { return };
    let topic = format!("alm-conf-{}", unique());
    let sink = KafkaSink::new(&format!("kafka://{addr}/{topic}?partitions=2")).unwrap();
    let (read_addr, read_topic_name) = (addr.clone(), topic.clone());
    let fixture = Fixture::new(sink, move || {
        let (addr, topic) = (read_addr.clone(), read_topic_name.clone());
        async move {
            tokio::task::spawn_blocking(move || read_topic(&addr, &topic, 0))
                .await
                .unwrap()
                .into_iter()
                .map(|m| Received {
                    headers: m.headers,
                    body: m.body,
                    stable_id: None,
                })
                .collect()
        }
    });
    sink::check_all(&fixture).await;
    // Kafka keeps the re-publish: 23 + 5 + 5 messages.
    let (addr2, topic2) = (addr.clone(), topic.clone());
    let held = tokio::task::spawn_blocking(move || read_topic(&addr2, &topic2, 33).len())
        .await
        .unwrap();
    assert_eq!(held, 33);
}

/// `ALM_FORWARD=kafka://…` through the example receiver (axum, on
/// PostgreSQL, inbox mode): the receiver is killed with `kill -9` while its
/// relay forwards, started again, and ALM's deliveries go on (with repeats
/// of deliveries already answered). Every processed event reaches the
/// topic, none more than twice (one kill: at most one re-publish).
#[cfg(all(feature = "postgres", feature = "axum", feature = "env"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_receiver_while_forwarding_loses_nothing() {
    use std::collections::BTreeSet;
    use support::process::{self, signed_post};
    let Some(addr) = shared_broker() else { return };
    if !reachable("127.0.0.1:5432", "PostgreSQL") {
        return;
    }
    let id = unique();
    let schema = format!("alm_kfwd_{id}");
    let store = format!("postgres://postgres@127.0.0.1:5432/test?schema={schema}&migrate=true");
    let topic = format!("alm-kfwd-{}", id.replace('_', "-"));
    let forward = format!("kafka://{addr}/{topic}?partitions=3");
    let env = receiver_env(&store, &forward);
    let mut sent: Vec<Vec<u8>> = Vec::new();
    let mut expected: BTreeSet<String> = BTreeSet::new();
    {
        let first = process::start("axum_receiver", &env);
        for n in 0..60 {
            for account in 1..=3 {
                let (body, ids) = delivery(account, n, 10);
                assert_eq!(signed_post(first.addr, &body).0, 202);
                expected.extend(ids);
                sent.push(body);
            }
        }
        // Killed (SIGKILL) with deliveries in the inbox and entries in
        // the outbox: the relay is forwarding.
        drop(first);
        let (a, t) = (addr.clone(), topic.clone());
        let at_kill = tokio::task::spawn_blocking(move || read_topic(&a, &t, 0).len())
            .await
            .unwrap();
        eprintln!(
            "{at_kill} of {} events forwarded when the receiver was killed",
            expected.len()
        );
    }
    let second = process::start("axum_receiver", &env);
    for body in sent.iter().step_by(7) {
        assert_eq!(signed_post(second.addr, body).0, 202);
    }
    for n in 60..80 {
        for account in 1..=3 {
            let (body, ids) = delivery(account, n, 10);
            assert_eq!(signed_post(second.addr, &body).0, 202);
            expected.extend(ids);
        }
    }
    let (a, t, want) = (addr.clone(), topic.clone(), expected.len());
    let got = tokio::task::spawn_blocking(move || {
        let got = read_topic(&a, &t, want);
        // A little longer, for a late re-publish to show if there were one.
        std::thread::sleep(Duration::from_secs(2));
        read_topic(&a, &t, got.len())
    })
    .await
    .unwrap();
    let (_, copies) = arrivals(&got);
    let arrived: BTreeSet<String> = copies.keys().cloned().collect();
    assert_eq!(arrived, expected, "every processed event arrived");
    let twice = copies.values().filter(|n| **n == 2).count();
    assert!(
        copies.values().all(|n| *n <= 2),
        "at most one re-publish per kill"
    );
    eprintln!(
        "{} messages for {} events ({twice} re-published after the kill)",
        got.len(),
        expected.len()
    );
    drop(second);
    let url = "postgres://postgres@127.0.0.1:5432/test";
    if let Ok(store) = alm_webhooks::store::PostgresStore::connect_with_schema(url, &schema).await {
        let _ = store.drop_schema().await;
    }
}
