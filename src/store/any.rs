//! A store chosen at run time from a URL, for receivers configured by
//! environment (`ALM_STORE=memory`, `postgres://…`, `redis://…`,
//! `sqlite:…`).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{
    Claim, ClaimOwner, ClaimRequest, Commit, CommitOutcome, DedupKey, DynStore, MemoryStore, Store,
    StoreError, Versioned,
};
use crate::rules::StateKey;

/// One of the stores this build has, picked by [`AnyStore::from_url`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use alm_webhooks::Engine;
/// use alm_webhooks::store::AnyStore;
///
/// // From configuration, e.g. ALM_STORE=postgres://… or redis://…
/// let url = std::env::var("ALM_STORE").unwrap_or_else(|_| "memory".to_owned());
/// # let url = "memory";
/// let engine = Engine::builder(AnyStore::from_url(&url).await.unwrap()).build();
/// assert!(matches!(engine.store(), AnyStore::Memory(_)));
/// # }
/// ```
#[derive(Debug)]
#[non_exhaustive]
// A build with the memory store alone has one large variant; an engine
// holds its store once (behind an `Arc`), so its size is never copied
// around.
#[allow(clippy::large_enum_variant)]
pub enum AnyStore {
    /// The in-memory store.
    Memory(MemoryStore),
    /// PostgreSQL (`postgres://`, `postgresql://`).
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    Postgres(super::PostgresStore),
    /// Redis (`redis://`, `rediss://`).
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    Redis(super::RedisStore),
    /// SQLite (`sqlite:path`, `sqlite://path`, `sqlite::memory:`).
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    Sqlite(super::SqliteStore),
    /// A store of your own (any [`Store`] + `Debug`), through its
    /// object-safe mirror [`DynStore`]; see [`AnyStore::from_store`].
    Custom(Arc<dyn DynStore>),
}

impl AnyStore {
    /// Wraps a store of your own, so that a receiver that picks its store
    /// at run time can pick yours too. Each call then costs one boxed
    /// future.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use alm_webhooks::{Engine, store::{AnyStore, MemoryStore}};
    /// // Any `Store` will do: yours, or one of this crate's.
    /// let store = AnyStore::from_store(MemoryStore::new());
    /// assert!(matches!(store, AnyStore::Custom(_)));
    /// let engine = Engine::builder(store).build();
    /// assert_eq!(engine.sweep().await.unwrap(), 0);
    /// # }
    /// ```
    pub fn from_store<S: Store + std::fmt::Debug>(store: S) -> Self {
        Self::Custom(Arc::new(store))
    }

    /// Keeps the learner projection in the store's commits (see
    /// [`crate::projection`]): each store's own `with_learner_projection`,
    /// for a store picked at run time.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use alm_webhooks::store::AnyStore;
    /// let store = AnyStore::from_url("memory").await.unwrap();
    /// let store = store.with_learner_projection().await.unwrap();
    /// # let _ = store;
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// When the table is missing on SQLite or PostgreSQL (run their
    /// `migrate`) or the database fails, and for a store of your own
    /// ([`AnyStore::from_store`]), which keeps no learner table.
    pub async fn with_learner_projection(self) -> Result<Self, StoreError> {
        Ok(match self {
            Self::Memory(s) => Self::Memory(s.with_learner_projection()),
            #[cfg(feature = "sqlite")]
            Self::Sqlite(s) => Self::Sqlite(s.with_learner_projection().await?),
            #[cfg(feature = "postgres")]
            Self::Postgres(s) => Self::Postgres(s.with_learner_projection().await?),
            #[cfg(feature = "redis")]
            Self::Redis(s) => Self::Redis(s.with_learner_projection()),
            Self::Custom(_) => {
                return Err(StoreError::new(
                    "a store of your own keeps no learner table",
                ));
            }
        })
    }

    /// Keeps an outbox of processed events in the store's commits (see
    /// [`crate::outbox`]): each store's own `with_outbox`, for a store
    /// picked at run time.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use alm_webhooks::store::AnyStore;
    /// let store = AnyStore::from_url("memory").await.unwrap().with_outbox().await.unwrap();
    /// # let _ = store;
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// When the table is missing on SQLite or PostgreSQL (run their
    /// `migrate`) or the database fails, and for a store of your own
    /// ([`AnyStore::from_store`]), which keeps no outbox.
    pub async fn with_outbox(self) -> Result<Self, StoreError> {
        Ok(match self {
            Self::Memory(s) => Self::Memory(s.with_outbox()),
            #[cfg(feature = "sqlite")]
            Self::Sqlite(s) => Self::Sqlite(s.with_outbox().await?),
            #[cfg(feature = "postgres")]
            Self::Postgres(s) => Self::Postgres(s.with_outbox().await?),
            #[cfg(feature = "redis")]
            Self::Redis(s) => Self::Redis(s.with_outbox()),
            Self::Custom(_) => {
                return Err(StoreError::new("a store of your own keeps no outbox"));
            }
        })
    }

