//! The hooked commit (`Store::commit_decided`) keeps the store's
//! ownership and chain rules, and a refused commit's event never reaches
//! the learner projection: a chain refused from its first link (another
//! delivery wrote the state meanwhile), a commit by a stranger, and one by
//! an earlier lease that a later attempt of the same holder took over, on
//! memory, SQLite, PostgreSQL and Redis (skipped without a server, except under
//! `CI=true`).

mod support;

use std::time::{Duration, SystemTime};

use alm_webhooks::rules::{EntityState, StateKey};
use alm_webhooks::store::{
    Claim, ClaimOwner, Commit, CommitOutcome, Decided, DedupKey, MemoryStore, StateUpdate, Store,
};
use alm_webhooks::{AccountId, Decision, Envelope, Event, LoInstanceId, UserId};

const LEASE: Duration = Duration::from_secs(60);
const INSTANCE: &str = "course:1_2";
/// The learner of the broken chain (no record may appear).
const CHAIN_USER: u64 = 7;
/// The learner of the fenced commits (one record, from the last attempt).
const FENCED_USER: u64 = 8;

fn event(envelope: &Envelope) -> Event {
    envelope.parsed().next().unwrap().clone()
}

fn key(event: &Event) -> DedupKey {
    DedupKey {
        account_id: AccountId(1),
        event_id: event.event_id.clone(),
    }
}

fn claimed(claim: Claim) -> ClaimOwner {
    match claim {
        Claim::Claimed(owner) => owner,
        other => panic!("expected a claim, got {other:?}"),
    }
}

fn commit<'a>(key: &'a DedupKey, token: ClaimOwner, update: Option<StateUpdate<'a>>) -> Commit<'a> {
    let until = SystemTime::now() + Duration::from_secs(3_600);
    Commit {
        key,
        token,
        update,
        remember_until: until,
        state_until: until,
    }
}

fn processed(event: &Event) -> Option<Decided<'_>> {
    Some(Decided {
        event,
        decision: Decision::Processed,
    })
}

/// Runs the three refusals and the one commit that is made; the caller
/// then reads the records.
async fn refused_commits_are_not_projected<S: Store>(store: &S) {
    assert!(store.wants_decided(), "the projection is on");
    let now = SystemTime::now();
    let parse = |id: &str, name: &str, ts: i64, user: u64| {
        event(&support::envelope(
            1,
            &[support::learner(id, name, ts, user, INSTANCE)],
        ))
    };
    // A chain of two progress events of one record, and another delivery's
    // completion of it (committed first, without the projection's copy).
    let (p1, p2) = (
        parse("p1", "LEARNER_PROGRESS", 1_000, CHAIN_USER),
        parse("p2", "LEARNER_PROGRESS", 1_001, CHAIN_USER),
    );
    let theirs = parse("c", "COURSE_COMPLETED", 900, CHAIN_USER);
    let sk = StateKey::for_event(AccountId(1), &p1).unwrap();
    let (k1, k2, kc) = (key(&p1), key(&p2), key(&theirs));
    let mine = ClaimOwner::random();
    for k in [&k1, &k2] {
        claimed(store.claim(k, mine, LEASE, now).await.unwrap());
    }
    let other = claimed(
        store
            .claim(&kc, ClaimOwner::random(), LEASE, now)
            .await
            .unwrap(),
    );
    let state = EntityState::default();
    let update = |expected_version| {
        Some(StateUpdate {
            key: &sk,
            expected_version,
            state: &state,
        })
    };
    assert_eq!(
        store
            .commit_decided(&[commit(&kc, other, update(0))], &[None])
            .await
            .unwrap(),
        [CommitOutcome::Committed]
    );
    let chain = [commit(&k1, mine, update(0)), commit(&k2, mine, update(1))];
    assert_eq!(
        store
            .commit_decided(&chain, &[processed(&p1), processed(&p2)])
            .await
            .unwrap(),
        [CommitOutcome::StateChanged; 2],
        "the rest of a broken chain is refused, with its hook"
    );
    assert_eq!(store.load(&sk).await.unwrap().version, 1);

    // A stranger's commit, and an earlier lease's after a later attempt
    // of the same holder took the claim over: both refused.
    let e = parse("e", "COURSE_ENROLLMENT", 2_000, FENCED_USER);
    let ke = key(&e);
    let (first, retry) = (ClaimOwner::new(42, 1), ClaimOwner::new(42, 2));
    claimed(store.claim(&ke, first, LEASE, now).await.unwrap());
    assert_eq!(
        store.claim(&ke, retry, LEASE, now).await.unwrap(),
        Claim::Claimed(retry),
        "the same holder takes its claim over"
    );
    for fenced in [first, ClaimOwner::random()] {
        assert_eq!(
            store
                .commit_decided(&[commit(&ke, fenced, None)], &[processed(&e)])
                .await
                .unwrap(),
            [CommitOutcome::LeaseLost]
        );
    }
    assert_eq!(
        store
            .commit_decided(&[commit(&ke, retry, None)], &[processed(&e)])
            .await
            .unwrap(),
        [CommitOutcome::Committed]
    );
}

