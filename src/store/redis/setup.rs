//! Connecting to Redis, for the store and the inbox: one connection
//! manager with bounded connection attempts and answers.

use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, RedisError};

use super::codec::redis_error;
use super::scripts::Scripts;
use super::{DEFAULT_PREFIX, RedisStore};
use crate::store::StoreError;

/// How long opening a connection to Redis may take, by default.
pub(crate) const CONNECTION_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a command (one script: one call of the store or the inbox)
/// may wait for its answer, by default.
pub(crate) const RESPONSE_TIMEOUT: Duration = Duration::from_secs(3);

/// The connection manager's settings the `connect` constructors use: 3
/// reconnection attempts, [`CONNECTION_TIMEOUT`], [`RESPONSE_TIMEOUT`].
pub(crate) fn manager_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_number_of_retries(3)
        .set_connection_timeout(Some(CONNECTION_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
}

/// Opens a connection manager to `url` with the crate's retries and
/// timeouts (shared by the store and the inbox), and the server's address
/// for messages (never a password). On failure: what failed, and why.
pub(crate) async fn open_manager(
    url: &str,
) -> Result<(ConnectionManager, String), (String, RedisError)> {
    let client = Client::open(url).map_err(|e| ("invalid URL".to_owned(), e))?;
    let addr = client.get_connection_info().addr().to_string();
    let config = manager_config();
    // The first connection, with its retries, is bounded too.
    let limit = CONNECTION_TIMEOUT * 4;
    let connecting = ConnectionManager::new_with_config(client, config);
    let conn = tokio::time::timeout(limit, connecting)
        .await
        .map_err(|_| {
            let e = RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no connection within {limit:?}"),
            ));
            (format!("cannot connect to {addr}"), e)
        })?
        .map_err(|e| (format!("cannot connect to {addr}"), e))?;
    Ok((conn, addr))
}

impl RedisStore {
    /// The key prefix [`RedisStore::connect`] uses: `alm-webhooks:`.
    ///
    /// ```
    /// # #[cfg(feature = "redis")]
    /// assert_eq!(alm_webhooks::store::RedisStore::DEFAULT_PREFIX, "alm-webhooks:");
    /// ```
    pub const DEFAULT_PREFIX: &'static str = DEFAULT_PREFIX;

    /// How long the `connect` constructors let one connection attempt take:
    /// 2 s.
    ///
    /// ```
    /// assert_eq!(alm_webhooks::store::RedisStore::CONNECTION_TIMEOUT.as_secs(), 2);
    /// ```
    pub const CONNECTION_TIMEOUT: Duration = CONNECTION_TIMEOUT;

    /// How long a call waits for Redis's answer with the `connect`
    /// constructors: 3 s, so a Redis that stopped answering (a network
    /// that drops packets) fails the call as transient, and a delivery is
    /// answered `503` well inside ALM's 5 s. For other values, build the
    /// [`ConnectionManager`] yourself (start from
    /// [`RedisStore::manager_config`]) and use
    /// [`from_manager`](Self::from_manager).
    ///
    /// ```
    /// assert_eq!(alm_webhooks::store::RedisStore::RESPONSE_TIMEOUT.as_secs(), 3);
    /// ```
    pub const RESPONSE_TIMEOUT: Duration = RESPONSE_TIMEOUT;

    /// The connection manager's settings the `connect` constructors use (3
    /// reconnection attempts, [`RedisStore::CONNECTION_TIMEOUT`],
    /// [`RedisStore::RESPONSE_TIMEOUT`]), to change and pass to
    /// [`ConnectionManager::new_with_config`] for
    /// [`from_manager`](Self::from_manager).
    ///
    /// ```no_run
    /// # async fn run() -> redis::RedisResult<()> {
    /// use std::time::Duration;
    /// use alm_webhooks::store::RedisStore;
    ///
    /// let config = RedisStore::manager_config().set_response_timeout(Some(Duration::from_secs(1)));
    /// let client = redis::Client::open("redis://127.0.0.1/")?;
    /// let manager = redis::aio::ConnectionManager::new_with_config(client, config).await?;
    /// let store = RedisStore::from_manager(manager, RedisStore::DEFAULT_PREFIX);
    /// # let _ = store;
    /// # Ok(())
    /// # }
    /// ```
    pub fn manager_config() -> ConnectionManagerConfig {
        manager_config()
    }

