//! Connecting, checking the tables, and creating them (`migrate`): two
//! separate steps, so the role a receiver runs as needs no DDL rights and
//! replicas starting take no locks.

use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use super::redact::{describe, scrubbed};
use super::sql::{Sql, valid_schema};
use super::tls::{Tls, split_tls};
use super::{PostgresStore, pg_error};
use crate::store::StoreError;

/// The pool's size: at most this many connections per store.
const POOL_SIZE: usize = 16;

/// How long to wait for a connection when the URL does not say
/// (`connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a call waits for a free connection of the pool before it fails
/// (transient, so the delivery is answered `503`): well inside ALM's 5 s.
pub(crate) const POOL_WAIT_TIMEOUT: Duration = Duration::from_secs(2);

/// The tables' SQL, as shipped in `sql/postgres.sql`.
pub(crate) const MIGRATION_SQL: &str = include_str!("../../../sql/postgres.sql");

fn parse(url: &str, schema: &str) -> Result<(tokio_postgres::Config, Tls), StoreError> {
    if !valid_schema(schema) {
        return Err(StoreError::new(format!(
            "postgres: invalid schema name {schema:?} (expected [a-z_][a-z0-9_]*, at most 63 bytes)"
        )));
    }
    let (rest, tls) = split_tls(url);
    let (ssl_mode, tls) = tls.connector()?;
    let mut config = tokio_postgres::Config::from_str(&rest)
        .map_err(|e| pg_error("cannot parse the connection string", scrubbed(&e, url)))?;
    config.ssl_mode(ssl_mode);
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("alm-webhooks");
    }
    // Every statement and transaction of the store is written for READ
    // COMMITTED (a version check re-reads a row another transaction
    // changed): set it whatever the database's default.
    let options = config.get_options().unwrap_or_default();
    let options = format!("{options} -c default_transaction_isolation=read\\ committed");
    config.options(options.trim_start());
    Ok((config, tls))
}

impl PostgresStore {
    /// How long a call waits for a free connection of the pool before it
    /// fails (transient, so the delivery is answered `503`): 2 s, well
    /// inside ALM's 5 s.
    ///
    /// ```
    /// # #[cfg(feature = "postgres")]
    /// assert!(alm_webhooks::store::PostgresStore::POOL_WAIT_TIMEOUT.as_secs() < 5);
    /// ```
    pub const POOL_WAIT_TIMEOUT: Duration = POOL_WAIT_TIMEOUT;

    /// The tables' SQL, as shipped in `sql/postgres.sql`, for your own
    /// migration tool ([`PostgresStore::migrate`] runs it for you).
    ///
    /// ```
    /// # #[cfg(feature = "postgres")]
    /// assert!(alm_webhooks::store::PostgresStore::MIGRATION_SQL.contains("CREATE TABLE"));
    /// ```
    pub const MIGRATION_SQL: &'static str = MIGRATION_SQL;

    /// Connects to the database at `url` (e.g.
    /// `postgres://user:password@host:5432/db`, or the `key=value` form),
    /// with the tables in the `public` schema, and checks that they are
    /// there. It creates nothing: run [`migrate`](Self::migrate) once
    /// first (or `sql/postgres.sql`), as a role that may create tables; the
    /// receiver's role needs only `USAGE` on the schema and `SELECT`,
    /// `INSERT`, `UPDATE`, `DELETE` on the two tables.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), alm_webhooks::store::StoreError> {
    /// use alm_webhooks::engine::Engine;
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
        let (config, tls) = parse(url, schema)?;
        let target = describe(&config);
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match tls {
            Tls::Off => Manager::from_config(config, NoTls, manager_config),
            Tls::On(tls) => Manager::from_config(config, tls, manager_config),
        };
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .wait_timeout(Some(POOL_WAIT_TIMEOUT))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| pg_error("cannot build the connection pool", e))?;
        let store = Self {
            pool,
            schema: schema.to_owned(),
            sql: Sql::new(schema),
            hooks: std::sync::Arc::new([]),
            target,
        };
        store.check_tables(url).await?;
        Ok(store)
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
        if !valid_schema(schema) {
            return Err(StoreError::new(format!(
                "postgres: invalid schema name {schema:?} (expected [a-z_][a-z0-9_]*, at most 63 bytes)"
            )));
        }
        let store = Self {
            pool,
            schema: schema.to_owned(),
            sql: Sql::new(schema),
            hooks: std::sync::Arc::new([]),
            target: "(a pool the application opened)".to_owned(),
        };
        store.check_tables("").await?;
        let client = store
            .pool
            .get()
            .await
            .map_err(|e| pg_error("cannot get a connection from the pool", e))?;
        let row = client
            .query_one("SHOW default_transaction_isolation", &[])
            .await
            .map_err(|e| pg_error("cannot read the isolation level", e))?;
        let level: String = row.get(0);
        if level != "read committed" {
            return Err(StoreError::new(format!(
                "postgres: the pool's connections run at {level:?}; the store needs \
                 \"read committed\" (set default_transaction_isolation on the role, the \
                 database or the pool's connection options)"
            )));
        }
        Ok(store)
    }

    /// Creates the schema (unless `public`) and the store's tables and
    /// indexes in it if they are missing: `sql/postgres.sql`
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
        let (config, tls) = parse(url, schema)?;
        let target = describe(&config);
        let cannot = |e: tokio_postgres::Error| {
            pg_error(&format!("cannot connect to {target}"), scrubbed(&e, url))
        };
        let (mut client, connection) = match tls {
            Tls::Off => {
                let (client, connection) = config.connect(NoTls).await.map_err(cannot)?;
                (client, tokio::spawn(async move { drop(connection.await) }))
            }
            Tls::On(tls) => {
                let (client, connection) = config.connect(tls).await.map_err(cannot)?;
                (client, tokio::spawn(async move { drop(connection.await) }))
            }
        };
        let result = async {
            let tx = client
                .transaction()
                .await
                .map_err(|e| pg_error("cannot begin the migration", e))?;
            // `IF NOT EXISTS` alone can still fail on a race in the
            // catalogs, so migrations run one at a time.
            tx.execute(
                "SELECT pg_advisory_xact_lock(hashtext('alm_webhooks'), hashtext($1))",
                &[&schema],
            )
            .await
            .map_err(|e| pg_error("cannot take the migration lock", e))?;
            if schema != "public" {
                tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
                    .await
                    .map_err(|e| pg_error("cannot create the schema", e))?;
            }
            tx.batch_execute(&format!("SET LOCAL search_path TO \"{schema}\""))
                .await
                .map_err(|e| pg_error("cannot select the schema", e))?;
            tx.batch_execute(MIGRATION_SQL)
                .await
                .map_err(|e| pg_error("cannot create the tables", e))?;
            tx.commit()
                .await
                .map_err(|e| pg_error("cannot commit the migration", e))
        }
        .await;
        drop(client);
        let _ = connection.await;
        result
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
        let client = self.client().await?;
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
                self.schema
            ))
            .await
            .map_err(|e| pg_error("cannot drop the schema", e))
    }

    /// Reads no row, but every column the store uses: fails when a table or
    /// column is missing or the role may not read it.
    async fn check_tables(&self, url: &str) -> Result<(), StoreError> {
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
    }
}
