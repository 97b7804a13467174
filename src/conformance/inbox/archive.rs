//! The archive: what a completion keeps, how it is searched and read back
//! in order, and how it is swept.

use std::sync::Arc;
use std::time::Duration;

use super::{Fixture, LEASE, T0, at, delivery, learner};
use crate::inbox::{
    ArchiveFilter, ArchivedEvent, FoundEvent, Inbox, RetryPolicy, WorkerOptions, Workers,
};
use crate::{AccountId, BoxError, Engine, Event, EventName, UserId};

/// Takes the next delivery at `t` and completes it, archiving `events`.
async fn take_and_archive<I: Inbox>(inbox: &I, t: i64, events: &[ArchivedEvent]) {
    let taken = inbox.take(LEASE, at(t)).await.unwrap().expect("a delivery");
    assert!(
        inbox
            .complete_archived(taken.id, taken.token, &[], events)
            .await
            .unwrap()
    );
}

fn event(index: u32, id: &str, user: u64, instance: &str, decision: &str) -> ArchivedEvent {
    ArchivedEvent::new(index, decision)
        .with_event_id(id.parse().unwrap())
        .with_event_name(EventName::from("LEARNER_PROGRESS"))
        .with_user_id(UserId(user))
        .with_lo_instance_id(instance.parse().unwrap())
        .with_timestamp(at(T0 - 60))
}

fn ids(found: &[FoundEvent]) -> Vec<String> {
    found
        .iter()
        .map(|f| f.event.event_id.as_ref().unwrap().as_str().to_owned())
        .collect()
}

/// A completion that archives keeps the exact bytes (any bytes), the
/// account, the time received and every event's decision; a plain
/// completion keeps nothing; the archive is searched by `eventId`,
/// learner, instance (in any spelling), account, event name and time
/// received, read back by time received with a cursor and a filter on
/// events, and swept oldest first, at most as many as asked.
pub async fn the_archive_keeps_searches_reads_back_and_sweeps<I: Inbox>(f: Fixture<I>) {
    let inbox = &*f.inbox;
    let odd = b"{\"accountId\":1,\0\xff}";
    inbox.append(delivery(1, odd, T0)).await.unwrap();
    inbox.append(delivery(2, b"b1", T0 + 10)).await.unwrap();
    inbox.append(delivery(1, b"a2", T0 + 20)).await.unwrap();
    inbox.append(delivery(1, b"plain", T0 + 30)).await.unwrap();
    let failed = event(1, "e2", 8, "course:1_2", "failed").with_outcome(
        Some("dead_lettered"),
        3,
        Some("CRM \0 down"),
    );
    take_and_archive(
        inbox,
        T0,
        &[event(0, "e1", 7, "course:1_2", "processed"), failed.clone()],
    )
    .await;
    take_and_archive(
        inbox,
        T0,
        &[event(0, "e3", 7, "learning_program:5_6", "duplicate")],
    )
    .await;
    take_and_archive(inbox, T0, &[event(0, "e4", 7, "course:1_2", "ignored")]).await;
    let plain = inbox.take(LEASE, at(T0)).await.unwrap().unwrap();
    assert!(inbox.complete(plain.id, plain.token, &[]).await.unwrap());

    let all = ArchiveFilter::new();
    let everything = inbox.search_archive(&all, 100).await.unwrap();
    assert_eq!(
        ids(&everything),
        ["e1", "e2", "e3", "e4"],
        "by time received, then position; a plain completion keeps nothing"
    );
    assert_eq!(everything[1].event, failed, "every field as given");
    assert_eq!(
        (everything[1].account_id, everything[1].received_at),
        (AccountId(1), at(T0))
    );
    assert_eq!(everything[2].received_at, at(T0 + 10));
    let by_user = inbox
        .search_archive(&all.clone().with_user_id(UserId(7)), 100)
        .await
        .unwrap();
    assert_eq!(ids(&by_user), ["e1", "e3", "e4"]);
    let by_id = inbox
        .search_archive(&all.clone().with_event_id("e3".parse().unwrap()), 100)
        .await
        .unwrap();
    assert_eq!(
        (ids(&by_id), by_id[0].account_id),
        (vec!["e3".to_owned()], AccountId(2))
    );
    let spelled = all
        .clone()
        .with_lo_instance_id("learningProgram:5_6".parse().unwrap());
    assert_eq!(
        ids(&inbox.search_archive(&spelled, 100).await.unwrap()),
        ["e3"],
        "any spelling"
    );
    let ranged = all
        .clone()
        .with_user_id(UserId(7))
        .received_from(at(T0 + 10))
        .received_before(at(T0 + 20));
    assert_eq!(
        ids(&inbox.search_archive(&ranged, 100).await.unwrap()),
        ["e3"],
        "[from, to)"
    );
    let of_one = all
        .clone()
        .with_account_id(AccountId(1))
        .with_user_id(UserId(7));
    assert_eq!(
        ids(&inbox.search_archive(&of_one, 1).await.unwrap()),
        ["e1"],
        "limited"
    );
    let named = all
        .clone()
        .with_event_names([EventName::from("COURSE_COMPLETED")]);
    assert!(inbox.search_archive(&named, 100).await.unwrap().is_empty());

    let first = inbox.archived(&all, None, 2).await.unwrap();
    assert_eq!(first.len(), 2);
    assert_eq!(
        (first[0].body.as_slice(), first[0].account_id),
        (&odd[..], AccountId(1))
    );
    assert_eq!((first[0].received_at, first[0].events.len()), (at(T0), 2));
    assert_eq!(first[0].events[1], failed);
    assert_eq!(first[1].body, b"b1");
    let rest = inbox
        .archived(&all, Some(first[1].cursor()), 10)
        .await
        .unwrap();
    assert_eq!(
        rest.iter().map(|d| d.body.clone()).collect::<Vec<_>>(),
        [b"a2".to_vec()]
    );
    let of_user = all.clone().with_user_id(UserId(8));
    let with_e2 = inbox.archived(&of_user, None, 10).await.unwrap();
    assert_eq!(with_e2.len(), 1, "the deliveries with a matching event");
    assert_eq!(with_e2[0].events.len(), 2, "with all their events");
    let account_1 = all
        .clone()
        .with_account_id(AccountId(1))
        .received_from(at(T0 + 1));
    let later = inbox.archived(&account_1, None, 10).await.unwrap();
    assert_eq!(
        later.iter().map(|d| d.body.clone()).collect::<Vec<_>>(),
        [b"a2".to_vec()]
    );

    assert_eq!(
        inbox.sweep_archive(at(T0 + 15), 1).await.unwrap(),
        1,
        "one step"
    );
    assert_eq!(
        ids(&inbox.search_archive(&all, 100).await.unwrap()),
        ["e3", "e4"],
        "oldest first"
    );
    assert_eq!(inbox.sweep_archive(at(T0 + 15), 10).await.unwrap(), 1);
    assert_eq!(
        inbox.sweep_archive(at(T0 + 15), 10).await.unwrap(),
        0,
        "nothing older"
    );
    assert_eq!(ids(&inbox.search_archive(&all, 100).await.unwrap()), ["e4"]);
    assert_eq!(inbox.archived(&all, None, 10).await.unwrap().len(), 1);
}

