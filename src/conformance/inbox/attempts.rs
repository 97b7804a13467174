//! The checks about attempts counted at take, deliveries whose process kept
//! dying, and dead letters and quarantined bodies that keep any text.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Fixture, LEASE, T0, at, delivery, learner, now};
use crate::inbox::{
    Inbox, LEASE_RAN_OUT, NewDeadLetter, NewQuarantined, Progress, RetryPolicy, Workers,
    replay_body,
};
use crate::{AccountId, BoxError, Engine, Event};

/// Lets `times` attempts of the delivery at the head of the inbox run out
/// their lease with no word, as a process that died or hung would.
async fn abandon<I: Inbox>(inbox: &I, times: u32) {
    let short = Duration::from_millis(300);
    for n in 1..=times {
        let taken = inbox.take(short, now()).await.unwrap().expect("a delivery");
        assert_eq!(taken.attempts, n, "attempt {n}, counted at take");
        tokio::time::sleep(Duration::from_millis(450)).await;
    }
}

/// Every take counts an attempt; a lease that ran out with no word from its worker is counted as an abandoned attempt and recorded as the last error, until a retry records its own.
pub async fn abandoned_attempts_are_counted_at_take<I: Inbox>(f: Fixture<I>) {
    let inbox = &f.inbox;
    let id = inbox.append(delivery(3, b"crash", T0)).await.unwrap();
    abandon(&**inbox, 3).await;
    let fourth = inbox.take(LEASE, now()).await.unwrap().unwrap();
    assert_eq!(fourth.id, id);
    assert_eq!(
        (
            fourth.attempts,
            fourth.abandoned,
            fourth.last_error.as_deref()
        ),
        (4, 3, Some(LEASE_RAN_OUT)),
        "three crashes and this attempt"
    );
    let retry_at = now();
    assert!(
        inbox
            .retry_later(id, fourth.token, retry_at, "CRM down")
            .await
            .unwrap()
    );
    let fifth = inbox.take(LEASE, retry_at).await.unwrap().unwrap();
    assert_eq!(
        (fifth.attempts, fifth.abandoned, fifth.last_error.as_deref()),
        (5, 3, Some("CRM down")),
        "a retry is no abandoned attempt"
    );
    assert!(inbox.complete(id, fifth.token, &[]).await.unwrap());
}

/// A delivery given back for a retry waits until its time, with its attempts and error, and holds its account's later deliveries back; a release and a postponement count no attempt.
pub async fn a_retry_waits_and_holds_its_account_back<I: Inbox>(f: Fixture<I>) {
    let inbox = &f.inbox;
    let a1 = inbox.append(delivery(1, b"a1", T0)).await.unwrap();
    inbox.append(delivery(1, b"a2", T0)).await.unwrap();
    let taken = inbox.take(LEASE, at(T0)).await.unwrap().unwrap();
    assert_eq!(taken.attempts, 1);
    assert!(
        inbox
            .retry_later(a1, taken.token, at(T0 + 60), "CRM down")
            .await
            .unwrap()
    );
    assert!(
        inbox.take(LEASE, at(T0 + 1)).await.unwrap().is_none(),
        "neither a1 (not yet) nor a2 (behind a1)"
    );
    let stats = inbox.stats(at(T0 + 1)).await.unwrap();
    assert_eq!((stats.pending, stats.in_flight, stats.retrying), (1, 0, 1));
    let again = inbox.take(LEASE, at(T0 + 61)).await.unwrap().unwrap();
    assert_eq!(again.id, a1);
    assert_eq!(
        (again.attempts, again.abandoned, again.last_error.as_deref()),
        (2, 0, Some("CRM down"))
    );
    assert!(inbox.release(a1, again.token).await.unwrap());
    let released = inbox.take(LEASE, at(T0 + 61)).await.unwrap().unwrap();
    assert_eq!(
        (released.id, released.attempts, released.abandoned),
        (a1, 2, 0),
        "a release counts no attempt"
    );
    assert!(
        inbox
            .postpone(a1, released.token, at(T0 + 70), "store unavailable")
            .await
            .unwrap()
    );
    assert!(
        inbox.take(LEASE, at(T0 + 65)).await.unwrap().is_none(),
        "a postponed delivery waits for its time, and its account behind it"
    );
    let postponed = inbox.take(LEASE, at(T0 + 71)).await.unwrap().unwrap();
    assert_eq!(
        (postponed.id, postponed.attempts, postponed.abandoned),
        (a1, 2, 0),
        "a postponement counts no attempt"
    );
    assert_eq!(postponed.last_error.as_deref(), Some("store unavailable"));
}

