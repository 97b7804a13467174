//! How long one bulk delivery takes to decide on each store: ALM's bulk
//! operations send thousands of events in one envelope and wait at most 5 s
//! for the acknowledgement.
//!
//! ```sh
//! cargo run --release --example bulk_delivery --features simulator,postgres,redis -- \
//!     [EVENTS] [STORE_URL ...]
//! ```
//!
//! For each store (default: `memory`), decides one delivery of `EVENTS`
//! (default 1,000) new learner events with a handler that does nothing, then
//! the same delivery again (all duplicates), and prints both times. Every
//! run, and every store of a run, uses new event ids, so a shared store's
//! earlier contents do not matter.
//! `ALM_COMMIT_BATCH=N` commits decisions in batches of N
//! ([`EngineBuilder::commit_batch`](alm_webhooks::engine::EngineBuilder::commit_batch)).

use std::time::{Duration, Instant};

use alm_webhooks::simulator::scenario::{envelope, learner_event};
use alm_webhooks::store::AnyStore;
use alm_webhooks::{Engine, Envelope};

fn delivery(run: u128, events: usize) -> Envelope {
    let events: Vec<_> = (0..events as u64)
        .map(|n| {
            learner_event(
                &format!("bulk-{run}-{n}"),
                "COURSE_ENROLLMENT",
                1_725_600_000,
                n,
                "course:1_2",
            )
        })
        .collect();
    Envelope::from_slice(&envelope(1234, &events)).expect("a valid delivery")
}

async fn decide(engine: &Engine<AnyStore>, envelope: Envelope) -> Duration {
    let started = Instant::now();
    let report = engine
        .process(envelope, |_| async { Ok::<(), String>(()) })
        .await
        .expect("the store answers");
    assert!(report.is_acknowledged());
    started.elapsed()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let events: usize = args
        .next()
        .map(|a| a.parse().expect("EVENTS is a number"))
        .unwrap_or(1_000);
    let mut urls: Vec<String> = args.collect();
    if urls.is_empty() {
        urls.push("memory".to_owned());
    }
    let commit_batch: usize = std::env::var("ALM_COMMIT_BATCH")
        .ok()
        .map(|v| v.parse().expect("ALM_COMMIT_BATCH is a number"))
        .unwrap_or(1);
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    println!("commit batch: {commit_batch}");
    println!("store       events   new delivery (per event)   redelivery (per event)");
    for (index, url) in urls.into_iter().enumerate() {
        let store = match AnyStore::from_url(&url).await {
            Ok(store) => store,
            Err(e) => {
                eprintln!("{url}: {e}");
                std::process::exit(2);
            }
        };
        let scheme = url.split(':').next().unwrap_or("memory").to_owned();
        let engine = Engine::builder(store).commit_batch(commit_batch).build();
        // New ids per store, too: two URLs may name the same database.
        let envelope = delivery(run + index as u128, events);
        let first = decide(&engine, envelope.clone()).await;
        let again = decide(&engine, envelope).await;
        let per = |d: Duration| d.as_secs_f64() * 1e6 / events as f64;
        println!(
            "{scheme:<10} {events:>7}   {:>9.1} ms ({:>7.1} µs)   {:>9.1} ms ({:>7.1} µs)",
            first.as_secs_f64() * 1e3,
            per(first),
            again.as_secs_f64() * 1e3,
            per(again)
        );
    }
}
