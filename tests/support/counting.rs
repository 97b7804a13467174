//! A store that counts the calls the engine makes to it, per operation, and
//! the conformance check that a delivery costs a constant number of them.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use alm_webhooks::Decision;
use alm_webhooks::Engine;
use alm_webhooks::rules::StateKey;
use alm_webhooks::store::{
    Claim, ClaimOwner, ClaimRequest, Commit, CommitOutcome, DedupKey, Store, StoreError, Versioned,
};
use std::time::SystemTime;

use super::{envelope, learner, unknown};

/// `S`, with every call counted by operation name.
#[derive(Debug, Default)]
pub struct Counting<S> {
    pub inner: S,
    calls: Mutex<BTreeMap<&'static str, u64>>,
}

impl<S> Counting<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            calls: Mutex::new(BTreeMap::new()),
        }
    }

    fn count(&self, op: &'static str) {
        *self.calls.lock().unwrap().entry(op).or_default() += 1;
    }

    /// The calls counted since the last `take`, by operation.
    pub fn take(&self) -> BTreeMap<&'static str, u64> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
}

impl<S: Store> Store for Counting<S> {
    async fn claim(
        &self,
        key: &DedupKey,
        owner: ClaimOwner,
        lease: Duration,
        now: SystemTime,
    ) -> Result<Claim, StoreError> {
        self.count("claim");
        self.inner.claim(key, owner, lease, now).await
    }

    async fn load(&self, key: &StateKey) -> Result<Versioned, StoreError> {
        self.count("load");
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
        self.count("claim_and_load");
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
        self.count("claim_many");
        self.inner.claim_many(requests, owner, lease, now).await
    }

    async fn commit(&self, commit: Commit<'_>) -> Result<CommitOutcome, StoreError> {
        self.count("commit");
        self.inner.commit(commit).await
    }

    async fn commit_many(&self, commits: &[Commit<'_>]) -> Result<Vec<CommitOutcome>, StoreError> {
        self.count("commit_many");
        self.inner.commit_many(commits).await
    }

    async fn renew(
        &self,
        key: &DedupKey,
        token: ClaimOwner,
        lease: Duration,
        now: SystemTime,
    ) -> Result<bool, StoreError> {
        self.count("renew");
        self.inner.renew(key, token, lease, now).await
    }

    async fn renew_many(
        &self,
        claims: &[(&DedupKey, ClaimOwner)],
        lease: Duration,
        now: SystemTime,
    ) -> Result<Vec<bool>, StoreError> {
        self.count("renew_many");
        self.inner.renew_many(claims, lease, now).await
    }

    async fn release(&self, key: &DedupKey, token: ClaimOwner) -> Result<(), StoreError> {
        self.count("release");
        self.inner.release(key, token).await
    }

    async fn sweep(&self, now: SystemTime) -> Result<u64, StoreError> {
        self.count("sweep");
        self.inner.sweep(now).await
    }
}

/// A delivery of `n` events to an account of its own: learners'
/// enrollments, every third followed by its progress (a second event of the
/// same record), every tenth an unknown event.
fn delivery(run: u128, n: usize) -> alm_webhooks::Envelope {
    // Shared stores keep states for a year: an account per delivery.
    let account = (run % 1_000_000_007) as u64 * 10 + n.ilog10() as u64;
    let events: Vec<String> = (0..n as u64)
        .map(|i| {
            let id = format!("rt-{run}-{i}");
            match i % 10 {
                9 => unknown(&id, 1_725_600_000),
                k if k % 3 == 1 => {
                    learner(&id, "LEARNER_PROGRESS", 1_725_600_100, i - 1, "course:1_2")
                }
                _ => learner(&id, "COURSE_ENROLLMENT", 1_725_600_000, i, "course:1_2"),
            }
        })
        .collect();
    envelope(account, &events)
}

/// A delivery, new then redelivered, costs one `claim_many` and one
/// `commit_many` (or one `commit`, for a single decision) whatever its size
/// (1, 100 and 5,000 events), and decides as claiming and committing one
/// event at a time does.
pub async fn a_delivery_costs_a_constant_number_of_store_calls<S: Store>(store: S) {
    let engine = Engine::builder(Counting::new(store)).build();
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    for n in [1, 100, 5_000] {
        let envelope = delivery(run, n);
        let first = super::decisions(&engine, &envelope).await;
        let first_calls = engine.store().take();
        let again = super::decisions(&engine, &envelope).await;
        let again_calls = engine.store().take();
        let commit = if n == 1 { "commit" } else { "commit_many" };
        let want: BTreeMap<&str, u64> = [("claim_many", 1), (commit, 1)].into();
        assert_eq!(first_calls, want, "{n} new events");
        assert_eq!(again_calls, [("claim_many", 1)].into(), "{n} duplicates");
        let not = |want| move |d: &&Decision| **d != want;
        let unprocessed: Vec<_> = first.iter().filter(not(Decision::Processed)).collect();
        assert!(unprocessed.is_empty(), "{n} new events: {unprocessed:?}");
        let undecided: Vec<_> = again.iter().filter(not(Decision::Duplicate)).collect();
        assert!(undecided.is_empty(), "{n} duplicates: {undecided:?}");
    }
}