fn instance() -> LoInstanceId {
    INSTANCE.parse().unwrap()
}

#[tokio::test]
async fn memory_projects_only_commits_made() {
    let store = MemoryStore::new().with_learner_projection();
    refused_commits_are_not_projected(&store).await;
    let chain = store.learner_record(AccountId(1), UserId(CHAIN_USER), &instance());
    assert!(chain.is_none(), "refused: {chain:?}");
    let fenced = store.learner_records_of_user(AccountId(1), UserId(FENCED_USER));
    assert_eq!(fenced.len(), 1);
    assert_eq!(store.learner_changes_since(0, 10).records.len(), 1);
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn sqlite_projects_only_commits_made() {
    use alm_webhooks::store::SqliteStore;
    let store = SqliteStore::open_in_memory()
        .unwrap()
        .with_learner_projection()
        .await
        .unwrap();
    refused_commits_are_not_projected(&store).await;
    let chain = store
        .learner_record(AccountId(1), UserId(CHAIN_USER), &instance())
        .await
        .unwrap();
    assert!(chain.is_none(), "refused: {chain:?}");
    let fenced = store
        .learner_records_of_user(AccountId(1), UserId(FENCED_USER))
        .await
        .unwrap();
    assert_eq!(fenced.len(), 1);
    let all = store.learner_changes_since(0, 10).await.unwrap();
    assert_eq!(all.records.len(), 1);
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_projects_only_commits_made() {
    use alm_webhooks::store::PostgresStore;
    let url = std::env::var("ALM_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let schema = format!(
        "alm_projfence_{}_{:08x}",
        std::process::id(),
        ClaimOwner::random().to_bytes()[0..4]
            .iter()
            .fold(0u32, |n, b| n << 8 | u32::from(*b))
    );
    let store = match PostgresStore::migrate(&url, &schema).await {
        Ok(()) => PostgresStore::connect_with_schema(&url, &schema).await,
        Err(e) => Err(e),
    };
    let store = match store {
        Ok(store) => store.with_learner_projection().await.unwrap(),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("PostgreSQL not reachable at {url} (CI=true, so this fails): {e:?}")
        }
        Err(e) => {
            eprintln!("skipped: PostgreSQL not reachable at {url}: {e}");
            return;
        }
    };
    refused_commits_are_not_projected(&store).await;
    let chain = store
        .learner_record(AccountId(1), UserId(CHAIN_USER), &instance())
        .await
        .unwrap();
    let fenced = store
        .learner_records_of_user(AccountId(1), UserId(FENCED_USER))
        .await
        .unwrap();
    let all = store.learner_changes_since(0, 10).await.unwrap();
    store.drop_schema().await.unwrap();
    assert!(chain.is_none(), "refused: {chain:?}");
    assert_eq!(fenced.len(), 1);
    assert_eq!(all.records.len(), 1);
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_projects_only_commits_made() {
    use alm_webhooks::store::RedisStore;
    let url = std::env::var("ALM_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned());
    let prefix = format!(
        "alm-projfence-{}-{:08x}:",
        std::process::id(),
        ClaimOwner::random().to_bytes()[0..4]
            .iter()
            .fold(0u32, |n, b| n << 8 | u32::from(*b))
    );
    let store = match RedisStore::connect_with_prefix(&url, &prefix).await {
        Ok(store) => store.with_learner_projection(),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("Redis not reachable at {url} (CI=true, so this fails): {e:?}")
        }
        Err(e) => {
            eprintln!("skipped: Redis not reachable at {url}: {e}");
            return;
        }
    };
    refused_commits_are_not_projected(&store).await;
    let chain = store
        .learner_record(AccountId(1), UserId(CHAIN_USER), &instance())
        .await
        .unwrap();
    let fenced = store
        .learner_records_of_user(AccountId(1), UserId(FENCED_USER))
        .await
        .unwrap();
    let all = store.learner_changes_since(0, 10).await.unwrap();
    support::redis_keys::purge(&url, &prefix);
    assert!(chain.is_none(), "refused: {chain:?}");
    assert_eq!(fenced.len(), 1);
    assert_eq!(all.records.len(), 1);
}
