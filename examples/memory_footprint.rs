//! Measures the resident memory of `MemoryStore` per remembered event id.
//!
//! `cargo run --release --example memory_footprint -- [COUNT]` (by default
//! 1 000 000 and 10 000 000, each measured in a fresh child process so that
//! memory freed by one run cannot hide the next). Linux only: it reads
//! `/proc/self/statm`.

use alm_webhooks::store::{DedupKey, MemoryStore};
use alm_webhooks::{AccountId, EventId};
use std::time::{Duration, SystemTime};

/// Resident set size in bytes.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn main() {
    let Some(count) = std::env::args().nth(1).and_then(|a| a.parse::<u64>().ok()) else {
        let exe = std::env::current_exe().expect("own path");
        for count in ["1000000", "10000000"] {
            let status = std::process::Command::new(&exe).arg(count).status();
            if !status.is_ok_and(|s| s.success()) {
                eprintln!("measuring {count} ids failed");
            }
        }
        return;
    };
    let until = SystemTime::now() + Duration::from_secs(8 * 24 * 3600);
    let before = resident_bytes().unwrap_or(0);
    let store = MemoryStore::new();
    for n in 0..count {
        // UUID-shaped ids, built one at a time and dropped.
        let event_id: EventId = format!("{n:08x}-0458-4450-b5dd-6bc1edr4560")
            .parse()
            .expect("non-empty id");
        store.remember(
            &DedupKey {
                account_id: AccountId(1234),
                event_id,
            },
            until,
        );
    }
    let after = resident_bytes().unwrap_or(0);
    let grown = after.saturating_sub(before);
    println!(
        "{count:>10} ids: {} remembered, resident +{:.1} MiB, {:.1} bytes per id",
        store.remembered_events(),
        grown as f64 / (1024.0 * 1024.0),
        grown as f64 / count as f64,
    );
}
