//! What an inbox keeps of one account: counted as it is kept, discarded,
//! replayed and replayed.

use super::{Fixture, LEASE, T0, at, delivery, letter};
use crate::AccountId;
use crate::inbox::{Inbox, KeptCounts, NewQuarantined};

/// Completes one delivery of `account`, keeping `letters` dead letters of it.
async fn dead_letters<I: Inbox>(inbox: &I, account: u64, letters: usize) {
    inbox.append(delivery(account, b"{}", T0)).await.unwrap();
    let taken = inbox
        .take(LEASE, at(T0))
        .await
        .unwrap()
        .expect("a delivery");
    let letters: Vec<_> = (0..letters)
        .map(|n| letter(account, &format!("e{account}-{n}")))
        .collect();
    assert!(
        inbox
            .complete(taken.id, taken.token, &letters)
            .await
            .unwrap()
    );
}

/// [`Inbox::kept_of`] counts one account's dead letters, quarantined bodies
/// and their bytes (a body of no known account counts for none), through
/// discards and replays; [`Inbox::most_kept_of_one_account`] the
/// most one account keeps of each.
pub async fn kept_of_counts_one_account<I: Inbox>(f: Fixture<I>) {
    let inbox = &*f.inbox;
    let of = |account: u64| inbox.kept_of(AccountId(account));
    assert_eq!(
        of(7).await.unwrap(),
        KeptCounts::default(),
        "nothing kept yet"
    );
    let most = inbox.most_kept_of_one_account().await.unwrap();
    assert_eq!(most, KeptCounts::default());
    dead_letters(inbox, 7, 3).await;
    dead_letters(inbox, 8, 1).await;
    let body = |account_id, body| NewQuarantined {
        account_id,
        body,
        error: "not an envelope",
        received_at: at(T0),
    };
    let q7 = inbox
        .quarantine(body(Some(AccountId(7)), b"ab\x00\xff"))
        .await
        .unwrap();
    let q8 = inbox
        .quarantine(body(Some(AccountId(8)), &[b'x'; 10]))
        .await
        .unwrap();
    let nobody = inbox.quarantine(body(None, &[b'y'; 100])).await.unwrap();
    assert_eq!(of(7).await.unwrap(), KeptCounts::new(3, 1, 4), "account 7");
    assert_eq!(of(8).await.unwrap(), KeptCounts::new(1, 1, 10), "account 8");
    assert_eq!(of(9).await.unwrap(), KeptCounts::default(), "account 9");
    let stats = inbox.stats(at(T0)).await.unwrap();
    assert_eq!(
        (
            stats.dead_letters,
            stats.quarantined,
            stats.quarantined_bytes
        ),
        (4, 3, 114),
        "the totals count the body of no known account"
    );
    assert_eq!(
        inbox.most_kept_of_one_account().await.unwrap(),
        KeptCounts::new(3, 1, 10),
        "the most of each, whichever the account"
    );

    let of_7: Vec<_> = inbox
        .dead_letters(100)
        .await
        .unwrap()
        .into_iter()
        .filter(|d| d.letter.account_id == AccountId(7))
        .collect();
    assert!(inbox.discard_dead_letter(of_7[0].id).await.unwrap());
    assert!(
        inbox
            .replay_dead_letter(of_7[1].id, at(T0))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        of(7).await.unwrap(),
        KeptCounts::new(1, 1, 4),
        "discarded, replayed"
    );
    assert!(inbox.discard_quarantined(q8).await.unwrap());
    assert!(!inbox.discard_quarantined(q8).await.unwrap());
    assert_eq!(
        of(8).await.unwrap(),
        KeptCounts::new(1, 0, 0),
        "discarded once"
    );
    let replayed = inbox.replay_quarantined(q7, AccountId(7), at(T0)).await;
    assert!(replayed.unwrap().is_some());
    let replayed = inbox.replay_quarantined(nobody, AccountId(9), at(T0)).await;
    assert!(replayed.unwrap().is_some());
    assert_eq!(of(7).await.unwrap(), KeptCounts::new(1, 0, 0), "replayed");
    assert_eq!(of(9).await.unwrap(), KeptCounts::default(), "never counted");
    let most = inbox.most_kept_of_one_account().await.unwrap();
    assert_eq!(most, KeptCounts::new(1, 0, 0));
    let stats = inbox.stats(at(T0)).await.unwrap();
    assert_eq!((stats.quarantined, stats.quarantined_bytes), (0, 0));
}
