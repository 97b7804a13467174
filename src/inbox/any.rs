//! An inbox chosen at run time from a URL, as the stores are
//! (`ALM_INBOX=memory`, `postgres://…`, `redis://…`, `sqlite:…`).

use std::time::Duration;

use time::OffsetDateTime;

use super::FoundEvent;
use super::{
    ArchiveCursor, ArchiveFilter, ArchivedDelivery, ArchivedEvent, DeadLetter, DeadLetterId,
    DeliveryId, Inbox, InboxError, InboxStats, KeptCounts, LeaseToken, MemoryInbox, NewDeadLetter,
    NewDelivery, NewQuarantined, Pause, PauseScope, QuarantineId, Quarantined, Taken,
};
use crate::AccountId;

/// One of the inboxes this build has, picked by [`AnyInbox::from_url`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use alm_webhooks::inbox::{AnyInbox, Inbox};
/// // `memory`, `sqlite:path`, `postgres://…`, `redis://…`: configuration,
/// // such as the example receivers' `ALM_INBOX`.
/// let url = "memory";
/// let inbox = AnyInbox::from_url(url).await.unwrap();
/// let stats = inbox.stats(time::OffsetDateTime::now_utc()).await.unwrap();
/// assert_eq!(stats.pending, 0);
/// # }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum AnyInbox {
    /// The in-memory inbox.
    Memory(MemoryInbox),
    /// PostgreSQL (`postgres://`, `postgresql://`).
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    Postgres(super::PostgresInbox),
    /// Redis (`redis://`, `rediss://`).
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    Redis(super::RedisInbox),
    /// SQLite (`sqlite:path`, `sqlite://path`, `sqlite::memory:`).
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    Sqlite(super::SqliteInbox),
}

impl AnyInbox {
    /// Opens the inbox a URL names, with the same URLs as
    /// [`AnyStore::from_url`](crate::store::AnyStore::from_url): `memory`,
    /// `postgres://…` (`schema=` puts the tables in that schema;
    /// `migrate=true` runs [`PostgresInbox::migrate`](super::PostgresInbox::migrate)
    /// first, else the tables must exist),
    /// `redis://…` (`prefix=` prefixes the keys), `sqlite:path`. An inbox and
    /// a store may share one URL: their tables and keys do not collide.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use alm_webhooks::inbox::AnyInbox;
    /// assert!(matches!(AnyInbox::from_url("memory").await.unwrap(), AnyInbox::Memory(_)));
    /// assert!(AnyInbox::from_url("ftp://nowhere").await.is_err());
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// An [`InboxError`] for an unknown scheme or a backend that cannot be
    /// reached; its message never contains the URL's password.
    pub async fn from_url(url: &str) -> Result<Self, InboxError> {
        let scheme = url.split_once(':').map_or(url, |(scheme, _)| scheme);
        match scheme {
            "" | "memory" => Ok(Self::Memory(MemoryInbox::new())),
            #[cfg(feature = "postgres")]
            "postgres" | "postgresql" => {
                let (url, schema) = crate::store::take_param(url, "schema");
                let schema = schema.unwrap_or_else(|| "public".to_owned());
                let (url, migrate) = crate::store::take_param(&url, "migrate");
                if migrate.as_deref() == Some("true") {
                    super::PostgresInbox::migrate(&url, &schema).await?;
                }
                Ok(Self::Postgres(
                    super::PostgresInbox::connect_with_schema(&url, &schema).await?,
                ))
            }
            #[cfg(feature = "redis")]
            "redis" | "rediss" => {
                let (url, prefix) = crate::store::take_param(url, "prefix");
                let prefix =
                    prefix.unwrap_or_else(|| crate::store::redis::DEFAULT_PREFIX.to_owned());
                Ok(Self::Redis(
                    super::RedisInbox::connect_with_prefix(&url, &prefix).await?,
                ))
            }
            #[cfg(feature = "sqlite")]
            "sqlite" => {
                let rest = &url["sqlite:".len()..];
                let path = rest.strip_prefix("//").unwrap_or(rest);
                let inbox = match path {
                    ":memory:" => super::SqliteInbox::open_in_memory()?,
                    "" => return Err(InboxError::new("sqlite: the URL names no file")),
                    path => super::SqliteInbox::open(path)?,
                };
                Ok(Self::Sqlite(inbox))
            }
            other => Err(InboxError::new(format!(
                "unsupported inbox `{}`: this build supports memory{}",
                crate::url_scheme::shown(other),
                if cfg!(feature = "sqlite") {
                    ", sqlite:"
                } else {
                    ""
                },
            ))),
        }
    }
}