/// Dead letters keep their texts exactly (a NUL included: a malformed event's `eventId` may hold one), and quarantined bodies their bytes and error (NUL, invalid UTF-8).
pub async fn dead_letters_and_quarantine_keep_any_text<I: Inbox>(f: Fixture<I>) {
    let inbox = &f.inbox;
    inbox.append(delivery(4, b"d", T0)).await.unwrap();
    let taken = inbox.take(LEASE, at(T0)).await.unwrap().unwrap();
    let letter = NewDeadLetter {
        account_id: AccountId(4),
        event_id: Some("a\0b".to_owned()),
        event_name: Some("COURSE\0ENROLLMENT".to_owned()),
        event: r#"{"eventId":"a\u0000b","eventName":"COURSE\u0000ENROLLMENT","note":"é\\"}"#
            .to_owned(),
        error: "event a\0b: missing `data`".to_owned(),
        attempts: 1,
        at: at(T0),
    };
    assert!(
        inbox
            .complete(taken.id, taken.token, std::slice::from_ref(&letter))
            .await
            .unwrap(),
        "a dead letter holding a NUL is kept"
    );
    let kept = inbox.dead_letters(10).await.unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].letter, letter, "every text read back exactly");
    let replayed = inbox
        .replay_dead_letter(kept[0].id, at(T0 + 1))
        .await
        .unwrap()
        .unwrap();
    let again = inbox.take(LEASE, at(T0 + 1)).await.unwrap().unwrap();
    assert_eq!(again.id, replayed);
    assert_eq!(again.body, replay_body(AccountId(4), &letter.event));

    let body = b"{\"accountId\":4,\x00\xff\xfe\"events\":}";
    let error = "invalid byte \0 at 15";
    let q = inbox
        .quarantine(NewQuarantined {
            account_id: Some(AccountId(4)),
            body,
            error,
            received_at: at(T0),
        })
        .await
        .unwrap();
    let kept = inbox.quarantined_body(q).await.unwrap().unwrap();
    assert_eq!(
        (kept.body.as_slice(), kept.error.as_str()),
        (&body[..], error)
    );
}

fn envelope(account: u64, events: &[String]) -> Vec<u8> {
    format!(
        r#"{{"accountId":{account},"events":[{}]}}"#,
        events.join(",")
    )
    .into_bytes()
}

/// Drains the inbox with `workers`.
async fn drain<I: Inbox, H, Fut>(workers: &Workers<crate::store::MemoryStore, I>, handler: &H)
where
    H: Fn(Event) -> Fut + Send + Sync,
    Fut: std::future::Future<Output = Result<(), BoxError>> + Send,
{
    while workers.run_once(handler).await.unwrap() {}
}

/// A delivery whose process died (its lease ran out) as many times as the retry policy allows does not run the event it died on again: the first event left undecided (the attempts after a crash run one event at a time) becomes a dead letter saying so, reported once; the rest of the delivery and the account go on.
pub async fn workers_dead_letter_what_the_process_kept_dying_on<I: Inbox>(f: Fixture<I>) {
    let inbox = Arc::clone(&f.inbox);
    let record = "course:1_2";
    let crashing = envelope(
        6,
        &[
            learner("boom", "COURSE_ENROLLMENT", T0, 7, record),
            learner("boom2", "COURSE_ENROLLMENT", T0, 8, record),
        ],
    );
    let next = envelope(6, &[learner("next", "COURSE_ENROLLMENT", T0, 9, record)]);
    for body in [&crashing, &next] {
        inbox.append(delivery(6, body, T0)).await.unwrap();
    }
    abandon(&*inbox, 3).await;

    let calls: Arc<Mutex<Vec<String>>> = Arc::default();
    let handler = {
        let calls = Arc::clone(&calls);
        move |event: Event| {
            calls
                .lock()
                .unwrap()
                .push(event.event_id.as_str().to_owned());
            async { Ok(()) }
        }
    };
    let reported: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = Arc::clone(&reported);
    let workers = Workers::new(Engine::in_memory(), Arc::clone(&inbox)).with_options(
        crate::inbox::WorkerOptions::new()
            .with_retry(RetryPolicy {
                max_attempts: 3,
                base: Duration::ZERO,
                max: Duration::ZERO,
            })
            .with_observer(move |p| {
                if let Progress::DeadLettered { letter } = p {
                    let id = letter.event_id.clone().unwrap_or_default();
                    sink.lock().unwrap().push(id);
                }
            }),
    );
    drain(&workers, &handler).await;

    // The first event left undecided is the one the process kept dying on
    // (the attempts before ran one event at a time): only it is given up;
    // the good event beside it is processed, once.
    assert_eq!(
        *calls.lock().unwrap(),
        ["boom2", "next"],
        "the handler never ran again on what the process died on; its neighbour and the account went on"
    );
    let letters = inbox.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = &letters[0].letter;
    assert_eq!(letter.event_id.as_deref(), Some("boom"));
    assert!(
        letter
            .error
            .starts_with("the process died or hung 3 times while handling it"),
        "the true reason: {}",
        letter.error
    );
    assert_eq!(letter.attempts, 3);
    assert_eq!(
        *reported.lock().unwrap(),
        ["boom"],
        "the dead letter reported once"
    );
    let stats = inbox.stats(now()).await.unwrap();
    assert_eq!((stats.pending, stats.in_flight, stats.retrying), (0, 0, 0));
}

