//! Claims, commits and releases, one at a time.

use super::*;
use crate::rules::EntityState;
use crate::store::{CommitOutcome, StateUpdate};

/// A claimed event, committed, is [`Claim::AlreadyDecided`] afterwards.
pub async fn claim_commit_then_duplicate<S: Store>(store: S) {
    let k = key(1, "a");
    let t = claimed(
        store
            .claim(&k, ClaimOwner::random(), LEASE, at(T0))
            .await
            .unwrap(),
    );
    assert_eq!(
        store.commit(commit(&k, t, T0 + 100)).await.unwrap(),
        CommitOutcome::Committed
    );
    assert_eq!(
        store
            .claim(&k, ClaimOwner::random(), LEASE, at(T0 + 1))
            .await
            .unwrap(),
        Claim::AlreadyDecided
    );
    // Another account, same id: independent.
    claimed(
        store
            .claim(&key(2, "a"), ClaimOwner::random(), LEASE, at(T0))
            .await
            .unwrap(),
    );
}

/// A live claim makes every other claim [`Claim::InFlight`].
pub async fn live_claim_blocks_others<S: Store>(store: S) {
    let k = key(1, "a");
    claimed(
        store
            .claim(&k, ClaimOwner::random(), LEASE, at(T0))
            .await
            .unwrap(),
    );
    assert_eq!(
        store
            .claim(&k, ClaimOwner::random(), LEASE, at(T0 + 29))
            .await
            .unwrap(),
        Claim::InFlight
    );
}

/// A claim whose lease ended is taken over, and its old holder's commit is [`CommitOutcome::LeaseLost`].
pub async fn expired_lease_can_be_taken_over_and_old_holder_cannot_commit<S: Store>(store: S) {
    let k = key(1, "a");
    let old = claimed(
        store
            .claim(&k, ClaimOwner::random(), SHORT, at(T0))
            .await
            .unwrap(),
    );
    outlive_short_lease().await;
    let new = claimed(
        store
            .claim(&k, ClaimOwner::random(), LEASE, at(T0 + 31))
            .await
            .unwrap(),
    );
    assert_ne!(old, new);
    assert_eq!(
        store.commit(commit(&k, old, T0 + 100)).await.unwrap(),
        CommitOutcome::LeaseLost
    );
    assert_eq!(
        store
            .claim(&k, ClaimOwner::random(), LEASE, at(T0 + 32))
            .await
            .unwrap(),
        Claim::InFlight,
        "the old commit wrote nothing"
    );
    assert_eq!(
        store.commit(commit(&k, new, T0 + 100)).await.unwrap(),
        CommitOutcome::Committed
    );
}

/// A released claim can be claimed again at once; releasing it again does nothing.
pub async fn release_lets_the_event_be_claimed_again<S: Store>(store: S) {
    let k = key(1, "a");
    let t = claimed(
        store
            .claim(&k, ClaimOwner::random(), LEASE, at(T0))
            .await
            .unwrap(),
    );
    store.release(&k, t).await.unwrap();
    let t2 = claimed(
        store
            .claim(&k, ClaimOwner::random(), LEASE, at(T0 + 1))
            .await
            .unwrap(),
    );
    // Releasing a stale token does nothing.
    store.release(&k, t).await.unwrap();
    assert_eq!(
        store
            .claim(&k, ClaimOwner::random(), LEASE, at(T0 + 2))
            .await
            .unwrap(),
        Claim::InFlight
    );
    assert_eq!(
        store.commit(commit(&k, t2, T0 + 100)).await.unwrap(),
        CommitOutcome::Committed
    );
}

/// A state update commits only at the version it was read at, together with the event.
pub async fn state_commit_is_versioned_and_atomic<S: Store>(store: S) {
    let sk = state_key(7);
    let loaded = store.load(&sk).await.unwrap();
    assert_eq!(
        (loaded.version, &loaded.state),
        (0, &EntityState::default())
    );
    let next = EntityState {
        newest_millis: Some(5),
        ..EntityState::default()
    };
    let (a, b) = (key(1, "a"), key(1, "b"));
    let ta = claimed(
        store
            .claim(&a, ClaimOwner::random(), LEASE, at(T0))
            .await
            .unwrap(),
    );
    let tb = claimed(
        store
            .claim(&b, ClaimOwner::random(), LEASE, at(T0))
            .await
            .unwrap(),
    );
    let update = |v| {
        Some(StateUpdate {
            key: &sk,
            expected_version: v,
            state: &next,
        })
    };
    let c = Commit {
        key: &a,
        token: ta,
        update: update(0),
        remember_until: at(T0 + 100),
        state_until: at(T0 + 100),
    };
    assert_eq!(store.commit(c).await.unwrap(), CommitOutcome::Committed);
    // b decided on version 0 too: refused, and b is not marked decided.
    let c = Commit {
        key: &b,
        token: tb,
        update: update(0),
        remember_until: at(T0 + 100),
        state_until: at(T0 + 100),
    };
    assert_eq!(store.commit(c).await.unwrap(), CommitOutcome::StateChanged);
    assert_eq!(
        store
            .claim(&b, ClaimOwner::random(), LEASE, at(T0 + 1))
            .await
            .unwrap(),
        Claim::InFlight
    );
    let loaded = store.load(&sk).await.unwrap();
    assert_eq!((loaded.version, loaded.state.newest_millis), (1, Some(5)));
    let c = Commit {
        key: &b,
        token: tb,
        update: update(1),
        remember_until: at(T0 + 100),
        state_until: at(T0 + 100),
    };
    assert_eq!(store.commit(c).await.unwrap(), CommitOutcome::Committed);
    assert_eq!(store.load(&sk).await.unwrap().version, 2);
}

