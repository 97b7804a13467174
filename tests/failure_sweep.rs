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
#[ignore = "fails on today's main (issue 22): see the comment above the test"]
// What fails on today's main (7050239; `failure_sweep --events 2000`,
// 23 runs, 13 broke an invariant; the tables are in changes/sweep.md):
// - kill, every backend: 5-7 accounts held past the 20 s drain timeout: a
//   killed process's engine claims stay for the engine's 60 s lease and
//   the next attempts postpone behind them (drained in 59.4 s with
//   `--drain-timeout 90`); issue 22, "one owner";
// - pg-terminate (PostgreSQL): 2 accounts held past the drain timeout,
//   most likely by claims left behind by a commit the termination cut
//   (sequence 4);
// - handler-hang, every backend: 2 accounts stalled for good, the lease
//   renewed for ever (sequence 1; no handler timeout yet);
// - handler-abort, every backend: 2-6 accounts stalled after only 2
//   aborts in the run: most likely each new attempt waits out the dead
//   process's claims (60 s) before the handler aborts again, so the 4
//   attempts take minutes (sequence 2 with "one owner");
// - handler-panic, every backend: the panicking event is dead-lettered as
//   it should be, and 2 later events of its record with the placeholder
//   "still in flight in another attempt after the wait" (sequence 8).
// None lost an acknowledged event or broke the order.
// After the `worker` merge (a52ac0d; the sweep's receivers use a 2 s handler
// timeout) handler-hang, handler-panic and pg-terminate hold; kill and
// handler-abort still fail on every backend (accounts held behind a dead
// process's claims: issue 22, "one owner").
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
