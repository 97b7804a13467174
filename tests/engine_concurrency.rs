//! Handler panics, slow handlers and concurrent redeliveries.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use alm_webhooks::Decision;
use alm_webhooks::Engine;
use alm_webhooks::store::MemoryStore;
use support::{envelope, unknown};

#[tokio::test]
async fn a_panicking_handler_records_nothing_and_the_engine_keeps_serving() {
    let engine = Engine::in_memory();
    let e = envelope(1, &[unknown("boom", 1), unknown("fine", 1)]);
    let report = engine
        .process(e.clone(), |event| async move {
            if event.event_id.as_str() == "boom" {
                panic!("handler bug");
            }
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(report.outcomes[0].decision, Decision::Failed);
    assert_eq!(
        report.outcomes[0].error_message(),
        Some("the handler panicked")
    );
    assert_eq!(report.outcomes[1].decision, Decision::Processed);
    assert!(!report.is_acknowledged());
    let again = engine.process(e, |_| async { Ok(()) }).await.unwrap();
    let decisions: Vec<_> = again.outcomes.iter().map(|o| o.decision).collect();
    assert_eq!(decisions, [Decision::Processed, Decision::Duplicate]);
    assert_eq!(engine.counters().failed, 1);
}

/// ALM retries after 5 s while the first attempt is still running: the
/// retry waits for it and reports a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivery_waits_for_the_attempt_in_flight() {
    let engine = Engine::builder(MemoryStore::new())
        .in_flight_wait(Duration::from_secs(5))
        .build();
    let e = envelope(1, &[unknown("slow", 1)]);
    let runs = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(tokio::sync::Notify::new());
    let first = {
        let (engine, e, runs, started) = (
            engine.clone(),
            e.clone(),
            Arc::clone(&runs),
            Arc::clone(&started),
        );
        tokio::spawn(async move {
            engine
                .process(e, move |_| {
                    let (runs, started) = (Arc::clone(&runs), Arc::clone(&started));
                    async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        started.notify_one();
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        Ok(())
                    }
                })
                .await
                .unwrap()
        })
    };
    // The first attempt holds the claim and is inside its handler.
    started.notified().await;
    let second = engine.process(e, |_| async { Ok(()) }).await.unwrap();
    assert_eq!(second.outcomes[0].decision, Decision::Duplicate);
    assert_eq!(
        first.await.unwrap().outcomes[0].decision,
        Decision::Processed
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

/// Still running after the bounded wait: 503, so ALM retries later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivery_gives_up_after_the_bounded_wait() {
    let engine = Engine::builder(MemoryStore::new())
        .in_flight_wait(Duration::from_millis(100))
        .build();
    let e = envelope(1, &[unknown("slow", 1)]);
    let started = Arc::new(tokio::sync::Notify::new());
    let release = Arc::new(tokio::sync::Notify::new());
    let first = {
        let (engine, e, started, release) = (
            engine.clone(),
            e.clone(),
            Arc::clone(&started),
            Arc::clone(&release),
        );
        tokio::spawn(async move {
            engine
                .process(e, move |_| {
                    let (started, release) = (Arc::clone(&started), Arc::clone(&release));
                    async move {
                        started.notify_one();
                        // Runs until the test has seen the other attempt give up.
                        release.notified().await;
                        Ok(())
                    }
                })
                .await
                .unwrap()
        })
    };
    started.notified().await;
    let second = engine
        .process(e.clone(), |_| async { Ok(()) })
        .await
        .unwrap();
    assert_eq!(second.outcomes[0].decision, Decision::InFlight);
    assert_eq!(second.status(), http::StatusCode::SERVICE_UNAVAILABLE);
    release.notify_one();
    first.await.unwrap();
    let third = engine.process(e, |_| async { Ok(()) }).await.unwrap();
    assert_eq!(third.outcomes[0].decision, Decision::Duplicate);
}
