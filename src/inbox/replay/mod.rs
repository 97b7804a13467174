//! Replaying the archive over a time range and a filter, as jobs: each
//! matched archived delivery is appended again at the tail of its
//! account's queue, a bounded step at a time, so a replay never overtakes
//! the live stream of an account (see [replaying](super#replaying-the-archive)).

mod book;
mod job;

use std::fmt;
use std::str::FromStr;

use serde_json::{Value, json};

pub use book::{DEFAULT_REPLAY_STALL, DEFAULT_REPLAY_STEP, ReplayJobs};
pub(crate) use job::strip_rerun;

use super::ArchiveFilter;

/// What a replay does with the archived events it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplayMode {
    /// Through the engine again: what was processed stays a duplicate (the
    /// engine's dedup decides), so the handler runs only for what was not
    /// processed (failed, dead-lettered, never decided).
    Unprocessed,
    /// The handler runs once more for each event the archive says was
    /// processed, without the engine: its decisions and the learner table
    /// are left as they are. For a downstream that lost data; what the
    /// handler does outside the database happens at least once more.
    Rerun,
}

impl ReplayMode {
    /// `unprocessed` or `rerun`, as the admin API spells it.
    ///
    /// ```
    /// use alm_webhooks::inbox::ReplayMode;
    /// assert_eq!(ReplayMode::Rerun.as_str(), "rerun");
    /// assert_eq!("unprocessed".parse::<ReplayMode>().unwrap(), ReplayMode::Unprocessed);
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unprocessed => "unprocessed",
            Self::Rerun => "rerun",
        }
    }
}

impl FromStr for ReplayMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "unprocessed" => Ok(Self::Unprocessed),
            "rerun" => Ok(Self::Rerun),
            other => Err(format!(
                "expected \"unprocessed\" or \"rerun\", not {other:?}"
            )),
        }
    }
}

/// What to replay: the archived deliveries `filter` matches (received in
/// its range; of its events, only those its conditions on events match),
/// in `mode`.
///
/// ```
/// use alm_webhooks::AccountId;
/// use alm_webhooks::inbox::{ArchiveFilter, ReplayMode, ReplayRequest};
/// let from = time::macros::datetime!(2026-12-01 00:00 UTC);
/// let to = time::macros::datetime!(2026-12-02 00:00 UTC);
/// let filter = ArchiveFilter::new().received_from(from).received_before(to).with_account_id(AccountId(7));
/// let request = ReplayRequest::new(filter, ReplayMode::Rerun);
/// assert_eq!(request.mode, ReplayMode::Rerun);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplayRequest {
    /// Which archived deliveries and events.
    pub filter: ArchiveFilter,
    /// What to do with them.
    pub mode: ReplayMode,
}

impl ReplayRequest {
    /// A replay of what `filter` matches, in `mode`.
    pub fn new(filter: ArchiveFilter, mode: ReplayMode) -> Self {
        Self { filter, mode }
    }
}

/// A replay job's id: random, so that a delivery a job queued before a
/// restart is never counted for a job started after it.
///
/// ```
/// use alm_webhooks::inbox::ReplayId;
/// let id: ReplayId = "00000000000000ff".parse().unwrap();
/// assert_eq!((id.0, id.to_string()), (255, "00000000000000ff".to_owned()));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReplayId(pub u64);

impl fmt::Display for ReplayId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl FromStr for ReplayId {
    type Err = std::num::ParseIntError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        u64::from_str_radix(s, 16).map(Self)
    }
}

/// Where a replay job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplayState {
    /// Reading the archive and queueing steps.
    Running,
    /// Every matched delivery was queued and processed.
    Done,
    /// Cancelled: no further step is queued.
    Cancelled,
    /// The inbox failed, or a step made no progress within the stall
    /// limit (the error says which).
    Failed,
}

impl ReplayState {
    /// `running`, `done`, `cancelled`, `failed`.
    ///
    /// ```
    /// assert_eq!(alm_webhooks::inbox::ReplayState::Cancelled.as_str(), "cancelled");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Done => "done",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
        }
    }
}

/// A replay job's progress, as `GET /admin/replays/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplayStatus {
    /// Its id.
    pub id: ReplayId,
    /// Its mode.
    pub mode: ReplayMode,
    /// Where it is.
    pub state: ReplayState,
    /// Events queued again so far (in rerun mode, the processed ones).
    pub matched: u64,
    /// Of those, events whose delivery the workers finished.
    pub done: u64,
    /// Why it failed.
    pub error: Option<String>,
}

impl ReplayStatus {
    /// As JSON: `{"id", "mode", "state", "matched", "done", "error"}`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::sync::Arc;
    /// use alm_webhooks::inbox::{ArchiveFilter, MemoryInbox, ReplayJobs, ReplayMode, ReplayRequest};
    /// let jobs = ReplayJobs::new();
    /// let id = jobs.start(Arc::new(MemoryInbox::new()), ReplayRequest::new(ArchiveFilter::new(), ReplayMode::Rerun));
    /// let json = jobs.status(id).unwrap().to_json();
    /// assert_eq!((json["mode"].as_str(), json["matched"].as_u64()), (Some("rerun"), Some(0)));
    /// # }
    /// ```
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id.to_string(),
            "mode": self.mode.as_str(),
            "state": self.state.as_str(),
            "matched": self.matched,
            "done": self.done,
            "error": self.error,
        })
    }
}
