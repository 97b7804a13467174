//! The workers' check: the inbox under real workers and an engine.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;

use super::{Fixture, T0, learner};
use crate::inbox::{Inbox, NewDelivery, Progress, RetryPolicy, Workers};
use crate::{AccountId, BoxError, Engine, Event};

fn body(account: u64, events: &[String]) -> Vec<u8> {
    format!(
        r#"{{"accountId":{account},"events":[{}]}}"#,
        events.join(",")
    )
    .into_bytes()
}

/// Workers over the inbox: order per account, a retry that then succeeds without a later event of the record overtaking it, an exhausted retry and a malformed event kept as dead letters, and a replay.
pub async fn workers_retry_dead_letter_and_replay<I: Inbox>(f: Fixture<I>) {
    let inbox = Arc::clone(&f.inbox);
    let now = OffsetDateTime::now_utc();
    let record = "course:1_2";
    let deliveries = [
        body(1, &[learner("a1", "COURSE_ENROLLMENT", T0, 7, record)]),
        body(
            1,
            &[
                learner("flaky", "LEARNER_PROGRESS", T0 + 1, 7, record),
                learner("a2", "LEARNER_PROGRESS", T0 + 2, 7, record),
                learner("other", "COURSE_ENROLLMENT", T0 + 1, 8, record),
            ],
        ),
        body(
            1,
            &[
                learner("doomed", "COURSE_COMPLETED", T0 + 3, 9, record),
                r#"{"eventId":"bad","eventName":"COURSE_ENROLLMENT","timestamp":1,"data":{"userId":"x"}}"#.to_owned(),
            ],
        ),
        body(2, &[learner("b1", "COURSE_ENROLLMENT", T0, 7, record)]),
    ];
    for b in &deliveries {
        inbox
            .append(NewDelivery {
                account_id: AccountId(if b.starts_with(b"{\"accountId\":2") {
                    2
                } else {
                    1
                }),
                body: b,
                received_at: now,
            })
            .await
            .unwrap();
    }
    let calls_log: Arc<Mutex<Vec<String>>> = Arc::default();
    let handler = {
        let calls = Arc::clone(&calls_log);
        move |event: Event| {
            let calls = Arc::clone(&calls);
            async move {
                let id = event.event_id.as_str().to_owned();
                let mut calls = calls.lock().unwrap();
                let tries = calls.iter().filter(|c| **c == id).count();
                calls.push(id.clone());
                match id.as_str() {
                    "flaky" if tries < 1 => Err(BoxError::from(format!("{id} failed"))),
                    "doomed" => Err("CRM refused doomed".into()),
                    _ => Ok(()),
                }
            }
        }
    };
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = Arc::clone(&log);
    let workers = Workers::new(Engine::in_memory(), Arc::clone(&inbox)).with_options(
        crate::inbox::WorkerOptions::new()
            .with_retry(RetryPolicy {
                max_attempts: 2,
                base: Duration::ZERO,
                max: Duration::ZERO,
            })
            .with_observer(move |p| sink.lock().unwrap().push(format!("{p:?}"))),
    );
    let mut idle = 0;
    while idle < 3 {
        if workers.run_once(&handler).await.unwrap() {
            idle = 0;
        } else {
            idle += 1;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let calls = calls_log.lock().unwrap().clone();
    let pos = |id: &str| calls.iter().position(|c| c == id).unwrap();
    assert!(pos("a1") < pos("flaky"), "{calls:?}");
    assert_eq!(
        calls.iter().filter(|c| *c == "flaky").count(),
        2,
        "failed once, then succeeded: {calls:?}"
    );
    assert_eq!(
        calls.iter().filter(|c| *c == "a2").count(),
        1,
        "a2 ran once, after flaky succeeded: {calls:?}"
    );
    let last_flaky = calls.iter().rposition(|c| c == "flaky").unwrap();
    assert!(last_flaky < pos("a2"), "a2 never overtook flaky: {calls:?}");
    assert_eq!(
        calls.iter().filter(|c| *c == "other").count(),
        1,
        "{calls:?}"
    );
    assert_eq!(
        calls.iter().filter(|c| *c == "doomed").count(),
        2,
        "{calls:?}"
    );
    assert!(
        pos("a2") < pos("doomed"),
        "the account's next delivery waited for the retry: {calls:?}"
    );

    let letters = inbox.dead_letters(10).await.unwrap();
    let mut kept: Vec<_> = letters
        .iter()
        .map(|l| (l.letter.event_id.clone().unwrap(), l.letter.attempts))
        .collect();
    kept.sort();
    assert_eq!(kept, [("bad".to_owned(), 2), ("doomed".to_owned(), 2)]);
    let doomed = letters
        .iter()
        .find(|l| l.letter.event_id.as_deref() == Some("doomed"))
        .unwrap();
    assert_eq!(doomed.letter.error, "CRM refused doomed");
    assert_eq!(
        doomed.letter.event,
        learner("doomed", "COURSE_COMPLETED", T0 + 3, 9, record),
        "the event as sent"
    );
    let stats = inbox.stats(OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!((stats.pending, stats.in_flight, stats.retrying), (0, 0, 0));

    // Replayed, it runs through the engine again (and fails again here).
    inbox
        .replay_dead_letter(doomed.id, OffsetDateTime::now_utc())
        .await
        .unwrap()
        .unwrap();
    while workers.run_once(&handler).await.unwrap() {}
    let again = inbox.dead_letters(10).await.unwrap();
    assert!(
        again
            .iter()
            .any(|l| l.id != doomed.id && l.letter.event == doomed.letter.event),
        "replayed, failed twice more, dead-lettered again: {again:?}"
    );
    assert_eq!(
        calls_log
            .lock()
            .unwrap()
            .iter()
            .filter(|c| *c == "doomed")
            .count(),
        4,
        "the replay ran the handler again"
    );
    let log = log.lock().unwrap();
    assert_eq!(
        log.iter().filter(|l| l.contains("DeadLettered")).count(),
        3,
        "{log:?}"
    );
}

/// Workers over the inbox, against a handler that never returns and an
/// observer that panics: each is a failed attempt, kept as a dead letter
/// that says why after the last one, and the account's later delivery is
/// processed; the pool stays healthy and its shutdown keeps its bound.
pub async fn workers_outlive_a_hung_handler_and_a_panic<I: Inbox>(f: Fixture<I>) {
    let inbox = Arc::clone(&f.inbox);
    let record = "course:1_2";
    let deliveries = [
        body(31, &[learner("hangs", "COURSE_ENROLLMENT", T0, 7, record)]),
        body(
            31,
            &[learner("after", "COURSE_COMPLETED", T0 + 5, 7, record)],
        ),
        body(
            32,
            &[learner("watched", "COURSE_ENROLLMENT", T0, 7, record)],
        ),
    ];
    for (account, b) in [31, 31, 32].into_iter().zip(&deliveries) {
        let now = OffsetDateTime::now_utc();
        let delivery = NewDelivery {
            account_id: AccountId(account),
            body: b,
            received_at: now,
        };
        inbox.append(delivery).await.unwrap();
    }
    let calls: Arc<Mutex<Vec<String>>> = Arc::default();
    let handler = {
        let calls = Arc::clone(&calls);
        move |event: Event| {
            let calls = Arc::clone(&calls);
            async move {
                let id = event.event_id.as_str().to_owned();
                calls.lock().unwrap().push(id.clone());
                match id.as_str() {
                    "hangs" => std::future::pending().await,
                    "watched" => Err(BoxError::from("watched fails")),
                    _ => Ok(()),
                }
            }
        }
    };
    let pool = Workers::new(Engine::in_memory(), Arc::clone(&inbox))
        .with_options(
            crate::inbox::WorkerOptions::new()
                .with_count(2)
                .with_delivery_lease(Duration::from_secs(2))
                .with_poll_interval(Duration::from_millis(5))
                .with_handler_timeout(Duration::from_millis(200))
                .with_retry(RetryPolicy {
                    max_attempts: 2,
                    base: Duration::from_millis(10),
                    max: Duration::from_millis(10),
                })
                .with_observer(|progress| {
                    if let Progress::Decided { outcome, .. } = progress {
                        if outcome.event_id.as_ref().map(|id| id.as_str()) == Some("watched") {
                            panic!("the observer panics on watched");
                        }
                    }
                }),
        )
        .start(handler);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let done = || {
        let calls = calls.lock().unwrap();
        calls.iter().any(|c| c == "after") && calls.iter().filter(|c| *c == "watched").count() == 2
    };
    while !done() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(done(), "{:?}", calls.lock().unwrap());
    let mut letters = Vec::new();
    while std::time::Instant::now() < deadline && letters.len() < 2 {
        letters = inbox.dead_letters(10).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut kept: Vec<_> = letters
        .iter()
        .map(|l| {
            let letter = &l.letter;
            (
                letter.event_id.clone().unwrap(),
                letter.error.clone(),
                letter.attempts,
            )
        })
        .collect();
    kept.sort();
    assert_eq!(
        kept,
        [
            ("hangs".into(), "handler timed out after 200 ms".into(), 2),
            (
                "watched".into(),
                "a worker panicked while handling the delivery (2 attempts)".into(),
                2
            ),
        ]
    );
    let calls = calls.lock().unwrap().clone();
    assert_eq!(
        calls.iter().filter(|c| *c == "hangs").count(),
        2,
        "{calls:?}"
    );
    assert_eq!(
        calls.iter().filter(|c| *c == "after").count(),
        1,
        "{calls:?}"
    );
    assert!(pool.healthy());
    assert_eq!(pool.restarts(), 2, "one per attempt on watched");
    let started = std::time::Instant::now();
    assert!(
        !pool.shutdown(Duration::from_secs(1)).await,
        "a worker panicked"
    );
    assert!(started.elapsed() < Duration::from_secs(1) + crate::inbox::GIVE_BACK_BOUND);
    let stats = inbox.stats(OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!((stats.pending, stats.in_flight, stats.retrying), (0, 0, 0));
}
