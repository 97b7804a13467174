//! Connecting, checking the tables, and creating them (`migrate`): two
//! separate steps, so the role a receiver runs as needs no DDL rights and
//! replicas starting take no locks.

use std::time::Duration;

use deadpool_postgres::Pool;

use super::connection::{self, CALL_TIMEOUT, bounded, check_schema};
use super::redact::scrubbed;
use super::sql::Sql;
use super::{PostgresStore, pg_error};
use crate::store::StoreError;

impl PostgresStore {
    /// How long a call waits for a free connection of the pool before it
    /// fails (transient, so the delivery is answered `503`): 2 s, well
    /// inside ALM's 5 s.
    ///
    /// ```
    /// # #[cfg(feature = "postgres")]
    /// assert!(alm_webhooks::store::PostgresStore::POOL_WAIT_TIMEOUT.as_secs() < 5);
    /// ```
    pub const POOL_WAIT_TIMEOUT: Duration = connection::POOL_WAIT_TIMEOUT;

    /// The bound on one call to the store, by default (a pooled connection
    /// and every statement the call sends): 4 s, one more than the
    /// server's `statement_timeout`, so a server that answers reports its
    /// own error first, and a network that stopped answering (packets
    /// dropped, no reset) fails the call as transient instead of hanging,
    /// early enough that an inline delivery is answered `503` before ALM's
    /// 5 s run out.
    /// [`with_call_timeout`](Self::with_call_timeout) changes it.
    ///
    /// ```
    /// # #[cfg(feature = "postgres")]
    /// assert_eq!(alm_webhooks::store::PostgresStore::CALL_TIMEOUT.as_secs(), 4);
    /// ```
    pub const CALL_TIMEOUT: Duration = CALL_TIMEOUT;

    /// The tables' SQL, as shipped in `sql/postgres.sql`, for your own
    /// migration tool ([`PostgresStore::migrate`] runs it for you).
    ///
    /// ```
    /// # #[cfg(feature = "postgres")]
    /// assert!(alm_webhooks::store::PostgresStore::MIGRATION_SQL.contains("CREATE TABLE"));
    /// ```
    pub const MIGRATION_SQL: &'static str = connection::MIGRATION_SQL;

