//! Caps on what the inbox keeps for a person (dead letters, quarantined
//! bodies), all accounts together and per account: past them the endpoint
//! answers `503`, so ALM holds the deliveries back instead of a flood
//! filling the disk, and one account cannot take every other account's room.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use super::door::Door;
use crate::AccountId;
use crate::inbox::{InboxError, KeptCounts};

/// Dead letters kept, all accounts together, before new deliveries are
/// answered `503`: 100,000.
pub const DEFAULT_MAX_DEAD_LETTERS: u64 = 100_000;

/// Quarantined bodies kept, all accounts together, before new deliveries
/// are answered `503`: 10,000.
pub const DEFAULT_MAX_QUARANTINED: u64 = 10_000;

/// Bytes of quarantined bodies kept, all accounts together, before new
/// deliveries are answered `503`: 1 GiB (a body may take 8 MiB, so the
/// count alone would let 10,000 of them take 80 GiB).
pub const DEFAULT_MAX_QUARANTINED_BYTES: u64 = 1024 * 1024 * 1024;

/// Dead letters kept of one account before its new deliveries are answered
/// `503`: 25,000, a quarter of [`DEFAULT_MAX_DEAD_LETTERS`] (so one account
/// cannot take the room of every other).
///
/// ```
/// use alm_webhooks::endpoint::{DEFAULT_MAX_DEAD_LETTERS, DEFAULT_MAX_DEAD_LETTERS_PER_ACCOUNT};
/// assert_eq!((DEFAULT_MAX_DEAD_LETTERS_PER_ACCOUNT, DEFAULT_MAX_DEAD_LETTERS), (25_000, 100_000));
/// ```
pub const DEFAULT_MAX_DEAD_LETTERS_PER_ACCOUNT: u64 = DEFAULT_MAX_DEAD_LETTERS / 4;

/// Quarantined bodies kept of one account (its `accountId` read from the
/// broken body) before its new deliveries are answered `503`: 2,500, a
/// quarter of [`DEFAULT_MAX_QUARANTINED`]. A body whose account cannot be
/// read counts only toward the totals.
///
/// ```
/// assert_eq!(alm_webhooks::endpoint::DEFAULT_MAX_QUARANTINED_PER_ACCOUNT, 2_500);
/// ```
pub const DEFAULT_MAX_QUARANTINED_PER_ACCOUNT: u64 = DEFAULT_MAX_QUARANTINED / 4;

/// Bytes of quarantined bodies kept of one account before its new
/// deliveries are answered `503`: 256 MiB, a quarter of
/// [`DEFAULT_MAX_QUARANTINED_BYTES`].
///
/// ```
/// assert_eq!(alm_webhooks::endpoint::DEFAULT_MAX_QUARANTINED_BYTES_PER_ACCOUNT, 256 << 20);
/// ```
pub const DEFAULT_MAX_QUARANTINED_BYTES_PER_ACCOUNT: u64 = DEFAULT_MAX_QUARANTINED_BYTES / 4;

/// The `Retry-After` of a delivery answered `503` because a cap is
/// reached: 60 s (a person has to replay or discard before there is room).
///
/// ```
/// assert_eq!(alm_webhooks::endpoint::RETRY_AFTER_WHEN_FULL.as_secs(), 60);
/// ```
pub const RETRY_AFTER_WHEN_FULL: Duration = Duration::from_secs(60);

/// How long the inbox's counts are trusted before they are asked again.
const RECOUNT_EVERY: Duration = Duration::from_secs(1);

/// How long the inbox may take to count.
const COUNT_WITHIN: Duration = Duration::from_secs(2);

/// How many accounts found well under their caps are remembered at once
/// (past it, expired ones are dropped; if none has expired, the inbox is
/// asked again for the others).
const REMEMBERED_ACCOUNTS: usize = 4_096;