/// Workers archive each delivery they complete with each event's
/// decision: processed, ignored by a rule (with its code), rejected (with
/// the parser's error), failed and dead-lettered (with the handler's
/// error and the attempt); with the archive off, they archive nothing.
pub async fn workers_archive_each_decision<I: Inbox>(f: Fixture<I>) {
    let inbox = Arc::clone(&f.inbox);
    let record = "course:1_2";
    let events = [
        learner("done", "COURSE_COMPLETED", T0, 7, record),
        learner("late", "LEARNER_PROGRESS", T0 - 10, 7, record),
        r#"{"eventId":"bad","eventName":"COURSE_ENROLLMENT","timestamp":1,"data":{"userId":"x"}}"#
            .to_owned(),
        learner("doomed", "COURSE_ENROLLMENT", T0, 9, "course:3_4"),
    ];
    let body = format!(r#"{{"accountId":1,"events":[{}]}}"#, events.join(","));
    inbox
        .append(delivery(1, body.as_bytes(), T0))
        .await
        .unwrap();
    let handler = |event: Event| async move {
        if event.event_id.as_str() == "doomed" {
            return Err::<(), BoxError>("CRM refused".into());
        }
        Ok(())
    };
    let once = RetryPolicy {
        max_attempts: 1,
        base: Duration::ZERO,
        max: Duration::ZERO,
    };
    let workers = Workers::new(Engine::in_memory(), Arc::clone(&inbox))
        .with_options(WorkerOptions::new().with_retry(once));
    assert!(workers.run_once(&handler).await.unwrap());
    let all = ArchiveFilter::new();
    let archived = inbox.archived(&all, None, 10).await.unwrap();
    assert_eq!(archived.len(), 1);
    assert_eq!(archived[0].body, body.as_bytes(), "the exact bytes");
    let seen: Vec<_> = archived[0]
        .events
        .iter()
        .map(|e| {
            (
                e.index,
                e.event_id.as_ref().map(|i| i.as_str().to_owned()),
                e.decision.as_str(),
                e.reason.as_deref(),
                e.attempts,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (0, Some("done".to_owned()), "processed", None, 1),
            (
                1,
                Some("late".to_owned()),
                "ignored",
                Some("progress_after_completion"),
                1
            ),
            (2, Some("bad".to_owned()), "rejected", None, 1),
            (
                3,
                Some("doomed".to_owned()),
                "failed",
                Some("dead_lettered"),
                1
            ),
        ]
    );
    let done = &archived[0].events[0];
    assert_eq!(
        (done.user_id, done.lo_instance_id.as_ref().unwrap().as_str()),
        (Some(UserId(7)), record)
    );
    assert_eq!(done.timestamp, Some(at(T0)));
    assert!(
        archived[0].events[2]
            .error
            .as_deref()
            .unwrap()
            .contains("userId")
    );
    assert_eq!(archived[0].events[3].error.as_deref(), Some("CRM refused"));
    let found = inbox
        .search_archive(&all.clone().with_user_id(UserId(9)), 10)
        .await
        .unwrap();
    assert_eq!(ids(&found), ["doomed"]);

    inbox
        .append(delivery(1, br#"{"accountId":1,"events":[]}"#, T0))
        .await
        .unwrap();
    let off = Workers::new(Engine::in_memory(), Arc::clone(&inbox))
        .with_options(WorkerOptions::new().with_archive(Duration::ZERO));
    assert!(off.run_once(&handler).await.unwrap());
    assert_eq!(
        inbox.archived(&all, None, 10).await.unwrap().len(),
        1,
        "the archive off keeps nothing"
    );
}
