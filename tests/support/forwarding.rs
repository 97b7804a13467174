//! Deliveries for the forwarding tests: processed events of several
//! accounts mixed with duplicates, ignored and malformed events, and what
//! must arrive at a broker.

use std::time::{Duration, Instant};

use alm_webhooks::store::{OutboxStore, Store};
use alm_webhooks::{Decision, Engine};

use super::{envelope, learner, unknown};

/// The processed events each account must forward, in order, after
/// [`deliver`]: `(account, event ids)`.
pub type Expected = Vec<(u64, Vec<String>)>;

/// Delivers `rounds` deliveries to each of `accounts` accounts (ids
/// `base + 1…`), each with two new events, a repeat of an earlier one
/// (duplicate), and in the first round a progress older than a completion
/// (ignored) and a completion without data (malformed). Returns the
/// processed events per account, in decision order.
pub async fn deliver<S: Store>(
    engine: &Engine<S>,
    base: u64,
    accounts: u64,
    rounds: usize,
    tag: &str,
) -> Expected {
    let mut expected: Expected = (1..=accounts).map(|a| (base + a, Vec::new())).collect();
    for round in 0..rounds {
        for (a, sent) in expected.iter_mut() {
            let ts = 1_725_600_000 + round as i64 * 10;
            let mut events = vec![
                unknown(&format!("{tag}-{a}-{round}-x"), ts),
                learner(
                    &format!("{tag}-{a}-{round}-e"),
                    "COURSE_ENROLLMENT",
                    ts,
                    7,
                    &format!("course:{round}_1"),
                ),
            ];
            if round > 0 {
                events.push(unknown(&format!("{tag}-{a}-{}-x", round - 1), ts));
            } else {
                events.push(learner(
                    &format!("{tag}-{a}-c"),
                    "COURSE_COMPLETED",
                    ts + 5,
                    9,
                    "course:99_1",
                ));
                events.push(learner(
                    &format!("{tag}-{a}-p"),
                    "LEARNER_PROGRESS",
                    ts + 1,
                    9,
                    "course:99_1",
                ));
                events.push(format!(
                    r#"{{"eventId":"{tag}-{a}-m","eventName":"COURSE_COMPLETED","timestamp":{ts}}}"#
                ));
            }
            let report = engine
                .process(envelope(*a, &events), |_| async { Ok(()) })
                .await
                .expect("delivered");
            for outcome in &report.outcomes {
                let id = outcome
                    .event_id
                    .as_ref()
                    .map(|i| i.to_string())
                    .unwrap_or_default();
                match outcome.decision {
                    Decision::Processed => sent.push(id),
                    Decision::Duplicate | Decision::Ignored(_) | Decision::Malformed => {
                        assert!(
                            id.ends_with("-x") || id.ends_with("-p") || id.ends_with("-m"),
                            "{id}: {:?}",
                            outcome.decision
                        );
                    }
                    other => panic!("{id}: {other:?}"),
                }
            }
            if round == 0 {
                let kinds: Vec<_> = report.outcomes.iter().map(|o| o.decision).collect();
                assert!(matches!(kinds[2], Decision::Processed), "{kinds:?}");
                assert!(matches!(kinds[3], Decision::Ignored(_)), "{kinds:?}");
                assert_eq!(kinds[4], Decision::Malformed);
            } else {
                assert_eq!(report.outcomes[2].decision, Decision::Duplicate);
            }
        }
    }
    expected
}

/// Total processed events.
pub fn total(expected: &Expected) -> usize {
    expected.iter().map(|(_, ids)| ids.len()).sum()
}

/// Waits until `store`'s outbox is empty, failing after `limit`.
pub async fn wait_drained<O: OutboxStore>(store: &O, limit: Duration) {
    let deadline = Instant::now() + limit;
    while store.outbox_stats().await.unwrap().pending > 0 {
        assert!(
            Instant::now() < deadline,
            "the outbox did not drain: {:?}",
            store.outbox_stats().await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The example receiver's environment for the `kill -9` tests: inbox mode
/// on `store` (inbox and engine), malformed bodies quarantined, forwarding
/// to `forward`.
pub fn receiver_env<'a>(store: &'a str, forward: &'a str) -> [(&'static str, &'a str); 6] {
    [
        ("ALM_MODE", "inbox"),
        ("ALM_ON_MALFORMED", "quarantine"),
        ("ALM_STORE", store),
        ("ALM_INBOX", store),
        ("ALM_FORWARD", forward),
        ("ALM_MAX_BODY_BYTES", "1000000"),
    ]
}
