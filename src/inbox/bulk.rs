//! Acting on many dead letters or quarantined bodies at once: every one a
//! [`KeptFilter`] matches is replayed or discarded, a page at a time.

use time::OffsetDateTime;

use super::{DeadLetter, DeadLetterId, Inbox, InboxError, QuarantineId, Quarantined};
use crate::{AccountId, Envelope};

/// Dead letters read per round trip.
const LETTERS_PAGE: usize = 100;
/// Quarantined bodies read per round trip (each holds its whole body).
const BODIES_PAGE: usize = 10;

/// Which dead letters or quarantined bodies a bulk action takes: each
/// field that is set must match (none set: all of them).
///
/// ```
/// use alm_webhooks::AccountId;
/// use alm_webhooks::inbox::KeptFilter;
/// let filter = KeptFilter { account_id: Some(AccountId(7)), error_contains: Some("timed out".into()), ..KeptFilter::default() };
/// assert!(filter.event_name.is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeptFilter {
    /// Only this account's (a quarantined body whose account could not be
    /// read belongs to none).
    pub account_id: Option<AccountId>,
    /// Only dead letters of this `eventName` (a quarantined body has
    /// none, so a filter with it matches no body).
    pub event_name: Option<String>,
    /// Only those whose error contains this text (case-sensitive).
    pub error_contains: Option<String>,
    /// Only those kept at or after this time (a dead letter's last
    /// attempt, a body's arrival).
    pub from: Option<OffsetDateTime>,
    /// Only those kept before this time.
    pub to: Option<OffsetDateTime>,
}

impl KeptFilter {
    /// Whether `letter` matches.
    ///
    /// ```
    /// use alm_webhooks::AccountId;
    /// use alm_webhooks::inbox::{DeadLetter, DeadLetterId, KeptFilter, NewDeadLetter};
    /// let letter = DeadLetter::new(DeadLetterId(1), NewDeadLetter {
    ///     account_id: AccountId(7), event_id: None, event_name: Some("X".into()),
    ///     event: "{}".into(), error: "CRM timed out".into(), attempts: 3,
    ///     at: time::OffsetDateTime::UNIX_EPOCH,
    /// });
    /// assert!(KeptFilter { error_contains: Some("timed".into()), ..KeptFilter::default() }.matches_letter(&letter));
    /// assert!(!KeptFilter { event_name: Some("Y".into()), ..KeptFilter::default() }.matches_letter(&letter));
    /// ```
    pub fn matches_letter(&self, letter: &DeadLetter) -> bool {
        let l = &letter.letter;
        self.account_id.is_none_or(|a| a == l.account_id)
            && self
                .event_name
                .as_ref()
                .is_none_or(|n| l.event_name.as_ref() == Some(n))
            && self.matches_error_and_time(&l.error, l.at)
    }

    /// Whether `body` matches.
    ///
    /// ```
    /// use alm_webhooks::inbox::{KeptFilter, QuarantineId, Quarantined};
    /// let body = Quarantined::new(QuarantineId(1), None, b"{".to_vec(), "EOF".into(), time::OffsetDateTime::UNIX_EPOCH);
    /// assert!(KeptFilter::default().matches_body(&body));
    /// assert!(!KeptFilter { event_name: Some("X".into()), ..KeptFilter::default() }.matches_body(&body));
    /// ```
    pub fn matches_body(&self, body: &Quarantined) -> bool {
        self.account_id.is_none_or(|a| body.account_id == Some(a))
            && self.event_name.is_none()
            && self.matches_error_and_time(&body.error, body.received_at)
    }

    fn matches_error_and_time(&self, error: &str, at: OffsetDateTime) -> bool {
        self.error_contains
            .as_ref()
            .is_none_or(|text| error.contains(text.as_str()))
            && self.from.is_none_or(|from| at >= from)
            && self.to.is_none_or(|to| at < to)
    }
}

/// What a bulk action did: how many entries the filter matched, and of
/// those, how many were replayed or discarded (fewer when another caller
/// took one first, or a quarantined body still does not parse).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BulkOutcome {
    /// Entries the filter matched.
    pub matched: u64,
    /// Of those, entries replayed or discarded.
    pub done: u64,
}

/// The action on each matching entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkAction {
    /// Append each again as a delivery (a dead letter's event as a
    /// one-event delivery; a quarantined body, if it parses now, as it was).
    Replay,
    /// Delete each.
    Discard,
}