    /// Opens the store a URL names: `memory` (or an empty string) for the
    /// in-memory store; with the `postgres` feature, `postgres://…` (a
    /// `schema=` query parameter names the schema; `migrate=true` runs
    /// [`PostgresStore::migrate`](super::PostgresStore::migrate) first,
    /// else the tables must exist); `redis://…` with the `redis` feature (a
    /// `prefix=` query parameter sets the key prefix); with the `sqlite`
    /// feature, `sqlite:path` or `sqlite://path` for a database file
    /// (`sqlite:///var/lib/app/alm.db` is an absolute path) and
    /// `sqlite::memory:` for an in-process database.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use alm_webhooks::store::AnyStore;
    /// assert!(matches!(AnyStore::from_url("memory").await.unwrap(), AnyStore::Memory(_)));
    /// assert!(AnyStore::from_url("ftp://nowhere").await.is_err());
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// A [`StoreError`] for an unknown scheme (naming the schemes this build
    /// supports) or a store that cannot be reached. The message never
    /// contains the URL's password.
    pub async fn from_url(url: &str) -> Result<Self, StoreError> {
        let scheme = url.split_once(':').map_or(url, |(scheme, _)| scheme);
        match scheme {
            "" | "memory" => Ok(Self::Memory(MemoryStore::new())),
            #[cfg(feature = "postgres")]
            "postgres" | "postgresql" => {
                let (url, schema) = super::take_param(url, "schema");
                let (url, migrate) = super::take_param(&url, "migrate");
                if migrate.as_deref() == Some("true") {
                    let schema = schema.as_deref().unwrap_or("public");
                    super::PostgresStore::migrate(&url, schema).await?;
                }
                let store = match schema {
                    Some(schema) => {
                        super::PostgresStore::connect_with_schema(&url, &schema).await?
                    }
                    None => super::PostgresStore::connect(&url).await?,
                };
                Ok(Self::Postgres(store))
            }
            #[cfg(feature = "redis")]
            "redis" | "rediss" => {
                let (url, prefix) = super::take_param(url, "prefix");
                let store = match prefix {
                    Some(prefix) => super::RedisStore::connect_with_prefix(&url, &prefix).await?,
                    None => super::RedisStore::connect(&url).await?,
                };
                Ok(Self::Redis(store))
            }
            #[cfg(feature = "sqlite")]
            "sqlite" => {
                let rest = &url["sqlite:".len()..];
                let path = rest.strip_prefix("//").unwrap_or(rest);
                let store = match path {
                    ":memory:" => super::SqliteStore::open_in_memory()?,
                    "" => return Err(StoreError::new("sqlite: the URL names no file")),
                    path => super::SqliteStore::open(path)?,
                };
                Ok(Self::Sqlite(store))
            }
            other => Err(StoreError::new(format!(
                "unsupported store `{}`: this build supports {}",
                crate::url_scheme::shown(other),
                supported().join(", ")
            ))),
        }
    }
}

fn supported() -> Vec<&'static str> {
    let mut schemes = vec!["memory"];
    if cfg!(feature = "postgres") {
        schemes.push("postgres://");
    }
    if cfg!(feature = "redis") {
        schemes.push("redis://");
    }
    if cfg!(feature = "sqlite") {
        schemes.push("sqlite:");
    }
    schemes
}

macro_rules! delegate {
    ($self:ident, $store:ident => $call:expr; $boxed:ident($($arg:expr),*)) => {
        match $self {
            AnyStore::Custom($store) => $store.$boxed($($arg),*).await,
            AnyStore::Memory($store) => $call.await,
            #[cfg(feature = "postgres")]
            AnyStore::Postgres($store) => $call.await,
            #[cfg(feature = "redis")]
            AnyStore::Redis($store) => $call.await,
            #[cfg(feature = "sqlite")]
            AnyStore::Sqlite($store) => $call.await,
        }
    };
}

impl Store for AnyStore {
    async fn claim(
        &self,
        key: &DedupKey,
        owner: ClaimOwner,
        lease: Duration,
        now: SystemTime,
    ) -> Result<Claim, StoreError> {
        delegate!(self, s => s.claim(key, owner, lease, now); claim_boxed(key, owner, lease, now))
    }

    async fn load(&self, key: &StateKey) -> Result<Versioned, StoreError> {
        delegate!(self, s => s.load(key); load_boxed(key))
    }

    async fn claim_and_load(
        &self,
        key: &DedupKey,
        state: Option<&StateKey>,
        owner: ClaimOwner,
        lease: Duration,
        now: SystemTime,
    ) -> Result<(Claim, Versioned), StoreError> {
        delegate!(self, s => s.claim_and_load(key, state, owner, lease, now); claim_and_load_boxed(key, state, owner, lease, now))
    }

