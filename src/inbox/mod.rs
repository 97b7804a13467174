#![doc = include_str!("docs.md")]

#[cfg(any(feature = "postgres", feature = "sqlite", feature = "redis"))]
#[macro_use]
mod delegate;
mod any;
mod archive;
mod bulk;
mod defaults;
mod memory;
mod pause;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
mod postgres;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
mod redis;
mod replay;
mod retry;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
mod sqlite;
mod status;
mod tally;
mod types;
mod worker;

use std::future::Future;
use std::time::Duration;

use time::OffsetDateTime;

pub use any::AnyInbox;
pub use archive::{
    ARCHIVE_SWEEP_STEP, ArchiveCursor, ArchiveFilter, ArchivedDelivery, ArchivedEvent,
    DEFAULT_ARCHIVE_RETENTION, FoundEvent,
};
pub use bulk::{BulkAction, BulkOutcome, KeptFilter, bulk_dead_letters, bulk_quarantined};
pub use memory::MemoryInbox;
#[cfg(feature = "metrics")]
pub(crate) use pause::set_gauges as set_pause_gauges;
pub use pause::{Pause, PauseScope};
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use postgres::PostgresInbox;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis::RedisInbox;
pub(crate) use replay::strip_rerun;
pub use replay::{
    DEFAULT_REPLAY_STALL, DEFAULT_REPLAY_STEP, ReplayId, ReplayJobs, ReplayMode, ReplayRequest,
    ReplayState, ReplayStatus,
};
pub use retry::RetryPolicy;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use sqlite::SqliteInbox;
pub use status::{InboxError, InboxStats, KeptCounts};
pub use types::{
    DeadLetter, DeadLetterId, DeliveryId, LEASE_RAN_OUT, LeaseToken, NewDeadLetter, NewDelivery,
    NewQuarantined, QuarantineId, Quarantined, Taken, replay_body,
};
pub(crate) use worker::bounded;
pub use worker::{
    DEFAULT_DELIVERY_LEASE, DEFAULT_HANDLER_TIMEOUT, DEFAULT_TAKE_BATCH, DEFAULT_WORKERS,
    GIVE_BACK_BOUND, HandlerTimedOut, PoolWaker, Progress, WorkerOptions, WorkerPool, Workers,
};