/// [`Store::claim_and_load`] reads the state for the caller that wins the claim only.
pub async fn claim_and_load_reads_the_state_for_the_winner_only<S: Store>(store: S) {
    let sk = state_key(8);
    let (a, b) = (key(1, "a"), key(1, "b"));
    // A fresh entity: claimed, at version 0.
    let (claim, loaded) = store
        .claim_and_load(&a, Some(&sk), ClaimOwner::random(), LEASE, at(T0))
        .await
        .unwrap();
    let ta = claimed(claim);
    assert_eq!(
        (loaded.version, &loaded.state),
        (0, &EntityState::default())
    );
    let next = EntityState {
        newest_millis: Some(9),
        ..EntityState::default()
    };
    let c = Commit {
        key: &a,
        token: ta,
        update: Some(StateUpdate {
            key: &sk,
            expected_version: 0,
            state: &next,
        }),
        remember_until: at(T0 + 100),
        state_until: at(T0 + 100),
    };
    assert_eq!(store.commit(c).await.unwrap(), CommitOutcome::Committed);
    // The next event of the entity reads what the first one wrote.
    let (claim, loaded) = store
        .claim_and_load(&b, Some(&sk), ClaimOwner::random(), LEASE, at(T0 + 1))
        .await
        .unwrap();
    claimed(claim);
    assert_eq!((loaded.version, &loaded.state), (1, &next));
    // A lost claim reads nothing: decided, in flight, or no state asked.
    for (k, expected) in [(&a, Claim::AlreadyDecided), (&b, Claim::InFlight)] {
        let (claim, loaded) = store
            .claim_and_load(k, Some(&sk), ClaimOwner::random(), LEASE, at(T0 + 2))
            .await
            .unwrap();
        assert_eq!((claim, loaded.version), (expected, 0), "{k:?}");
    }
    let (claim, loaded) = store
        .claim_and_load(&key(1, "c"), None, ClaimOwner::random(), LEASE, at(T0 + 2))
        .await
        .unwrap();
    claimed(claim);
    assert_eq!(loaded.version, 0);
}

/// [`Store::commit_many`] commits each of its commits on its own: a refused one writes nothing and stops none of the others.
pub async fn commit_many_commits_each_on_its_own<S: Store>(store: S) {
    let sk = state_key(9);
    let (a, b, c, d) = (key(1, "a"), key(1, "b"), key(1, "c"), key(1, "d"));
    let mut tokens = Vec::new();
    for k in [&a, &b, &c, &d] {
        tokens.push(claimed(
            store
                .claim(k, ClaimOwner::random(), LEASE, at(T0))
                .await
                .unwrap(),
        ));
    }
    let first = EntityState {
        newest_millis: Some(1),
        ..EntityState::default()
    };
    let second = EntityState {
        newest_millis: Some(2),
        ..EntityState::default()
    };
    let with = |k, token, expected_version, state| Commit {
        key: k,
        token,
        update: Some(StateUpdate {
            key: &sk,
            expected_version,
            state,
        }),
        remember_until: at(T0 + 100),
        state_until: at(T0 + 100),
    };
    let wrong_token = ClaimOwner::new(tokens[1].holder, tokens[1].lease ^ 1);
    let commits = [
        with(&a, tokens[0], 0, &first),
        // Not this caller's claim: nothing written.
        with(&b, wrong_token, 1, &second),
        // Decided on version 0, which `a` just moved: nothing written.
        with(&c, tokens[2], 0, &second),
        // Sees what `a` wrote.
        with(&d, tokens[3], 1, &second),
    ];
    assert_eq!(
        store.commit_many(&commits).await.unwrap(),
        [
            CommitOutcome::Committed,
            CommitOutcome::LeaseLost,
            CommitOutcome::StateChanged,
            CommitOutcome::Committed,
        ]
    );
    let loaded = store.load(&sk).await.unwrap();
    assert_eq!((loaded.version, loaded.state.newest_millis), (2, Some(2)));
    for (k, expected) in [
        (&a, Claim::AlreadyDecided),
        (&b, Claim::InFlight),
        (&c, Claim::InFlight),
        (&d, Claim::AlreadyDecided),
    ] {
        assert_eq!(
            store
                .claim(k, ClaimOwner::random(), LEASE, at(T0 + 1))
                .await
                .unwrap(),
            expected,
            "{k:?}"
        );
    }
    assert_eq!(store.commit_many(&[]).await.unwrap(), []);
}