impl AnyInbox {
    /// The inbox beside a store, on the store's own connections: a
    /// PostgreSQL store's pool ([`PostgresInbox::from_pool`](super::PostgresInbox::from_pool),
    /// same schema), a Redis store's connection manager
    /// ([`RedisInbox::from_manager`](super::RedisInbox::from_manager),
    /// same prefix), a SQLite store's connection
    /// ([`SqliteInbox::from_store`](super::SqliteInbox::from_store)); a
    /// memory inbox beside the memory store. One pool per process instead
    /// of one per component.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use alm_webhooks::inbox::AnyInbox;
    /// use alm_webhooks::store::AnyStore;
    ///
    /// let store = AnyStore::from_url("memory").await.unwrap();
    /// let inbox = AnyInbox::from_store(&store).await.unwrap();
    /// assert!(matches!(inbox, AnyInbox::Memory(_)));
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// An [`InboxError`] when the inbox's tables are missing (PostgreSQL:
    /// migrate first) or cannot be created (SQLite), or for a custom
    /// store, which has no connection to share.
    pub async fn from_store(store: &crate::store::AnyStore) -> Result<Self, InboxError> {
        use crate::store::AnyStore;
        match store {
            AnyStore::Memory(_) => Ok(Self::Memory(MemoryInbox::new())),
            #[cfg(feature = "postgres")]
            AnyStore::Postgres(store) => Ok(Self::Postgres(
                super::PostgresInbox::from_pool(store.pool().clone(), store.schema()).await?,
            )),
            #[cfg(feature = "redis")]
            AnyStore::Redis(store) => Ok(Self::Redis(super::RedisInbox::from_manager(
                store.manager().clone(),
                store.prefix(),
            ))),
            #[cfg(feature = "sqlite")]
            AnyStore::Sqlite(store) => Ok(Self::Sqlite(super::SqliteInbox::from_store(store)?)),
            AnyStore::Custom(_) => Err(InboxError::new(
                "a custom store has no connection to share: open the inbox with AnyInbox::from_url",
            )),
        }
    }
}

macro_rules! delegate {
    ($self:ident, $inbox:ident => $call:expr) => {
        match $self {
            AnyInbox::Memory($inbox) => $call.await,
            #[cfg(feature = "postgres")]
            AnyInbox::Postgres($inbox) => $call.await,
            #[cfg(feature = "redis")]
            AnyInbox::Redis($inbox) => $call.await,
            #[cfg(feature = "sqlite")]
            AnyInbox::Sqlite($inbox) => $call.await,
        }
    };
}

impl Inbox for AnyInbox {
    fn is_durable(&self) -> bool {
        !matches!(self, Self::Memory(_))
    }

    async fn append(&self, delivery: NewDelivery<'_>) -> Result<DeliveryId, InboxError> {
        delegate!(self, i => i.append(delivery))
    }

    async fn take(
        &self,
        lease: Duration,
        now: OffsetDateTime,
    ) -> Result<Option<Taken>, InboxError> {
        delegate!(self, i => i.take(lease, now))
    }

    async fn take_many(
        &self,
        lease: Duration,
        now: OffsetDateTime,
        max: usize,
    ) -> Result<Vec<Taken>, InboxError> {
        delegate!(self, i => i.take_many(lease, now, max))
    }

    async fn renew(
        &self,
        id: DeliveryId,
        token: LeaseToken,
        lease: Duration,
        now: OffsetDateTime,
    ) -> Result<bool, InboxError> {
        delegate!(self, i => i.renew(id, token, lease, now))
    }

    async fn complete(
        &self,
        id: DeliveryId,
        token: LeaseToken,
        dead_letters: &[NewDeadLetter],
    ) -> Result<bool, InboxError> {
        delegate!(self, i => i.complete(id, token, dead_letters))
    }

    async fn retry_later(
        &self,
        id: DeliveryId,
        token: LeaseToken,
        not_before: OffsetDateTime,
        error: &str,
    ) -> Result<bool, InboxError> {
        delegate!(self, i => i.retry_later(id, token, not_before, error))
    }

