#![allow(missing_docs)]
//! Instruction counts per event for the whole pipeline, next to the naive
//! receiver and the floor, for `valgrind --tool=callgrind` (deterministic,
//! unlike wall-clock timings on a shared machine). Each pipeline runs in its
//! own `#[inline(never)]` function so that callgrind can count it alone:
//!
//! ```sh
//! cargo bench --bench instructions --no-run
//! B=$(ls -t target/release/deps/instructions-* | grep -v '\.d$' | head -1)
//! for f in ours naive floor; do
//!   valgrind --tool=callgrind --toggle-collect="instructions::run_$f" \
//!     --callgrind-out-file=/tmp/cg.$f "$B" 2>&1 | grep refs
//! done
//! ```
//! Each function handles 100 deliveries of 100 new events (10,000 events),
//! so the printed `refs` divided by 10,000 is instructions per event.

mod common;

use std::collections::{HashMap, HashSet};
use std::hint::black_box;

use alm_webhooks::auth::SignatureAuth;
use alm_webhooks::{Authentication, Engine, Receiver};
use hmac::{Hmac, Mac};
use http::HeaderMap;
use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::Sha256;

const SECRET: &str = "benchmark-signing-secret";
const DELIVERIES: usize = 100;
const EVENTS: usize = 100;

struct Signed {
    body: Vec<u8>,
    hex: String,
    headers: HeaderMap,
}

fn inputs(offset: usize) -> Vec<Signed> {
    (0..DELIVERIES)
        .map(|d| {
            let body = common::body(offset + d * EVENTS, EVENTS);
            let hex = SignatureAuth::new(SECRET).sign(&body);
            let mut headers = HeaderMap::new();
            headers.insert("x-alm-signature", hex.parse().unwrap());
            Signed { body, hex, headers }
        })
        .collect()
}

fn hmac_ok(body: &[u8], hex: &str) -> bool {
    let tag: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).unwrap())
        .collect();
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    mac.verify_slice(&tag).is_ok()
}

#[inline(never)]
fn run_ours(
    inputs: &[Signed],
    receiver: &Receiver,
    engine: &Engine,
    rt: &tokio::runtime::Runtime,
) -> usize {
    let mut processed = 0;
    for input in inputs {
        let envelope = receiver.receive(&input.headers, &input.body).unwrap();
        let report = rt
            .block_on(engine.process(envelope, |_| async { Ok::<(), String>(()) }))
            .unwrap();
        processed += report.outcomes.len();
    }
    processed
}

#[inline(never)]
fn run_naive(inputs: &[Signed], seen: &mut HashMap<String, ()>) -> usize {
    let mut new = 0;
    for input in inputs {
        assert!(hmac_ok(&input.body, &input.hex));
        let value: serde_json::Value = serde_json::from_slice(&input.body).unwrap();
        for event in value["events"].as_array().unwrap() {
            if seen
                .insert(event["eventId"].as_str().unwrap().to_owned(), ())
                .is_none()
            {
                new += 1;
            }
        }
    }
    new
}

#[derive(Deserialize)]
struct FloorEnvelope<'a> {
    #[serde(rename = "accountId")]
    _account_id: u64,
    #[serde(borrow)]
    events: Vec<FloorEvent<'a>>,
}

#[derive(Deserialize)]
struct FloorEvent<'a> {
    #[serde(rename = "eventId")]
    event_id: &'a str,
    #[serde(rename = "eventName")]
    _event_name: &'a str,
    #[serde(rename = "timestamp")]
    _timestamp: i64,
    #[serde(borrow, rename = "data")]
    _data: &'a RawValue,
}

#[inline(never)]
fn run_floor(inputs: &[Signed], seen: &mut HashSet<u64>) -> usize {
    use std::hash::{BuildHasher, RandomState};
    let state = RandomState::new();
    let mut new = 0;
    for input in inputs {
        assert!(hmac_ok(&input.body, &input.hex));
        let envelope: FloorEnvelope<'_> = serde_json::from_slice(&input.body).unwrap();
        for event in &envelope.events {
            if seen.insert(state.hash_one(event.event_id)) {
                new += 1;
            }
        }
    }
    new
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let receiver = Receiver::new(Authentication::Signature(SignatureAuth::new(SECRET)));
    let engine = Engine::in_memory();
    let (a, b, c) = (inputs(0), inputs(1_000_000), inputs(2_000_000));
    let ours = run_ours(black_box(&a), &receiver, &engine, &rt);
    let naive = run_naive(black_box(&b), &mut HashMap::new());
    let floor = run_floor(black_box(&c), &mut HashSet::new());
    assert_eq!(
        (ours, naive, floor),
        (
            DELIVERIES * EVENTS,
            DELIVERIES * EVENTS,
            DELIVERIES * EVENTS
        )
    );
    println!("events per pipeline: {}", DELIVERIES * EVENTS);
}