/// The caps on what the inbox keeps, all accounts together and per
/// account, for
/// [`EndpointBuilder::kept_limits`](super::EndpointBuilder::kept_limits).
/// At a cap, the endpoint answers new deliveries `503` with `Retry-After`
/// ([`RETRY_AFTER_WHEN_FULL`]; ALM sends them again later): every
/// delivery at a total cap, the account's deliveries at one of its caps
/// (the other accounts' are still accepted), until a person replays or
/// discards what is kept. The `alm_webhooks_dead_letters`,
/// `alm_webhooks_quarantined`, `alm_webhooks_quarantined_bytes` and
/// `alm_webhooks_kept_fullest_account_ratio` gauges (and the shipped
/// alerts) say so before.
///
/// ```
/// use alm_webhooks::endpoint::KeptLimits;
/// let limits = KeptLimits::new()
///     .with_max_dead_letters(10_000)
///     .with_max_quarantined(1_000)
///     .with_max_dead_letters_per_account(2_000)
///     .with_max_quarantined_per_account(100);
/// # let _ = limits;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeptLimits {
    total: KeptCounts,
    per_account: KeptCounts,
}

impl Default for KeptLimits {
    fn default() -> Self {
        Self {
            total: KeptCounts::new(
                DEFAULT_MAX_DEAD_LETTERS,
                DEFAULT_MAX_QUARANTINED,
                DEFAULT_MAX_QUARANTINED_BYTES,
            ),
            per_account: KeptCounts::new(
                DEFAULT_MAX_DEAD_LETTERS_PER_ACCOUNT,
                DEFAULT_MAX_QUARANTINED_PER_ACCOUNT,
                DEFAULT_MAX_QUARANTINED_BYTES_PER_ACCOUNT,
            ),
        }
    }
}

impl KeptLimits {
    /// The defaults: [`DEFAULT_MAX_DEAD_LETTERS`], [`DEFAULT_MAX_QUARANTINED`],
    /// [`DEFAULT_MAX_QUARANTINED_BYTES`] in all, and a quarter of each per
    /// account ([`DEFAULT_MAX_DEAD_LETTERS_PER_ACCOUNT`],
    /// [`DEFAULT_MAX_QUARANTINED_PER_ACCOUNT`],
    /// [`DEFAULT_MAX_QUARANTINED_BYTES_PER_ACCOUNT`]).
    ///
    /// ```
    /// assert_eq!(alm_webhooks::endpoint::KeptLimits::new(), Default::default());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The most dead letters kept, all accounts together.
    ///
    /// ```
    /// let limits = alm_webhooks::endpoint::KeptLimits::new().with_max_dead_letters(500);
    /// # let _ = limits;
    /// ```
    #[must_use]
    pub fn with_max_dead_letters(mut self, max: u64) -> Self {
        self.total.dead_letters = max;
        self
    }

    /// The most quarantined bodies kept, all accounts together.
    ///
    /// ```
    /// let limits = alm_webhooks::endpoint::KeptLimits::new().with_max_quarantined(50);
    /// # let _ = limits;
    /// ```
    #[must_use]
    pub fn with_max_quarantined(mut self, max: u64) -> Self {
        self.total.quarantined = max;
        self
    }

    /// The most bytes of quarantined bodies kept, all together.
    ///
    /// ```
    /// let limits = alm_webhooks::endpoint::KeptLimits::new()
    ///     .with_max_quarantined_bytes(256 * 1024 * 1024);
    /// # let _ = limits;
    /// ```
    #[must_use]
    pub fn with_max_quarantined_bytes(mut self, max: u64) -> Self {
        self.total.quarantined_bytes = max;
        self
    }

    /// The most dead letters kept of one account: past it, that account's
    /// deliveries are answered `503` while the others' are accepted.
    ///
    /// ```
    /// let limits = alm_webhooks::endpoint::KeptLimits::new().with_max_dead_letters_per_account(1_000);
    /// # let _ = limits;
    /// ```
    #[must_use]
    pub fn with_max_dead_letters_per_account(mut self, max: u64) -> Self {
        self.per_account.dead_letters = max;
        self
    }

    /// The most quarantined bodies kept of one account (a body whose
    /// `accountId` cannot be read counts only toward the total).
    ///
    /// ```
    /// let limits = alm_webhooks::endpoint::KeptLimits::new().with_max_quarantined_per_account(20);
    /// # let _ = limits;
    /// ```
    #[must_use]
    pub fn with_max_quarantined_per_account(mut self, max: u64) -> Self {
        self.per_account.quarantined = max;
        self
    }

