//! A delivery replayed within its timestamp's tolerance (issue 29): under
//! Standard Webhooks (by `webhook-id`) it is acknowledged without being
//! kept again; one that was not acknowledged is taken again.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use alm_webhooks::auth::StandardWebhooksAuth;
use alm_webhooks::endpoint::Mode;
use alm_webhooks::inbox::MemoryInbox;
use alm_webhooks::inbox::WorkerOptions;
use alm_webhooks::{Answer, Authentication, Endpoint};
use http::HeaderMap;

const KEY: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn signed(id: &str, body: &[u8]) -> HeaderMap {
    let auth = StandardWebhooksAuth::new(KEY).unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut headers = HeaderMap::new();
    headers.insert("webhook-id", id.parse().unwrap());
    headers.insert("webhook-timestamp", now.to_string().parse().unwrap());
    let signature = auth.sign(id, now, body);
    headers.insert("webhook-signature", signature.parse().unwrap());
    headers
}

fn auth() -> Authentication {
    Authentication::StandardWebhooks(StandardWebhooksAuth::new(KEY).unwrap())
}

const BODY: &[u8] =
    br#"{"accountId":7,"events":[{"eventId":"e1","eventName":"LEARNING_OBJECT_DRAFT",
  "timestamp":1725519188,"data":{"loId":"course:1","loType":"course"}}]}"#;

#[tokio::test]
async fn a_standard_webhooks_replay_is_acknowledged_and_not_appended_again() {
    let inbox = Arc::new(MemoryInbox::new());
    let endpoint = Endpoint::builder(auth())
        .inbox(Arc::clone(&inbox), WorkerOptions::new().with_count(1))
        .handler(|_event| async { Ok(()) })
        .build()
        .unwrap();
    let headers = signed("msg_1", BODY);
    let first = endpoint.handle(&headers, BODY).await;
    assert!(matches!(first, Answer::Accepted { .. }), "{first}");
    // Re-signed with a fresh timestamp, as a resend of the message is.
    let replay = endpoint.handle(&signed("msg_1", BODY), BODY).await;
    assert!(matches!(replay, Answer::Replayed { .. }), "{replay}");
    assert_eq!(replay.status(), 202);
    assert_eq!(replay.account_id().map(|a| a.get()), Some(7));
    let other = endpoint.handle(&signed("msg_2", BODY), BODY).await;
    let (Answer::Accepted { delivery: a, .. }, Answer::Accepted { delivery: b, .. }) =
        (&first, &other)
    else {
        panic!("{first}, {other}");
    };
    assert_eq!(
        b.get(),
        a.get() + 1,
        "the replay took no place in the inbox"
    );
    endpoint.shutdown(std::time::Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_delivery_that_was_not_acknowledged_is_taken_again() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let endpoint = Endpoint::builder(auth())
        .mode(Mode::Inline)
        .handler(move |_event| {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    Err("the CRM is down".into())
                } else {
                    Ok(())
                }
            }
        })
        .build()
        .unwrap();
    let failed = endpoint.handle(&signed("msg_1", BODY), BODY).await;
    assert_eq!(failed.status(), 500, "{failed}");
    let resent = endpoint.handle(&signed("msg_1", BODY), BODY).await;
    assert!(matches!(resent, Answer::Processed { .. }), "{resent}");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let replay = endpoint.handle(&signed("msg_1", BODY), BODY).await;
    assert!(matches!(replay, Answer::Replayed { .. }), "{replay}");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}
