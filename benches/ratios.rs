#![allow(missing_docs)]
//! The pipeline's ratios to the baselines, measured interleaved so that they
//! hold on a busy machine: each round hands one fresh delivery to each
//! receiver in turn (ours, naive, typed floor, floor; the order rotates every
//! round; our engine alone, on an envelope parsed outside the timer, is a
//! fifth), each on its fixed-size state (`common::fixed`), and keeps every
//! delivery's time. A burst of load then falls on all four alike, and the
//! medians, robust to the odd preempted delivery, give the ratios.
//!
//! ```sh
//! cargo bench --bench ratios -- 3      # seconds of measurement per case (default 3)
//! cargo bench --bench ratios -- 10
//! ALM_BENCH_LARGE=1 cargo bench --bench ratios   # adds 10 M remembered ids
//! ```
//!
//! Prints one Markdown table row per case (remembered ids, events per
//! delivery): the median time per delivery of each receiver and the ratios.

mod common;

use std::time::{Duration, Instant};

use common::fixed::{EngineOnly, Fixed, Floor, Naive, Ours, Subject, TypedFloor};

/// One receiver's fixed state and its delivery times, in nanoseconds.
trait Measured {
    fn once(&mut self, events: usize);
    fn times(&mut self) -> &mut Vec<u64>;
}

struct Timed<S> {
    fixed: Fixed<S>,
    times: Vec<u64>,
}

impl<S: Subject> Measured for Timed<S> {
    fn once(&mut self, events: usize) {
        let took = self.fixed.measure(1, events);
        self.times
            .push(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
    }

    fn times(&mut self) -> &mut Vec<u64> {
        &mut self.times
    }
}

fn timed<S: Subject + 'static>(remembered: usize) -> Box<dyn Measured> {
    Box::new(Timed {
        fixed: Fixed::<S>::new(remembered),
        times: Vec::new(),
    })
}

fn median(times: &mut [u64]) -> f64 {
    times.sort_unstable();
    times[times.len() / 2] as f64
}

/// Runs one case; returns the medians (ns) of ours, naive, typed floor,
/// floor and our engine alone, and the number of rounds.
fn case(remembered: usize, events: usize, measure: Duration) -> ([f64; 5], usize) {
    let mut receivers = [
        timed::<Ours>(remembered),
        timed::<Naive>(remembered),
        timed::<TypedFloor>(remembered),
        timed::<Floor>(remembered),
        timed::<EngineOnly>(remembered),
    ];
    let mut rounds = 0;
    // A second of warm-up, whose times are dropped.
    for (phase, length) in [Duration::from_secs(1), measure].into_iter().enumerate() {
        let end = Instant::now() + length;
        while Instant::now() < end {
            for k in 0..receivers.len() {
                receivers[(rounds + k) % receivers.len()].once(events);
            }
            rounds += 1;
        }
        if phase == 0 {
            receivers.iter_mut().for_each(|r| r.times().clear());
            rounds = 0;
        }
    }
    (receivers.each_mut().map(|r| median(r.times())), rounds)
}

fn main() {
    let seconds = std::env::args()
        .skip(1)
        .find_map(|a| a.parse::<u64>().ok())
        .unwrap_or(3);
    let mut sizes = vec![0usize, 1_000_000];
    if std::env::var_os("ALM_BENCH_LARGE").is_some() {
        sizes.push(10_000_000);
    }
    println!("measurement: {seconds} s per case, interleaved; medians per delivery");
    println!();
    println!(
        "| remembered ids | events | ours | of which the engine | naive | typed floor | floor | naive ÷ ours | ours ÷ typed floor | ours ÷ floor | rounds |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for remembered in sizes {
        for events in [1usize, 100] {
            let ([ours, naive, typed, floor, engine], rounds) =
                case(remembered, events, Duration::from_secs(seconds));
            let us = |ns: f64| format!("{:.2} µs", ns / 1000.0);
            println!(
                "| {remembered} | {events} | {} | {} | {} | {} | {} | {:.2}× | {:.2}× | {:.2}× | {rounds} |",
                us(ours),
                us(engine),
                us(naive),
                us(typed),
                us(floor),
                naive / ours,
                ours / typed,
                ours / floor,
            );
        }
    }
}