    /// The most bytes of quarantined bodies kept of one account.
    ///
    /// ```
    /// let limits = alm_webhooks::endpoint::KeptLimits::new()
    ///     .with_max_quarantined_bytes_per_account(64 * 1024 * 1024);
    /// # let _ = limits;
    /// ```
    #[must_use]
    pub fn with_max_quarantined_bytes_per_account(mut self, max: u64) -> Self {
        self.per_account.quarantined_bytes = max;
        self
    }

    /// The caps of one account.
    pub(super) fn per_account(&self) -> KeptCounts {
        self.per_account
    }
}

/// What `counts` reached of `caps`, if anything: what it is and what a
/// person does about it.
fn reached(counts: KeptCounts, caps: KeptCounts) -> Option<(&'static str, &'static str)> {
    const REPLAY: &str = "replay or discard them";
    if counts.dead_letters >= caps.dead_letters {
        Some(("dead letters", REPLAY))
    } else if counts.quarantined >= caps.quarantined {
        Some(("quarantined bodies", REPLAY))
    } else if counts.quarantined_bytes >= caps.quarantined_bytes {
        Some(("quarantined bytes", REPLAY))
    } else {
        None
    }
}

/// Below 90 % of every cap: trusted for a second.
fn well_under(counts: KeptCounts, caps: KeptCounts) -> bool {
    counts.dead_letters < caps.dead_letters / 10 * 9
        && counts.quarantined < caps.quarantined / 10 * 9
        && counts.quarantined_bytes < caps.quarantined_bytes / 10 * 9
}

/// The 503 of a reached cap, with its `Retry-After`.
fn full(message: String) -> InboxError {
    InboxError::new(message).with_retry_after(RETRY_AFTER_WHEN_FULL)
}

/// The accounts last found well under their caps, and when: at most
/// [`REMEMBERED_ACCOUNTS`] of them.
#[derive(Debug, Default)]
struct WellUnder {
    since: HashMap<AccountId, Instant>,
}

impl WellUnder {
    /// Whether `account` was found well under its caps less than a second
    /// before `now`.
    fn fresh(&self, account: AccountId, now: Instant) -> bool {
        self.since
            .get(&account)
            .is_some_and(|at| now.saturating_duration_since(*at) < RECOUNT_EVERY)
    }

    /// Remembers that `account` is well under its caps at `now`, if there
    /// is room once the expired entries are dropped.
    fn remember(&mut self, account: AccountId, now: Instant) {
        if self.since.len() >= REMEMBERED_ACCOUNTS && !self.since.contains_key(&account) {
            self.since
                .retain(|_, at| now.saturating_duration_since(*at) < RECOUNT_EVERY);
            if self.since.len() >= REMEMBERED_ACCOUNTS {
                return;
            }
        }
        self.since.insert(account, now);
    }
}

/// The caps and the last counts the inbox gave.
#[derive(Debug)]
pub(super) struct Kept {
    limits: KeptLimits,
    /// When the inbox was last found well under its caps (then it is not
    /// asked again for a second).
    last: Mutex<Option<Instant>>,
    /// The same, per account.
    accounts: Mutex<WellUnder>,
}

impl Kept {
    pub(super) fn new(limits: KeptLimits) -> Self {
        Self {
            limits,
            last: Mutex::new(None),
            accounts: Mutex::new(WellUnder::default()),
        }
    }

    /// `Some` error (with a `Retry-After`) when the inbox keeps as much as
    /// its caps allow, in all or of `account`: the two counts are asked
    /// at once, each at most once a second while well under its caps. An
    /// inbox that cannot count within 2 s is not full: the append that
    /// follows reports it.
    pub(super) async fn full(
        &self,
        door: &dyn Door,
        account: Option<AccountId>,
    ) -> Option<InboxError> {
        let of_account = async {
            match account {
                Some(account) => self.account_full(door, account).await,
                None => None,
            }
        };
        let (total, of_account) = tokio::join!(self.total_full(door), of_account);
        total.or(of_account)
    }

