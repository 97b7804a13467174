//! The set-based calls, long ids and renewals.

use super::*;
use crate::rules::{EntityState, IgnoreReason};
use crate::store::{ClaimRequest, CommitOutcome, MANY_CHUNK, StateUpdate, Versioned};

/// A claim's answer without its token (tokens differ from run to run).
#[derive(Debug, PartialEq)]
enum Answer {
    Claimed(u64, EntityState),
    AlreadyDecided(u64),
    InFlight(u64),
}

fn answer((claim, loaded): (Claim, Versioned)) -> Answer {
    match claim {
        Claim::Claimed(_) => Answer::Claimed(loaded.version, loaded.state),
        Claim::AlreadyDecided => Answer::AlreadyDecided(loaded.version),
        Claim::InFlight => Answer::InFlight(loaded.version),
    }
}

fn newest(millis: i64) -> EntityState {
    EntityState {
        newest_millis: Some(millis),
        ..EntityState::default()
    }
}

/// In `account`: "d" decided (writing state `s` at version 1), "f" held by
/// another caller.
async fn claim_scene<S: Store>(store: &S, account: u64) {
    let (d, f, s) = (
        key(account, "d"),
        key(account, "f"),
        state_key_in(account, 1),
    );
    let t = claimed(
        store
            .claim(&d, ClaimOwner::random(), LEASE, at(T0))
            .await
            .unwrap(),
    );
    let state = newest(5);
    let c = Commit {
        key: &d,
        token: t,
        update: Some(StateUpdate {
            key: &s,
            expected_version: 0,
            state: &state,
        }),
        remember_until: at(T0 + 100),
        state_until: at(T0 + 100),
    };
    assert_eq!(store.commit(c).await.unwrap(), CommitOutcome::Committed);
    claimed(
        store
            .claim(&f, ClaimOwner::random(), LEASE, at(T0))
            .await
            .unwrap(),
    );
}

/// `claim_many` answers what `claim_and_load` one by one answers, on the
/// same scene in two accounts: a new event with a state, a decided one, one
/// in flight, the first one again, one on a fresh state, one without state.
pub async fn claim_many_answers_as_one_by_one<S: Store>(store: S) {
    let mut results = Vec::new();
    for (account, set_based) in [(1, false), (2, true)] {
        claim_scene(&store, account).await;
        let (s, fresh) = (state_key_in(account, 1), state_key_in(account, 2));
        let keys = ["a", "d", "f", "a", "b", "c"].map(|id| key(account, id));
        let states = [Some(&s), Some(&s), Some(&s), Some(&s), Some(&fresh), None];
        let requests: Vec<ClaimRequest<'_>> = keys
            .iter()
            .zip(states)
            .map(|(key, state)| ClaimRequest { key, state })
            .collect();
        let answers = if set_based {
            store
                .claim_many(&requests, ClaimOwner::random(), LEASE, at(T0 + 1))
                .await
                .unwrap()
        } else {
            let mut answers = Vec::new();
            for r in &requests {
                answers.push(
                    store
                        .claim_and_load(r.key, r.state, ClaimOwner::random(), LEASE, at(T0 + 1))
                        .await
                        .unwrap(),
                );
            }
            answers
        };
        // The tokens won commit.
        let (a_token, c_token) = (claimed(answers[0].0), claimed(answers[5].0));
        for (k, t) in [(&keys[0], a_token), (&keys[5], c_token)] {
            assert_eq!(
                store.commit(commit(k, t, T0 + 100)).await.unwrap(),
                CommitOutcome::Committed
            );
        }
        results.push(answers.into_iter().map(answer).collect::<Vec<_>>());
    }
    assert_eq!(
        results[1],
        [
            Answer::Claimed(1, newest(5)),
            Answer::AlreadyDecided(0),
            Answer::InFlight(0),
            Answer::InFlight(0),
            Answer::Claimed(0, EntityState::default()),
            Answer::Claimed(0, EntityState::default()),
        ]
    );
    assert_eq!(results[0], results[1], "one by one, then set-based");
    assert!(
        store
            .claim_many(&[], ClaimOwner::random(), LEASE, at(T0))
            .await
            .unwrap()
            .is_empty()
    );
}