    /// Connects to the database at `url` (e.g.
    /// `postgres://user:password@host:5432/db`, or the `key=value` form),
    /// with the tables in the `public` schema, and checks that they are
    /// there. It creates nothing: run [`migrate`](Self::migrate) once
    /// first (or `sql/postgres.sql`), as a role that may create tables; the
    /// receiver's role needs only `USAGE` on the schema and `SELECT`,
    /// `INSERT`, `UPDATE`, `DELETE` on the tables.
    ///
    /// # Timeouts
    ///
    /// Every wait has a bound, so a database or a network that stops
    /// answering (packets dropped, no reset) fails a call as transient
    /// (`503`, ALM redelivers) instead of hanging it. The same for
    /// [`PostgresInbox`](crate::inbox::PostgresInbox), which reads the same
    /// URL. A parameter in the URL wins over the default:
    ///
    /// | what | default | change it with |
    /// |---|---|---|
    /// | opening a connection (TCP, TLS, start-up) | 5 s | `connect_timeout=` (seconds) |
    /// | waiting for a free connection of the pool (16) | 2 s | [`from_pool`](Self::from_pool) with your pool |
    /// | one statement, on the server | 3 s | `options=-c statement_timeout=…` (ms) |
    /// | waiting for a row lock, on the server | 2 s | `options=-c lock_timeout=…` (ms) |
    /// | one call, on the client | 4 s | [`with_call_timeout`](Self::with_call_timeout) |
    /// | TCP keepalive: idle, interval, probes | 15 s, 5 s, 3 | `keepalives_idle=`, `keepalives_interval=` (seconds), `keepalives_retries=`, `keepalives=0` |
    /// | unacknowledged data (`TCP_USER_TIMEOUT`, Linux) | 10 s | `tcp_user_timeout=` (**seconds**, unlike libpq's milliseconds) |
    ///
    /// JIT compilation is off on these connections (`options=-c jit=on`
    /// turns it back on): the planner asks for it when a bulk delivery
    /// meets large tables, and compiling a claim took a second where
    /// running it took 30 ms.
    ///
    /// The call bound is what ends a call on a black-holed network: the
    /// kernel may go on accepting what is sent (a stopped proxy, a
    /// half-open connection) long after the server stopped answering.
    /// [`migrate`](Self::migrate) gets minutes (`statement_timeout` 10 min)
    /// rather than seconds.
    ///
    /// # Plans
    ///
    /// Connections also get `plan_cache_mode=force_custom_plan` unless the
    /// URL's `options` set `plan_cache_mode`: every statement is planned
    /// for its own parameters and the tables' current size. PostgreSQL's
    /// default keeps one plan per prepared statement after five
    /// executions; made while the tables were small (a new deployment,
    /// the first minutes), that plan hashed all of `alm_events` for every
    /// delivery until the next `ANALYZE` (BENCHMARKS.md, "with plans for
    /// the parameters"). Planning costs about 0.1–0.4 ms per statement; a
    /// deployment whose tables are large and analyzed may take
    /// PostgreSQL's default back with `options=-c%20plan_cache_mode%3Dauto`.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), alm_webhooks::store::StoreError> {
    /// use alm_webhooks::Engine;
    /// use alm_webhooks::store::PostgresStore;
    ///
    /// PostgresStore::migrate("postgres://owner:secret@db.internal/webhooks", "public").await?;
    /// let store = PostgresStore::connect("postgres://alm:secret@db.internal/webhooks").await?;
    /// let engine = Engine::builder(store).build();
    /// # let _ = engine;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the URL does not parse, the database cannot be
    /// reached, or the tables are missing or unreadable (the message says to
    /// migrate). Its message and `Debug` never contain the password.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with_schema(url, "public").await
    }

    /// Like [`connect`](Self::connect), with the tables in `schema`.
    /// `schema` must match `[a-z_][a-z0-9_]*` (at most 63 bytes).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), alm_webhooks::store::StoreError> {
    /// use alm_webhooks::store::PostgresStore;
    ///
    /// let store = PostgresStore::connect_with_schema("postgres://alm@localhost/app", "webhooks").await?;
    /// # let _ = store;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect), and when `schema` is not a valid name.
    pub async fn connect_with_schema(url: &str, schema: &str) -> Result<Self, StoreError> {
        check_schema(schema)?;
        let settings = connection::settings(url)?;
        let target = settings.target.clone();
        let store = Self::on(connection::pool(settings)?, schema, target);
        store.check_tables(url).await?;
        Ok(store)
    }

    /// The store on `pool`, checking nothing.
    fn on(pool: Pool, schema: &str, target: String) -> Self {
        Self {
            pool,
            schema: schema.to_owned(),
            sql: Sql::new(schema),
            hooks: std::sync::Arc::new([]),
            own_hooks: std::sync::Arc::new([]),
            outbox: false,
            target,
            timeout: CALL_TIMEOUT,
        }
    }

    /// The same store with every call bounded by `timeout` instead of
    /// [`PostgresStore::CALL_TIMEOUT`]. A call that runs out fails with a
    /// transient [`StoreError`] (the delivery is answered `503`). Keep it
    /// above the server's `statement_timeout` (3 s unless the URL's
    /// `options` set one), so the server's own error comes first.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), alm_webhooks::store::StoreError> {
    /// use std::time::Duration;
    /// use alm_webhooks::store::PostgresStore;
    ///
    /// let url = "postgres://alm@db.internal/app?options=-c%20statement_timeout%3D2000";
    /// let store = PostgresStore::connect(url).await?.with_call_timeout(Duration::from_secs(3));
    /// # let _ = store;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn with_call_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The store's connection pool, to share with the inbox
    /// ([`PostgresInbox::from_pool`](crate::inbox::PostgresInbox::from_pool))
    /// or the application: one pool for the process instead of one per
    /// component. Clones of a `Pool` share it.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use alm_webhooks::inbox::PostgresInbox;
    /// use alm_webhooks::store::PostgresStore;
    ///
    /// let url = "postgres://alm@db.internal/app?sslmode=verify-full";
    /// let store = PostgresStore::connect(url).await?;
    /// let inbox = PostgresInbox::from_pool(store.pool().clone(), store.schema()).await?;
    /// # let _ = inbox;
    /// # Ok(())
    /// # }
    /// ```
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// A store on a connection pool the application already has (a
    /// `deadpool-postgres` 0.14 [`Pool`]), with the
    /// tables in `schema` (`"public"` is what [`connect`](Self::connect)
    /// uses). Like `connect`, it checks that the tables are there and
    /// readable; it does **not** create them: run
    /// [`migrate`](Self::migrate) (or `sql/postgres.sql`) first. It also
    /// checks that the pool's connections run at PostgreSQL's default
    /// isolation level, `READ COMMITTED`, which the store's statements are
    /// written for (`connect` sets it on its own connections). The pool's
    /// size and timeouts are the application's: a pool that waits long
    /// for a free connection makes deliveries wait as long (`connect`
    /// waits at most [`PostgresStore::POOL_WAIT_TIMEOUT`]).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use alm_webhooks::store::PostgresStore;
    /// use deadpool_postgres::{Config, Runtime};
    /// use tokio_postgres::NoTls;
    ///
    /// let mut config = Config::new();
    /// config.url = Some("postgres://alm@db.internal/app".to_owned());
    /// let pool = config.create_pool(Some(Runtime::Tokio1), NoTls)?;
    /// // The application keeps using `pool` too: clones share it.
    /// let store = PostgresStore::from_pool(pool.clone(), "public").await?;
    /// # let _ = store;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when `schema` is not a valid name, no connection
    /// can be had from the pool, the tables are missing or unreadable, or
    /// the connections do not run at `READ COMMITTED`.
    pub async fn from_pool(pool: Pool, schema: &str) -> Result<Self, StoreError> {
        check_schema(schema)?;
        let store = Self::on(pool, schema, "(a pool the application opened)".to_owned());
        store.check_tables("").await?;
        connection::check_isolation(&store.pool).await?;
        Ok(store)
    }

    /// Creates the schema (unless `public`) and every table and index the
    /// crate owns in it if they are missing (the store's and the
    /// [`PostgresInbox`](crate::inbox::PostgresInbox)'s): `sql/postgres.sql`
    /// ([`PostgresStore::MIGRATION_SQL`]), in one transaction. Idempotent, and safe when
    /// several processes run it at once (they take turns on an advisory
    /// lock). Run it at deployment, as a role that may create tables.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), alm_webhooks::store::StoreError> {
    /// use alm_webhooks::store::PostgresStore;
    /// PostgresStore::migrate("postgres://owner@localhost/app", "webhooks").await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the URL or schema is invalid, the database
    /// cannot be reached, or the role may not create the tables.
    pub async fn migrate(url: &str, schema: &str) -> Result<(), StoreError> {
        connection::migrate(url, schema).await
    }

    /// The schema the tables are in.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Drops the store's schema and everything in it (`DROP SCHEMA … CASCADE`),
    /// for tests that give each run its own schema. Refuses to drop `public`.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the schema is `public` or the database fails.
    pub async fn drop_schema(&self) -> Result<(), StoreError> {
        if self.schema == "public" {
            return Err(StoreError::new("postgres: refusing to drop schema public"));
        }
        let drop = async {
            let client = self.client().await?;
            client
                .batch_execute(&format!(
                    "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
                    self.schema
                ))
                .await
                .map_err(|e| pg_error("cannot drop the schema", e))
        };
        bounded(self.timeout, drop, |e| {
            pg_error("cannot drop the schema", e)
        })
        .await
    }

    /// Reads no row, but every column the store uses: fails when a table or
    /// column is missing or the role may not read it.
    async fn check_tables(&self, url: &str) -> Result<(), StoreError> {
        let check = async {
            let client = self.pool.get().await.map_err(|e| {
                pg_error(
                    &format!("cannot connect to {}", self.target),
                    scrubbed(&e, url),
                )
            })?;
            client.batch_execute(&self.sql.check).await.map_err(|e| {
                pg_error(
                    &format!(
                        "the tables in schema {} are missing or unreadable: run \
                         PostgresStore::migrate (or sql/postgres.sql) first, and grant the role \
                         USAGE on the schema and SELECT, INSERT, UPDATE, DELETE on its tables",
                        self.schema
                    ),
                    e,
                )
            })
        };
        bounded(self.timeout, check, |e| {
            pg_error(&format!("cannot connect to {}", self.target), e)
        })
        .await
    }
}
