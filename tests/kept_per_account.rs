//! The per-account caps on what the inbox keeps (issue 29): one account at
//! its cap on dead letters or quarantined bytes is answered `503` with
//! `Retry-After` over HTTP, while another account is still answered `202`;
//! on the memory inbox and on every durable backend this build can reach
//! (SQLite always, PostgreSQL and Redis when they run). And a Redis inbox
//! written before the per-account counters existed is counted once.
#![cfg(all(feature = "axum", feature = "redis"))]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alm_webhooks::endpoint::KeptLimits;
use alm_webhooks::inbox::{AnyInbox, Inbox, KeptCounts, WorkerOptions};
use alm_webhooks::store::AnyStore;
use alm_webhooks::{AccountId, Authentication, Endpoint, Engine};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use support::services::{Purge, store_urls};

/// The status and the `Retry-After` of a `POST /webhooks` of `body`.
async fn post(addr: SocketAddr, body: &[u8]) -> (u16, Option<String>) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /webhooks HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8_lossy(&response).to_ascii_lowercase();
    let status = response[9..12].parse().unwrap();
    let retry_after = response
        .lines()
        .find_map(|l| l.strip_prefix("retry-after: "))
        .map(|v| v.trim().to_owned());
    (status, retry_after)
}

async fn wait_for<I: Inbox>(inbox: &I, account: u64, what: impl Fn(KeptCounts) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let kept = inbox.kept_of(AccountId(account)).await.unwrap();
        if what(kept) {
            return;
        }
        assert!(Instant::now() < deadline, "account {account}: {kept:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn one_account_at_its_caps_others_accepted(url: &str) {
    eprintln!("-- {url}");
    let store = AnyStore::from_url(url).await.unwrap();
    let inbox = Arc::new(AnyInbox::from_store(&store).await.unwrap());
    let limits = KeptLimits::new()
        .with_max_dead_letters_per_account(3)
        .with_max_quarantined_bytes_per_account(100_000);
    let endpoint = Endpoint::builder(Authentication::None)
        .engine(Engine::builder(store).build())
        .inbox(Arc::clone(&inbox), WorkerOptions::new())
        .kept_limits(limits)
        .handler(|_event| async { Ok(()) })
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = endpoint.router();
    let server = tokio::spawn(async move { axum::serve(listener, router).await });

    // Dead letters: account 7 sends three events that do not parse.
    let answer = post(addr, br#"{"accountId":7,"events":[1,2,3]}"#).await;
    assert_eq!(answer, (202, None));
    wait_for(&*inbox, 7, |k| k.dead_letters == 3).await;
    let answer = post(addr, br#"{"accountId":7,"events":[]}"#).await;
    assert_eq!(answer, (503, Some("60".to_owned())), "account 7 at its cap");
    let answer = post(addr, br#"{"accountId":8,"events":[]}"#).await;
    assert_eq!(answer.0, 202, "account 8 is still accepted");

    // Quarantined bytes: account 9 sends two large bodies that are not envelopes.
    let large = format!(r#"{{"accountId":9,"events":"{}"}}"#, "x".repeat(60_000));
    for _ in 0..2 {
        assert_eq!(post(addr, large.as_bytes()).await, (202, None));
        // Well under its caps, an account is trusted for a second.
        tokio::time::sleep(Duration::from_millis(1_100)).await;
    }
    let kept = inbox.kept_of(AccountId(9)).await.unwrap();
    assert_eq!((kept.quarantined, kept.dead_letters), (2, 0), "{kept:?}");
    assert!(kept.quarantined_bytes >= 120_000, "{kept:?}");
    let answer = post(addr, br#"{"accountId":9,"events":[]}"#).await;
    assert_eq!(answer, (503, Some("60".to_owned())), "account 9 at its cap");
    let answer = post(addr, br#"{"accountId":9,"events":"broken"}"#).await;
    assert_eq!(answer.0, 503, "nothing more quarantined of account 9");
    assert_eq!(
        post(addr, br#"{"accountId":10,"events":"broken"}"#).await.0,
        202
    );
    assert_eq!(post(addr, br#"{"accountId":10,"events":[]}"#).await.0, 202);
    assert_eq!(
        post(addr, b"no account at all").await.0,
        202,
        "counts in the total only"
    );
    let stats = inbox.stats(time::OffsetDateTime::now_utc()).await.unwrap();
    assert_eq!((stats.dead_letters, stats.quarantined), (3, 4), "{stats:?}");
    let most = inbox.most_kept_of_one_account().await.unwrap();
    assert_eq!((most.dead_letters, most.quarantined), (3, 2), "{most:?}");

    // A person discards account 7's dead letters: it is accepted again.
    for letter in inbox.dead_letters(10).await.unwrap() {
        assert!(inbox.discard_dead_letter(letter.id).await.unwrap());
    }
    assert_eq!(post(addr, br#"{"accountId":7,"events":[]}"#).await.0, 202);
    endpoint.shutdown(Duration::from_secs(5)).await;
    server.abort();
}

#[test]
fn one_account_at_its_caps_is_answered_503_and_the_others_202() {
    let urls = std::iter::once("memory".to_owned()).chain(store_urls());
    for url in urls {
        let _purge = Purge(url.clone());
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(one_account_at_its_caps_others_accepted(&url));
    }
}

#[test]
fn a_redis_inbox_kept_before_the_counters_is_counted_once() {
    let Some(url) = store_urls().into_iter().find(|u| u.starts_with("redis")) else {
        return; // store_urls said why
    };
    let _purge = Purge(url.clone());
    let (server, prefix) = url.split_once("?prefix=").unwrap();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        use alm_webhooks::inbox::{NewQuarantined, RedisInbox};
        let inbox = RedisInbox::connect_with_prefix(server, prefix)
            .await
            .unwrap();
        let now = time::OffsetDateTime::now_utc();
        for body in [&b"{\"accountId\":7"[..], b"{\"accountId\":7,"] {
            let kept = NewQuarantined {
                account_id: Some(AccountId(7)),
                body,
                error: "x",
                received_at: now,
            };
            inbox.quarantine(kept).await.unwrap();
        }
        assert_eq!(
            inbox.kept_of(AccountId(7)).await.unwrap(),
            KeptCounts::new(0, 2, 29)
        );
        // As an inbox of an earlier release left it: no counters.
        let client = redis::Client::open(server).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let keys: Vec<String> = ["kv", "kdl", "kq", "kqb"]
            .iter()
            .map(|k| format!("{}{k}", inbox.prefix()))
            .collect();
        let _: () = redis::cmd("DEL")
            .arg(&keys)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(
            inbox.kept_of(AccountId(7)).await.unwrap(),
            KeptCounts::new(0, 2, 29)
        );
        let first = inbox.quarantined(1).await.unwrap().remove(0);
        assert!(inbox.discard_quarantined(first.id).await.unwrap());
        assert_eq!(
            inbox.kept_of(AccountId(7)).await.unwrap(),
            KeptCounts::new(0, 1, 15)
        );
    });
}

/// An inbox of your own that counts nothing itself: the memory inbox with
/// the trait's defaults for what is kept of an account.
#[cfg(feature = "inbox-conformance")]
mod defaults {
    use std::time::Duration;

    use alm_webhooks::AccountId;
    use alm_webhooks::inbox::*;
    use time::OffsetDateTime;

    #[derive(Debug, Default)]
    struct Defaults(MemoryInbox);

    impl Inbox for Defaults {
        async fn append(&self, d: NewDelivery<'_>) -> Result<DeliveryId, InboxError> {
            self.0.append(d).await
        }
        async fn take(&self, l: Duration, n: OffsetDateTime) -> Result<Option<Taken>, InboxError> {
            self.0.take(l, n).await
        }
        async fn renew(
            &self,
            i: DeliveryId,
            t: LeaseToken,
            l: Duration,
            n: OffsetDateTime,
        ) -> Result<bool, InboxError> {
            self.0.renew(i, t, l, n).await
        }
        async fn complete(
            &self,
            i: DeliveryId,
            t: LeaseToken,
            d: &[NewDeadLetter],
        ) -> Result<bool, InboxError> {
            self.0.complete(i, t, d).await
        }
        async fn retry_later(
            &self,
            i: DeliveryId,
            t: LeaseToken,
            n: OffsetDateTime,
            e: &str,
        ) -> Result<bool, InboxError> {
            self.0.retry_later(i, t, n, e).await
        }
        async fn postpone(
            &self,
            i: DeliveryId,
            t: LeaseToken,
            n: OffsetDateTime,
            e: &str,
        ) -> Result<bool, InboxError> {
            self.0.postpone(i, t, n, e).await
        }
        async fn release(&self, i: DeliveryId, t: LeaseToken) -> Result<bool, InboxError> {
            self.0.release(i, t).await
        }
        async fn quarantine(&self, b: NewQuarantined<'_>) -> Result<QuarantineId, InboxError> {
            self.0.quarantine(b).await
        }
        async fn dead_letters(&self, l: usize) -> Result<Vec<DeadLetter>, InboxError> {
            self.0.dead_letters(l).await
        }
        async fn dead_letter(&self, i: DeadLetterId) -> Result<Option<DeadLetter>, InboxError> {
            self.0.dead_letter(i).await
        }
        async fn discard_dead_letter(&self, i: DeadLetterId) -> Result<bool, InboxError> {
            self.0.discard_dead_letter(i).await
        }
        async fn replay_dead_letter(
            &self,
            i: DeadLetterId,
            n: OffsetDateTime,
        ) -> Result<Option<DeliveryId>, InboxError> {
            self.0.replay_dead_letter(i, n).await
        }
        async fn quarantined(&self, l: usize) -> Result<Vec<Quarantined>, InboxError> {
            self.0.quarantined(l).await
        }
        async fn quarantined_body(
            &self,
            i: QuarantineId,
        ) -> Result<Option<Quarantined>, InboxError> {
            self.0.quarantined_body(i).await
        }
        async fn discard_quarantined(&self, i: QuarantineId) -> Result<bool, InboxError> {
            self.0.discard_quarantined(i).await
        }
        async fn replay_quarantined(
            &self,
            i: QuarantineId,
            a: AccountId,
            n: OffsetDateTime,
        ) -> Result<Option<DeliveryId>, InboxError> {
            self.0.replay_quarantined(i, a, n).await
        }
        async fn stats(&self, n: OffsetDateTime) -> Result<InboxStats, InboxError> {
            self.0.stats(n).await
        }
    }

    #[tokio::test]
    async fn the_traits_defaults_count_what_is_kept_of_an_account() {
        let fixture = alm_webhooks::conformance::inbox::Fixture {
            inbox: std::sync::Arc::new(Defaults::default()),
            cleanup: None,
        };
        alm_webhooks::conformance::inbox::kept_of_counts_one_account(fixture).await;
    }
}