/// `commit_many` gives what `commit` one by one gives, outcomes and
/// states: the same event twice, the same state twice (at v and v + 1,
/// ending at v + 2), a stale version, no state, a wrong token.
pub async fn commit_many_answers_as_one_by_one<S: Store>(store: S) {
    let mut results = Vec::new();
    for (account, set_based) in [(1, false), (2, true)] {
        let s = state_key_in(account, 1);
        let keys = ["a", "b", "c", "d", "e"].map(|id| key(account, id));
        let mut tokens = Vec::new();
        for k in &keys {
            tokens.push(claimed(
                store
                    .claim(k, ClaimOwner::random(), LEASE, at(T0))
                    .await
                    .unwrap(),
            ));
        }
        let (one, two, three) = (newest(1), newest(2), newest(3));
        let with = |i: usize, token: ClaimOwner, expected_version, state| Commit {
            key: &keys[i],
            token,
            update: Some(StateUpdate {
                key: &s,
                expected_version,
                state,
            }),
            remember_until: at(T0 + 100),
            state_until: at(T0 + 100),
        };
        let commits = [
            with(0, tokens[0], 0, &one),
            with(0, tokens[0], 1, &two),
            with(1, tokens[1], 1, &two),
            with(2, tokens[2], 1, &three),
            commit(&keys[3], tokens[3], T0 + 100),
            commit(
                &keys[4],
                ClaimOwner::new(tokens[4].holder, tokens[4].lease ^ 1),
                T0 + 100,
            ),
        ];
        let outcomes = if set_based {
            store.commit_many(&commits).await.unwrap()
        } else {
            let mut outcomes = Vec::new();
            for c in commits {
                outcomes.push(store.commit(c).await.unwrap());
            }
            outcomes
        };
        let loaded = store.load(&s).await.unwrap();
        let mut claims = Vec::new();
        for k in &keys {
            claims.push(
                store
                    .claim(k, ClaimOwner::random(), LEASE, at(T0 + 1))
                    .await
                    .unwrap(),
            );
        }
        results.push((outcomes, loaded, claims));
    }
    use CommitOutcome::*;
    assert_eq!(
        results[1].0,
        [
            Committed,
            LeaseLost,
            Committed,
            StateChanged,
            Committed,
            LeaseLost
        ]
    );
    assert_eq!((results[1].1.version, &results[1].1.state), (2, &newest(2)));
    assert_eq!(
        results[1].2[..4],
        [
            Claim::AlreadyDecided,
            Claim::AlreadyDecided,
            Claim::InFlight,
            Claim::AlreadyDecided
        ]
    );
    assert_eq!(results[0].0, results[1].0, "one by one, then set-based");
    assert_eq!(results[0].1, results[1].1);
    assert_eq!(results[0].2[..4], results[1].2[..4]);
}

/// More events than one chunk: claimed in one call, committed in one call,
/// and all duplicates afterwards.
pub async fn set_based_operations_span_chunks<S: Store>(store: S) {
    let n = MANY_CHUNK + 500;
    let keys: Vec<DedupKey> = (0..n).map(|i| key(3, &format!("bulk-{i}"))).collect();
    let states: Vec<StateKey> = (0..n as u64).map(|i| state_key_in(3, i)).collect();
    let requests: Vec<ClaimRequest<'_>> = keys
        .iter()
        .zip(&states)
        .map(|(key, state)| ClaimRequest {
            key,
            state: Some(state),
        })
        .collect();
    let answers = store
        .claim_many(&requests, ClaimOwner::random(), LEASE, at(T0))
        .await
        .unwrap();
    assert_eq!(answers.len(), n);
    let next = newest(7);
    let commits: Vec<Commit<'_>> = answers
        .iter()
        .zip(&requests)
        .map(|((claim, loaded), r)| {
            assert_eq!(loaded.version, 0);
            Commit {
                key: r.key,
                token: claimed(*claim),
                update: Some(StateUpdate {
                    key: r.state.unwrap(),
                    expected_version: 0,
                    state: &next,
                }),
                remember_until: at(T0 + 100),
                state_until: at(T0 + 100),
            }
        })
        .collect();
    let outcomes = store.commit_many(&commits).await.unwrap();
    assert!(outcomes.iter().all(|o| *o == CommitOutcome::Committed));
    let again = store
        .claim_many(&requests, ClaimOwner::random(), LEASE, at(T0 + 1))
        .await
        .unwrap();
    assert!(again.iter().all(|(c, _)| *c == Claim::AlreadyDecided));
    assert_eq!(store.load(&states[n - 1]).await.unwrap().version, 1);
}

