//! Bodies and baselines shared by the benchmarks.

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::sync::LazyLock;

use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::Sha256;

pub(crate) mod fixed;

/// The HMAC secret every benchmark signs with.
pub(crate) const SECRET: &str = "benchmark-signing-secret";

/// One event in ALM's shape, about 330 bytes.
pub(crate) fn event(n: usize) -> String {
    format!(
        r#"{{"eventId":"29123ec1-4576-4ec5-a057-{n:012}","eventName":"COURSE_ENROLLMENT","timestamp":1725524713,"eventInfo":"1725524713000-040366-10488-0","data":{{"userId":{user},"loId":"course:1234567","loInstanceId":"course:1234567_1234567","loType":"course","enrollmentSource":"SELF_ENROLL","dateEnrolled":1725524713}}}}"#,
        user = 1_000_000 + n
    )
}

/// An envelope of `count` events, ids starting at `first`.
pub(crate) fn body(first: usize, count: usize) -> Vec<u8> {
    let events: Vec<String> = (first..first + count).map(event).collect();
    format!(r#"{{"accountId":1234,"events":[{}]}}"#, events.join(",")).into_bytes()
}

/// A hand-written HMAC-SHA256 check of a hex signature, as receivers
/// usually write it.
pub(crate) fn hmac_hex_ok(body: &[u8], signature_hex: &str) -> bool {
    let Ok(tag) = (0..signature_hex.len() / 2)
        .map(|i| u8::from_str_radix(&signature_hex[i * 2..i * 2 + 2], 16))
        .collect::<Result<Vec<u8>, _>>()
    else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("any key");
    mac.update(body);
    mac.verify_slice(&tag).is_ok()
}

/// Baseline 1, how receivers are usually written: verify, parse into
/// `serde_json::Value`, remember ids in a `HashMap<String, _>`.
pub(crate) fn naive(body: &[u8], signature: &str, seen: &mut HashMap<String, ()>) -> usize {
    assert!(hmac_hex_ok(body, signature));
    let value: serde_json::Value = serde_json::from_slice(body).expect("valid JSON");
    let mut new = 0;
    for event in value["events"].as_array().expect("events") {
        let id = event["eventId"].as_str().expect("an id").to_owned();
        if seen.insert(id, ()).is_none() {
            new += 1;
        }
    }
    new
}

/// The floor's view of an envelope: event headers, `data` left raw.
#[derive(Deserialize)]
pub(crate) struct FloorEnvelope<'a> {
    #[serde(rename = "accountId")]
    _account_id: u64,
    #[serde(borrow)]
    pub(crate) events: Vec<FloorEvent<'a>>,
}

/// One event's headers, borrowed.
#[derive(Deserialize)]
pub(crate) struct FloorEvent<'a> {
    #[serde(rename = "eventId")]
    pub(crate) event_id: &'a str,
    #[serde(rename = "eventName")]
    _event_name: &'a str,
    #[serde(rename = "timestamp")]
    _timestamp: i64,
    #[serde(borrow, rename = "data")]
    _data: &'a RawValue,
}

/// The floors' id hash: one keyed hasher for the process.
pub(crate) fn hash_id(id: &str) -> u64 {
    static STATE: LazyLock<RandomState> = LazyLock::new(RandomState::new);
    STATE.hash_one(id)
}

/// The floors' HMAC check: the key prepared once (as this crate does),
/// cloned per request.
pub(crate) fn prepared_hmac_hex_ok(body: &[u8], signature_hex: &str) -> bool {
    static KEY: LazyLock<Hmac<Sha256>> =
        LazyLock::new(|| Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("any key"));
    let mut tag = [0u8; 32];
    if signature_hex.len() != 64 {
        return false;
    }
    for (i, byte) in tag.iter_mut().enumerate() {
        match u8::from_str_radix(&signature_hex[i * 2..i * 2 + 2], 16) {
            Ok(b) => *byte = b,
            Err(_) => return false,
        }
    }
    let mut mac = KEY.clone();
    mac.update(body);
    mac.verify_slice(&tag).is_ok()
}