    async fn postpone(
        &self,
        id: DeliveryId,
        token: LeaseToken,
        not_before: OffsetDateTime,
        error: &str,
    ) -> Result<bool, InboxError> {
        delegate!(self, i => i.postpone(id, token, not_before, error))
    }

    async fn release(&self, id: DeliveryId, token: LeaseToken) -> Result<bool, InboxError> {
        delegate!(self, i => i.release(id, token))
    }

    async fn quarantine(&self, body: NewQuarantined<'_>) -> Result<QuarantineId, InboxError> {
        delegate!(self, i => i.quarantine(body))
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, InboxError> {
        delegate!(self, i => i.dead_letters(limit))
    }

    async fn dead_letters_after(
        &self,
        after: Option<DeadLetterId>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, InboxError> {
        delegate!(self, i => i.dead_letters_after(after, limit))
    }

    async fn dead_letter(&self, id: DeadLetterId) -> Result<Option<DeadLetter>, InboxError> {
        delegate!(self, i => i.dead_letter(id))
    }

    async fn discard_dead_letter(&self, id: DeadLetterId) -> Result<bool, InboxError> {
        delegate!(self, i => i.discard_dead_letter(id))
    }

    async fn replay_dead_letter(
        &self,
        id: DeadLetterId,
        now: OffsetDateTime,
    ) -> Result<Option<DeliveryId>, InboxError> {
        delegate!(self, i => i.replay_dead_letter(id, now))
    }

    async fn quarantined(&self, limit: usize) -> Result<Vec<Quarantined>, InboxError> {
        delegate!(self, i => i.quarantined(limit))
    }

    async fn quarantined_after(
        &self,
        after: Option<QuarantineId>,
        limit: usize,
    ) -> Result<Vec<Quarantined>, InboxError> {
        delegate!(self, i => i.quarantined_after(after, limit))
    }

    async fn quarantined_body(&self, id: QuarantineId) -> Result<Option<Quarantined>, InboxError> {
        delegate!(self, i => i.quarantined_body(id))
    }

    async fn discard_quarantined(&self, id: QuarantineId) -> Result<bool, InboxError> {
        delegate!(self, i => i.discard_quarantined(id))
    }

    async fn replay_quarantined(
        &self,
        id: QuarantineId,
        account_id: AccountId,
        now: OffsetDateTime,
    ) -> Result<Option<DeliveryId>, InboxError> {
        delegate!(self, i => i.replay_quarantined(id, account_id, now))
    }

    async fn kept_of(&self, account_id: AccountId) -> Result<KeptCounts, InboxError> {
        delegate!(self, i => i.kept_of(account_id))
    }

    async fn most_kept_of_one_account(&self) -> Result<KeptCounts, InboxError> {
        delegate!(self, i => i.most_kept_of_one_account())
    }

    async fn stats(&self, now: OffsetDateTime) -> Result<InboxStats, InboxError> {
        delegate!(self, i => i.stats(now))
    }

    async fn pause(&self, scope: PauseScope, now: OffsetDateTime) -> Result<(), InboxError> {
        delegate!(self, i => i.pause(scope, now))
    }

    async fn resume(&self, scope: PauseScope) -> Result<bool, InboxError> {
        delegate!(self, i => i.resume(scope))
    }

    async fn pauses(&self) -> Result<Vec<Pause>, InboxError> {
        delegate!(self, i => i.pauses())
    }

    async fn complete_archived(
        &self,
        id: DeliveryId,
        token: LeaseToken,
        dead_letters: &[NewDeadLetter],
        events: &[ArchivedEvent],
    ) -> Result<bool, InboxError> {
        delegate!(self, i => i.complete_archived(id, token, dead_letters, events))
    }

    async fn search_archive(
        &self,
        filter: &ArchiveFilter,
        limit: usize,
    ) -> Result<Vec<FoundEvent>, InboxError> {
        delegate!(self, i => i.search_archive(filter, limit))
    }

    async fn archived(
        &self,
        filter: &ArchiveFilter,
        after: Option<ArchiveCursor>,
        limit: usize,
    ) -> Result<Vec<ArchivedDelivery>, InboxError> {
        delegate!(self, i => i.archived(filter, after, limit))
    }

    async fn sweep_archive(&self, before: OffsetDateTime, limit: usize) -> Result<u64, InboxError> {
        delegate!(self, i => i.sweep_archive(before, limit))
    }
}
