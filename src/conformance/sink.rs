//! The contract every [`Sink`] keeps, as checks to run against your own
//! (feature `sink-conformance`): the crate runs them against NATS
//! JetStream, RabbitMQ and Kafka (tansu, a Kafka-compatible broker).
//!
//! Each check takes a [`Fixture`]: the sink, and a way to read back what
//! reached the broker since the fixture was made (a consumer of your own).
//! Each check panics on the first broken promise, naming it.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use std::sync::{Arc, Mutex};
//! use alm_webhooks::conformance::sink::{self, Fixture, Received};
//! use alm_webhooks::outbox::{Sink, SinkError, headers};
//! use alm_webhooks::store::OutboxEntry;
//!
//! /// A broker in memory.
//! #[derive(Debug, Default, Clone)]
//! struct Memory(Arc<Mutex<Vec<Received>>>);
//! impl Sink for Memory {
//!     async fn publish(&self, entries: &[OutboxEntry]) -> Result<(), SinkError> {
//!         let mut kept = self.0.lock().unwrap();
//!         for e in entries {
//!             let headers = headers(e).into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
//!             kept.push(Received { headers, body: e.body.clone(), stable_id: Some(e.message_id()) });
//!         }
//!         Ok(())
//!     }
//! }
//!
//! let broker = Memory::default();
//! let read = broker.clone();
//! let fixture = Fixture::new(broker, move || {
//!     let read = read.clone();
//!     async move { read.0.lock().unwrap().clone() }
//! });
//! sink::check_all(&fixture).await;
//! # }
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use crate::Envelope;
use crate::outbox::Sink;
use crate::store::OutboxEntry;

/// A message as read back from the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Its headers (name, value), as the broker gives them.
    pub headers: Vec<(String, String)>,
    /// Its body.
    pub body: Vec<u8>,
    /// The stable id the broker kept (`Nats-Msg-Id`, `message_id`), if any.
    pub stable_id: Option<String>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

type Reader = Box<dyn Fn() -> Pin<Box<dyn Future<Output = Vec<Received>> + Send>> + Send + Sync>;

/// A sink under test and a reader of what reached its broker.
pub struct Fixture<S> {
    /// The sink.
    pub sink: S,
    read: Reader,
    /// Makes the checks' event ids unique to this fixture.
    tag: String,
}

impl<S> std::fmt::Debug for Fixture<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fixture")
            .field("tag", &self.tag)
            .finish_non_exhaustive()
    }
}

impl<S: Sink> Fixture<S> {
    /// A fixture: `read` returns every message the broker got since the
    /// fixture was made, in the order it stored them.
    pub fn new<F, Fut>(sink: S, read: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<Received>> + Send + 'static,
    {
        let mut id = [0u8; 4];
        let _ = getrandom::fill(&mut id);
        Self {
            sink,
            read: Box::new(move || Box::pin(read())),
            tag: base16ct::lower::encode_string(&id),
        }
    }

    async fn received(&self) -> Vec<Received> {
        (self.read)().await
    }

    /// `count` entries of `account`, numbered from 1, with the given name.
    fn entries(&self, check: &str, account: u64, count: usize) -> Vec<OutboxEntry> {
        let tag = &self.tag;
        let events: Vec<String> = (0..count)
            .map(|i| {
                format!(
                    r#"{{"eventId":"{check}-{tag}-{account}-{i}","eventName":"COURSE_ENROLLMENT","timestamp":1725604147000,"data":{{"userId":{i},"loId":"course:1","loInstanceId":"course:1_1","loType":"course","x-new":[1,{{"k":"v"}}]}}}}"#
                )
            })
            .collect();
        let body = format!(
            r#"{{"accountId":{account},"events":[{}]}}"#,
            events.join(",")
        );
        let envelope = Envelope::from_slice(body.as_bytes()).expect("a valid envelope");
        envelope
            .parsed()
            .enumerate()
            .map(|(i, event)| {
                let mut entry = OutboxEntry::of(event).expect("serializes");
                entry.seq = i as u64 + 1;
                entry
            })
            .collect()
    }
}

/// Runs every check.
pub async fn check_all<S: Sink>(fixture: &Fixture<S>) {
    every_entry_arrives_in_order_with_its_headers(fixture).await;
    a_republish_is_accepted(fixture).await;
    an_empty_publish_is_acknowledged(fixture).await;
}

/// What arrived of `entries`: per account, event ids in arrival order
/// (first copies), and each message's checks.
fn arrived(received: &[Received], entries: &[OutboxEntry]) -> BTreeMap<u64, Vec<String>> {
    let mut out: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for m in received {
        let Some(id) = m.header("alm-event-id") else {
            panic!("a message without alm-event-id: {m:?}")
        };
        let Some(entry) = entries.iter().find(|e| e.event_id.as_str() == id) else {
            continue;
        };
        let account = entry.account_id.get();
        assert_eq!(
            m.header("alm-account-id"),
            Some(account.to_string().as_str()),
            "alm-account-id"
        );
        assert_eq!(
            m.header("alm-event-name"),
            Some(entry.event_name.as_str()),
            "alm-event-name"
        );
        assert_eq!(
            m.header("alm-timestamp"),
            Some("2024-09-06T06:29:07.000Z"),
            "alm-timestamp in RFC 3339"
        );
        assert_eq!(
            m.header("content-type"),
            Some("application/json"),
            "content-type"
        );
        assert_eq!(m.body, entry.body, "the body is the event's JSON as sent");
        if let Some(stable) = &m.stable_id {
            assert_eq!(stable, &entry.message_id(), "the stable id");
        }
        let ids = out.entry(account).or_default();
        if !ids.iter().any(|i| i == id) {
            ids.push(id.to_owned());
        }
    }
    out
}

fn expected(entries: &[OutboxEntry]) -> BTreeMap<u64, Vec<String>> {
    let mut out: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for e in entries {
        out.entry(e.account_id.get())
            .or_default()
            .push(e.event_id.to_string());
    }
    out
}

/// Each account's entries, published in one call each, all arrive, in
/// order, with the headers, the body as sent and the stable id.
pub async fn every_entry_arrives_in_order_with_its_headers<S: Sink>(fixture: &Fixture<S>) {
    let a = fixture.entries("order", 71, 20);
    let b = fixture.entries("order", 72, 3);
    fixture
        .sink
        .publish(&a)
        .await
        .expect("publish acknowledged");
    fixture
        .sink
        .publish(&b)
        .await
        .expect("publish acknowledged");
    let all = [a, b].concat();
    let got = arrived(&fixture.received().await, &all);
    assert_eq!(got, expected(&all), "every entry, in each account's order");
}

/// Publishing the same entries again is acknowledged (a relay that died
/// after the ack does it); what arrives, taken once per event, is the same.
pub async fn a_republish_is_accepted<S: Sink>(fixture: &Fixture<S>) {
    let entries = fixture.entries("again", 73, 5);
    fixture
        .sink
        .publish(&entries)
        .await
        .expect("publish acknowledged");
    fixture
        .sink
        .publish(&entries)
        .await
        .expect("a re-publish acknowledged");
    let got = arrived(&fixture.received().await, &entries);
    assert_eq!(
        got,
        expected(&entries),
        "each event arrives (once per consumer's dedup)"
    );
}

/// An empty publish is acknowledged at once.
pub async fn an_empty_publish_is_acknowledged<S: Sink>(fixture: &Fixture<S>) {
    fixture
        .sink
        .publish(&[])
        .await
        .expect("an empty publish is acknowledged");
}
