//! The contract every [`Inbox`] keeps, as checks to run against your own
//! implementation (feature `inbox-conformance`): the crate runs them against the
//! memory inbox and, behind their features, SQLite, PostgreSQL and Redis.
//!
//! [`inbox_conformance!(factory)`](crate::inbox_conformance) expands to one
//! `#[tokio::test]` per check (the calling crate needs `tokio` with its
//! `macros` and `rt-multi-thread` features); `factory` is an async
//! expression giving `Option<Fixture<I>>` (`None`: the service is not there
//! and the check is skipped, which the factory reports). Each check panics
//! on the first broken promise, naming it.
//!
//! ```ignore
//! use std::sync::Arc;
//! use alm_webhooks::inbox::{MemoryInbox, conformance::Fixture};
//!
//! async fn memory() -> Option<Fixture<MemoryInbox>> {
//!     Some(Fixture { inbox: Arc::new(MemoryInbox::new()), cleanup: None })
//! }
//! alm_webhooks::inbox_conformance!(memory());
//! ```

use std::sync::Arc;
use std::time::Duration;

mod archive;
mod attempts;
mod kept;
mod pause;
mod replay;
mod runs;
mod workers;

use time::OffsetDateTime;

use crate::AccountId;
use crate::inbox::{Inbox, LEASE_RAN_OUT, NewDeadLetter, NewDelivery, NewQuarantined, replay_body};

pub use archive::{
    the_archive_keeps_searches_reads_back_and_sweeps, workers_archive_each_decision,
};
pub use attempts::{
    a_retry_waits_and_holds_its_account_back, abandoned_attempts_are_counted_at_take,
    dead_letters_and_quarantine_keep_any_text, listings_page_after_an_id,
    workers_dead_letter_what_the_process_kept_dying_on, workers_keep_a_nul_in_a_dead_letter,
};
pub use kept::kept_of_counts_one_account;
pub use pause::{
    a_paused_account_waits_in_order_and_drains_on_resume,
    pausing_every_account_holds_all_until_resumed,
};
pub use replay::{
    a_cancelled_replay_queues_no_more_and_drops_its_step, a_replay_never_overtakes_a_live_delivery,
    a_rerun_runs_each_processed_event_once_more_and_changes_nothing,
    an_unprocessed_replay_runs_only_what_was_not_processed,
};
pub use runs::{
    a_dead_holder_of_a_run_costs_each_delivery_an_attempt,
    a_run_takes_one_accounts_next_deliveries_in_order,
    concurrent_runs_never_share_an_account_and_keep_its_order,
    concurrent_takers_never_share_a_delivery_or_an_account,
    workers_keep_an_accounts_order_across_runs,
};
pub use workers::{
    workers_outlive_a_hung_handler_and_a_panic, workers_retry_dead_letter_and_replay,
};

/// One learner event in ALM's shape.
pub(super) fn learner(id: &str, name: &str, ts: i64, user: u64, instance: &str) -> String {
    let lo = instance.rsplit_once('_').map_or(instance, |(lo, _)| lo);
    format!(
        r#"{{"eventId":"{id}","eventName":"{name}","timestamp":{ts},"data":{{"userId":{user},"loId":"{lo}","loInstanceId":"{instance}","progressPercent":50}}}}"#
    )
}

pub(super) const T0: i64 = 1_750_000_000;
pub(super) const LEASE: Duration = Duration::from_secs(30);

/// An inbox under test and whatever cleans its backend up when dropped
/// (a schema to drop, keys to delete, a file to remove).
#[allow(missing_debug_implementations)]
pub struct Fixture<I> {
    /// The inbox, empty.
    pub inbox: Arc<I>,
    /// Dropped when the check is over.
    pub cleanup: Option<Box<dyn Send + Sync>>,
}

/// Now, for checks whose leases may run on the backend's clock.
pub(super) fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

pub(super) fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(seconds).unwrap()
}

pub(super) fn delivery(account: u64, body: &[u8], t: i64) -> NewDelivery<'_> {
    NewDelivery {
        account_id: AccountId(account),
        body,
        received_at: at(t),
    }
}

