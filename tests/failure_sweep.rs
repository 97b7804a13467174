//! The failure sweep (`examples/failure_sweep.rs`) at a small size: every
//! durable backend under every fault that applies to it, and every
//! invariant held (nothing lost, no account stalled, no order violation,
//! no handler run beyond one except for a process that died).
#![cfg(all(
    feature = "simulator",
    feature = "postgres",
    feature = "redis",
    feature = "sqlite",
    feature = "axum"
))]

mod support;

use std::process::Command;

use support::services::reachable;

#[test]
#[ignore = "fails on today's main, see the comment above the test"]
// What fails today (2,000 events per backend, `failure_sweep --events 2000`):
// - handler-hang, every backend: the lease of the hanging delivery is renewed
//   for ever, its account stalls (issue 22, sequence 1: no handler timeout);
// - handler-abort, every backend: attempts are counted only by
//   `retry_later`, so the aborting delivery is taken again after every
//   restart and its account stalls (sequence 2);
// - pg-terminate and the other store faults: see changes/sweep.md for the
//   table measured on the branch, with the runs that broke an invariant.
// The coordinator un-ignores it once the fixes of issue 22 are merged.
fn failure_sweep_holds_every_invariant() {
    let postgres = std::env::var("ALM_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let ci = std::env::var("CI").as_deref() == Ok("true");
    if !reachable(&postgres, 5432) {
        assert!(
            !ci,
            "PostgreSQL is not reachable at {postgres}; CI needs it"
        );
        eprintln!("skipped: PostgreSQL is not reachable at {postgres} (the sweep's ledger)");
        return;
    }
    let has_redis = Command::new("redis-server")
        .arg("--version")
        .output()
        .is_ok();
    if !has_redis {
        assert!(!ci, "redis-server is not installed; CI needs it");
        eprintln!("skipped: redis-server is not installed (the sweep starts its own)");
        return;
    }
    let output = Command::new(support::process::example("failure_sweep"))
        .args([
            "--events",
            "2000",
            "--seconds",
            "2",
            "--postgres",
            &postgres,
        ])
        .output()
        .expect("the sweep runs");
    let table = String::from_utf8_lossy(&output.stdout);
    let log = String::from_utf8_lossy(&output.stderr);
    let tail: String = {
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    };
    assert!(
        output.status.success(),
        "the sweep broke an invariant:\n{table}\nits log ends with:\n{tail}"
    );
    // Every backend ran under every fault that applies to it.
    let rows: Vec<&str> = table
        .lines()
        .filter(|l| l.starts_with("| "))
        .skip(1)
        .collect();
    assert_eq!(rows.len(), 5 + 9 + 9, "one row per run:\n{table}");
    for row in rows {
        assert!(
            row.ends_with("| ok |"),
            "a run did not hold: {row}\n{table}"
        );
    }
}