/// Ids no database can key as they are: a 2.7 KB `eventId`, one with a NUL
/// byte, two long ones that differ only at their end, and a 2.7 KB
/// `loInstanceId` and one with a NUL byte. Each is processed once, its
/// record's state is kept (an older enrollment after a completion is
/// stale), and the redelivery is all duplicates.
pub async fn ids_of_any_length_and_content_are_processed<S: Store>(store: S) {
    let clock = ManualClock::at_unix(T0);
    let engine = engine(store, &clock);
    // Not repetitive, so that a database cannot compress it under its limit.
    let noise = |len: usize| {
        let mut x = 0x9e37_79b9_u64;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(b'a' + (x % 26) as u8)
            })
            .collect::<String>()
    };
    let long = noise(2_700);
    let long_instance = format!("course:{}_2", noise(2_700));
    let nul_instance = "course:1\\u0000x_2";
    let e = envelope(
        1,
        &[
            learner(
                &format!("{long}1"),
                "COURSE_COMPLETED",
                300,
                1,
                &long_instance,
            ),
            learner(
                &format!("{long}2"),
                "COURSE_ENROLLMENT",
                200,
                1,
                &long_instance,
            ),
            learner("nul\\u0000a", "COURSE_COMPLETED", 300, 1, nul_instance),
            learner("nul\\u0000b", "COURSE_ENROLLMENT", 200, 1, nul_instance),
            learner("nul\\u0000c", "COURSE_ENROLLMENT", 400, 1, "course:1_2"),
        ],
    );
    assert_eq!(e.parsed().count(), 5, "every event parses");
    use Decision::*;
    let stale = Ignored(IgnoreReason::Stale);
    assert_eq!(
        decisions(&engine, &e).await,
        [Processed, stale, Processed, stale, Processed]
    );
    assert_eq!(decisions(&engine, &e).await, [Duplicate; 5]);
}

/// `renew` extends a held claim past its first lease; it answers `false`
/// for a token that does not hold the claim, after the commit, and for a
/// holder whose expired claim was taken over.
pub async fn renew_keeps_a_claim_past_its_lease<S: Store>(store: S) {
    let (a, b) = (key(1, "a"), key(1, "b"));
    let t = claimed(
        store
            .claim(&a, ClaimOwner::random(), SHORT, at(T0))
            .await
            .unwrap(),
    );
    assert!(store.renew(&a, t, LEASE, at(T0)).await.unwrap());
    assert!(
        !store
            .renew(&a, ClaimOwner::new(t.holder, t.lease ^ 1), LEASE, at(T0))
            .await
            .unwrap()
    );
    outlive_short_lease().await;
    assert_eq!(
        store
            .claim(&a, ClaimOwner::random(), LEASE, at(T0 + 1))
            .await
            .unwrap(),
        Claim::InFlight,
        "renewed: still held"
    );
    assert_eq!(
        store.commit(commit(&a, t, T0 + 100)).await.unwrap(),
        CommitOutcome::Committed
    );
    assert!(!store.renew(&a, t, LEASE, at(T0 + 1)).await.unwrap());
    // An expired claim that another caller took over is not renewed.
    let old = claimed(
        store
            .claim(&b, ClaimOwner::random(), SHORT, at(T0))
            .await
            .unwrap(),
    );
    outlive_short_lease().await;
    let new = claimed(
        store
            .claim(&b, ClaimOwner::random(), LEASE, at(T0 + 31))
            .await
            .unwrap(),
    );
    assert!(!store.renew(&b, old, LEASE, at(T0 + 31)).await.unwrap());
    assert!(store.renew(&b, new, LEASE, at(T0 + 31)).await.unwrap());
}
