//! Receivers sharing a store across processes: two replicas behind one batch,
//! and a receiver killed mid-batch then redelivered to, as ALM would.
#![cfg(all(feature = "axum", feature = "redis"))]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use alm_webhooks::simulator::scenario::{envelope, learner_event};
use support::process::{decisions, signed_post, start, wait_for_lines};

/// Store URLs to run against, each with a fresh key prefix or schema; a
/// store whose service is not reachable is skipped (a failure under CI).
fn store_urls() -> Vec<String> {
    let mut urls = Vec::new();
    let unique = format!(
        "{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos() ^ rand_seed()
    );
    let redis =
        std::env::var("ALM_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
    if reachable(&redis, 6379) {
        let sep = if redis.contains('?') { '&' } else { '?' };
        urls.push(format!("{redis}{sep}prefix=alm-test-shared-{unique}:"));
    } else if std::env::var("CI").as_deref() == Ok("true") {
        panic!("Redis is not reachable at {redis}; CI needs it");
    } else {
        eprintln!("skipped Redis: not reachable at {redis}");
    }
    #[cfg(feature = "postgres")]
    {
        let pg = std::env::var("ALM_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        if reachable(&pg, 5432) {
            let sep = if pg.contains('?') { '&' } else { '?' };
            urls.push(format!(
                "{pg}{sep}schema=alm_test_shared_{}&migrate=true",
                unique.replace('-', "_")
            ));
        } else if std::env::var("CI").as_deref() == Ok("true") {
            panic!("PostgreSQL is not reachable at {pg}; CI needs it");
        } else {
            eprintln!("skipped PostgreSQL: not reachable at {pg}");
        }
    }
    if cfg!(feature = "sqlite") {
        let file = std::env::temp_dir().join(format!("alm-test-shared-{unique}.db"));
        urls.push(format!("sqlite:{}", file.display()));
    }
    urls
}

fn rand_seed() -> u128 {
    use std::hash::{BuildHasher, RandomState};
    u128::from(RandomState::new().hash_one(0u8))
}

fn reachable(url: &str, default_port: u16) -> bool {
    let host_port = url
        .split("://")
        .nth(1)
        .unwrap_or("")
        .split(['/', '?'])
        .next()
        .unwrap_or("");
    let host_port = host_port.rsplit('@').next().unwrap_or(host_port);
    let addr = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:{default_port}")
    };
    std::net::TcpStream::connect_timeout(
        &match addr.parse() {
            Ok(a) => a,
            Err(_) => return false,
        },
        Duration::from_secs(2),
    )
    .is_ok()
}

/// Removes what a store URL's test wrote, when dropped.
struct Purge(String);

impl Drop for Purge {
    fn drop(&mut self) {
        if let Some((url, prefix)) = self.0.split_once("?prefix=") {
            support::redis_keys::purge(url, prefix);
        }
        #[cfg(feature = "postgres")]
        if let Some((url, schema)) = self
            .0
            .split_once("?schema=")
            .map(|(url, rest)| (url, rest.split('&').next().unwrap_or(rest)))
        {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                if let Ok(store) =
                    alm_webhooks::store::PostgresStore::connect_with_schema(url, schema).await
                {
                    let _ = store.drop_schema().await;
                }
            });
        }
        if let Some(path) = self.0.strip_prefix("sqlite:") {
            for suffix in ["", "-wal", "-shm", "-journal"] {
                let _ = std::fs::remove_file(format!("{path}{suffix}"));
            }
        }
    }
}

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
        ];
        let body = Arc::new(batch("kill", 500));
        let mut first = start("axum_receiver", &env);
        let addr = first.addr;
        let posting = {
            let body = Arc::clone(&body);
            std::thread::spawn(move || signed_post(addr, &body).0)
        };
        std::thread::sleep(Duration::from_millis(500));
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
        let lines = wait_for_lines(&second, 500);
        let final_lines = &lines[lines.len() - 500..];
        let d = decisions(final_lines);
        let processed = d.iter().filter(|(_, x)| x == "processed").count();
        let duplicate = d.iter().filter(|(_, x)| x == "duplicate").count();
        assert_eq!(
            processed + duplicate,
            500,
            "{store}: every event decided: {d:?}"
        );
        assert!(
            duplicate > 0,
            "{store}: the first receiver had committed some events before it died"
        );
        assert!(
            processed > 0,
            "{store}: the rest were processed after the restart"
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
    }
}