/// A malformed event whose `eventId` holds a NUL is kept as a dead letter with that exact id, and its delivery completes instead of being taken again forever.
pub async fn workers_keep_a_nul_in_a_dead_letter<I: Inbox>(f: Fixture<I>) {
    let inbox = Arc::clone(&f.inbox);
    let bad = r#"{"eventId":"nul\u0000id","eventName":"COURSE_ENROLLMENT","timestamp":1,"data":{"userId":"x"}}"#;
    let body = envelope(5, &[bad.to_owned()]);
    inbox.append(delivery(5, &body, T0)).await.unwrap();
    let workers = Workers::new(Engine::in_memory(), Arc::clone(&inbox));
    let handler = |_event: Event| async { Ok(()) };
    assert!(workers.run_once(&handler).await.unwrap());
    let stats = inbox.stats(now()).await.unwrap();
    assert_eq!(
        (
            stats.pending,
            stats.in_flight,
            stats.retrying,
            stats.dead_letters
        ),
        (0, 0, 0, 1),
        "completed, with its dead letter kept: {stats:?}"
    );
    let letter = &inbox.dead_letters(10).await.unwrap()[0].letter;
    assert_eq!(letter.event, bad, "the event as sent");
    assert_eq!(
        letter.event_id.as_deref(),
        Some("nul\0id"),
        "the exact eventId"
    );
    assert!(letter.error.contains("userId"), "{}", letter.error);
}

/// Dead letters and quarantined bodies are listed in pages: the entries
/// after an id, oldest first, at most the limit asked.
pub async fn listings_page_after_an_id<I: Inbox>(f: Fixture<I>) {
    let inbox = &f.inbox;
    inbox.append(delivery(1, b"1", T0)).await.unwrap();
    let taken = inbox.take(LEASE, at(T0)).await.unwrap().unwrap();
    let letters: Vec<NewDeadLetter> = (0..5)
        .map(|n| NewDeadLetter {
            account_id: AccountId(1),
            event_id: Some(format!("e{n}")),
            event_name: None,
            event: format!("{n}"),
            error: "x".to_owned(),
            attempts: 1,
            at: at(T0),
        })
        .collect();
    assert!(
        inbox
            .complete(taken.id, taken.token, &letters)
            .await
            .unwrap()
    );
    for n in 0..5 {
        let body = format!("q{n}");
        let kept = NewQuarantined {
            account_id: None,
            body: body.as_bytes(),
            error: "e",
            received_at: at(T0),
        };
        inbox.quarantine(kept).await.unwrap();
    }
    let first = inbox.dead_letters_after(None, 2).await.unwrap();
    let events: Vec<&str> = first.iter().map(|d| d.letter.event.as_str()).collect();
    assert_eq!(events, ["0", "1"]);
    let next = inbox
        .dead_letters_after(Some(first[1].id), 2)
        .await
        .unwrap();
    let events: Vec<&str> = next.iter().map(|d| d.letter.event.as_str()).collect();
    assert_eq!(events, ["2", "3"]);
    let rest = inbox
        .dead_letters_after(Some(next[1].id), 10)
        .await
        .unwrap();
    assert_eq!(rest.len(), 1);
    assert!(
        inbox
            .dead_letters_after(Some(rest[0].id), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let first = inbox.quarantined_after(None, 3).await.unwrap();
    let bodies: Vec<&[u8]> = first.iter().map(|q| q.body.as_slice()).collect();
    assert_eq!(bodies, [b"q0".as_slice(), b"q1", b"q2"]);
    let next = inbox.quarantined_after(Some(first[2].id), 3).await.unwrap();
    let bodies: Vec<&[u8]> = next.iter().map(|q| q.body.as_slice()).collect();
    assert_eq!(bodies, [b"q3".as_slice(), b"q4"]);
}
