//! The inbox on shared, durable backends through real receivers: a receiver
//! killed with `kill -9` between its `202`s and the processing loses
//! nothing, and two receivers sharing one PostgreSQL or Redis process each
//! event once, each account in order. Runs on every backend whose service
//! is reachable (SQLite, which cannot be shared between hosts, only in the
//! restart test).
#![cfg(all(
    feature = "axum",
    feature = "redis",
    feature = "simulator",
    feature = "env"
))]

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use alm_webhooks::simulator::scenario::{envelope, learner_event};
use support::process::{Running, decisions, signed_post, start};
use support::services::{Purge, store_urls};

/// One delivery: account `account`'s `n`-th enrollment of one record, each
/// newer than the last (processed out of order, one would be ignored).
fn delivery(account: u64, n: i64) -> Vec<u8> {
    envelope(
        account,
        &[learner_event(
            &format!("acct{account}-{n}"),
            "COURSE_ENROLLMENT",
            1725600000 + n,
            7,
            "course:1_2",
        )],
    )
}

/// Every decision the receivers printed, once `expected` events were
/// processed (or 30 s).
fn all_decisions(receivers: &[&Running], expected: usize) -> Vec<(String, String)> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let all: Vec<(String, String)> = receivers
            .iter()
            .flat_map(|r| decisions(&r.lines.lock().unwrap()))
            .collect();
        let processed = all.iter().filter(|(_, d)| d == "processed").count();
        if processed >= expected || Instant::now() > deadline {
            return all;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Each event processed exactly once and never stale (out of order). A
/// delivery taken over after a worker died between the engine's commit and
/// the inbox's completion is decided again: its events are then duplicates,
/// which is the engine keeping their effect once.
fn assert_each_once_in_order(store: &str, all: &[(String, String)], accounts: u64, n: i64) {
    let mut counts: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (id, decision) in all {
        counts.entry(id).or_default().push(decision);
    }
    for account in 1..=accounts {
        for i in 0..n {
            let id = format!("acct{account}-{i}");
            let seen = counts.get(id.as_str()).map(Vec::as_slice).unwrap_or(&[]);
            let processed = seen.iter().filter(|d| **d == "processed").count();
            assert!(
                processed == 1 && seen.iter().all(|d| matches!(*d, "processed" | "duplicate")),
                "{store}: {id} processed exactly once, never stale: {seen:?} in {all:?}"
            );
        }
    }
    assert_eq!(
        counts.len(),
        (accounts as usize) * (n as usize),
        "{store}: {all:?}"
    );
}

#[test]
fn a_receiver_killed_after_its_acknowledgements_loses_nothing() {
    for store in store_urls() {
        let _purge = Purge(store.clone());
        let env = [
            ("ALM_MODE", "inbox"),
            ("ALM_STORE", store.as_str()),
            ("ALM_HANDLER_DELAY_MS", "100"),
            ("ALM_LEASE_SECS", "1"),
        ];
        let mut first = start("axum_receiver", &env);
        for i in 0..8 {
            for account in 1..=2 {
                let (status, body) = signed_post(first.addr, &delivery(account, i));
                assert_eq!(status, 202, "{store}: {body}");
            }
        }
        first.child.kill().expect("kill -9");
        let _ = first.child.wait();
        let before = decisions(&first.lines.lock().unwrap()).len();
        assert!(
            before < 16,
            "{store}: killed before it processed everything"
        );

        let second = start("axum_receiver", &env);
        let all = all_decisions(&[&first, &second], 16);
        assert_each_once_in_order(&store, &all, 2, 8);
    }
}

#[test]
fn two_receivers_sharing_an_inbox_process_each_event_once_in_order() {
    for store in store_urls()
        .into_iter()
        .filter(|s| !s.starts_with("sqlite:"))
    {
        let _purge = Purge(store.clone());
        let env = [
            ("ALM_MODE", "inbox"),
            ("ALM_STORE", store.as_str()),
            ("ALM_HANDLER_DELAY_MS", "5"),
        ];
        let a = start("axum_receiver", &env);
        let b = start("actix_receiver", &env);
        for i in 0..10 {
            for account in 1..=3 {
                let to = if (i + account as i64) % 2 == 0 {
                    &a
                } else {
                    &b
                };
                let (status, body) = signed_post(to.addr, &delivery(account, i));
                assert_eq!(status, 202, "{store}: {body}");
            }
        }
        let all = all_decisions(&[&a, &b], 30);
        assert_each_once_in_order(&store, &all, 3, 10);
        let by_a = decisions(&a.lines.lock().unwrap()).len();
        assert!(
            by_a > 0 && by_a < 30,
            "{store}: both receivers worked ({by_a} of 30 by the first)"
        );
    }
}
