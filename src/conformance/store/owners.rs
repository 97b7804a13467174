//! One owner per delivery: a later attempt of the same holder takes its
//! leftover claims over and fences the earlier one; a broken chain of
//! commits to one state writes nothing over another delivery's.

use super::*;
use crate::EventFamily;
use crate::rules::{self, EntityState};
use crate::store::{ClaimRequest, CommitOutcome, StateUpdate};

/// A live claim of the same holder under another lease is taken over at
/// once (with the state read as for a fresh claim); the old lease then
/// commits, renews and releases nothing. Another holder's claim, or the
/// same owner claiming twice, stays [`Claim::InFlight`].
pub async fn same_holder_takes_its_claim_over_and_fences_the_old_lease<S: Store>(store: S) {
    let (k, sk) = (key(1, "a"), state_key(7));
    let first = ClaimOwner::new(7, 1);
    let (claim, _) = store
        .claim_and_load(&k, Some(&sk), first, LEASE, at(T0))
        .await
        .unwrap();
    assert_eq!(claim, Claim::Claimed(first));
    assert_eq!(
        store.claim(&k, first, LEASE, at(T0)).await.unwrap(),
        Claim::InFlight,
        "the same owner twice is in flight"
    );
    assert_eq!(
        store
            .claim(&k, ClaimOwner::new(8, 1), LEASE, at(T0))
            .await
            .unwrap(),
        Claim::InFlight,
        "another holder's live claim is in flight"
    );
    let retry = ClaimOwner::new(7, 2);
    let (claim, loaded) = store
        .claim_and_load(&k, Some(&sk), retry, LEASE, at(T0 + 1))
        .await
        .unwrap();
    assert_eq!(
        claim,
        Claim::Claimed(retry),
        "the same holder takes it over"
    );
    assert_eq!(loaded.version, 0, "and reads the state");
    assert!(
        !store.renew(&k, first, LEASE, at(T0 + 1)).await.unwrap(),
        "the old lease renews nothing"
    );
    assert_eq!(
        store.commit(commit(&k, first, T0 + 100)).await.unwrap(),
        CommitOutcome::LeaseLost,
        "the old lease commits nothing"
    );
    store.release(&k, first).await.unwrap();
    assert_eq!(
        store
            .claim(&k, ClaimOwner::new(8, 1), LEASE, at(T0 + 2))
            .await
            .unwrap(),
        Claim::InFlight,
        "the old lease released nothing"
    );
    assert!(store.renew(&k, retry, LEASE, at(T0 + 2)).await.unwrap());
    assert_eq!(
        store.commit(commit(&k, retry, T0 + 100)).await.unwrap(),
        CommitOutcome::Committed
    );
    assert_eq!(
        store
            .claim(&k, ClaimOwner::new(7, 3), LEASE, at(T0 + 3))
            .await
            .unwrap(),
        Claim::AlreadyDecided,
        "a decided event is not taken over"
    );
}

/// [`Store::claim_many`] takes over the same holder's claims too, and
/// leaves another holder's in flight.
pub async fn claim_many_takes_over_the_same_holders_claims<S: Store>(store: S) {
    let (a, b, c) = (key(1, "a"), key(1, "b"), key(1, "c"));
    let sk = state_key(7);
    let request = |key| ClaimRequest {
        key,
        state: Some(&sk),
    };
    let first = ClaimOwner::new(7, 1);
    let answers = store
        .claim_many(&[request(&a), request(&b)], first, LEASE, at(T0))
        .await
        .unwrap();
    assert!(answers.iter().all(|(c, _)| *c == Claim::Claimed(first)));
    let other = ClaimOwner::new(9, 1);
    claimed(store.claim(&c, other, LEASE, at(T0)).await.unwrap());
    let retry = ClaimOwner::new(7, 2);
    let requests = [request(&a), request(&b), request(&c), request(&a)];
    let answers: Vec<Claim> = store
        .claim_many(&requests, retry, LEASE, at(T0 + 1))
        .await
        .unwrap()
        .into_iter()
        .map(|(claim, _)| claim)
        .collect();
    assert_eq!(
        answers,
        [
            Claim::Claimed(retry),
            Claim::Claimed(retry),
            Claim::InFlight,
            Claim::InFlight
        ],
        "own claims taken over, another holder's and a repeat in flight"
    );
    let outcomes = store
        .commit_many(&[commit(&a, first, T0 + 100), commit(&b, first, T0 + 100)])
        .await
        .unwrap();
    assert_eq!(
        outcomes,
        [CommitOutcome::LeaseLost; 2],
        "the old lease is fenced"
    );
    let renewed = store
        .renew_many(&[(&a, retry), (&b, first), (&c, other)], LEASE, at(T0 + 2))
        .await
        .unwrap();
    assert_eq!(renewed, [true, false, true]);
}

