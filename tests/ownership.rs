//! Issue 22, sequence 4: one owner per delivery. The handler succeeds, then
//! the commit fails transiently (and the release too, as when the process
//! dies): the next attempt of the same delivery must not meet its own
//! claims as in flight. On every store.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use alm_webhooks::Decision;
use alm_webhooks::Engine;
use alm_webhooks::rules::StateKey;
use alm_webhooks::store::{
    AnyStore, Claim, ClaimOwner, ClaimRequest, Commit, CommitOutcome, DedupKey, MemoryStore, Store,
    StoreError, Versioned,
};
use support::{envelope, learner, lo};

/// A store whose commits and releases fail (transiently) while `outage`
/// is set: a database that went away after the handlers ran.
#[derive(Debug)]
struct Outage<S> {
    inner: S,
    outage: AtomicBool,
}

impl<S> Outage<S> {
    fn check(&self) -> Result<(), StoreError> {
        if self.outage.load(Ordering::SeqCst) {
            return Err(StoreError::new("connection reset"));
        }
        Ok(())
    }
}

impl<S: Store> Store for Outage<S> {
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

    async fn claim_and_load(
        &self,
        key: &DedupKey,
        state: Option<&StateKey>,
        owner: ClaimOwner,
        lease: Duration,
        now: SystemTime,
    ) -> Result<(Claim, Versioned), StoreError> {
        self.inner
            .claim_and_load(key, state, owner, lease, now)
            .await
    }

    async fn claim_many(
        &self,
        requests: &[ClaimRequest<'_>],
        owner: ClaimOwner,
        lease: Duration,
        now: SystemTime,
    ) -> Result<Vec<(Claim, Versioned)>, StoreError> {
        self.inner.claim_many(requests, owner, lease, now).await
    }

    async fn commit(&self, commit: Commit<'_>) -> Result<CommitOutcome, StoreError> {
        self.check()?;
        self.inner.commit(commit).await
    }

    async fn commit_many(&self, commits: &[Commit<'_>]) -> Result<Vec<CommitOutcome>, StoreError> {
        self.check()?;
        self.inner.commit_many(commits).await
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
        self.inner.renew_many(claims, lease, now).await
    }

    async fn release(&self, key: &DedupKey, token: ClaimOwner) -> Result<(), StoreError> {
        self.check()?;
        self.inner.release(key, token).await
    }

    async fn sweep(&self, now: SystemTime) -> Result<u64, StoreError> {
        self.inner.sweep(now).await
    }
}

/// The stores to run on: memory, and each shared service reachable.
async fn stores() -> Vec<(String, AnyStore, Option<support::services::Purge>)> {
    let mut stores = vec![(
        "memory".to_owned(),
        AnyStore::from_store(MemoryStore::new()),
        None,
    )];
    #[cfg(any(feature = "redis", feature = "postgres", feature = "sqlite"))]
    for url in support::services::store_urls() {
        let store = AnyStore::from_url(&url)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        let name = url.split(':').next().unwrap_or_default().to_owned();
        stores.push((name, store, Some(support::services::Purge(url))));
    }
    stores
}

/// Counts each event's handler runs.
fn counting(runs: &Arc<AtomicUsize>) -> impl FnMut(alm_webhooks::Event) -> futures_ready::Ready {
    let runs = Arc::clone(runs);
    move |_| {
        runs.fetch_add(1, Ordering::SeqCst);
        futures_ready::Ready
    }
}

/// A handler future that succeeds at once.
mod futures_ready {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    pub(super) struct Ready;

    impl Future for Ready {
        type Output = Result<(), alm_webhooks::BoxError>;
        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
            Poll::Ready(Ok(()))
        }
    }
}

fn decisions(report: &alm_webhooks::DeliveryReport) -> Vec<Decision> {
    report.outcomes.iter().map(|o| o.decision).collect()
}

/// Runs `check` on a runtime of its own, then drops the services' purges
/// outside it (they block on a runtime of their own).
fn on_every_store<F: AsyncFnMut(String, AnyStore)>(mut check: F) {
    // Declared first, dropped last: after the runtime, even on a panic.
    let mut purges = Vec::new();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut all = stores().await;
        // Every purge out first: none may drop inside this runtime.
        purges.extend(all.iter_mut().filter_map(|(_, _, purge)| purge.take()));
        for (name, store, _) in all {
            eprintln!("on {name}");
            check(name, store).await;
        }
    });
    drop(runtime);
    drop(purges);
}

