//! `ALM_FORWARD` through the example receiver (axum, on PostgreSQL, inbox
//! mode, its defaults otherwise): the receiver is killed with `kill -9`
//! while its relay forwards to NATS JetStream, started again, and ALM's
//! deliveries go on (with repeats of deliveries already answered). Every
//! processed event reaches the stream, and the stream holds none twice.
//! A second test stops the broker (a `nats-server` of its own) under the
//! receiver: ALM's deliveries still get their `202`, `/readyz` stays 200,
//! the outbox holds what the relay cannot hand over (its gauge shows it),
//! and everything arrives, once, when the broker is back.
//! Without PostgreSQL or NATS the tests are skipped, except under `CI=true`,
//! where they fail. Build the example first (`cargo test --all-features`
//! does).
#![cfg(all(
    feature = "nats",
    feature = "postgres",
    feature = "axum",
    feature = "env"
))]

mod support;

use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use support::forwarding::receiver_env;
use support::nats_server::OwnServer;
use support::own::{delivery, reachable, unique};
use support::process::{self, prometheus_sample, request_to, signed_post};

/// The events of `stream` (on the server at `addr`), once `count` are
/// there (or after two minutes), and a little longer for a late re-publish
/// to show if there were one; fails on any event or message id twice.
async fn forwarded(
    addr: &str,
    stream: &str,
    count: usize,
) -> (jetstream::Context, BTreeSet<String>) {
    let client = async_nats::connect(addr).await.unwrap();
    let js = jetstream::new(client);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut info = loop {
        if let Ok(mut s) = js.get_stream(stream).await {
            let state = s.info().await.unwrap().state.clone();
            if state.messages >= count as u64 || Instant::now() > deadline {
                break s;
            }
        }
        assert!(Instant::now() < deadline, "the stream was not created");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let state = info.info().await.unwrap().state.clone();
    let mut got = BTreeSet::new();
    let mut msg_ids = HashSet::new();
    for seq in state.first_sequence..=state.last_sequence {
        let m = info.get_raw_message(seq).await.unwrap();
        let event = m.headers.get("alm-event-id").unwrap().as_str().to_owned();
        let msg_id = m
            .headers
            .get(async_nats::header::NATS_MESSAGE_ID)
            .unwrap()
            .as_str()
            .to_owned();
        assert!(msg_ids.insert(msg_id), "{event} twice in the stream");
        assert!(got.insert(event.clone()), "{event} twice in the stream");
    }
    (js, got)
}

async fn drop_schema(schema: &str) {
    let url = "postgres://postgres@127.0.0.1:5432/test";
    if let Ok(store) = alm_webhooks::store::PostgresStore::connect_with_schema(url, schema).await {
        let _ = store.drop_schema().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_forwarding_loses_nothing_and_duplicates_nothing() {
    if !reachable("127.0.0.1:5432", "PostgreSQL") || !reachable("127.0.0.1:4222", "NATS") {
        return;
    }
    let id = unique();
    let schema = format!("alm_fwd_{id}");
    let store = format!("postgres://postgres@127.0.0.1:5432/test?schema={schema}&migrate=true");
    let stream = format!("ALMFWD_{id}");
    let forward = format!("nats://127.0.0.1:4222/almfwd{id}?stream={stream}");
    let env = receiver_env(&store, &forward);
    let mut sent: Vec<(Vec<u8>, Vec<String>)> = Vec::new();
    let mut expected: BTreeSet<String> = BTreeSet::new();
    {
        let first = process::start("axum_receiver", &env);
        for n in 0..60 {
            for account in 1..=3 {
                let (body, ids) = delivery(account, n, 10);
                assert_eq!(signed_post(first.addr, &body).0, 202);
                expected.extend(ids.iter().cloned());
                sent.push((body, ids));
            }
        }
        // Killed (SIGKILL) with deliveries in the inbox and entries in
        // the outbox: the relay is forwarding.
        drop(first);
        let client = async_nats::connect("127.0.0.1:4222").await.unwrap();
        let at_kill = match jetstream::new(client).get_stream(&stream).await {
            Ok(mut s) => s.info().await.unwrap().state.messages,
            Err(_) => 0,
        };
        eprintln!(
            "{at_kill} of {} events forwarded when the receiver was killed",
            expected.len()
        );
    }
    let second = process::start("axum_receiver", &env);
    // ALM goes on, and repeats some deliveries it got 202 for.
    for (body, _) in sent.iter().step_by(7) {
        assert_eq!(signed_post(second.addr, body).0, 202);
    }
    for n in 60..80 {
        for account in 1..=3 {
            let (body, ids) = delivery(account, n, 10);
            assert_eq!(signed_post(second.addr, &body).0, 202);
            expected.extend(ids);
        }
    }

    let (js, got) = forwarded("127.0.0.1:4222", &stream, expected.len()).await;
    assert_eq!(got, expected, "0 duplicates, nothing lost");
    drop(second);
    let _ = js.delete_stream(&stream).await;
    drop_schema(&schema).await;
}

/// The outbox's pending entries, as the receiver's `/metrics` shows them.
fn pending(addr: std::net::SocketAddr) -> Option<f64> {
    let (status, page) = request_to(addr, "GET", "/metrics", &[], b"");
    assert_eq!(status, 200, "/metrics");
    prometheus_sample(&page, "alm_webhooks_outbox_pending", &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_outage_holds_the_outbox_and_leaves_the_202s_and_readyz_alone() {
    if !reachable("127.0.0.1:5432", "PostgreSQL") {
        return;
    }
    let Some(mut broker) = OwnServer::start() else {
        return;
    };
    let id = unique();
    let schema = format!("alm_out_{id}");
    let store = format!("postgres://postgres@127.0.0.1:5432/test?schema={schema}&migrate=true");
    let stream = format!("ALMOUT_{id}");
    let forward = format!("nats://{}/almout{id}?stream={stream}", broker.addr());
    let env = [
        ("ALM_MODE", "inbox"),
        ("ALM_STORE", store.as_str()),
        ("ALM_INBOX", store.as_str()),
        ("ALM_FORWARD", forward.as_str()),
    ];
    let receiver = process::start("axum_receiver", &env);
    let mut expected: BTreeSet<String> = BTreeSet::new();
    let mut send = |rounds: std::ops::Range<usize>| {
        for n in rounds {
            for account in 1..=3 {
                let (body, ids) = delivery(account, n, 10);
                assert_eq!(signed_post(receiver.addr, &body).0, 202, "a 202");
                expected.extend(ids);
            }
        }
    };
    send(0..5);
    let (_, before) = forwarded(&broker.addr(), &stream, 150).await;
    assert_eq!(before.len(), 150, "forwarded while the broker is up");

    broker.kill();
    send(5..25);
    let (status, body) = request_to(receiver.addr, "GET", "/readyz", &[], b"");
    assert_eq!(status, 200, "/readyz with the broker down: {body}");
    // The relay sets the gauge every 2 s: the held entries show.
    let deadline = Instant::now() + Duration::from_secs(30);
    while pending(receiver.addr).unwrap_or(0.0) < 1.0 {
        assert!(
            Instant::now() < deadline,
            "the outbox's backlog never showed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, _) = request_to(receiver.addr, "GET", "/readyz", &[], b"");
    assert_eq!(status, 200, "/readyz while the outbox holds entries");

    assert!(broker.spawn(), "nats-server starts again");
    let (js, got) = forwarded(&broker.addr(), &stream, expected.len()).await;
    assert_eq!(got, expected, "nothing lost, nothing twice");
    let deadline = Instant::now() + Duration::from_secs(30);
    while pending(receiver.addr) != Some(0.0) {
        assert!(
            Instant::now() < deadline,
            "the outbox's gauge never went back to 0"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(receiver);
    let _ = js.delete_stream(&stream).await;
    drop_schema(&schema).await;
}
