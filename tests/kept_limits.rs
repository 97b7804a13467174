//! Caps on what the inbox keeps (issue 29): past the cap on quarantined
//! bodies or dead letters, deliveries are answered `503` instead of
//! filling the disk.

use std::sync::Arc;

use alm_webhooks::endpoint::KeptLimits;
use alm_webhooks::inbox::WorkerOptions;
use alm_webhooks::inbox::{Inbox, MemoryInbox};
use alm_webhooks::{Answer, Authentication, Endpoint};

#[tokio::test]
async fn past_the_quarantine_cap_deliveries_are_answered_503() {
    let inbox = Arc::new(MemoryInbox::new());
    let endpoint = Endpoint::builder(Authentication::None)
        .inbox(Arc::clone(&inbox), WorkerOptions::new())
        .kept_limits(KeptLimits::new().with_max_quarantined(2))
        .handler(|_event| async { Ok(()) })
        .build()
        .unwrap();
    let headers = http::HeaderMap::new();
    for n in 0..2 {
        let answer = endpoint
            .handle(&headers, format!("not json {n}").as_bytes())
            .await;
        assert!(matches!(answer, Answer::Quarantined { .. }), "{answer:?}");
    }
    let answer = endpoint.handle(&headers, b"not json 3").await;
    assert_eq!(answer.status(), 503, "{answer:?}");
    let response = answer.into_http();
    assert_eq!(
        response.headers()["retry-after"],
        "60",
        "ALM is told to wait"
    );
    // A good delivery too: the inbox is full of what a person must see.
    let answer = endpoint
        .handle(&headers, br#"{"accountId":7,"events":[]}"#)
        .await;
    assert_eq!(answer.status(), 503, "{answer:?}");
    let stats = inbox.stats(time::OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!(stats.quarantined, 2, "nothing kept past the cap");
    endpoint.shutdown(std::time::Duration::from_secs(1)).await;
}

#[tokio::test]
async fn past_the_dead_letter_cap_deliveries_are_answered_503() {
    let inbox = Arc::new(MemoryInbox::new());
    let endpoint = Endpoint::builder(Authentication::None)
        .inbox(Arc::clone(&inbox), WorkerOptions::new())
        .kept_limits(KeptLimits::new().with_max_dead_letters(3))
        .handler(|_event| async { Ok(()) })
        .build()
        .unwrap();
    let headers = http::HeaderMap::new();
    // Three events that do not parse: three dead letters.
    let answer = endpoint
        .handle(&headers, br#"{"accountId":7,"events":[1,2,3]}"#)
        .await;
    assert!(matches!(answer, Answer::Accepted { .. }), "{answer:?}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let stats = inbox.stats(time::OffsetDateTime::now_utc()).await.unwrap();
        if stats.dead_letters == 3 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{stats:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let answer = endpoint
        .handle(&headers, br#"{"accountId":7,"events":[]}"#)
        .await;
    assert_eq!(answer.status(), 503, "{answer:?}");
    endpoint.shutdown(std::time::Duration::from_secs(1)).await;
}

#[tokio::test]
async fn past_the_quarantined_bytes_cap_deliveries_are_answered_503() {
    let inbox = Arc::new(MemoryInbox::new());
    let endpoint = Endpoint::builder(Authentication::None)
        .inbox(Arc::clone(&inbox), WorkerOptions::new())
        .kept_limits(KeptLimits::new().with_max_quarantined_bytes(100_000))
        .handler(|_event| async { Ok(()) })
        .build()
        .unwrap();
    let headers = http::HeaderMap::new();
    // Two large bodies that are not JSON: far fewer than the count cap,
    // but as many bytes as allowed.
    let large = vec![b'x'; 60_000];
    for _ in 0..2 {
        let answer = endpoint.handle(&headers, &large).await;
        assert!(matches!(answer, Answer::Quarantined { .. }), "{answer:?}");
        // The counts are trusted for a second while well under the caps.
        tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    }
    let stats = inbox.stats(time::OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!(stats.quarantined_bytes, 120_000, "{stats:?}");
    let answer = endpoint.handle(&headers, b"not json").await;
    assert_eq!(answer.status(), 503, "{answer:?}");
    let answer = endpoint
        .handle(&headers, br#"{"accountId":7,"events":[]}"#)
        .await;
    assert_eq!(answer.status(), 503, "{answer:?}");
    let stats = inbox.stats(time::OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!(stats.quarantined, 2, "nothing kept past the cap");
    endpoint.shutdown(std::time::Duration::from_secs(1)).await;
}