#[test]
fn a_retry_takes_its_own_claims_over_after_a_failed_commit() {
    for commit_batch in [1, 64] {
        on_every_store(async |name, store| {
            let store = Outage {
                inner: store,
                outage: AtomicBool::new(false),
            };
            let engine = Engine::builder(store)
                .commit_batch(commit_batch)
                .in_flight_wait(Duration::from_millis(50))
                .build();
            let delivery = envelope(
                22,
                &[
                    learner("e1", "COURSE_ENROLLMENT", 1_725_519_188, 7, "course:1_2"),
                    lo("e2", "LEARNING_OBJECT_DRAFT", 1_725_519_189, "course:3"),
                    learner("e3", "COURSE_COMPLETED", 1_725_519_190, 7, "course:1_2"),
                ],
            );
            let holder = 0x22;
            let runs = Arc::new(AtomicUsize::new(0));

            // Attempt 1: the handlers succeed, then the store goes away
            // before the commit (and the releases): the claims stay behind.
            engine.store().outage.store(true, Ordering::SeqCst);
            let first = ClaimOwner::new(holder, 1);
            let failed = engine
                .process_as(first, delivery.clone(), counting(&runs))
                .await;
            assert!(failed.is_err(), "{name}: the commit failed");
            let ran_first = runs.swap(0, Ordering::SeqCst);
            assert!(ran_first >= 1, "{name}: a handler ran before the outage");
            engine.store().outage.store(false, Ordering::SeqCst);

            // Another holder meets them in flight.
            let e1 = DedupKey {
                account_id: alm_webhooks::AccountId(22),
                event_id: "e1".parse().unwrap(),
            };
            let lease = Duration::from_secs(60);
            let other = engine
                .store()
                .claim(&e1, ClaimOwner::random(), lease, SystemTime::now())
                .await
                .unwrap();
            assert_eq!(other, Claim::InFlight, "{name}: another holder waits");

            // Attempt 2 of the same delivery takes them over at once.
            let retry = ClaimOwner::new(holder, 2);
            let report = engine
                .process_as(retry, delivery.clone(), counting(&runs))
                .await
                .unwrap();
            assert_eq!(
                decisions(&report),
                [Decision::Processed; 3],
                "{name} (batch {commit_batch}): its own claims are not in flight"
            );
            assert_eq!(runs.swap(0, Ordering::SeqCst), 3, "{name}: once each");

            // Attempt 3: all decided, no handler runs.
            let third = ClaimOwner::new(holder, 3);
            let again = engine
                .process_as(third, delivery, counting(&runs))
                .await
                .unwrap();
            assert_eq!(decisions(&again), [Decision::Duplicate; 3], "{name}");
            assert_eq!(runs.load(Ordering::SeqCst), 0, "{name}");
        });
    }
}

/// The attempt that was taken over can no longer commit: when it commits
/// after its retry did, its decisions are the retry's, never a second
/// write.
#[test]
fn the_attempt_taken_over_cannot_commit() {
    on_every_store(async |name, store| {
        let k = DedupKey {
            account_id: alm_webhooks::AccountId(23),
            event_id: "x".parse().unwrap(),
        };
        let (lease, now) = (Duration::from_secs(60), SystemTime::now());
        let old = ClaimOwner::new(5, 1);
        assert_eq!(
            store.claim(&k, old, lease, now).await.unwrap(),
            Claim::Claimed(old)
        );
        let new = ClaimOwner::new(5, 2);
        assert_eq!(
            store.claim(&k, new, lease, now).await.unwrap(),
            Claim::Claimed(new)
        );
        let until = now + Duration::from_secs(3600);
        let commit = |token| Commit {
            key: &k,
            token,
            update: None,
            remember_until: until,
            state_until: until,
        };
        assert_eq!(
            store.commit(commit(old)).await.unwrap(),
            CommitOutcome::LeaseLost,
            "{name}"
        );
        assert_eq!(
            store.commit(commit(new)).await.unwrap(),
            CommitOutcome::Committed,
            "{name}"
        );
    });
}