/// The id of the last dead letter now: a replay appends deliveries whose
/// events may be dead-lettered again, with higher ids, which this run
/// must not take again.
async fn last_letter<I: Inbox + ?Sized>(inbox: &I) -> Result<u64, InboxError> {
    let mut last = None;
    loop {
        let page = inbox.dead_letters_after(last, LETTERS_PAGE).await?;
        match page.last() {
            Some(letter) => last = Some(letter.id),
            None => return Ok(last.map_or(0, DeadLetterId::get)),
        }
    }
}

async fn last_body<I: Inbox + ?Sized>(inbox: &I) -> Result<u64, InboxError> {
    let mut last = None;
    loop {
        let page = inbox.quarantined_after(last, BODIES_PAGE).await?;
        match page.last() {
            Some(body) => last = Some(body.id),
            None => return Ok(last.map_or(0, QuarantineId::get)),
        }
    }
}

/// Replays or discards every dead letter `filter` matches, reading a page
/// of 100 at a time (never all of them at once) and acting on each
/// (each replay atomic, as [`Inbox::replay_dead_letter`]). Dead letters
/// kept after the call began are left alone.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use alm_webhooks::inbox::{bulk_dead_letters, BulkAction, KeptFilter, MemoryInbox};
/// let inbox = MemoryInbox::new();
/// let now = time::OffsetDateTime::now_utc();
/// let outcome = bulk_dead_letters(&inbox, &KeptFilter::default(), BulkAction::Discard, now).await.unwrap();
/// assert_eq!((outcome.matched, outcome.done), (0, 0));
/// # }
/// ```
///
/// # Errors
///
/// The inbox's, when it fails; what was done before stays done.
pub async fn bulk_dead_letters<I: Inbox + ?Sized>(
    inbox: &I,
    filter: &KeptFilter,
    action: BulkAction,
    now: OffsetDateTime,
) -> Result<BulkOutcome, InboxError> {
    let ceiling = last_letter(inbox).await?;
    let (mut outcome, mut after) = (BulkOutcome::default(), None);
    'pages: loop {
        let page = inbox.dead_letters_after(after, LETTERS_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        for letter in &page {
            if letter.id.get() > ceiling {
                break 'pages;
            }
            if !filter.matches_letter(letter) {
                continue;
            }
            outcome.matched += 1;
            let done = match action {
                BulkAction::Replay => inbox.replay_dead_letter(letter.id, now).await?.is_some(),
                BulkAction::Discard => inbox.discard_dead_letter(letter.id).await?,
            };
            outcome.done += u64::from(done);
        }
    }
    Ok(outcome)
}

/// Replays or discards every quarantined body `filter` matches, ten at a
/// time (each holds its body). A body is replayed only if it parses now
/// (as its account's delivery); one that does not stays, matched and not
/// done. Bodies kept after the call began are left alone.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use alm_webhooks::inbox::{bulk_quarantined, BulkAction, Inbox, KeptFilter, MemoryInbox, NewQuarantined};
/// let inbox = MemoryInbox::new();
/// let now = time::OffsetDateTime::now_utc();
/// let kept = NewQuarantined { account_id: None, body: b"{", error: "EOF", received_at: now };
/// inbox.quarantine(kept).await.unwrap();
/// let outcome = bulk_quarantined(&inbox, &KeptFilter::default(), BulkAction::Replay, now).await.unwrap();
/// assert_eq!((outcome.matched, outcome.done), (1, 0), "it still does not parse");
/// # }
/// ```
///
/// # Errors
///
/// The inbox's, when it fails; what was done before stays done.
pub async fn bulk_quarantined<I: Inbox + ?Sized>(
    inbox: &I,
    filter: &KeptFilter,
    action: BulkAction,
    now: OffsetDateTime,
) -> Result<BulkOutcome, InboxError> {
    let ceiling = last_body(inbox).await?;
    let (mut outcome, mut after) = (BulkOutcome::default(), None);
    'pages: loop {
        let page = inbox.quarantined_after(after, BODIES_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        for body in &page {
            if body.id.get() > ceiling {
                break 'pages;
            }
            if !filter.matches_body(body) {
                continue;
            }
            outcome.matched += 1;
            let done = match action {
                BulkAction::Replay => match Envelope::from_slice(&body.body) {
                    Ok(envelope) => inbox
                        .replay_quarantined(body.id, envelope.account_id, now)
                        .await?
                        .is_some(),
                    Err(_) => false,
                },
                BulkAction::Discard => inbox.discard_quarantined(body.id).await?,
            };
            outcome.done += u64::from(done);
        }
    }
    Ok(outcome)
}