fn letter(account: u64, id: &str) -> NewDeadLetter {
    NewDeadLetter {
        account_id: AccountId(account),
        event_id: Some(id.to_owned()),
        event_name: Some("COURSE_COMPLETED".to_owned()),
        event: format!(r#"{{"eventId":"{id}","eventName":"COURSE_COMPLETED"}}"#),
        error: format!("CRM down for {id}"),
        attempts: 3,
        at: at(T0),
    }
}

/// An appended delivery is taken with its exact bytes, account and time, and completed once.
pub async fn append_take_complete_keeps_the_exact_bytes<I: Inbox>(f: Fixture<I>) {
    let inbox = &f.inbox;
    let body = b"{\"accountId\":7,\"events\":[]}\xff\x00 exact";
    let id = inbox.append(delivery(7, body, T0)).await.unwrap();
    let taken = inbox
        .take(LEASE, at(T0))
        .await
        .unwrap()
        .expect("a delivery");
    assert_eq!(taken.id, id);
    assert_eq!(taken.body, body);
    assert_eq!(taken.account_id, AccountId(7));
    assert_eq!(taken.received_at, at(T0));
    assert_eq!(
        (taken.attempts, taken.abandoned, taken.last_error.as_deref()),
        (1, 0, None),
        "the take counted the first attempt"
    );
    assert!(inbox.complete(taken.id, taken.token, &[]).await.unwrap());
    assert!(inbox.take(LEASE, at(T0 + 100)).await.unwrap().is_none());
    assert!(
        !inbox.complete(taken.id, taken.token, &[]).await.unwrap(),
        "a completed delivery cannot be completed again"
    );
}

/// One account's deliveries are handed out in order, one at a time; another account's in parallel.
pub async fn one_account_in_order_one_at_a_time_others_in_parallel<I: Inbox>(f: Fixture<I>) {
    let inbox = &f.inbox;
    let a1 = inbox.append(delivery(1, b"a1", T0)).await.unwrap();
    let a2 = inbox.append(delivery(1, b"a2", T0)).await.unwrap();
    let b1 = inbox.append(delivery(2, b"b1", T0)).await.unwrap();
    assert!(a1 < a2 && a2 < b1, "ids grow in the order of appending");
    let first = inbox.take(LEASE, at(T0)).await.unwrap().unwrap();
    assert_eq!(first.id, a1);
    let second = inbox.take(LEASE, at(T0)).await.unwrap().unwrap();
    assert_eq!(second.id, b1, "another account in parallel");
    assert!(
        inbox.take(LEASE, at(T0)).await.unwrap().is_none(),
        "a2 waits behind a1"
    );
    assert!(inbox.complete(a1, first.token, &[]).await.unwrap());
    let third = inbox.take(LEASE, at(T0)).await.unwrap().unwrap();
    assert_eq!((third.id, third.body.as_slice()), (a2, &b"a2"[..]));
    assert!(inbox.complete(b1, second.token, &[]).await.unwrap());
    assert!(inbox.complete(a2, third.token, &[]).await.unwrap());
}

/// A lease can be renewed; once it runs out the delivery is taken again, counted as an abandoned attempt, and the old holder can no longer complete, renew, release, postpone or retry it. Leases may run on the backend's clock, so this check waits in real time.
pub async fn an_expired_lease_is_taken_again_and_the_old_holder_is_refused<I: Inbox>(
    f: Fixture<I>,
) {
    let inbox = &f.inbox;
    let lease = Duration::from_secs(2);
    let id = inbox.append(delivery(1, b"x", T0)).await.unwrap();
    let old = inbox.take(lease, now()).await.unwrap().unwrap();
    assert!(inbox.take(LEASE, now()).await.unwrap().is_none());
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(inbox.renew(id, old.token, lease, now()).await.unwrap());
    tokio::time::sleep(Duration::from_millis(1400)).await;
    assert!(
        inbox.take(LEASE, now()).await.unwrap().is_none(),
        "renewed for 2 s at 1 s, so still leased at 2.4 s"
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let new = inbox.take(LEASE, now()).await.unwrap().unwrap();
    assert_eq!(new.id, id);
    assert_ne!(new.token, old.token);
    assert_eq!(
        (new.attempts, new.abandoned, new.last_error.as_deref()),
        (2, 1, Some(LEASE_RAN_OUT)),
        "the attempt whose lease ran out is counted, as abandoned"
    );
    assert!(
        !inbox
            .complete(id, old.token, &[letter(1, "x")])
            .await
            .unwrap()
    );
    assert!(!inbox.renew(id, old.token, LEASE, now()).await.unwrap());
    assert!(!inbox.release(id, old.token).await.unwrap());
    assert!(!inbox.retry_later(id, old.token, now(), "x").await.unwrap());
    assert!(!inbox.postpone(id, old.token, now(), "x").await.unwrap());
    assert!(inbox.complete(id, new.token, &[]).await.unwrap());
    assert!(
        inbox.dead_letters(10).await.unwrap().is_empty(),
        "the refused complete wrote nothing"
    );
}

/// Completing keeps dead letters, which can be listed, read, replayed (as a one-event delivery) and discarded.
pub async fn complete_keeps_dead_letters_to_list_replay_and_discard<I: Inbox>(f: Fixture<I>) {
    let inbox = &f.inbox;
    let id = inbox.append(delivery(5, b"d", T0)).await.unwrap();
    let taken = inbox.take(LEASE, at(T0)).await.unwrap().unwrap();
    let letters = [letter(5, "e1"), letter(5, "e2")];
    assert!(inbox.complete(id, taken.token, &letters).await.unwrap());
    let listed = inbox.dead_letters(10).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(
        listed[0].letter, letters[0],
        "oldest first, every field kept"
    );
    assert_eq!(listed[1].letter, letters[1]);
    assert_eq!(inbox.dead_letters(1).await.unwrap().len(), 1);
    let one = inbox.dead_letter(listed[1].id).await.unwrap().unwrap();
    assert_eq!(one.letter.event_id.as_deref(), Some("e2"));

    let replayed = inbox
        .replay_dead_letter(listed[0].id, at(T0 + 5))
        .await
        .unwrap()
        .expect("replayed");
    assert!(inbox.dead_letter(listed[0].id).await.unwrap().is_none());
    let taken = inbox.take(LEASE, at(T0 + 5)).await.unwrap().unwrap();
    assert_eq!(taken.id, replayed);
    assert_eq!(taken.body, replay_body(AccountId(5), &letters[0].event));
    assert!(
        inbox
            .replay_dead_letter(listed[0].id, at(T0 + 5))
            .await
            .unwrap()
            .is_none()
    );

    assert!(inbox.discard_dead_letter(listed[1].id).await.unwrap());
    assert!(!inbox.discard_dead_letter(listed[1].id).await.unwrap());
    assert!(inbox.dead_letters(10).await.unwrap().is_empty());
}

/// Quarantined bodies keep their exact bytes, can be listed, read, replayed as a delivery and discarded.
pub async fn quarantine_keeps_the_bytes_and_replays_them<I: Inbox>(f: Fixture<I>) {
    let inbox = &f.inbox;
    let bad = b"{\"accountId\":9,\"events\":[1,]}\xfe";
    let q1 = inbox
        .quarantine(NewQuarantined {
            account_id: Some(AccountId(9)),
            body: bad,
            error: "trailing comma",
            received_at: at(T0),
        })
        .await
        .unwrap();
    let q2 = inbox
        .quarantine(NewQuarantined {
            account_id: None,
            body: b"nope",
            error: "invalid JSON",
            received_at: at(T0 + 1),
        })
        .await
        .unwrap();
    let listed = inbox.quarantined(10).await.unwrap();
    assert_eq!(
        listed.iter().map(|q| q.id).collect::<Vec<_>>(),
        [q1, q2],
        "oldest first"
    );
    assert_eq!(listed[0].body, bad);
    assert_eq!(listed[0].account_id, Some(AccountId(9)));
    assert_eq!(listed[0].error, "trailing comma");
    assert_eq!(listed[0].received_at, at(T0));
    assert_eq!(listed[1].account_id, None);
    assert_eq!(
        inbox.quarantined_body(q2).await.unwrap().unwrap().body,
        b"nope"
    );

    let requeued = inbox
        .replay_quarantined(q1, AccountId(9), at(T0 + 2))
        .await
        .unwrap()
        .expect("requeued");
    let taken = inbox.take(LEASE, at(T0 + 2)).await.unwrap().unwrap();
    assert_eq!((taken.id, taken.body.as_slice()), (requeued, &bad[..]));
    assert!(inbox.quarantined_body(q1).await.unwrap().is_none());
    assert!(
        inbox
            .replay_quarantined(q1, AccountId(9), at(T0 + 2))
            .await
            .unwrap()
            .is_none()
    );
    assert!(inbox.discard_quarantined(q2).await.unwrap());
    assert!(!inbox.discard_quarantined(q2).await.unwrap());
    assert!(inbox.quarantined(10).await.unwrap().is_empty());
}

/// The stats count pending, in-flight and retrying deliveries, dead letters and quarantined bodies, and the oldest delivery's age.
pub async fn stats_count_every_kind<I: Inbox>(f: Fixture<I>) {
    let inbox = &f.inbox;
    let empty = inbox.stats(at(T0)).await.unwrap();
    assert_eq!((empty.pending, empty.in_flight, empty.retrying), (0, 0, 0));
    assert_eq!(empty.oldest_pending_age, None);
    inbox.append(delivery(1, b"1", T0)).await.unwrap();
    inbox.append(delivery(2, b"2", T0 + 1)).await.unwrap();
    inbox.append(delivery(3, b"3", T0 + 2)).await.unwrap();
    inbox.append(delivery(3, b"3b", T0 + 3)).await.unwrap();
    let one = inbox.take(LEASE, at(T0 + 10)).await.unwrap().unwrap();
    let two = inbox.take(LEASE, at(T0 + 10)).await.unwrap().unwrap();
    assert!(
        inbox
            .retry_later(two.id, two.token, at(T0 + 100), "x")
            .await
            .unwrap()
    );
    inbox
        .quarantine(NewQuarantined {
            account_id: None,
            body: b"q",
            error: "e",
            received_at: at(T0),
        })
        .await
        .unwrap();
    let stats = inbox.stats(at(T0 + 10)).await.unwrap();
    assert_eq!(
        (stats.pending, stats.in_flight, stats.retrying),
        (2, 1, 1),
        "{stats:?}"
    );
    assert_eq!((stats.dead_letters, stats.quarantined), (0, 1));
    assert_eq!(stats.quarantined_bytes, 1, "the quarantined body's bytes");
    assert_eq!(stats.oldest_pending_age, Some(Duration::from_secs(10)));
    assert!(
        inbox
            .complete(one.id, one.token, &[letter(1, "z")])
            .await
            .unwrap()
    );
    let stats = inbox.stats(at(T0 + 10)).await.unwrap();
    assert_eq!(
        (stats.pending, stats.in_flight, stats.dead_letters),
        (2, 0, 1)
    );
    assert_eq!(stats.oldest_pending_age, Some(Duration::from_secs(9)));
}

/// One `#[tokio::test]` per check of [`conformance::inbox`](crate::conformance::inbox),
/// on the inbox `$factory` gives.
#[macro_export]
macro_rules! inbox_conformance {
    ($factory:expr) => {
        $crate::inbox_conformance!(@tests $factory;
            append_take_complete_keeps_the_exact_bytes,
            one_account_in_order_one_at_a_time_others_in_parallel,
            an_expired_lease_is_taken_again_and_the_old_holder_is_refused,
            a_retry_waits_and_holds_its_account_back,
            complete_keeps_dead_letters_to_list_replay_and_discard,
            quarantine_keeps_the_bytes_and_replays_them,
            stats_count_every_kind,
            kept_of_counts_one_account,
            listings_page_after_an_id,
            concurrent_takers_never_share_a_delivery_or_an_account,
            workers_retry_dead_letter_and_replay,
            abandoned_attempts_are_counted_at_take,
            dead_letters_and_quarantine_keep_any_text,
            workers_dead_letter_what_the_process_kept_dying_on,
            workers_keep_a_nul_in_a_dead_letter,
            workers_outlive_a_hung_handler_and_a_panic,
            a_paused_account_waits_in_order_and_drains_on_resume,
            pausing_every_account_holds_all_until_resumed,
            the_archive_keeps_searches_reads_back_and_sweeps,
            workers_archive_each_decision,
            a_rerun_runs_each_processed_event_once_more_and_changes_nothing,
            an_unprocessed_replay_runs_only_what_was_not_processed,
            a_replay_never_overtakes_a_live_delivery,
            a_cancelled_replay_queues_no_more_and_drops_its_step,
            a_run_takes_one_accounts_next_deliveries_in_order,
            a_dead_holder_of_a_run_costs_each_delivery_an_attempt,
            concurrent_runs_never_share_an_account_and_keep_its_order,
            workers_keep_an_accounts_order_across_runs
        );
    };
    (@tests $factory:expr; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if let Some(fixture) = $factory.await {
                    $crate::conformance::inbox::$name(fixture).await;
                }
            }
        )*
    };
}
