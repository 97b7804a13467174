//! A process that dies takes down every delivery its workers hold; the
//! deliveries taken again after that (suspects) run alone in their
//! process, so an innocent delivery beside one that kills the process is
//! charged one crash at most and is processed, never given up.
//!
//! Each "process" here is a tokio runtime running a worker pool over one
//! shared inbox and engine; its death is the runtime dropped with its
//! tasks where they are (nothing given back, no lease renewed), as an
//! abort leaves them.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use alm_webhooks::inbox::{Inbox, MemoryInbox, NewDelivery, RetryPolicy, Workers};
use alm_webhooks::{AccountId, BoxError, Engine, Event};
use time::OffsetDateTime;

const LEASE: Duration = Duration::from_millis(300);

fn body(account: u64, event_id: &str, user: u64) -> Vec<u8> {
    format!(
        r#"{{"accountId":{account},"events":[{{"eventId":"{event_id}","eventName":"COURSE_ENROLLMENT","timestamp":1725600000,"data":{{"userId":{user},"loId":"course:1","loInstanceId":"course:1_2"}}}}]}}"#
    )
    .into_bytes()
}

/// What the handlers saw, over every process.
#[derive(Default)]
struct Seen {
    crash_runs: AtomicUsize,
    innocent_runs: AtomicUsize,
    innocent_done: AtomicUsize,
    innocent_in_hand: AtomicBool,
}

#[test]
fn an_innocent_delivery_beside_an_aborting_one_is_charged_one_crash_at_most() {
    let inbox = Arc::new(MemoryInbox::new());
    let engine = Engine::in_memory();
    let seen = Arc::new(Seen::default());
    let max_attempts = 3;
    {
        let setup = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        setup.block_on(async {
            for (account, id, user) in [(1, "crash", 7), (2, "innocent", 8)] {
                inbox
                    .append(NewDelivery {
                        account_id: AccountId(account),
                        body: &body(account, id, user),
                        received_at: OffsetDateTime::now_utc(),
                    })
                    .await
                    .unwrap();
            }
        });
    }
    let mut deaths = 0;
    for _process in 0..8 {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (died, death) = mpsc::channel::<()>();
        let handler = {
            let seen = Arc::clone(&seen);
            move |event: Event| {
                let (seen, died) = (Arc::clone(&seen), died.clone());
                async move {
                    if event.event_id.as_str() == "crash" {
                        seen.crash_runs.fetch_add(1, Ordering::SeqCst);
                        // Dies with the innocent delivery in hand if it is.
                        let until = Instant::now() + Duration::from_millis(300);
                        while !seen.innocent_in_hand.load(Ordering::SeqCst)
                            && Instant::now() < until
                        {
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                        let _ = died.send(());
                        std::future::pending::<()>().await;
                    }
                    seen.innocent_runs.fetch_add(1, Ordering::SeqCst);
                    seen.innocent_in_hand.store(true, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(400)).await;
                    seen.innocent_in_hand.store(false, Ordering::SeqCst);
                    seen.innocent_done.fetch_add(1, Ordering::SeqCst);
                    Ok::<(), BoxError>(())
                }
            }
        };
        let pool = {
            let _entered = rt.enter();
            Workers::new(engine.clone(), Arc::clone(&inbox))
                .with_options(
                    alm_webhooks::inbox::WorkerOptions::new()
                        .with_count(4)
                        .with_delivery_lease(LEASE)
                        .with_poll_interval(Duration::from_millis(10))
                        .with_retry(RetryPolicy {
                            max_attempts,
                            base: Duration::from_millis(10),
                            max: Duration::from_millis(10),
                        }),
                )
                .start(handler)
        };
        // Runs until the process dies, or the inbox is empty.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut dead = false;
        while Instant::now() < deadline {
            if death.recv_timeout(Duration::from_millis(20)).is_ok() {
                dead = true;
                break;
            }
            let stats = rt.block_on(inbox.stats(OffsetDateTime::now_utc())).unwrap();
            if stats.pending == 0 {
                break;
            }
        }
        if dead {
            // As an abort: every task stops where it is.
            seen.innocent_in_hand.store(false, Ordering::SeqCst);
            rt.shutdown_background();
            deaths += 1;
            std::thread::sleep(LEASE + Duration::from_millis(100));
            continue;
        }
        assert!(rt.block_on(pool.shutdown(Duration::from_secs(2))));
        break;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stats = rt.block_on(inbox.stats(OffsetDateTime::now_utc())).unwrap();
    assert_eq!(stats.pending, 0, "drained");
    let letters = rt.block_on(inbox.dead_letters(10)).unwrap();
    let given_up: Vec<_> = letters
        .iter()
        .map(|l| l.letter.event_id.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        given_up,
        ["crash"],
        "only the aborting event is given up: {letters:?}"
    );
    assert!(
        letters[0]
            .letter
            .error
            .contains(&format!("died or hung {max_attempts} times")),
        "{}",
        letters[0].letter.error
    );
    assert_eq!(deaths, max_attempts as usize, "one death per attempt");
    assert_eq!(
        seen.crash_runs.load(Ordering::SeqCst),
        max_attempts as usize
    );
    assert_eq!(
        seen.innocent_done.load(Ordering::SeqCst),
        1,
        "processed once"
    );
    assert!(
        seen.innocent_runs.load(Ordering::SeqCst) <= 2,
        "the innocent ran beside one crash at most: {} runs",
        seen.innocent_runs.load(Ordering::SeqCst)
    );
}
