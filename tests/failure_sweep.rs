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
#[ignore = "two invariants still break (see the comment above the test); run with --ignored"]
// State after issue 22's merges (one owner, attempts counted at take,
// handler timeout, supervision, bounded I/O, one event at a time after a
// crash), `failure_sweep --events 2000`, 23 runs: nothing lost, no order
// violation, no account stalled, every hang, panic, store cut, black hole,
// PostgreSQL termination, Redis restart and clock skew holds. What still
// breaks an invariant (RELIABILITY.md has the table):
// - kill (SQLite, PostgreSQL): 6 extra handler runs for 5 deaths. A
//   receiver runs 4 workers and commits a delivery's decisions after its
//   chunk's handlers ran, so one kill -9 can cost one repeated run per
//   handler that ran uncommitted, in every worker; "at most one per kill"
//   holds only for one worker committing each event alone.
// - handler-abort (Redis, 1 event in one run): a process that aborts takes
//   down every delivery its 4 workers held, so a delivery beside the
//   aborting one can run out its attempts on deaths it did not cause, and
//   its first undecided event is given up on.
// Before issue 22's fixes (4cf721c), 12 of the 23 runs failed (kill,
// handler-hang, handler-panic, handler-abort on every backend).
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
            "--drain-timeout",
            "40",
        ])
        .args(["--postgres", &postgres])
        .output()
        .expect("the sweep runs");
    let table = String::from_utf8_lossy(&output.stdout);
    let log = String::from_utf8_lossy(&output.stderr);
    let progress: Vec<&str> = log.lines().filter(|l| l.starts_with("sweep:")).collect();
    let tail = progress.join("\n");
    assert!(
        output.status.success(),
        "the sweep broke an invariant:\n{table}\nits progress:\n{tail}"
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