    async fn claim_many(
        &self,
        requests: &[ClaimRequest<'_>],
        owner: ClaimOwner,
        lease: Duration,
        now: SystemTime,
    ) -> Result<Vec<(Claim, Versioned)>, StoreError> {
        delegate!(self, s => s.claim_many(requests, owner, lease, now); claim_many_boxed(requests, owner, lease, now))
    }

    async fn commit(&self, commit: Commit<'_>) -> Result<CommitOutcome, StoreError> {
        delegate!(self, s => s.commit(commit); commit_boxed(commit))
    }

    async fn commit_many(&self, commits: &[Commit<'_>]) -> Result<Vec<CommitOutcome>, StoreError> {
        delegate!(self, s => s.commit_many(commits); commit_many_boxed(commits))
    }

    fn wants_decided(&self) -> bool {
        match self {
            AnyStore::Custom(s) => s.wants_decided_boxed(),
            AnyStore::Memory(s) => s.wants_decided(),
            #[cfg(feature = "postgres")]
            AnyStore::Postgres(s) => s.wants_decided(),
            #[cfg(feature = "redis")]
            AnyStore::Redis(s) => s.wants_decided(),
            #[cfg(feature = "sqlite")]
            AnyStore::Sqlite(s) => s.wants_decided(),
        }
    }

    async fn commit_decided(
        &self,
        commits: &[Commit<'_>],
        decided: &[Option<super::Decided<'_>>],
    ) -> Result<Vec<CommitOutcome>, StoreError> {
        delegate!(self, s => s.commit_decided(commits, decided); commit_decided_boxed(commits, decided))
    }

    async fn renew(
        &self,
        key: &DedupKey,
        token: ClaimOwner,
        lease: Duration,
        now: SystemTime,
    ) -> Result<bool, StoreError> {
        delegate!(self, s => s.renew(key, token, lease, now); renew_boxed(key, token, lease, now))
    }

    async fn renew_many(
        &self,
        claims: &[(&DedupKey, ClaimOwner)],
        lease: Duration,
        now: SystemTime,
    ) -> Result<Vec<bool>, StoreError> {
        delegate!(self, s => s.renew_many(claims, lease, now); renew_many_boxed(claims, lease, now))
    }

    async fn release(&self, key: &DedupKey, token: ClaimOwner) -> Result<(), StoreError> {
        delegate!(self, s => s.release(key, token); release_boxed(key, token))
    }

    async fn sweep(&self, now: SystemTime) -> Result<u64, StoreError> {
        delegate!(self, s => s.sweep(now); sweep_boxed(now))
    }
}

/// A store picked at run time: its outbox if it keeps one (a store of your
/// own, [`AnyStore::Custom`](AnyStore::Custom), keeps none here).
impl super::OutboxStore for AnyStore {
    fn keeps_outbox(&self) -> bool {
        match self {
            AnyStore::Memory(s) => s.keeps_outbox(),
            #[cfg(feature = "postgres")]
            AnyStore::Postgres(s) => s.keeps_outbox(),
            #[cfg(feature = "sqlite")]
            AnyStore::Sqlite(s) => s.keeps_outbox(),
            #[cfg(feature = "redis")]
            AnyStore::Redis(s) => s.keeps_outbox(),
            _ => false,
        }
    }

    async fn lease_outbox(
        &self,
        relay: &str,
        max: usize,
        lease: Duration,
    ) -> Result<Vec<super::OutboxEntry>, StoreError> {
        match self {
            AnyStore::Memory(s) => s.lease_outbox(relay, max, lease).await,
            #[cfg(feature = "postgres")]
            AnyStore::Postgres(s) => s.lease_outbox(relay, max, lease).await,
            #[cfg(feature = "sqlite")]
            AnyStore::Sqlite(s) => s.lease_outbox(relay, max, lease).await,
            #[cfg(feature = "redis")]
            AnyStore::Redis(s) => s.lease_outbox(relay, max, lease).await,
            _ => Ok(Vec::new()),
        }
    }

    async fn mark_sent(&self, relay: &str, sent: &[super::OutboxEntry]) -> Result<(), StoreError> {
        match self {
            AnyStore::Memory(s) => s.mark_sent(relay, sent).await,
            #[cfg(feature = "postgres")]
            AnyStore::Postgres(s) => s.mark_sent(relay, sent).await,
            #[cfg(feature = "sqlite")]
            AnyStore::Sqlite(s) => s.mark_sent(relay, sent).await,
            #[cfg(feature = "redis")]
            AnyStore::Redis(s) => s.mark_sent(relay, sent).await,
            _ => Ok(()),
        }
    }

    async fn outbox_stats(&self) -> Result<super::OutboxStats, StoreError> {
        match self {
            AnyStore::Memory(s) => s.outbox_stats().await,
            #[cfg(feature = "postgres")]
            AnyStore::Postgres(s) => s.outbox_stats().await,
            #[cfg(feature = "sqlite")]
            AnyStore::Sqlite(s) => s.outbox_stats().await,
            #[cfg(feature = "redis")]
            AnyStore::Redis(s) => s.outbox_stats().await,
            _ => Ok(super::OutboxStats::default()),
        }
    }
}
