//! Issue 22, sequence 10: set-based renewal. `renew_many` takes one round
//! trip per chunk on PostgreSQL and Redis (counted through a proxy that
//! counts request turns), and the engine never drops a renewal under way
//! to start it again for the next handler.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use alm_webhooks::Decision;
use alm_webhooks::Engine;
use alm_webhooks::rules::StateKey;
use alm_webhooks::store::{
    AnyStore, Claim, ClaimOwner, Commit, CommitOutcome, DedupKey, MemoryStore, Store, StoreError,
    Versioned,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A TCP proxy to `upstream` that counts request turns: a chunk the
/// client sends after the server last spoke (or first) starts a turn.
/// Pipelined requests sent together are one turn.
async fn counting_proxy(upstream: String) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let turns = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&turns);
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(&upstream).await else {
                continue;
            };
            let (turns, server_spoke) = (Arc::clone(&counter), Arc::new(AtomicBool::new(true)));
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            let spoke = Arc::clone(&server_spoke);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n @ 1..) = client_read.read(&mut buf).await {
                    if spoke.swap(false, Ordering::SeqCst) {
                        turns.fetch_add(1, Ordering::SeqCst);
                    }
                    if server_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n @ 1..) = server_read.read(&mut buf).await {
                    server_spoke.store(true, Ordering::SeqCst);
                    if client_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (port, turns)
}

/// Store URLs through the proxy: `(name, url, host:port)`, each service
/// that is reachable.
fn services() -> Vec<(&'static str, String, Option<support::services::Purge>)> {
    let mut out = Vec::new();
    for url in support::services::store_urls() {
        let name = if url.starts_with("redis") {
            "redis"
        } else if url.starts_with("postgres") {
            "postgres"
        } else {
            continue;
        };
        out.push((name, url.clone(), Some(support::services::Purge(url))));
    }
    out
}

/// `url` with its host and port replaced by the proxy's.
fn through(url: &str, port: u16) -> (String, String) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let (user, host_port) = match authority.rsplit_once('@') {
        Some((user, hp)) => (format!("{user}@"), hp),
        None => (String::new(), authority),
    };
    let upstream = if host_port.contains(':') {
        host_port.to_owned()
    } else if scheme == "redis" {
        format!("{host_port}:6379")
    } else {
        format!("{host_port}:5432")
    };
    (format!("{scheme}://{user}127.0.0.1:{port}{tail}"), upstream)
}

const CLAIMS: usize = 5_000;

#[test]
fn renewing_5000_claims_takes_one_round_trip_per_chunk() {
    let mut purges = Vec::new();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut all = services();
        // Every purge out first: none may drop inside this runtime.
        purges.extend(all.iter_mut().filter_map(|(_, _, purge)| purge.take()));
        for (name, url, _) in all {
            // Created directly, then used through the proxy.
            drop(AnyStore::from_url(&url).await.unwrap());
            let (placeholder, upstream) = through(&url, 0);
            drop(placeholder);
            let (port, turns) = counting_proxy(upstream).await;
            let (proxied, _) = through(&url, port);
            let store = AnyStore::from_url(&proxied).await.unwrap();
            let keys = support::numbered_keys(10, "r", CLAIMS);
            let requests = support::stateless_claims(&keys);
            let owner = ClaimOwner::random();
            let lease = Duration::from_secs(60);
            let claims = store
                .claim_many(&requests, owner, lease, SystemTime::now())
                .await
                .unwrap();
            assert!(claims.iter().all(|(c, _)| *c == Claim::Claimed(owner)));
            let held: Vec<(&DedupKey, ClaimOwner)> = keys.iter().map(|k| (k, owner)).collect();
            // Once, so that a statement is prepared or a script loaded.
            store
                .renew_many(&held[..1], lease, SystemTime::now())
                .await
                .unwrap();
            turns.store(0, Ordering::SeqCst);
            let renewed = store
                .renew_many(&held, lease, SystemTime::now())
                .await
                .unwrap();
            let counted = turns.load(Ordering::SeqCst);
            assert_eq!(renewed, vec![true; CLAIMS], "{name}");
            let chunks = CLAIMS.div_ceil(alm_webhooks::store::MANY_CHUNK);
            assert!(
                counted <= chunks,
                "{name}: {CLAIMS} renewals took {counted} round trips (chunks: {chunks})"
            );
            eprintln!("{name}: {CLAIMS} renewals in {counted} round trip(s)");
        }
    });
    drop(runtime);
    drop(purges);
}

/// A memory store whose `renew_many` takes 150 ms, counting the calls
/// begun and the calls finished.
#[derive(Debug, Default)]
struct SlowRenewals {
    inner: MemoryStore,
    begun: AtomicUsize,
    finished: AtomicUsize,
}

impl Store for SlowRenewals {
    async fn claim(
        &self,
        key: &DedupKey,
        owner: ClaimOwner,
        lease: Duration,
        now: SystemTime,
    ) -> Result<Claim, StoreError> {
        self.inner.claim(key, owner, lease, now).await
    }

    async fn load(&self, key: &StateKey) -> Result<Versioned, StoreError> {
        self.inner.load(key).await
    }

    async fn commit(&self, commit: Commit<'_>) -> Result<CommitOutcome, StoreError> {
        self.inner.commit(commit).await
    }

    async fn renew(
        &self,
        key: &DedupKey,
        token: ClaimOwner,
        lease: Duration,
        now: SystemTime,
    ) -> Result<bool, StoreError> {
        self.inner.renew(key, token, lease, now).await
    }

    async fn renew_many(
        &self,
        claims: &[(&DedupKey, ClaimOwner)],
        lease: Duration,
        now: SystemTime,
    ) -> Result<Vec<bool>, StoreError> {
        self.begun.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(150)).await;
        let renewed = self.inner.renew_many(claims, lease, now).await;
        self.finished.fetch_add(1, Ordering::SeqCst);
        renewed
    }

    async fn release(&self, key: &DedupKey, token: ClaimOwner) -> Result<(), StoreError> {
        self.inner.release(key, token).await
    }

    async fn sweep(&self, now: SystemTime) -> Result<u64, StoreError> {
        self.inner.sweep(now).await
    }
}

/// Handlers shorter than a renewal: each renewal begun is finished (a
/// handler that ends meanwhile waits for it), never dropped and begun again
/// for the next handler.
#[tokio::test(start_paused = true)]
async fn a_renewal_under_way_is_finished_not_begun_again() {
    let engine = Engine::builder(SlowRenewals::default())
        .claim_lease(Duration::from_millis(300))
        .build();
    let events: Vec<String> = (0..12)
        .map(|i| {
            support::lo(
                &format!("l{i}"),
                "LEARNING_OBJECT_DRAFT",
                1_725_519_188,
                &format!("course:{i}"),
            )
        })
        .collect();
    let report = engine
        .process(support::envelope(1, &events), |_| async {
            tokio::time::sleep(Duration::from_millis(120)).await;
            Ok(())
        })
        .await
        .unwrap();
    assert!(
        report
            .outcomes
            .iter()
            .all(|o| o.decision == Decision::Processed)
    );
    let (begun, finished) = (
        engine.store().begun.load(Ordering::SeqCst),
        engine.store().finished.load(Ordering::SeqCst),
    );
    assert!(begun >= 3, "renewals ran: {begun}");
    assert_eq!(begun, finished, "no renewal dropped under way");
}
