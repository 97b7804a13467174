//! Default bodies of [`Inbox`] methods, kept here so the trait reads
//! in one sitting.

use std::time::Duration;

use time::OffsetDateTime;

use super::{DeadLetter, DeadLetterId, Inbox, InboxError, Taken};

/// [`Inbox::take_many`]'s default: a run of one, by [`Inbox::take`].
pub(super) async fn run_of_one<I: Inbox + ?Sized>(
    inbox: &I,
    lease: Duration,
    now: OffsetDateTime,
    max: usize,
) -> Result<Vec<Taken>, InboxError> {
    if max == 0 {
        return Ok(Vec::new());
    }
    Ok(inbox.take(lease, now).await?.into_iter().collect())
}

/// [`Inbox::dead_letters_after`]'s default: reads every dead letter to
/// find the page.
pub(super) async fn dead_letters_after<I: Inbox + ?Sized>(
    inbox: &I,
    after: Option<DeadLetterId>,
    limit: usize,
) -> Result<Vec<DeadLetter>, InboxError> {
    let all = inbox
        .dead_letters(after.map_or(limit, |_| usize::MAX))
        .await?;
    let after = after.map_or(0, DeadLetterId::get);
    Ok(all
        .into_iter()
        .filter(|d| d.id.get() > after)
        .take(limit)
        .collect())
}
