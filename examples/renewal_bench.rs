//! How long renewing many claims takes: `renew_many` (one round trip per
//! chunk of `MANY_CHUNK` claims on PostgreSQL and Redis, one transaction
//! on SQLite) against one `renew` per claim (what `renew_many` cost before
//! it was set-based).
//!
//! ```sh
//! cargo run --all-features --example renewal_bench -- \
//!   'postgres://postgres@127.0.0.1:5432/test?schema=alm_bench&migrate=true' 5000
//! ```
//!
//! Put `../shared/tools/latency-proxy` in front of the database to measure
//! it "across a network" (see `BENCHMARKS.md`).

use std::time::{Duration, Instant, SystemTime};

use alm_webhooks::AccountId;
use alm_webhooks::store::{AnyStore, ClaimOwner, ClaimRequest, DedupKey, Store};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .ok_or("usage: renewal_bench STORE_URL [CLAIMS]")?;
    let claims: usize = args.next().map_or(Ok(5_000), |n| n.parse())?;
    let store = AnyStore::from_url(&url).await?;
    let run = ClaimOwner::random().lease as u32;
    let keys: Vec<DedupKey> = (0..claims)
        .map(|i| DedupKey {
            account_id: AccountId(u64::from(run)),
            event_id: format!("renew-{i}").parse().expect("a valid id"),
        })
        .collect();
    let requests: Vec<ClaimRequest<'_>> = keys
        .iter()
        .map(|key| ClaimRequest { key, state: None })
        .collect();
    let (owner, lease) = (ClaimOwner::random(), Duration::from_secs(120));
    store
        .claim_many(&requests, owner, lease, SystemTime::now())
        .await?;
    let held: Vec<(&DedupKey, ClaimOwner)> = keys.iter().map(|k| (k, owner)).collect();
    // Warm up: a prepared statement, a loaded script.
    store
        .renew_many(&held[..1], lease, SystemTime::now())
        .await?;

    let start = Instant::now();
    let renewed = store.renew_many(&held, lease, SystemTime::now()).await?;
    let set_based = start.elapsed();
    assert!(renewed.iter().all(|r| *r), "every claim renewed");

    let start = Instant::now();
    for (key, owner) in &held {
        assert!(store.renew(key, *owner, lease, SystemTime::now()).await?);
    }
    let one_by_one = start.elapsed();
    for key in &keys {
        store.release(key, owner).await?;
    }
    println!(
        "{claims} claims: renew_many {:.1} ms, one renew each {:.1} ms",
        set_based.as_secs_f64() * 1000.0,
        one_by_one.as_secs_f64() * 1000.0
    );
    Ok(())
}
