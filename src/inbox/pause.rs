//! Pausing an account (or every account): its deliveries are still
//! acknowledged and appended, and wait in the inbox, in order, until it is
//! resumed.

use std::time::Duration;

use time::OffsetDateTime;

use crate::AccountId;

/// What a pause holds back: one account's deliveries, or every account's.
///
/// ```
/// use alm_webhooks::AccountId;
/// use alm_webhooks::inbox::PauseScope;
/// assert_eq!(PauseScope::Account(AccountId(7)).account_id(), Some(AccountId(7)));
/// assert_eq!(PauseScope::All.account_id(), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PauseScope {
    /// Every account: nothing is taken.
    All,
    /// One account: its deliveries wait, the others' are taken.
    Account(AccountId),
}

impl PauseScope {
    /// The account paused, `None` for [`PauseScope::All`].
    ///
    /// ```
    /// use alm_webhooks::inbox::PauseScope;
    /// assert!(PauseScope::All.account_id().is_none());
    /// ```
    pub fn account_id(self) -> Option<AccountId> {
        match self {
            Self::All => None,
            Self::Account(id) => Some(id),
        }
    }
}

/// A pause in force, from [`Inbox::pauses`](super::Inbox::pauses).
///
/// ```
/// use alm_webhooks::AccountId;
/// use alm_webhooks::inbox::{Pause, PauseScope};
/// let since = time::OffsetDateTime::UNIX_EPOCH;
/// let pause = Pause::new(PauseScope::Account(AccountId(7)), since);
/// assert_eq!(pause.age(since + time::Duration::seconds(90)).as_secs(), 90);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Pause {
    /// What it holds back.
    pub scope: PauseScope,
    /// When it began (the first [`Inbox::pause`](super::Inbox::pause) of
    /// this scope; pausing again does not move it).
    pub since: OffsetDateTime,
}

impl Pause {
    /// A pause of `scope` since `since`.
    ///
    /// ```
    /// use alm_webhooks::inbox::{Pause, PauseScope};
    /// let pause = Pause::new(PauseScope::All, time::OffsetDateTime::UNIX_EPOCH);
    /// assert_eq!(pause.scope, PauseScope::All);
    /// ```
    pub fn new(scope: PauseScope, since: OffsetDateTime) -> Self {
        Self { scope, since }
    }

    /// How long it has been in force at `now` (zero if `now` is earlier).
    ///
    /// ```
    /// use alm_webhooks::inbox::{Pause, PauseScope};
    /// let since = time::OffsetDateTime::UNIX_EPOCH;
    /// assert_eq!(Pause::new(PauseScope::All, since).age(since).as_secs(), 0);
    /// ```
    pub fn age(&self, now: OffsetDateTime) -> Duration {
        super::types::age(now, self.since)
    }
}

/// Sets the gauges of pauses at `now`: how many accounts are paused (an
/// [`PauseScope::All`] pause counts as one) and how long the oldest pause
/// has been in force (0 without one).
#[cfg(feature = "metrics")]
pub(crate) fn set_gauges(pauses: &[Pause], now: OffsetDateTime) {
    use crate::metrics::names;
    let longest = pauses
        .iter()
        .map(|p| p.age(now).as_secs_f64())
        .fold(0.0, f64::max);
    metrics::gauge!(names::INBOX_PAUSED).set(pauses.len() as f64);
    metrics::gauge!(names::INBOX_PAUSED_LONGEST_SECONDS).set(longest);
}
