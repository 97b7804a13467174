//! Runs: an account's next deliveries taken in one step
//! ([`Inbox::take_many`]). An inbox that takes runs of one (the trait's
//! default) passes these checks too.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;

use super::{Fixture, LEASE, T0, at, delivery, learner, now};
use crate::inbox::{Inbox, LEASE_RAN_OUT, NewDelivery, RetryPolicy, WorkerOptions, Workers};
use crate::{AccountId, BoxError, Engine, Event};

/// Concurrent takers never get one delivery, or one account, at once, and each account's deliveries come out in order.
pub async fn concurrent_takers_never_share_a_delivery_or_an_account<I: Inbox>(f: Fixture<I>) {
    takers_keep_accounts_apart_and_in_order(f, 6, 8, 1).await;
}

/// Concurrent takers of runs never hold one account at once, and each account's deliveries come out in order, each once.
pub async fn concurrent_runs_never_share_an_account_and_keep_its_order<I: Inbox>(f: Fixture<I>) {
    takers_keep_accounts_apart_and_in_order(f, 4, 6, 4).await;
}

/// `takers` tasks take 60 deliveries over `accounts` accounts, by
/// [`Inbox::take`] when `run` is 1, else by runs of up to `run`
/// ([`Inbox::take_many`]): no account is ever in two hands at once (it is
/// held from its take until its run's last completion), a run is one
/// account's, and each account's deliveries come out once each, in order.
async fn takers_keep_accounts_apart_and_in_order<I: Inbox>(
    f: Fixture<I>,
    accounts: u64,
    takers: usize,
    run: usize,
) {
    let inbox = Arc::clone(&f.inbox);
    for n in 0..60u64 {
        inbox
            .append(delivery(n % accounts, format!("{n}").as_bytes(), T0))
            .await
            .unwrap();
    }
    let busy: Arc<Mutex<HashSet<u64>>> = Arc::default();
    let seen: Arc<Mutex<BTreeMap<u64, Vec<u64>>>> = Arc::default();
    let tasks: Vec<_> = (0..takers)
        .map(|_| {
            let (inbox, busy, seen) = (Arc::clone(&inbox), Arc::clone(&busy), Arc::clone(&seen));
            tokio::spawn(async move {
                let mut idle = 0;
                while idle < 20 {
                    let held: Vec<_> = if run == 1 {
                        inbox
                            .take(LEASE, now())
                            .await
                            .unwrap()
                            .into_iter()
                            .collect()
                    } else {
                        inbox.take_many(LEASE, now(), run).await.unwrap()
                    };
                    let Some(first) = held.first() else {
                        idle += 1;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        continue;
                    };
                    idle = 0;
                    let account = first.account_id.get();
                    assert!(
                        busy.lock().unwrap().insert(account),
                        "account {account} handed out twice at once"
                    );
                    for (i, taken) in held.iter().enumerate() {
                        assert_eq!(taken.account_id.get(), account, "a run is one account's");
                        let n: u64 = String::from_utf8(taken.body.clone())
                            .unwrap()
                            .parse()
                            .unwrap();
                        seen.lock().unwrap().entry(account).or_default().push(n);
                        tokio::task::yield_now().await;
                        if i + 1 == held.len() {
                            busy.lock().unwrap().remove(&account);
                        }
                        assert!(inbox.complete(taken.id, taken.token, &[]).await.unwrap());
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let seen = seen.lock().unwrap();
    for (account, ns) in seen.iter() {
        let expected: Vec<u64> = (0..60).filter(|n| n % accounts == *account).collect();
        assert_eq!(ns, &expected, "account {account}: each once, in order");
    }
    assert_eq!(seen.len() as u64, accounts);
}

/// A run is the oldest head and the deliveries behind it in its account, in order, each leased and counted; no one else gets them, a given-back one waits behind the head again, and the account goes on once the run is done.
pub async fn a_run_takes_one_accounts_next_deliveries_in_order<I: Inbox>(f: Fixture<I>) {
    let inbox = &f.inbox;
    let mut ids = Vec::new();
    for (account, body) in [(1, "a1"), (2, "b1"), (1, "a2"), (1, "a3"), (1, "a4")] {
        let id = inbox
            .append(delivery(account, body.as_bytes(), T0))
            .await
            .unwrap();
        ids.push(id);
    }
    let (a, b1) = ([ids[0], ids[2], ids[3], ids[4]], ids[1]);
    let run = inbox.take_many(LEASE, at(T0), 3).await.unwrap();
    assert!(!run.is_empty() && run.len() <= 3, "{} taken", run.len());
    let taken: Vec<_> = run.iter().map(|t| t.id).collect();
    assert_eq!(
        taken,
        a[..run.len()],
        "account 1's first deliveries, in order"
    );
    for t in &run {
        assert_eq!(t.account_id, AccountId(1));
        assert_eq!((t.attempts, t.abandoned), (1, 0), "each attempt counted");
    }
    assert!(
        inbox.take_many(LEASE, at(T0), 0).await.unwrap().is_empty(),
        "none asked"
    );
    let other = inbox.take_many(LEASE, at(T0), 3).await.unwrap();
    assert_eq!(
        other.iter().map(|t| t.id).collect::<Vec<_>>(),
        [b1],
        "account 2 beside the run; account 1's later ones wait behind it"
    );
    assert!(inbox.take(LEASE, at(T0)).await.unwrap().is_none());
    assert!(inbox.complete(run[0].id, run[0].token, &[]).await.unwrap());
    if let [_, second, rest @ ..] = run.as_slice() {
        assert!(
            inbox.take(LEASE, at(T0)).await.unwrap().is_none(),
            "the run's next delivery is its holder's"
        );
        // Given back untouched: the attempt is not counted, and it waits
        // in its place (the run's later ones behind it).
        for t in rest.iter().rev() {
            assert!(inbox.release(t.id, t.token).await.unwrap());
        }
        assert!(inbox.release(second.id, second.token).await.unwrap());
        let again = inbox.take(LEASE, at(T0)).await.unwrap().expect("a2 again");
        assert_eq!((again.id, again.attempts), (second.id, 1));
        assert!(inbox.take(LEASE, at(T0)).await.unwrap().is_none());
        assert!(inbox.complete(again.id, again.token, &[]).await.unwrap());
    }
    let mut left: Vec<_> = Vec::new();
    while let Some(t) = inbox.take(LEASE, at(T0)).await.unwrap() {
        left.push(t.id);
        assert!(inbox.complete(t.id, t.token, &[]).await.unwrap());
    }
    left.retain(|id| *id != b1);
    let done = if run.len() > 1 { 2 } else { 1 };
    assert_eq!(left, a[done..], "the rest of account 1, in order");
    assert!(inbox.complete(b1, other[0].token, &[]).await.unwrap());
}

/// A run whose holder dies (its leases run out) is taken again with an abandoned attempt counted on each of its deliveries, and the old holder is refused. Leases may run on the backend's clock, so this check waits in real time.
pub async fn a_dead_holder_of_a_run_costs_each_delivery_an_attempt<I: Inbox>(f: Fixture<I>) {
    let inbox = &f.inbox;
    for body in ["a1", "a2", "a3"] {
        inbox
            .append(delivery(1, body.as_bytes(), T0))
            .await
            .unwrap();
    }
    let lease = Duration::from_secs(1);
    let dead = inbox.take_many(lease, now(), 3).await.unwrap();
    assert!(!dead.is_empty());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let run = inbox.take_many(LEASE, now(), 3).await.unwrap();
    assert_eq!(run.first().map(|t| t.id), Some(dead[0].id));
    for t in &run {
        if dead.iter().any(|d| d.id == t.id) {
            assert_eq!(
                (t.attempts, t.abandoned, t.last_error.as_deref()),
                (2, 1, Some(LEASE_RAN_OUT)),
                "delivery {:?} was in the dead holder's hand",
                t.id
            );
        } else {
            assert_eq!((t.attempts, t.abandoned), (1, 0));
        }
    }
    for d in &dead {
        assert!(!inbox.complete(d.id, d.token, &[]).await.unwrap());
        assert!(!inbox.renew(d.id, d.token, LEASE, now()).await.unwrap());
        assert!(!inbox.release(d.id, d.token).await.unwrap());
    }
    for t in &run {
        assert!(inbox.complete(t.id, t.token, &[]).await.unwrap());
    }
}

/// Workers taking runs keep each account's order: a delivery whose handler fails is retried before the later ones of its account run, and every event runs once it succeeds.
pub async fn workers_keep_an_accounts_order_across_runs<I: Inbox>(f: Fixture<I>) {
    let inbox = Arc::clone(&f.inbox);
    let received = OffsetDateTime::now_utc();
    for n in 0..5u64 {
        for account in [1u64, 2] {
            let id = format!("e{account}-{n}");
            let event = learner(&id, "COURSE_ENROLLMENT", T0, 100 + n, "course:1_2");
            let body = format!(r#"{{"accountId":{account},"events":[{event}]}}"#);
            let append = NewDelivery {
                account_id: AccountId(account),
                body: body.as_bytes(),
                received_at: received,
            };
            inbox.append(append).await.unwrap();
        }
    }
    let seen: Arc<Mutex<BTreeMap<u64, Vec<String>>>> = Arc::default();
    let handler = {
        let seen = Arc::clone(&seen);
        move |event: Event| {
            let seen = Arc::clone(&seen);
            async move {
                let id = event.event_id.as_str().to_owned();
                let mut seen = seen.lock().unwrap();
                let calls = seen.entry(event.account_id.get()).or_default();
                let again = calls.contains(&id);
                calls.push(id.clone());
                if id == "e1-1" && !again {
                    return Err(BoxError::from("the first try fails"));
                }
                Ok(())
            }
        }
    };
    let options = WorkerOptions::new()
        .with_count(2)
        .with_take_batch(3)
        .with_poll_interval(Duration::from_millis(5))
        .with_retry(RetryPolicy {
            max_attempts: 3,
            base: Duration::ZERO,
            max: Duration::ZERO,
        });
    let pool = Workers::new(Engine::in_memory(), Arc::clone(&inbox))
        .with_options(options)
        .start(handler);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let stats = inbox.stats(OffsetDateTime::now_utc()).await.unwrap();
        if stats.pending + stats.in_flight + stats.retrying == 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "drained: {stats:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    pool.shutdown(Duration::from_secs(5)).await;
    assert!(inbox.dead_letters(10).await.unwrap().is_empty());
    let seen = seen.lock().unwrap();
    let ids = |account: u64, order: &[u64]| -> Vec<String> {
        order.iter().map(|n| format!("e{account}-{n}")).collect()
    };
    assert_eq!(
        seen[&1],
        ids(1, &[0, 1, 1, 2, 3, 4]),
        "e1-1 retried before account 1 went on"
    );
    assert_eq!(seen[&2], ids(2, &[0, 1, 2, 3, 4]));
}
