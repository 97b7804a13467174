//! Pausing and resuming an account, or every account.

use super::{Fixture, LEASE, T0, at, delivery};
use crate::AccountId;
use crate::inbox::{Inbox, Pause, PauseScope};

fn account(n: u64) -> PauseScope {
    PauseScope::Account(AccountId(n))
}

/// Takes the next delivery at `T0` and completes it; its body.
async fn take_and_complete<I: Inbox>(inbox: &I) -> Option<Vec<u8>> {
    let taken = inbox.take(LEASE, at(T0)).await.unwrap()?;
    assert!(inbox.complete(taken.id, taken.token, &[]).await.unwrap());
    Some(taken.body)
}

/// A paused account's deliveries are appended and wait, in order, while
/// other accounts' are taken; a delivery taken before the pause finishes;
/// resuming drains them in order; pausing again keeps the first time.
pub async fn a_paused_account_waits_in_order_and_drains_on_resume<I: Inbox>(f: Fixture<I>) {
    let inbox = &*f.inbox;
    inbox.append(delivery(1, b"a0", T0)).await.unwrap();
    let before = inbox.take(LEASE, at(T0)).await.unwrap().expect("a0");
    inbox.pause(account(1), at(T0)).await.unwrap();
    inbox.pause(account(1), at(T0 + 5)).await.unwrap();
    assert_eq!(
        inbox.pauses().await.unwrap(),
        vec![Pause::new(account(1), at(T0))],
        "pausing again keeps the first pause's time"
    );
    assert!(
        inbox.complete(before.id, before.token, &[]).await.unwrap(),
        "a delivery taken before the pause finishes"
    );
    for body in [&b"a1"[..], b"a2", b"a3"] {
        inbox.append(delivery(1, body, T0)).await.unwrap();
    }
    inbox.append(delivery(2, b"b1", T0)).await.unwrap();
    assert_eq!(take_and_complete(inbox).await.as_deref(), Some(&b"b1"[..]));
    assert_eq!(take_and_complete(inbox).await, None, "account 1 is paused");
    assert_eq!(inbox.stats(at(T0)).await.unwrap().pending, 3, "they wait");
    assert!(inbox.resume(account(1)).await.unwrap());
    assert!(
        !inbox.resume(account(1)).await.unwrap(),
        "nothing left to lift"
    );
    assert!(inbox.pauses().await.unwrap().is_empty());
    for body in [&b"a1"[..], b"a2", b"a3"] {
        assert_eq!(take_and_complete(inbox).await.as_deref(), Some(body));
    }
    assert_eq!(take_and_complete(inbox).await, None);
}

/// Pausing every account takes nothing; resuming every account lifts each
/// pause, one account's too; an account resumed while every account is
/// paused stays held.
pub async fn pausing_every_account_holds_all_until_resumed<I: Inbox>(f: Fixture<I>) {
    let inbox = &*f.inbox;
    inbox.pause(PauseScope::All, at(T0)).await.unwrap();
    inbox.pause(account(3), at(T0 + 1)).await.unwrap();
    inbox.append(delivery(3, b"c1", T0)).await.unwrap();
    inbox.append(delivery(4, b"d1", T0)).await.unwrap();
    assert_eq!(take_and_complete(inbox).await, None, "every account paused");
    assert_eq!(
        inbox.pauses().await.unwrap(),
        vec![
            Pause::new(PauseScope::All, at(T0)),
            Pause::new(account(3), at(T0 + 1))
        ],
        "every account first, then by account"
    );
    assert!(inbox.resume(account(3)).await.unwrap());
    assert_eq!(take_and_complete(inbox).await, None, "still held by All");
    inbox.pause(account(4), at(T0 + 2)).await.unwrap();
    assert!(inbox.resume(PauseScope::All).await.unwrap());
    assert!(
        inbox.pauses().await.unwrap().is_empty(),
        "every pause lifted"
    );
    assert_eq!(take_and_complete(inbox).await.as_deref(), Some(&b"c1"[..]));
    assert_eq!(take_and_complete(inbox).await.as_deref(), Some(&b"d1"[..]));
    assert!(!inbox.resume(PauseScope::All).await.unwrap());
}