/// A delivery dropped mid-handler (a timeout, a shutdown) releases, best
/// effort, the claims of its events not decided yet; the event whose
/// handler was running keeps its claim for its holder's retry.
#[test]
fn a_cancelled_delivery_releases_what_it_did_not_decide() {
    on_every_store(async |name, store| {
        let engine = Engine::builder(store).build();
        let delivery = envelope(
            24,
            &[
                lo("h1", "LEARNING_OBJECT_DRAFT", 1_725_519_188, "course:1"),
                lo("h2", "LEARNING_OBJECT_DRAFT", 1_725_519_189, "course:2"),
                lo("h3", "LEARNING_OBJECT_DRAFT", 1_725_519_190, "course:3"),
            ],
        );
        let hangs = engine.process_as(ClaimOwner::new(24, 1), delivery, |_| {
            std::future::pending::<Result<(), alm_webhooks::BoxError>>()
        });
        assert!(
            tokio::time::timeout(Duration::from_millis(200), hangs)
                .await
                .is_err()
        );
        let key = |id: &str| DedupKey {
            account_id: alm_webhooks::AccountId(24),
            event_id: id.parse().unwrap(),
        };
        let claim = async |id: &str| {
            let mut answer = Claim::InFlight;
            // The release runs in a task of its own: give it a moment.
            for _ in 0..50 {
                let lease = Duration::from_secs(60);
                answer = engine
                    .store()
                    .claim(&key(id), ClaimOwner::random(), lease, SystemTime::now())
                    .await
                    .unwrap();
                if answer != Claim::InFlight || id == "h1" {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            answer
        };
        assert_eq!(
            claim("h1").await,
            Claim::InFlight,
            "{name}: its handler ran"
        );
        assert!(
            matches!(claim("h2").await, Claim::Claimed(_)),
            "{name}: released"
        );
        assert!(
            matches!(claim("h3").await, Claim::Claimed(_)),
            "{name}: released"
        );
    });
}

/// A store that stays away longer than the one second a waiting sender's
/// delivery retries its commit for (a Redis restarted while it reloads a
/// large append-only file): an inbox's worker, which no sender waits on,
/// commits the decisions whose handlers ran again for as long as it holds
/// the delivery's lease, so the redelivery runs no handler a second time.
#[test]
fn a_worker_commits_again_while_the_store_is_away_and_runs_no_handler_twice() {
    use alm_webhooks::inbox::{
        Inbox, MemoryInbox, NewDelivery, RetryPolicy, WorkerOptions, Workers,
    };
    on_every_store(async |name, store| {
        let store = Arc::new(Outage {
            inner: store,
            outage: AtomicBool::new(false),
        });
        let engine = Engine::builder(Arc::clone(&store))
            .in_flight_wait(Duration::from_millis(50))
            .build();
        let inbox = Arc::new(MemoryInbox::new());
        let delivery = envelope(
            23,
            &[
                learner("e1", "COURSE_ENROLLMENT", 1_725_519_188, 7, "course:1_2"),
                learner("e2", "COURSE_ENROLLMENT", 1_725_519_189, 8, "course:1_2"),
                learner("e3", "COURSE_ENROLLMENT", 1_725_519_190, 9, "course:1_2"),
            ],
        );
        let body = serde_json::to_vec(&delivery).unwrap();
        inbox
            .append(NewDelivery {
                account_id: alm_webhooks::AccountId(23),
                body: &body,
                received_at: time::OffsetDateTime::now_utc(),
            })
            .await
            .unwrap();
        let workers = Workers::new(engine, Arc::clone(&inbox)).with_options(
            WorkerOptions::new()
                .with_delivery_lease(Duration::from_secs(20))
                .with_retry(RetryPolicy {
                    max_attempts: 10,
                    base: Duration::from_millis(10),
                    max: Duration::from_millis(10),
                }),
        );
        let runs = Arc::new(AtomicUsize::new(0));
        let handler = {
            let (runs, store) = (Arc::clone(&runs), Arc::clone(&store));
            move |_event: alm_webhooks::Event| {
                let (runs, store) = (Arc::clone(&runs), Arc::clone(&store));
                async move {
                    // The store goes away for 2.5 s once the first handler ran.
                    if runs.fetch_add(1, Ordering::SeqCst) == 0 {
                        store.outage.store(true, Ordering::SeqCst);
                        tokio::spawn(async move {
                            tokio::time::sleep(Duration::from_millis(2_500)).await;
                            store.outage.store(false, Ordering::SeqCst);
                        });
                    }
                    Ok::<(), alm_webhooks::BoxError>(())
                }
            }
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let stats = inbox.stats(time::OffsetDateTime::now_utc()).await.unwrap();
            if stats.pending + stats.in_flight + stats.retrying == 0 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{name}: not drained");
            if !workers.run_once(&handler).await.unwrap() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        assert_eq!(
            runs.load(Ordering::SeqCst),
            3,
            "{name}: each handler ran once, its decision committed once the store was back"
        );
        assert!(inbox.dead_letters(10).await.unwrap().is_empty(), "{name}");
    });
}
