#![allow(missing_docs)]
//! What the `metrics` feature costs the whole pipeline (size check, HMAC,
//! typed parse, the engine on the memory store): the same build (with the
//! feature) measured interleaved, one fresh delivery at a time, without a
//! recorder (the facade's calls do nothing: `metrics::NoopRecorder` set as
//! the local recorder around the timed call) and with a Prometheus recorder
//! (`metrics-exporter-prometheus`, installed as the global recorder, as an
//! application installs it) taking every counter and histogram, as
//! `ratios.rs` does for the baselines: a burst of load falls on both alike,
//! and the medians give the ratio. The recorder's upkeep drains the pushed
//! histogram samples every 256 rounds, outside the timed calls, as
//! `install_prometheus`'s upkeep thread does every few seconds: without it
//! the samples piled up for the whole run, and the memory they took slowed
//! both arms alike, hiding part of the recorder's cost.
//!
//! ```sh
//! cargo bench --features metrics --bench metrics_cost -- 5   # seconds per case (default 3)
//! ```

mod common;

use std::time::{Duration, Instant};

use common::fixed::{Fixed, Ours};
use metrics_exporter_prometheus::PrometheusBuilder;

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
    remembered: usize,
    events: usize,
    measure: Duration,
    upkeep: &dyn Fn(),
) -> (f64, f64, usize) {
    let mut plain = Fixed::<Ours>::new(remembered);
    let mut recorded = Fixed::<Ours>::new(remembered);
    let (mut without, mut with) = (Vec::new(), Vec::new());
    let mut rounds = 0;
    // A second of warm-up, whose times are dropped.
    for (phase, length) in [Duration::from_secs(1), measure].into_iter().enumerate() {
        let end = Instant::now() + length;
        while Instant::now() < end {
            let mut off = || {
                let took = metrics::with_local_recorder(&metrics::NoopRecorder, || {
                    plain.measure(1, events)
                });
                without.push(nanos(took));
            };
            let mut on = || with.push(nanos(recorded.measure(1, events)));
            if rounds % 2 == 0 {
                off();
                on();
            } else {
                on();
                off();
            }
            rounds += 1;
            // Outside the timed calls, as `install_prometheus`'s upkeep
            // thread does every few seconds: drains the pushed samples.
            if rounds % 256 == 0 {
                upkeep();
            }
        }
        if phase == 0 {
            without.clear();
            with.clear();
            rounds = 0;
        }
    }
    (median(&mut without), median(&mut with), rounds)
}

/// What one record costs the global Prometheus recorder (never scraped), in
/// ns: a counter increment and a histogram record on a handle held by the
/// caller (the floor for any caller), then one event's records through this
/// crate (`record_event`, `record_handler`, `record_event_lag`: its cached
/// handles found, then recorded). Each is the median of 20,000 batches of
/// 100 calls, divided by 100 (a median, as the machine is shared).
fn record_costs() -> [f64; 3] {
    const BATCHES: usize = 20_000;
    const CALLS: u32 = 100;
    fn median_per_call(mut one: impl FnMut(u32)) -> f64 {
        let mut batches: Vec<u64> = (0..BATCHES)
            .map(|_| {
                let start = Instant::now();
                for i in 0..CALLS {
                    one(i);
                }
                nanos(start.elapsed())
            })
            .collect();
        median(&mut batches) / f64::from(CALLS)
    }
    {
        let counter = metrics::counter!("alm_bench_probe_total");
        let histogram = metrics::histogram!("alm_bench_probe_seconds");
        let counter_ns = median_per_call(|_| std::hint::black_box(&counter).increment(1));
        let histogram_ns = median_per_call(|i| {
            std::hint::black_box(&histogram).record(f64::from(i) * 1e-6);
        });
        let name = alm_webhooks::EventName::CourseEnrollment;
        let event_ns = median_per_call(|i| {
            let took = Duration::from_nanos(u64::from(i));
            alm_webhooks::metrics::record_event(
                alm_webhooks::Decision::Processed,
                Some(std::hint::black_box(&name)),
            );
            alm_webhooks::metrics::record_handler(&name, took);
            alm_webhooks::metrics::record_event_lag(
                alm_webhooks::EventFamily::Enrollment,
                took.as_secs_f64(),
            );
        });
        [counter_ns, histogram_ns, event_ns]
    }
}

fn main() {
    let seconds = std::env::args()
        .skip(1)
        .find_map(|a| a.parse::<u64>().ok())
        .unwrap_or(3);
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).expect("the only global recorder");
    println!("measurement: {seconds} s per case, interleaved; medians per delivery");
    println!();
    println!("| remembered ids | events | no recorder | Prometheus recorder | cost | rounds |");
    println!("|---|---|---|---|---|---|");
    for remembered in [0usize, 1_000_000] {
        for events in [1usize, 100] {
            let upkeep = || handle.run_upkeep();
            let (without, with, rounds) =
                case(remembered, events, Duration::from_secs(seconds), &upkeep);
            println!(
                "| {remembered} | {events} | {:.2} µs | {:.2} µs | {:+.1} % | {rounds} |",
                without / 1000.0,
                with / 1000.0,
                (with / without - 1.0) * 100.0,
            );
        }
    }
    // The recorder took the pipeline's metrics: a scrape shows them.
    let page = handle.render();
    let events = page
        .lines()
        .filter(|l| l.starts_with("alm_webhooks_events_total{"))
        .count();
    assert!(events > 0, "the recorder saw no event:\n{page}");
    println!();
    println!("recorded series of alm_webhooks_events_total: {events}");
    let [counter, histogram, event] = record_costs();
    println!(
        "one record on a held Prometheus handle: counter {counter:.1} ns, histogram {histogram:.1} ns; \
         one event's three records through alm_webhooks::metrics: {event:.1} ns"
    );
}
