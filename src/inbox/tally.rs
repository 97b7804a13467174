//! Counting what an inbox keeps per account from its entries, for the
//! inboxes that hold them in hand (the memory inbox, and the trait's
//! default for an inbox of your own).

use std::collections::HashMap;

use super::{Inbox, InboxError, KeptCounts};
use crate::AccountId;

/// What is kept of each account, from every dead letter and quarantined
/// body `inbox` lists (the trait's defaults).
pub(super) async fn read_all<I: Inbox + ?Sized>(
    inbox: &I,
) -> Result<HashMap<AccountId, KeptCounts>, InboxError> {
    let letters = inbox.dead_letters(usize::MAX).await?;
    let bodies = inbox.quarantined(usize::MAX).await?;
    Ok(per_account(
        letters.iter().map(|d| d.letter.account_id),
        bodies.iter().map(|q| (q.account_id, q.body.len())),
    ))
}

/// What is kept of each account: `letters` gives each dead letter's
/// account, `bodies` each quarantined body's account (if known) and
/// length. Bodies of no known account count for no account.
pub(super) fn per_account(
    letters: impl Iterator<Item = AccountId>,
    bodies: impl Iterator<Item = (Option<AccountId>, usize)>,
) -> HashMap<AccountId, KeptCounts> {
    let mut kept: HashMap<AccountId, KeptCounts> = HashMap::new();
    for account in letters {
        kept.entry(account).or_default().dead_letters += 1;
    }
    for (account, bytes) in bodies {
        if let Some(account) = account {
            let counts = kept.entry(account).or_default();
            counts.quarantined += 1;
            counts.quarantined_bytes += bytes as u64;
        }
    }
    kept
}

/// For each count, the most that one account keeps.
pub(super) fn most_of_one_account(kept: &HashMap<AccountId, KeptCounts>) -> KeptCounts {
    kept.values()
        .fold(KeptCounts::default(), |most, counts| most.most(*counts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_of_no_known_account_count_for_none() {
        let letters = [AccountId(1), AccountId(1), AccountId(2)].into_iter();
        let bodies = [
            (Some(AccountId(2)), 10),
            (None, 1_000),
            (Some(AccountId(2)), 5),
        ];
        let kept = per_account(letters, bodies.into_iter());
        assert_eq!(kept[&AccountId(1)], KeptCounts::new(2, 0, 0));
        assert_eq!(kept[&AccountId(2)], KeptCounts::new(1, 2, 15));
        assert_eq!(kept.len(), 2);
        assert_eq!(most_of_one_account(&kept), KeptCounts::new(2, 2, 15));
    }
}