    /// Connects to Redis at `url` with the [default prefix](RedisStore::DEFAULT_PREFIX).
    ///
    /// The URL is the `redis` crate's: `redis://[:password@]host[:port][/db]`,
    /// `rediss://` for TLS (if the `redis` crate is built with a TLS feature),
    /// `redis+unix:///path`. The connection reconnects on its own; a call
    /// made while Redis is down fails with a [`StoreError`] (answered `503`).
    ///
    /// ```no_run
    /// use alm_webhooks::Engine;
    /// use alm_webhooks::store::RedisStore;
    ///
    /// # async fn run() -> Result<(), alm_webhooks::store::StoreError> {
    /// let store = RedisStore::connect("redis://:password@redis.internal:6379/").await?;
    /// let engine = Engine::builder(store).build();
    /// # let _ = engine;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with_prefix(url, DEFAULT_PREFIX).await
    }

    /// Connects, with every key starting with `prefix` (several receivers, or
    /// tests, can share one Redis with different prefixes).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), alm_webhooks::store::StoreError> {
    /// use alm_webhooks::store::RedisStore;
    /// let store = RedisStore::connect_with_prefix("redis://127.0.0.1/", "{crm-sync}:").await?;
    /// # let _ = store;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect_with_prefix(url: &str, prefix: &str) -> Result<Self, StoreError> {
        let (conn, addr) = open_manager(url)
            .await
            .map_err(|(what, e)| redis_error(&what, e))?;
        Ok(Self {
            conn,
            addr,
            prefix: prefix.to_owned(),
            scripts: Scripts::new(),
            projection: false,
            outbox: false,
        })
    }

    /// A store on a connection the application already has (a `redis` 1.x
    /// [`ConnectionManager`]), with every
    /// key starting with `prefix` ([`RedisStore::DEFAULT_PREFIX`] is what
    /// [`connect`](Self::connect) uses). Nothing is sent until the first
    /// call; the manager's own reconnection and timeouts apply (the
    /// `connect` constructors use [`RedisStore::manager_config`]: 3
    /// retries, a 2 s connection timeout and a 3 s response timeout; a
    /// manager without a response timeout lets a call hang as long as the
    /// network does). Its `Debug` names no address, as the manager
    /// does not tell it.
    ///
    /// ```no_run
    /// # async fn run() -> redis::RedisResult<()> {
    /// use alm_webhooks::store::RedisStore;
    /// let client = redis::Client::open("redis://127.0.0.1/")?;
    /// let manager = redis::aio::ConnectionManager::new(client).await?;
    /// // The application keeps using `manager` too: clones share it.
    /// let store = RedisStore::from_manager(manager.clone(), RedisStore::DEFAULT_PREFIX);
    /// # let _ = store;
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_manager(conn: ConnectionManager, prefix: &str) -> Self {
        Self {
            conn,
            addr: "(a connection the application opened)".to_owned(),
            prefix: prefix.to_owned(),
            scripts: Scripts::new(),
            projection: false,
            outbox: false,
        }
    }

    /// The prefix every key of this store starts with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The store's connection manager, to share with the inbox
    /// ([`RedisInbox::from_manager`](crate::inbox::RedisInbox::from_manager))
    /// or the application: one connection for the process. Clones share
    /// it.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use alm_webhooks::inbox::RedisInbox;
    /// use alm_webhooks::store::RedisStore;
    ///
    /// let store = RedisStore::connect("redis://redis.internal:6379/").await?;
    /// let inbox = RedisInbox::from_manager(store.manager().clone(), store.prefix());
    /// # let _ = inbox;
    /// # Ok(())
    /// # }
    /// ```
    pub fn manager(&self) -> &ConnectionManager {
        &self.conn
    }
}
