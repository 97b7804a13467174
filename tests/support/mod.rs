//! Helpers shared by the engine and store tests.
#![allow(dead_code, unreachable_pub)]

pub mod conformance;
pub mod counting;
pub mod forwarding;
pub mod learners;
#[cfg(feature = "nats")]
pub mod nats_server;
pub mod own;
pub mod process;
#[cfg(feature = "redis")]
pub mod redis_keys;
#[cfg(feature = "redis")]
pub mod services;
pub mod signing;

use alm_webhooks::Decision;
use alm_webhooks::Engine;
use alm_webhooks::Envelope;
use alm_webhooks::store::{ClaimRequest, DedupKey, Store};

/// `count` events of `account`, their ids `{prefix}{n}`.
pub fn numbered_keys(account: u64, prefix: &str, count: usize) -> Vec<DedupKey> {
    (0..count)
        .map(|n| DedupKey {
            account_id: alm_webhooks::AccountId(account),
            event_id: format!("{prefix}{n}").parse().unwrap(),
        })
        .collect()
}

/// A claim of each key with no state to load.
pub fn stateless_claims(keys: &[DedupKey]) -> Vec<ClaimRequest<'_>> {
    keys.iter()
        .map(|key| ClaimRequest { key, state: None })
        .collect()
}

/// The decisions for one delivery, with a handler that always succeeds.
pub async fn decisions<S: Store>(engine: &Engine<S>, envelope: &Envelope) -> Vec<Decision> {
    let report = engine
        .process(envelope.clone(), |_| async { Ok(()) })
        .await
        .unwrap();
    report.outcomes.iter().map(|o| o.decision).collect()
}

/// One learner event in ALM's shape.
pub fn learner(id: &str, name: &str, ts: i64, user: u64, instance: &str) -> String {
    let lo = instance.rsplit_once('_').map_or(instance, |(lo, _)| lo);
    format!(
        r#"{{"eventId":"{id}","eventName":"{name}","timestamp":{ts},"data":{{"userId":{user},"loId":"{lo}","loInstanceId":"{instance}","progressPercent":50}}}}"#
    )
}

/// A learning-object event.
pub fn lo(id: &str, name: &str, ts: i64, lo_id: &str) -> String {
    format!(
        r#"{{"eventId":"{id}","eventName":"{name}","timestamp":{ts},"data":{{"loId":"{lo_id}","loType":"course"}}}}"#
    )
}

/// An instance event.
pub fn instance(id: &str, name: &str, ts: i64, instance: &str) -> String {
    let lo = instance.rsplit_once('_').map_or(instance, |(lo, _)| lo);
    format!(
        r#"{{"eventId":"{id}","eventName":"{name}","timestamp":{ts},"data":{{"loInstanceId":"{instance}","loId":"{lo}","enrollmentCount":1}}}}"#
    )
}

/// An unknown event.
pub fn unknown(id: &str, ts: i64) -> String {
    format!(
        r#"{{"eventId":"{id}","eventName":"SOMETHING_NEW","timestamp":{ts},"data":{{"status":"SUCCESS"}}}}"#
    )
}

/// An envelope of these events.
pub fn envelope(account: u64, events: &[String]) -> Envelope {
    let body = format!(
        r#"{{"accountId":{account},"events":[{}]}}"#,
        events.join(",")
    );
    Envelope::from_str(&body).expect("test envelope parses")
}
