//! Caps on what the inbox keeps for a person (dead letters, quarantined
//! bodies): past them the endpoint answers `503`, so ALM holds the
//! deliveries back instead of a flood filling the disk.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use super::door::Door;
use crate::inbox::InboxError;

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

/// How long the inbox's counts are trusted before they are asked again.
const RECOUNT_EVERY: Duration = Duration::from_secs(1);

/// How long the inbox may take to count.
const COUNT_WITHIN: Duration = Duration::from_secs(2);

/// The caps on what the inbox keeps, for
/// [`EndpointBuilder::kept_limits`](super::EndpointBuilder::kept_limits).
/// At a cap, the endpoint answers new deliveries `503` (ALM sends them
/// again later) until a person replays or discards what is kept; the
/// `alm_webhooks_dead_letters` and `alm_webhooks_quarantined` gauges (and
/// the shipped alerts) say so before.
///
/// ```
/// use alm_webhooks::endpoint::KeptLimits;
/// let limits = KeptLimits::new().with_max_dead_letters(10_000).with_max_quarantined(1_000);
/// # let _ = limits;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeptLimits {
    max_dead_letters: u64,
    max_quarantined: u64,
    max_quarantined_bytes: u64,
}

impl Default for KeptLimits {
    fn default() -> Self {
        Self {
            max_dead_letters: DEFAULT_MAX_DEAD_LETTERS,
            max_quarantined: DEFAULT_MAX_QUARANTINED,
            max_quarantined_bytes: DEFAULT_MAX_QUARANTINED_BYTES,
        }
    }
}

impl KeptLimits {
    /// The defaults: [`DEFAULT_MAX_DEAD_LETTERS`], [`DEFAULT_MAX_QUARANTINED`],
    /// [`DEFAULT_MAX_QUARANTINED_BYTES`].
    ///
    /// ```
    /// assert_eq!(alm_webhooks::endpoint::KeptLimits::new(), Default::default());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The most dead letters kept.
    ///
    /// ```
    /// let limits = alm_webhooks::endpoint::KeptLimits::new().with_max_dead_letters(500);
    /// # let _ = limits;
    /// ```
    #[must_use]
    pub fn with_max_dead_letters(mut self, max: u64) -> Self {
        self.max_dead_letters = max;
        self
    }

    /// The most quarantined bodies kept.
    ///
    /// ```
    /// let limits = alm_webhooks::endpoint::KeptLimits::new().with_max_quarantined(50);
    /// # let _ = limits;
    /// ```
    #[must_use]
    pub fn with_max_quarantined(mut self, max: u64) -> Self {
        self.max_quarantined = max;
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
        self.max_quarantined_bytes = max;
        self
    }
}

/// The caps and the last counts the inbox gave.
#[derive(Debug)]
pub(super) struct Kept {
    limits: KeptLimits,
    /// When the inbox was last found well under its caps (then it is not
    /// asked again for a second).
    last: Mutex<Option<Instant>>,
}

impl Kept {
    pub(super) fn new(limits: KeptLimits) -> Self {
        Self {
            limits,
            last: Mutex::new(None),
        }
    }

    /// `Some` error when the inbox keeps as much as its caps allow (asked
    /// at most once a second while well under them; an inbox that cannot count within 2 s is
    /// not full: the append that follows reports it).
    pub(super) async fn full(&self, door: &dyn Door) -> Option<InboxError> {
        let cached = *self.last.lock().unwrap_or_else(|e| e.into_inner());
        if cached.is_some_and(|at| at.elapsed() < RECOUNT_EVERY) {
            return None;
        }
        let counted = door.stats(OffsetDateTime::now_utc())?;
        let Ok(Ok(stats)) = tokio::time::timeout(COUNT_WITHIN, counted).await else {
            return None;
        };
        let (dead, quarantined) = (self.limits.max_dead_letters, self.limits.max_quarantined);
        if stats.dead_letters >= dead {
            return Some(InboxError::new(
                "the inbox keeps as many dead letters as allowed: replay or discard them",
            ));
        }
        if stats.quarantined >= quarantined {
            return Some(InboxError::new(
                "the inbox keeps as many quarantined bodies as allowed: replay or discard them",
            ));
        }
        let bytes = self.limits.max_quarantined_bytes;
        if stats.quarantined_bytes >= bytes {
            return Some(InboxError::new(
                "the inbox keeps as many quarantined bytes as allowed: replay or discard them",
            ));
        }
        // Well under every cap (below 90 %): trust it for a second.
        if stats.dead_letters < dead / 10 * 9
            && stats.quarantined < quarantined / 10 * 9
            && stats.quarantined_bytes < bytes / 10 * 9
        {
            *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        }
        None
    }
}
