#![allow(missing_docs)]
//! Instruction counts per event for the whole pipeline, next to the naive
//! receiver and the floor, for `valgrind --tool=callgrind` (deterministic,
//! unlike wall-clock timings on a shared machine). Each pipeline runs in its
//! own `#[inline(never)]` function so that callgrind can count it alone:
//!
//! ```sh
//! cargo bench --bench instructions --no-run
//! B=$(ls -t target/release/deps/instructions-* | grep -v '\.d$' | head -1)
//! for f in ours naive typed_floor floor; do
//!   ALM_PIPELINE=$f valgrind --tool=callgrind --toggle-collect="instructions::run_$f" \
//!     --callgrind-out-file=/tmp/cg.$f "$B" 2>&1 | grep refs
//! done
//! ```
//! Each function handles 10,000 new events, by default as 100 deliveries of
//! 100 events; `ALM_EVENTS_PER_DELIVERY=1` (or any divisor of 10,000) changes
//! the split. The printed `refs` divided by 10,000 is instructions per event.
//! The state is the criterion benchmarks' fixed state: by default every
//! delivery meets an empty one; `ALM_REMEMBERED=1000000` prefills one
//! receiver with 1 M ids (outside the counted function) and lets it take all
//! 10,000 events.
//!
//! `ALM_PROJECTION=1` gives our receiver's memory store the learner table
//! (the example receivers' default), which the floors have no part of.
//!
//! `ALM_WARM=1` measures warm receivers instead, as the criterion benchmarks
//! do (`common::fixed::Fixed`): one receiver, which first handles 10
//! deliveries outside the count, then takes every delivery, one counted
//! call each, its state reset outside the count once it has grown by 1 %
//! (at 0 ids: after every delivery; the tables keep their capacity). What
//! a receiver keeps between deliveries (buffers, table capacity) is then
//! warm, as in a running application; without it, at 0 ids, each delivery
//! meets a receiver built for it.

mod common;

use std::hint::black_box;

use common::fixed::{Delivery, Floor, Naive, Ours, Subject, TypedFloor};

/// Events per pipeline, whatever the split into deliveries.
const TOTAL: usize = 10_000;

fn env_usize(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn events_per_delivery() -> usize {
    env_usize("ALM_EVENTS_PER_DELIVERY")
        .filter(|&n| n > 0 && TOTAL % n == 0)
        .unwrap_or(100)
}

/// The receivers one pipeline runs on, and the deliveries it handles. With
/// no remembered ids, every delivery gets a receiver of its own (an empty
/// state, as in the criterion benchmarks); otherwise one receiver, prefilled,
/// takes them all (its state grows by 10,000 ids: 1 % of 1 M).
fn prepare<S: Subject>(remembered: usize, events: usize) -> (Vec<S>, Vec<Delivery>) {
    let deliveries: Vec<Delivery> = (0..TOTAL / events)
        .map(|_| Delivery::fresh(events))
        .collect();
    let receivers = if remembered == 0 {
        deliveries.iter().map(|_| S::prefilled(0)).collect()
    } else {
        vec![S::prefilled(remembered)]
    };
    (receivers, deliveries)
}

/// Handles every delivery, each on its receiver; the events decided.
fn handle_all<S: Subject<Input = Delivery>>(
    receivers: &mut [S],
    deliveries: Vec<Delivery>,
) -> usize {
    let count = receivers.len();
    deliveries
        .into_iter()
        .enumerate()
        .map(|(i, delivery)| receivers[i % count].handle(delivery))
        .sum()
}

#[inline(never)]
fn run_ours(receivers: &mut [Ours], deliveries: Vec<Delivery>) -> usize {
    handle_all(receivers, deliveries)
}

#[inline(never)]
fn run_naive(receivers: &mut [Naive], deliveries: Vec<Delivery>) -> usize {
    handle_all(receivers, deliveries)
}

#[inline(never)]
fn run_typed_floor(receivers: &mut [TypedFloor], deliveries: Vec<Delivery>) -> usize {
    handle_all(receivers, deliveries)
}

#[inline(never)]
fn run_floor(receivers: &mut [Floor], deliveries: Vec<Delivery>) -> usize {
    handle_all(receivers, deliveries)
}

/// Deliveries handled by a warm receiver before the count.
const WARM_UP: usize = 10;

/// [`pipeline`] on one warm receiver (`ALM_WARM=1`): each delivery one
/// counted call of `run`, the receiver's state reset outside the count
/// once it has grown by 1 % of what it remembers.
fn warm_pipeline<S: Subject<Input = Delivery>>(
    run: fn(&mut [S], Vec<Delivery>) -> usize,
    remembered: usize,
    events: usize,
) -> usize {
    let mut receiver = S::prefilled(remembered);
    let slack = (remembered / 100).max(events);
    for _ in 0..WARM_UP {
        assert_eq!(receiver.handle(Delivery::fresh(events)), events);
        receiver.reset();
    }
    let deliveries: Vec<Delivery> = (0..TOTAL / events)
        .map(|_| Delivery::fresh(events))
        .collect();
    let (mut decided, mut grown) = (0, 0);
    for delivery in deliveries {
        if grown + events > slack {
            receiver.reset();
            grown = 0;
        }
        let one = vec![delivery];
        decided += run(std::slice::from_mut(&mut receiver), black_box(one));
        grown += events;
    }
    decided
}

/// Runs pipeline `run` on its own receivers and deliveries, unless
/// `ALM_PIPELINE` names another one (under callgrind, set it to the pipeline
/// counted, so that the other prefills are not run too); the events decided.
fn pipeline<S: Subject<Input = Delivery>>(
    name: &str,
    run: fn(&mut [S], Vec<Delivery>) -> usize,
    remembered: usize,
    events: usize,
) -> Option<usize> {
    if std::env::var("ALM_PIPELINE").is_ok_and(|only| only != name) {
        return None;
    }
    if std::env::var("ALM_WARM").is_ok_and(|warm| warm == "1") {
        return Some(warm_pipeline(run, remembered, events));
    }
    let (mut receivers, deliveries) = prepare::<S>(remembered, events);
    Some(run(&mut receivers, black_box(deliveries)))
}

fn main() {
    let events = events_per_delivery();
    let remembered = env_usize("ALM_REMEMBERED").unwrap_or(0);
    let decided = [
        pipeline::<Ours>("ours", run_ours, remembered, events),
        pipeline::<Naive>("naive", run_naive, remembered, events),
        pipeline::<TypedFloor>("typed_floor", run_typed_floor, remembered, events),
        pipeline::<Floor>("floor", run_floor, remembered, events),
    ];
    assert!(decided.iter().flatten().all(|&n| n == TOTAL), "{decided:?}");
    let warm = std::env::var("ALM_WARM").is_ok_and(|warm| warm == "1");
    println!(
        "events per pipeline: {TOTAL}, {events} per delivery, {remembered} ids remembered, warm: {warm}"
    );
}
