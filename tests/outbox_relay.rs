//! The relay's pace (issue 24): a commit in the process wakes an idle relay
//! at once, and the accounts of one round are published together, so one
//! slow account's acknowledgement does not hold the others'.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use alm_webhooks::outbox::{Forwarding, Relay, Sink, SinkError};
use alm_webhooks::store::{MemoryStore, OutboxEntry};
use alm_webhooks::{Engine, Envelope};
use tokio::sync::Barrier;

/// Keeps what it is given, and says when.
#[derive(Debug, Default)]
struct Kept {
    entries: Mutex<Vec<OutboxEntry>>,
    arrived: tokio::sync::Notify,
}

impl Sink for Kept {
    async fn publish(&self, entries: &[OutboxEntry]) -> Result<(), SinkError> {
        self.entries.lock().unwrap().extend_from_slice(entries);
        self.arrived.notify_one();
        Ok(())
    }
}

fn delivery(account: u64, event: &str) -> Envelope {
    let body = format!(
        r#"{{"accountId":{account},"events":[{{"eventId":"{event}","eventName":"NEW_THING"}}]}}"#
    );
    Envelope::from_slice(body.as_bytes()).unwrap()
}

#[tokio::test]
async fn a_commit_wakes_an_idle_relay_before_its_poll() {
    let engine = Engine::builder(MemoryStore::new().with_outbox()).build();
    let sink = Arc::new(Kept::default());
    // Idle, it would look again only in an hour.
    let relay = Relay::new(engine.clone(), Arc::clone(&sink)).poll(Duration::from_secs(3600));
    let _forwarding = Forwarding::start(relay);
    // Let the relay find the outbox empty and go idle.
    tokio::time::sleep(Duration::from_millis(50)).await;

    engine
        .process(delivery(1, "woken"), |_| async { Ok(()) })
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(30), sink.arrived.notified())
        .await
        .expect("the commit woke the relay; its poll is an hour away");
    let entries = sink.entries.lock().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].event_id.as_str(), "woken");
}

/// Acknowledges a publish only once `together` publishes are under way.
#[derive(Debug)]
struct Together {
    barrier: Barrier,
    accounts: Mutex<Vec<u64>>,
}

impl Sink for Together {
    async fn publish(&self, entries: &[OutboxEntry]) -> Result<(), SinkError> {
        self.barrier.wait().await;
        self.accounts
            .lock()
            .unwrap()
            .push(entries[0].account_id.get());
        Ok(())
    }
}

#[tokio::test]
async fn the_accounts_of_a_round_are_published_together() {
    let engine = Engine::builder(MemoryStore::new().with_outbox()).build();
    for account in 1..=3 {
        engine
            .process(delivery(account, &format!("e{account}")), |_| async {
                Ok(())
            })
            .await
            .unwrap();
    }
    let sink = Arc::new(Together {
        barrier: Barrier::new(3),
        accounts: Mutex::default(),
    });
    // One account after another, the first publish would wait for the
    // other two for ever and time out.
    let relay =
        Relay::new(engine.clone(), Arc::clone(&sink)).publish_timeout(Duration::from_secs(30));
    assert_eq!(relay.relay_once().await.unwrap(), 3);
    let mut accounts = sink.accounts.lock().unwrap().clone();
    accounts.sort_unstable();
    assert_eq!(accounts, [1, 2, 3]);
    assert_eq!(relay.relay_once().await.unwrap(), 0, "all acknowledged");
}
