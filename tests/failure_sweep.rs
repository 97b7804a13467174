//! The failure sweep (`examples/failure_sweep.rs`) at a small size: every
//! durable backend under every fault that applies to it, and every
//! invariant held (nothing lost, no account stalled, no order violation,
//! no handler run beyond one except for one a dying process left
//! uncommitted; on SQLite and PostgreSQL, a user's own commit hook holds
//! exactly one row per processed event, `kill -9` mid-handler included;
//! and on every backend each learner record is the merge of its events,
//! as if each had been processed once). Part of the normal suite: under `CI=true` a missing
//! PostgreSQL or `redis-server` is a failure, not a skip.
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
// Every backend under every fault, 23 runs of 100 events each over 8
// accounts, sent over 1.5 s while the fault is injected:
// nothing lost, no good event given up, no order violation, no account
// stalled, and every repeated handler run explained by a death that left
// it uncommitted (RELIABILITY.md, "The failure sweep"). A handler-abort
// run takes about 20 s (four deaths, each a 5 s lease), the others a few
// seconds.
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
            "1000",
            "--seconds",
            "1.5",
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
        // The hook's rows and the learner records were checked, and there
        // were some: one hook row per processed event on SQLite and
        // PostgreSQL (no hooks on Redis), one record per learner (two
        // events each).
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let (backend, processed) = (cells[1], cells[4]);
        let (hook_rows, records) = cells[10].split_once(" / ").expect("hook rows / records");
        let processed: usize = processed.parse().expect("a count");
        if backend == "redis" {
            assert_eq!(hook_rows, "-", "{row}");
        } else {
            assert_eq!(hook_rows.parse::<usize>().ok(), Some(processed), "{row}");
        }
        let records: usize = records.parse().expect("a count");
        assert!(records > 0 && records >= processed / 2, "{row}");
    }
}