/// Baseline 2, what no receiver can beat: the HMAC, the event headers, and a
/// set of hashed ids.
pub(crate) fn floor(body: &[u8], signature: &str, seen: &mut HashSet<u64>) -> usize {
    assert!(prepared_hmac_hex_ok(body, signature));
    let envelope: FloorEnvelope<'_> = serde_json::from_slice(body).expect("valid JSON");
    let mut new = 0;
    for event in &envelope.events {
        if seen.insert(hash_id(event.event_id)) {
            new += 1;
        }
    }
    new
}

/// The typed floor's view of one event: the headers typed by the crate's own
/// id, name and time types (serde derive), `data` borrowed until its event
/// name says which of the crate's data types it is.
#[derive(Deserialize)]
pub(crate) struct TypedFloorEvent<'a> {
    #[serde(rename = "eventId")]
    pub(crate) event_id: alm_webhooks::EventId,
    #[serde(rename = "eventName")]
    event_name: alm_webhooks::EventName,
    #[serde(rename = "timestamp")]
    _timestamp: alm_webhooks::Timestamp,
    #[serde(borrow, rename = "data")]
    data: &'a RawValue,
}

/// The typed floor's envelope.
#[derive(Deserialize)]
pub(crate) struct TypedFloorEnvelope<'a> {
    #[serde(rename = "accountId")]
    _account_id: alm_webhooks::AccountId,
    #[serde(borrow)]
    pub(crate) events: Vec<TypedFloorEvent<'a>>,
}

/// `data` typed by serde derive into the crate's data type for its family
/// (unknown families stay raw); the count of typed fields read, so that
/// nothing is optimised away.
fn typed_data(event: &TypedFloorEvent<'_>) -> usize {
    use alm_webhooks::EventFamily as F;
    use alm_webhooks::event as e;
    let json = event.data.get();
    let typed =
        match event.event_name.family() {
            F::Enrollment | F::CompletionRollback => {
                serde_json::from_str::<e::Enrollment>(json).map(|d| d.user_id.get() as usize)
            }
            F::Unenrollment => {
                serde_json::from_str::<e::Unenrollment>(json).map(|d| d.user_id.get() as usize)
            }
            F::Completion => {
                serde_json::from_str::<e::Completion>(json).map(|d| d.user_id.get() as usize)
            }
            F::LearnerProgress => {
                serde_json::from_str::<e::LearnerProgress>(json).map(|d| d.user_id.get() as usize)
            }
            F::LearningObject => serde_json::from_str::<e::LearningObjectChange>(json)
                .map(|d| d.lo_id.as_str().len()),
            F::LearningObjectInstance => serde_json::from_str::<e::InstanceChange>(json)
                .map(|d| d.lo_instance_id.as_str().len()),
            F::InstanceStats => serde_json::from_str::<e::InstanceStats>(json)
                .map(|d| d.lo_instance_id.as_str().len()),
            _ => Ok(json.len()),
        };
    typed.expect("typed data")
}

/// Baseline 3, the least any receiver that types ALM's data can do: the
/// HMAC, every event typed into the crate's own types (serde derive), and a
/// set of hashed ids; no ordering rules, no claims, no state.
pub(crate) fn typed_floor(body: &[u8], signature: &str, seen: &mut HashSet<u64>) -> usize {
    assert!(prepared_hmac_hex_ok(body, signature));
    let envelope: TypedFloorEnvelope<'_> = serde_json::from_slice(body).expect("valid JSON");
    let mut new = 0;
    for event in &envelope.events {
        std::hint::black_box(typed_data(event));
        if seen.insert(hash_id(event.event_id.as_str())) {
            new += 1;
        }
    }
    new
}
