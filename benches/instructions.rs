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
//! Each function handles 10,000 new events, by default as 100 deliveries of
//! 100 events; `ALM_EVENTS_PER_DELIVERY=1` (or any divisor of 10,000) changes
//! the split. The printed `refs` divided by 10,000 is instructions per event.

mod common;

use std::collections::{HashMap, HashSet};
use std::hint::black_box;

use alm_webhooks::auth::SignatureAuth;
use alm_webhooks::{Authentication, Engine, Receiver};
use http::HeaderMap;

use common::SECRET;
/// Events per pipeline, whatever the split into deliveries.
const TOTAL: usize = 10_000;

fn events_per_delivery() -> usize {
    std::env::var("ALM_EVENTS_PER_DELIVERY")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &usize| n > 0 && TOTAL % n == 0)
        .unwrap_or(100)
}

struct Signed {
    body: Vec<u8>,
    hex: String,
    headers: HeaderMap,
}

fn inputs(offset: usize, events: usize) -> Vec<Signed> {
    (0..TOTAL / events)
        .map(|d| {
            let body = common::body(offset + d * events, events);
            let hex = SignatureAuth::new(SECRET).sign(&body);
            let mut headers = HeaderMap::new();
            headers.insert("x-alm-signature", hex.parse().unwrap());
            Signed { body, hex, headers }
        })
        .collect()
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
    inputs
        .iter()
        .map(|i| common::naive(&i.body, &i.hex, seen))
        .sum()
}

#[inline(never)]
fn run_floor(inputs: &[Signed], seen: &mut HashSet<u64>) -> usize {
    inputs
        .iter()
        .map(|i| common::floor(&i.body, &i.hex, seen))
        .sum()
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let receiver = Receiver::new(Authentication::Signature(SignatureAuth::new(SECRET)));
    let engine = Engine::in_memory();
    let events = events_per_delivery();
    let (a, b, c) = (
        inputs(0, events),
        inputs(1_000_000, events),
        inputs(2_000_000, events),
    );
    let ours = run_ours(black_box(&a), &receiver, &engine, &rt);
    let naive = run_naive(black_box(&b), &mut HashMap::new());
    let floor = run_floor(black_box(&c), &mut HashSet::new());
    assert_eq!((ours, naive, floor), (TOTAL, TOTAL, TOTAL));
    println!("events per pipeline: {TOTAL}, {events} per delivery");
}