#[doc = include_str!("inbox_trait.md")]
pub trait Inbox: Send + Sync + 'static {
    /// Appends a delivery, in one round trip; durable (as the backend is)
    /// when it returns `Ok`.
    fn append(
        &self,
        delivery: NewDelivery<'_>,
    ) -> impl Future<Output = Result<DeliveryId, InboxError>> + Send;

    /// Takes the next delivery that may be processed now, under a `lease`:
    /// the oldest head of an account whose head is neither leased (a live
    /// lease) nor waiting for a retry. `None` when there is none.
    ///
    /// Atomically with the take, it **counts the attempt**
    /// ([`Taken::attempts`] is this attempt's number, 1 the first time),
    /// and if the delivery's previous lease ran out with no word from its
    /// worker it counts that attempt as abandoned ([`Taken::abandoned`])
    /// and records [`LEASE_RAN_OUT`] as the last error. The lease runs on
    /// the backend's clock where it has one shared by every process
    /// (PostgreSQL, Redis; see [whose clock](self#whose-clock)).
    fn take(
        &self,
        lease: Duration,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Option<Taken>, InboxError>> + Send;

    #[doc = include_str!("take_many.md")]
    fn take_many(
        &self,
        lease: Duration,
        now: OffsetDateTime,
        max: usize,
    ) -> impl Future<Output = Result<Vec<Taken>, InboxError>> + Send {
        defaults::run_of_one(self, lease, now, max)
    }

    /// Extends a lease the caller still holds by `lease` from now (the
    /// backend's clock on PostgreSQL and Redis, `now` on the others);
    /// `false` if it holds it no longer.
    fn renew(
        &self,
        id: DeliveryId,
        token: LeaseToken,
        lease: Duration,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, InboxError>> + Send;

    /// Removes a processed delivery and keeps its dead letters, atomically,
    /// if the caller still holds the lease (`false`, and nothing written,
    /// otherwise).
    fn complete(
        &self,
        id: DeliveryId,
        token: LeaseToken,
        dead_letters: &[NewDeadLetter],
    ) -> impl Future<Output = Result<bool, InboxError>> + Send;

    /// Gives a delivery back after a failed attempt (the handler's
    /// failure), to be tried again not before `not_before`, recording the
    /// error; the attempt stays counted (it was counted by the take). The
    /// account's later deliveries keep waiting behind it. `false` if the
    /// caller no longer holds the lease.
    fn retry_later(
        &self,
        id: DeliveryId,
        token: LeaseToken,
        not_before: OffsetDateTime,
        error: &str,
    ) -> impl Future<Output = Result<bool, InboxError>> + Send;

    /// Gives a delivery back **without counting the attempt**, to be tried
    /// again not before `not_before`, recording `error` as the last error: for what is not the
    /// handler's fault (the store or the inbox was unavailable, an event
    /// is in flight under another owner). `false` if the caller no longer
    /// holds the lease.
    fn postpone(
        &self,
        id: DeliveryId,
        token: LeaseToken,
        not_before: OffsetDateTime,
        error: &str,
    ) -> impl Future<Output = Result<bool, InboxError>> + Send;

    /// Gives a delivery back **without counting the attempt**, to be taken
    /// again at once: what a worker does when it shuts down mid-delivery.
    fn release(
        &self,
        id: DeliveryId,
        token: LeaseToken,
    ) -> impl Future<Output = Result<bool, InboxError>> + Send;

    /// Keeps a body that is not a valid envelope, in one round trip.
    fn quarantine(
        &self,
        body: NewQuarantined<'_>,
    ) -> impl Future<Output = Result<QuarantineId, InboxError>> + Send;

    /// The dead letters, oldest first, at most `limit`.
    fn dead_letters(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<DeadLetter>, InboxError>> + Send;

    /// The dead letters after `after` (from the first for `None`), oldest
    /// first, at most `limit`: a page of the admin listing. The default
    /// reads every dead letter to find the page; the crate's inboxes read
    /// only the page.
    fn dead_letters_after(
        &self,
        after: Option<DeadLetterId>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<DeadLetter>, InboxError>> + Send {
        defaults::dead_letters_after(self, after, limit)
    }

    /// One dead letter.
    fn dead_letter(
        &self,
        id: DeadLetterId,
    ) -> impl Future<Output = Result<Option<DeadLetter>, InboxError>> + Send;

    /// Deletes a dead letter; `false` if there was none.
    fn discard_dead_letter(
        &self,
        id: DeadLetterId,
    ) -> impl Future<Output = Result<bool, InboxError>> + Send;

    /// Removes a dead letter and appends its event as a new one-event
    /// delivery of its account ([`replay_body`]), atomically. `None` if
    /// there was no such dead letter.
    fn replay_dead_letter(
        &self,
        id: DeadLetterId,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Option<DeliveryId>, InboxError>> + Send;

    /// The quarantined bodies, oldest first, at most `limit`.
    fn quarantined(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Quarantined>, InboxError>> + Send;

    /// The quarantined bodies after `after` (from the first for `None`),
    /// oldest first, at most `limit`; the default as
    /// [`Inbox::dead_letters_after`]'s.
    fn quarantined_after(
        &self,
        after: Option<QuarantineId>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Quarantined>, InboxError>> + Send {
        async move {
            let all = self
                .quarantined(after.map_or(limit, |_| usize::MAX))
                .await?;
            let after = after.map_or(0, QuarantineId::get);
            Ok(all
                .into_iter()
                .filter(|q| q.id.get() > after)
                .take(limit)
                .collect())
        }
    }

    /// One quarantined body.
    fn quarantined_body(
        &self,
        id: QuarantineId,
    ) -> impl Future<Output = Result<Option<Quarantined>, InboxError>> + Send;

    /// Deletes a quarantined body; `false` if there was none.
    fn discard_quarantined(
        &self,
        id: QuarantineId,
    ) -> impl Future<Output = Result<bool, InboxError>> + Send;

    /// Removes a quarantined body and appends its exact bytes as a delivery
    /// of `account_id`, atomically: the caller has checked that the body
    /// parses now. `None` if there was no such body.
    fn replay_quarantined(
        &self,
        id: QuarantineId,
        account_id: crate::AccountId,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Option<DeliveryId>, InboxError>> + Send;

    /// What the inbox keeps of one account for a person: its dead letters,
    /// and its quarantined bodies with their bytes (a body whose
    /// `accountId` could not be read belongs to no account). What the
    /// endpoint compares with the per-account caps
    /// ([`KeptLimits`](crate::endpoint::KeptLimits)) before it keeps more
    /// of the account. The default reads every dead letter and
    /// quarantined body; the crate's inboxes count in one round trip
    /// (an indexed count on SQLite and PostgreSQL, counters kept by the
    /// scripts on Redis).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use alm_webhooks::AccountId;
    /// use alm_webhooks::inbox::{Inbox, MemoryInbox, NewQuarantined};
    /// let inbox = MemoryInbox::new();
    /// let now = time::OffsetDateTime::now_utc();
    /// let body = b"{\"accountId\":7,\"events\":{}}";
    /// inbox.quarantine(NewQuarantined { account_id: Some(AccountId(7)), body, error: "events", received_at: now }).await.unwrap();
    /// let kept = inbox.kept_of(AccountId(7)).await.unwrap();
    /// assert_eq!((kept.dead_letters, kept.quarantined, kept.quarantined_bytes), (0, 1, 27));
    /// # }
    /// ```
    fn kept_of(
        &self,
        account_id: crate::AccountId,
    ) -> impl Future<Output = Result<KeptCounts, InboxError>> + Send {
        async move {
            let kept = tally::read_all(self).await?;
            Ok(kept.get(&account_id).copied().unwrap_or_default())
        }
    }

    /// For each count of [`Inbox::kept_of`], the most that any one account
    /// keeps (each may be another account's): the fullest account, for the
    /// `alm_webhooks_kept_fullest_account_ratio` gauge. Asked when the
    /// gauges are refreshed, never on a delivery's path (it reads every
    /// account's counts: a grouped count over the `account_id` indexes on
    /// SQLite and PostgreSQL, the counters on Redis). The default reads
    /// every dead letter and quarantined body.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use alm_webhooks::AccountId;
    /// use alm_webhooks::inbox::{Inbox, KeptCounts, MemoryInbox, NewQuarantined};
    /// let inbox = MemoryInbox::new();
    /// let now = time::OffsetDateTime::now_utc();
    /// for (account, body) in [(7, &b"{\"accountId\":7"[..]), (8, b"{\"accountId\":8,"), (8, b"{")] {
    ///     let kept = NewQuarantined { account_id: Some(AccountId(account)), body, error: "x", received_at: now };
    ///     inbox.quarantine(kept).await.unwrap();
    /// }
    /// assert_eq!(inbox.most_kept_of_one_account().await.unwrap(), KeptCounts::new(0, 2, 16));
    /// # }
    /// ```
    fn most_kept_of_one_account(
        &self,
    ) -> impl Future<Output = Result<KeptCounts, InboxError>> + Send {
        async move { Ok(tally::most_of_one_account(&tally::read_all(self).await?)) }
    }

    /// Pauses `scope` from `now`: the paused deliveries are still appended,
    /// and [`take`](Inbox::take) skips them, in order, until
    /// [`resume`](Inbox::resume) (see [pausing](self#pausing-an-account)).
    /// Pausing what is paused keeps the first pause's time. The default
    /// refuses (an inbox of your own that keeps no pauses): a permanent
    /// error.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::time::Duration;
    /// use alm_webhooks::AccountId;
    /// use alm_webhooks::inbox::{Inbox, MemoryInbox, NewDelivery, PauseScope};
    /// let inbox = MemoryInbox::new();
    /// let now = time::OffsetDateTime::now_utc();
    /// inbox.pause(PauseScope::Account(AccountId(7)), now).await.unwrap();
    /// let body = br#"{"accountId":7,"events":[]}"#;
    /// inbox.append(NewDelivery { account_id: AccountId(7), body, received_at: now }).await.unwrap();
    /// assert!(inbox.take(Duration::from_secs(60), now).await.unwrap().is_none(), "paused");
    /// assert!(inbox.resume(PauseScope::Account(AccountId(7))).await.unwrap());
    /// assert!(inbox.take(Duration::from_secs(60), now).await.unwrap().is_some());
    /// # }
    /// ```
    fn pause(
        &self,
        scope: PauseScope,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<(), InboxError>> + Send {
        let _ = (scope, now);
        async { Err(InboxError::new("this inbox cannot pause accounts").permanent()) }
    }

    /// Lifts the pause of `scope`; resuming [`PauseScope::All`] lifts every
    /// pause, each account's too. Whether a pause was lifted. An account
    /// resumed while every account is paused stays held by that pause.
    /// The default: `false` (nothing is ever paused).
    fn resume(&self, scope: PauseScope) -> impl Future<Output = Result<bool, InboxError>> + Send {
        let _ = scope;
        async { Ok(false) }
    }

    /// The pauses in force, [`PauseScope::All`] first, then by account.
    /// The default: none.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use alm_webhooks::inbox::{Inbox, MemoryInbox, PauseScope};
    /// let inbox = MemoryInbox::new();
    /// let now = time::OffsetDateTime::now_utc();
    /// inbox.pause(PauseScope::All, now).await.unwrap();
    /// let pauses = inbox.pauses().await.unwrap();
    /// assert_eq!((pauses.len(), pauses[0].scope), (1, PauseScope::All));
    /// # }
    /// ```
    fn pauses(&self) -> impl Future<Output = Result<Vec<Pause>, InboxError>> + Send {
        async { Ok(Vec::new()) }
    }

    /// [`complete`](Inbox::complete), keeping the delivery in the archive
    /// in the same write: its bytes, its time received and `events`, the
    /// decisions of its events (see [the archive](self#the-archive)). The
    /// default completes and keeps nothing (an inbox with no archive).
    fn complete_archived(
        &self,
        id: DeliveryId,
        token: LeaseToken,
        dead_letters: &[NewDeadLetter],
        events: &[ArchivedEvent],
    ) -> impl Future<Output = Result<bool, InboxError>> + Send {
        let _ = events;
        self.complete(id, token, dead_letters)
    }

    /// The archived events that `filter` matches, by time received, then
    /// delivery, then position, at most `limit`. The default: none.
    fn search_archive(
        &self,
        filter: &ArchiveFilter,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<FoundEvent>, InboxError>> + Send {
        let _ = (filter, limit);
        async { Ok(Vec::new()) }
    }

    /// The archived deliveries that `filter` matches (one of their events
    /// does, if it has conditions on events) after `after`, by time
    /// received then id, at most `limit`, each with all its events: what
    /// a replay reads, a page at a time. The default: none.
    fn archived(
        &self,
        filter: &ArchiveFilter,
        after: Option<ArchiveCursor>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<ArchivedDelivery>, InboxError>> + Send {
        let _ = (filter, after, limit);
        async { Ok(Vec::new()) }
    }

    /// Removes at most `limit` archived deliveries received before
    /// `before`, oldest first, with their events; how many. The default: 0.
    fn sweep_archive(
        &self,
        before: OffsetDateTime,
        limit: usize,
    ) -> impl Future<Output = Result<u64, InboxError>> + Send {
        let _ = (before, limit);
        async { Ok(0) }
    }

    /// What the inbox holds now.
    fn stats(
        &self,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<InboxStats, InboxError>> + Send;

    /// Whether what is appended outlives the process (`true` by default;
    /// [`MemoryInbox`] says `false`). An [`Endpoint`](crate::Endpoint)
    /// refuses to pair a durable inbox with the engine's in-memory default,
    /// which would forget after a restart what the inbox remembers.
    ///
    /// ```
    /// use alm_webhooks::inbox::{Inbox, MemoryInbox};
    /// assert!(!MemoryInbox::new().is_durable());
    /// ```
    fn is_durable(&self) -> bool {
        true
    }
}