/// A chain of commits to one state in one [`Store::commit_many`] (decided
/// one after another on the chain's own view) is refused from its first
/// refusal: a later link that finds the version it expects, written by
/// another delivery, writes nothing over it.
pub async fn commit_many_refuses_the_rest_of_a_broken_chain<S: Store>(store: S) {
    let sk = state_key(7);
    let (e1, e2, other) = (key(1, "p1"), key(1, "p2"), key(1, "c"));
    let mine = ClaimOwner::random();
    for k in [&e1, &e2] {
        claimed(store.claim(k, mine, LEASE, at(T0)).await.unwrap());
    }
    // Another delivery completes the record meanwhile: version 1.
    let (_, completed) = rules::decide_facts(&EntityState::default(), EventFamily::Completion, 15);
    let theirs = claimed(
        store
            .claim(&other, ClaimOwner::random(), LEASE, at(T0))
            .await
            .unwrap(),
    );
    let update = |expected_version, state| {
        Some(StateUpdate {
            key: &sk,
            expected_version,
            state,
        })
    };
    let their_commit = Commit {
        update: update(0, &completed),
        ..commit(&other, theirs, T0 + 100)
    };
    assert_eq!(
        store.commit(their_commit).await.unwrap(),
        CommitOutcome::Committed
    );
    // This delivery's chain, decided on version 0 then on its own 1.
    let (_, p1) = rules::decide_facts(&EntityState::default(), EventFamily::LearnerProgress, 10);
    let (_, p2) = rules::decide_facts(&p1, EventFamily::LearnerProgress, 20);
    let chain = [
        Commit {
            update: update(0, &p1),
            ..commit(&e1, mine, T0 + 100)
        },
        Commit {
            update: update(1, &p2),
            ..commit(&e2, mine, T0 + 100)
        },
    ];
    assert_eq!(
        store.commit_many(&chain).await.unwrap(),
        [CommitOutcome::StateChanged; 2],
        "the rest of a broken chain is refused"
    );
    let stored = store.load(&sk).await.unwrap();
    assert_eq!(stored.version, 1);
    assert_eq!(
        stored.state, completed,
        "the other delivery's state is kept"
    );
    assert!(
        store.renew(&e2, mine, LEASE, at(T0)).await.unwrap(),
        "claims kept"
    );
}

/// Through the engine: two events of one record in one delivery,
/// committed as a chain, while another delivery completes the record. The
/// completion is kept, so a later progress is ignored.
pub async fn batched_chain_keeps_another_deliverys_commit<S: Store>(store: S) {
    let clock = ManualClock::at_unix(T0);
    let engine = batched_engine(store, &clock, 64);
    let chain = envelope(
        1,
        &[
            learner("p1", "LEARNER_PROGRESS", T0 - 50, 7, "course:1_2"),
            learner("p2", "LEARNER_PROGRESS", T0 - 30, 7, "course:1_2"),
        ],
    );
    let completion = envelope(
        1,
        &[learner("c", "COURSE_COMPLETED", T0 - 40, 7, "course:1_2")],
    );
    let inner = engine.clone();
    let report = engine
        .process(chain, move |event| {
            let (inner, completion) = (inner.clone(), completion.clone());
            async move {
                if event.event_id.as_str() == "p1" {
                    assert_eq!(decisions(&inner, &completion).await, [Decision::Processed]);
                }
                Ok(())
            }
        })
        .await
        .unwrap();
    let chained: Vec<Decision> = report.outcomes.iter().map(|o| o.decision).collect();
    assert_eq!(chained, [Decision::Processed; 2]);
    let later = envelope(
        1,
        &[learner("p3", "LEARNER_PROGRESS", T0 - 10, 7, "course:1_2")],
    );
    assert_eq!(
        decisions(&engine, &later).await,
        [Decision::Ignored(
            crate::IgnoreReason::ProgressAfterCompletion
        )],
        "the completion was not written over"
    );
}
