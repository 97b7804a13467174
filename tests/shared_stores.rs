//! Receivers sharing a store across processes: two replicas behind one batch,
//! and a receiver killed mid-batch then redelivered to, as ALM would.
#![cfg(all(
    feature = "axum",
    feature = "redis",
    feature = "simulator",
    feature = "env"
))]

mod support;

use std::sync::Arc;
use std::time::Duration;

use alm_webhooks::simulator::scenario::{envelope, learner_event};
use support::process::{decisions, signed_post, start, wait_for_lines};
use support::services::{Purge, store_urls};

fn batch(prefix: &str, n: u64) -> Vec<u8> {
    let events: Vec<_> = (0..n)
        .map(|i| {
            learner_event(
                &format!("{prefix}-{i}"),
                "COURSE_ENROLLMENT_BATCH",
                1725600100,
                i,
                "course:1_2",
            )
        })
        .collect();
    envelope(1234, &events)
}

#[test]
fn two_receivers_sharing_a_store_process_each_event_once() {
    for store in store_urls() {
        let _purge = Purge(store.clone());
        let a = Arc::new(start(
            "axum_receiver",
            &[("ALM_STORE", &store), ("ALM_MAX_BODY_BYTES", "1000000")],
        ));
        // The second commits its decisions in groups of 64.
        let b = Arc::new(start(
            "axum_receiver",
            &[
                ("ALM_STORE", &store),
                ("ALM_MAX_BODY_BYTES", "1000000"),
                ("ALM_COMMIT_BATCH", "64"),
            ],
        ));
        let body = Arc::new(batch("twin", 1000));
        let posts: Vec<_> = [Arc::clone(&a), Arc::clone(&b)]
            .into_iter()
            .map(|r| {
                let body = Arc::clone(&body);
                std::thread::spawn(move || {
                    // As ALM: retry until acknowledged.
                    for _ in 0..20 {
                        if signed_post(r.addr, &body).0 == 202 {
                            return true;
                        }
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    false
                })
            })
            .collect();
        for p in posts {
            assert!(p.join().unwrap(), "{store}: both deliveries acknowledged");
        }
        let mut processed: Vec<String> = Vec::new();
        for r in [&a, &b] {
            let lines = wait_for_lines(r, 1000);
            processed.extend(
                decisions(&lines)
                    .into_iter()
                    .filter(|(_, d)| d == "processed")
                    .map(|(id, _)| id),
            );
        }
        let total = processed.len();
        processed.sort();
        processed.dedup();
        assert_eq!(
            (total, processed.len()),
            (1000, 1000),
            "{store}: each event processed exactly once across both"
        );
    }
}

#[test]
fn a_receiver_killed_mid_batch_loses_nothing() {
    for store in store_urls() {
        let _purge = Purge(store.clone());
        let env = [
            ("ALM_STORE", store.as_str()),
            ("ALM_MAX_BODY_BYTES", "1000000"),
            ("ALM_HANDLER_DELAY_MS", "3"),
            ("ALM_LEASE_SECS", "1"),
            // Chunks of 50 (the library's default is the whole delivery),
            // so the receiver killed after 500 ms has committed some.
            ("ALM_COMMIT_BATCH", "50"),
        ];
        // The kill must land after the first chunk's commit: under load
        // it may come before it (the receiver just started), and then the
        // scenario runs again with new ids and a later kill.
        let kills = [500, 1000, 1500];
        for (attempt, kill_after) in kills.into_iter().enumerate() {
            let body = Arc::new(batch(&format!("kill{attempt}"), 500));
            let mut first = start("axum_receiver", &env);
            let addr = first.addr;
            let posting = {
                let body = Arc::clone(&body);
                std::thread::spawn(move || signed_post(addr, &body).0)
            };
            std::thread::sleep(Duration::from_millis(kill_after));
            first.child.kill().expect("kill -9");
            let _ = first.child.wait();
            assert_ne!(
                posting.join().unwrap(),
                202,
                "{store}: the killed receiver never acknowledged"
            );

            // ALM redelivers to the restarted receiver until it is acknowledged.
            let second = start("axum_receiver", &env);
            let mut acknowledged = false;
            for _ in 0..30 {
                if signed_post(second.addr, &body).0 == 202 {
                    acknowledged = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(300));
            }
            assert!(acknowledged, "{store}");
            // Under load a redelivery may need more than one try within the
            // inline budget (answered 500, sent again): wait for every line,
            // then read each event's first and last decision.
            let mut lines = wait_for_lines(&second, 500);
            loop {
                std::thread::sleep(Duration::from_millis(500));
                let now = second.lines.lock().unwrap().clone();
                if now.len() == lines.len() {
                    break;
                }
                lines = now;
            }
            let d = decisions(&lines);
            let mut first_seen = std::collections::HashMap::new();
            let mut last_seen = std::collections::HashMap::new();
            for (id, decision) in &d {
                first_seen
                    .entry(id.clone())
                    .or_insert_with(|| decision.clone());
                last_seen.insert(id.clone(), decision.clone());
            }
            assert_eq!(last_seen.len(), 500, "{store}: every event seen: {d:?}");
            assert!(
                last_seen
                    .values()
                    .all(|x| x == "processed" || x == "duplicate"),
                "{store}: every event decided: {d:?}"
            );
            let processed = d.iter().filter(|(_, x)| x == "processed").count();
            let committed_before = first_seen.values().any(|x| x == "duplicate");
            if !committed_before && attempt + 1 < kills.len() {
                eprintln!("{store}: killed after {kill_after} ms, before any commit: again later");
                continue;
            }
            assert!(
                committed_before,
                "{store}: the first receiver had committed some events before it died"
            );
            assert!(
                processed > 0,
                "{store}: the rest were processed after the restart"
            );
            let each_once = d
                .iter()
                .filter(|(_, x)| x == "processed")
                .map(|(id, _)| id)
                .collect::<std::collections::HashSet<_>>();
            assert_eq!(
                each_once.len(),
                processed,
                "{store}: no event processed twice"
            );
            // And a further redelivery finds every event done.
            assert_eq!(signed_post(second.addr, &body).0, 202);
            let lines = wait_for_lines(&second, lines.len() + 500);
            assert!(
                decisions(&lines[lines.len() - 500..])
                    .iter()
                    .all(|(_, x)| x == "duplicate"),
                "{store}"
            );
            break;
        }
    }
}
