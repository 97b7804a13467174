#![allow(missing_docs)]
//! What the `metrics` feature costs the whole pipeline (size check, HMAC,
//! typed parse, the engine on the memory store): the same build (with the
//! feature) measured interleaved, one fresh delivery at a time, without a
//! recorder (the facade's calls do nothing) and with a Prometheus recorder
//! (`metrics-exporter-prometheus`) taking every counter and histogram, as
//! `ratios.rs` does for the baselines: a burst of load falls on both alike,
//! and the medians give the ratio.
//!
//! ```sh
//! cargo bench --features metrics --bench metrics_cost -- 5   # seconds per case (default 3)
//! ```

mod common;

use std::time::{Duration, Instant};

use common::fixed::{Fixed, Ours};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};

fn nanos(took: Duration) -> u64 {
    u64::try_from(took.as_nanos()).unwrap_or(u64::MAX)
}

fn median(times: &mut [u64]) -> f64 {
    times.sort_unstable();
    times[times.len() / 2] as f64
}

/// Runs one case; returns the medians (ns) without and with the recorder,
/// and the number of rounds.
fn case(
    recorder: &PrometheusRecorder,
    remembered: usize,
    events: usize,
    measure: Duration,
) -> (f64, f64, usize) {
    let mut plain = Fixed::<Ours>::new(remembered);
    let mut recorded = Fixed::<Ours>::new(remembered);
    let (mut without, mut with) = (Vec::new(), Vec::new());
    let mut rounds = 0;
    // A second of warm-up, whose times are dropped.
    for (phase, length) in [Duration::from_secs(1), measure].into_iter().enumerate() {
        let end = Instant::now() + length;
        while Instant::now() < end {
            let mut off = || without.push(nanos(plain.measure(1, events)));
            let mut on = || {
                let took = metrics::with_local_recorder(recorder, || recorded.measure(1, events));
                with.push(nanos(took));
            };
            if rounds % 2 == 0 {
                off();
                on();
            } else {
                on();
                off();
            }
            rounds += 1;
        }
        if phase == 0 {
            without.clear();
            with.clear();
            rounds = 0;
        }
    }
    (median(&mut without), median(&mut with), rounds)
}

fn main() {
    let seconds = std::env::args()
        .skip(1)
        .find_map(|a| a.parse::<u64>().ok())
        .unwrap_or(3);
    let recorder = PrometheusBuilder::new().build_recorder();
    println!("measurement: {seconds} s per case, interleaved; medians per delivery");
    println!();
    println!("| remembered ids | events | no recorder | Prometheus recorder | cost | rounds |");
    println!("|---|---|---|---|---|---|");
    for remembered in [0usize, 1_000_000] {
        for events in [1usize, 100] {
            let (without, with, rounds) =
                case(&recorder, remembered, events, Duration::from_secs(seconds));
            println!(
                "| {remembered} | {events} | {:.2} µs | {:.2} µs | {:+.1} % | {rounds} |",
                without / 1000.0,
                with / 1000.0,
                (with / without - 1.0) * 100.0,
            );
        }
    }
    // The recorder took the pipeline's metrics: a scrape shows them.
    let page = recorder.handle().render();
    let events = page
        .lines()
        .filter(|l| l.starts_with("alm_webhooks_events_total{"))
        .count();
    assert!(events > 0, "the recorder saw no event:\n{page}");
    println!();
    println!("recorded series of alm_webhooks_events_total: {events}");
}