    async fn total_full(&self, door: &dyn Door) -> Option<InboxError> {
        let cached = *self.last.lock().unwrap_or_else(|e| e.into_inner());
        if cached.is_some_and(|at| at.elapsed() < RECOUNT_EVERY) {
            return None;
        }
        let counted = door.stats(OffsetDateTime::now_utc())?;
        let Ok(Ok(stats)) = tokio::time::timeout(COUNT_WITHIN, counted).await else {
            return None;
        };
        let counts = KeptCounts::new(
            stats.dead_letters,
            stats.quarantined,
            stats.quarantined_bytes,
        );
        if let Some((what, remedy)) = reached(counts, self.limits.total) {
            return Some(full(format!(
                "the inbox keeps as many {what} as allowed: {remedy}"
            )));
        }
        if well_under(counts, self.limits.total) {
            *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        }
        None
    }

    async fn account_full(&self, door: &dyn Door, account: AccountId) -> Option<InboxError> {
        let accounts = || self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        if accounts().fresh(account, Instant::now()) {
            return None;
        }
        let counted = door.kept_of(account)?;
        let Ok(Ok(counts)) = tokio::time::timeout(COUNT_WITHIN, counted).await else {
            return None;
        };
        if let Some((what, remedy)) = reached(counts, self.limits.per_account) {
            return Some(full(format!(
                "account {account} keeps as many {what} as one account may: {remedy}"
            )));
        }
        if well_under(counts, self.limits.per_account) {
            accounts().remember(account, Instant::now());
        }
        None
    }

    /// Sets the `alm_webhooks_kept_fullest_account_ratio` gauge: the
    /// fullest account's share of its caps (1 at a cap), from the most one
    /// account keeps of each.
    #[cfg(feature = "metrics")]
    pub(super) fn set_fullest_account_gauge(&self, most: KeptCounts) {
        most.set_fullest_account_gauge(self.limits.per_account);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accounts_remembered_are_bounded() {
        let mut well = WellUnder::default();
        let t0 = Instant::now();
        for n in 0..(REMEMBERED_ACCOUNTS as u64 * 3) {
            well.remember(AccountId(n), t0);
            assert!(well.since.len() <= REMEMBERED_ACCOUNTS);
        }
        assert_eq!(well.since.len(), REMEMBERED_ACCOUNTS);
        assert!(well.fresh(AccountId(0), t0), "the first ones are kept");
        let later = REMEMBERED_ACCOUNTS as u64 * 3 - 1;
        assert!(!well.fresh(AccountId(later), t0), "no room for the last");
        // A second on, the expired entries make room for new accounts.
        let t1 = t0 + RECOUNT_EVERY;
        assert!(!well.fresh(AccountId(0), t1), "trusted for a second only");
        well.remember(AccountId(later), t1);
        assert_eq!(well.since.len(), 1);
        assert!(well.fresh(AccountId(later), t1));
    }

    #[test]
    fn caps_are_reached_at_their_value_and_shares_are_the_largest() {
        let caps = KeptCounts::new(10, 4, 1_000);
        assert_eq!(reached(KeptCounts::new(9, 3, 999), caps), None);
        assert_eq!(
            reached(KeptCounts::new(9, 4, 0), caps).unwrap().0,
            "quarantined bodies"
        );
        assert_eq!(
            reached(KeptCounts::new(0, 0, 1_000), caps).unwrap().0,
            "quarantined bytes"
        );
        let caps = KeptCounts::new(10, 40, 1_000);
        assert!(well_under(KeptCounts::new(8, 35, 899), caps));
        assert!(
            !well_under(KeptCounts::new(9, 0, 0), caps),
            "90 % is not well under"
        );
        // Under 10 nothing is well under: small caps are counted each time.
        assert!(!well_under(
            KeptCounts::default(),
            KeptCounts::new(9, 40, 1_000)
        ));
        let message = full("x".into());
        assert_eq!(message.retry_after(), Some(RETRY_AFTER_WHEN_FULL));
    }
}
