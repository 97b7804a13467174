//! Connecting the inbox, as the store connects: the same connection
//! string (TLS by `sslmode`/`sslrootcert`, the same timeouts), the same
//! migration, or the store's own pool.

use std::time::Duration;

use deadpool_postgres::Pool;

use super::{PostgresInbox, pg_error};
use crate::inbox::InboxError;
use crate::store::StoreError;
use crate::store::postgres::connection::{self, CALL_TIMEOUT, bounded};
use crate::store::postgres::redact::scrubbed;

/// A store-side error (parsing, TLS, the pool, the migration) as the
/// inbox's, keeping it as the source.
fn from_store(e: StoreError) -> InboxError {
    InboxError::with_source("postgres: cannot set up the inbox", e)
}

impl PostgresInbox {
    /// The bound on one call to the inbox, by default: 4 s (a pooled
    /// connection, which it waits at most 2 s for, and every statement of
    /// the call). The server's `statement_timeout` is 3 s and its
    /// `lock_timeout` 2 s unless the URL's `options` set them, as for
    /// [`PostgresStore`](crate::store::PostgresStore). The endpoint bounds an
    /// append more tightly still
    /// ([`EndpointBuilder::append_timeout`](crate::endpoint::EndpointBuilder::append_timeout)).
    ///
    /// ```
    /// assert_eq!(alm_webhooks::inbox::PostgresInbox::CALL_TIMEOUT.as_secs(), 4);
    /// ```
    pub const CALL_TIMEOUT: Duration = CALL_TIMEOUT;

    /// Connects to the database at `url`, with the tables in the `public`
    /// schema, and checks that they are there. The URL is the store's
    /// ([`PostgresStore::connect`](crate::store::PostgresStore::connect)):
    /// TLS by `sslmode` and `sslrootcert`, timeouts and keepalives with the
    /// same defaults. It creates nothing: run [`migrate`](Self::migrate)
    /// once first, as a role that may create tables; the receiver's role
    /// needs only `USAGE` on the schema and `SELECT, INSERT, UPDATE,
    /// DELETE` on the tables.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), alm_webhooks::inbox::InboxError> {
    /// use alm_webhooks::inbox::PostgresInbox;
    ///
    /// PostgresInbox::migrate("postgres://owner@db.internal/alm?sslmode=verify-full", "public").await?;
    /// let inbox = PostgresInbox::connect("postgres://alm@db.internal/alm?sslmode=verify-full").await?;
    /// # let _ = inbox;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// An [`InboxError`] when the URL does not parse, the database cannot
    /// be reached, or the tables are missing or unreadable (the message
    /// says to migrate); never with the password.
    pub async fn connect(url: &str) -> Result<Self, InboxError> {
        Self::connect_with_schema(url, "public").await
    }

    /// Like [`connect`](Self::connect), with the tables in `schema`
    /// (`[a-z_][a-z0-9_]*`, at most 63 bytes).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), alm_webhooks::inbox::InboxError> {
    /// use alm_webhooks::inbox::PostgresInbox;
    /// let url = "postgres://alm@db.internal/alm?sslmode=verify-full&sslrootcert=/etc/ssl/db-ca.pem";
    /// let inbox = PostgresInbox::connect_with_schema(url, "alm").await?;
    /// # let _ = inbox;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect), and when `schema` is not a valid name.
    pub async fn connect_with_schema(url: &str, schema: &str) -> Result<Self, InboxError> {
        connection::check_schema(schema).map_err(from_store)?;
        let settings = connection::settings(url).map_err(from_store)?;
        let target = settings.target.clone();
        let pool = connection::pool(settings).map_err(from_store)?;
        let inbox = Self::on(pool, schema, target);
        inbox.check_tables(url).await?;
        Ok(inbox)
    }

    /// The inbox on a pool the application already has, such as the
    /// store's ([`PostgresStore::pool`](crate::store::PostgresStore::pool)),
    /// so that the store and the inbox share one pool. Checks that the
    /// tables are there (run [`migrate`](Self::migrate) first) and that
    /// the connections run at `READ COMMITTED`. The pool's size and
    /// timeouts are the application's (those of
    /// [`connect`](Self::connect) wait at most 2 s for a connection).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use alm_webhooks::inbox::PostgresInbox;
    /// use alm_webhooks::store::PostgresStore;
    ///
    /// let url = "postgres://alm@db.internal/alm?sslmode=verify-full";
    /// let store = PostgresStore::connect_with_schema(url, "alm").await?;
    /// // One pool for both.
    /// let inbox = PostgresInbox::from_pool(store.pool().clone(), "alm").await?;
    /// # let _ = inbox;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// An [`InboxError`] when `schema` is not a valid name, no connection
    /// can be had, the tables are missing or unreadable, or the
    /// connections do not run at `READ COMMITTED`.
    pub async fn from_pool(pool: Pool, schema: &str) -> Result<Self, InboxError> {
        connection::check_schema(schema).map_err(from_store)?;
        let inbox = Self::on(pool, schema, "(a pool the application opened)".to_owned());
        inbox.check_tables("").await?;
        connection::check_isolation(&inbox.pool)
            .await
            .map_err(from_store)?;
        Ok(inbox)
    }

    /// Creates the schema (unless `public`) and every table the crate
    /// owns, the inbox's and the store's: `sql/postgres.sql`, exactly what
    /// [`PostgresStore::migrate`](crate::store::PostgresStore::migrate)
    /// runs (either will do). Idempotent, safe to run from several
    /// processes at once; run it at deployment as a role that may create
    /// tables.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), alm_webhooks::inbox::InboxError> {
    /// use alm_webhooks::inbox::PostgresInbox;
    /// PostgresInbox::migrate("postgres://owner@db.internal/alm", "alm").await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// An [`InboxError`] when the URL or schema is invalid, the database
    /// cannot be reached, or the role may not create the tables.
    pub async fn migrate(url: &str, schema: &str) -> Result<(), InboxError> {
        connection::migrate(url, schema).await.map_err(from_store)
    }

    /// The same inbox with every call bounded by `timeout` instead of
    /// [`PostgresInbox::CALL_TIMEOUT`]; a call that runs out fails with an
    /// [`InboxError`] (an append is then answered `503`).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), alm_webhooks::inbox::InboxError> {
    /// use std::time::Duration;
    /// use alm_webhooks::inbox::PostgresInbox;
    /// let inbox = PostgresInbox::connect("postgres://alm@db.internal/alm")
    ///     .await?
    ///     .with_call_timeout(Duration::from_secs(3));
    /// # let _ = inbox;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn with_call_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The schema the tables are in.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), alm_webhooks::inbox::InboxError> {
    /// let inbox = alm_webhooks::inbox::PostgresInbox::connect_with_schema("postgres://alm@db/app", "alm").await?;
    /// assert_eq!(inbox.schema(), "alm");
    /// # Ok(())
    /// # }
    /// ```
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Drops the inbox's six tables (for tests that give each run its own
    /// schema, with [`PostgresStore::drop_schema`](crate::store::PostgresStore::drop_schema)
    /// for the rest).
    ///
    /// # Errors
    ///
    /// The database's error.
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use alm_webhooks::inbox::PostgresInbox;
    /// let url = "postgres://postgres@127.0.0.1/test";
    /// PostgresInbox::migrate(url, "alm_doc").await.unwrap();
    /// let inbox = PostgresInbox::connect_with_schema(url, "alm_doc").await.unwrap();
    /// inbox.drop_tables().await.unwrap();
    /// # }
    /// ```
    pub async fn drop_tables(&self) -> Result<(), InboxError> {
        let s = &self.schema;
        let sql = format!(
            "DROP TABLE IF EXISTS \"{s}\".alm_inbox, \"{s}\".alm_dead_letters, \
             \"{s}\".alm_quarantine, \"{s}\".alm_inbox_paused, \"{s}\".alm_archive, \
             \"{s}\".alm_archive_events"
        );
        self.execute("drop the inbox tables", &sql, &[]).await?;
        Ok(())
    }

    /// The inbox on `pool`, checking nothing.
    fn on(pool: Pool, schema: &str, target: String) -> Self {
        Self {
            pool,
            schema: schema.to_owned(),
            target,
            timeout: CALL_TIMEOUT,
        }
    }

    /// Reads no row, but every column the inbox uses: fails when a table
    /// or a column is missing or the role may not read it.
    async fn check_tables(&self, url: &str) -> Result<(), InboxError> {
        let s = &self.schema;
        let sql = format!(
            "SELECT id, account_id, body, received_at, attempts, last_error, not_before, \
             lease_token, lease_until FROM \"{s}\".alm_inbox LIMIT 0; \
             SELECT id, account_id, event_id, event_name, event, error, attempts, at \
             FROM \"{s}\".alm_dead_letters LIMIT 0; \
             SELECT id, account_id, body, error, received_at FROM \"{s}\".alm_quarantine LIMIT 0; \
             SELECT every, account_id, since FROM \"{s}\".alm_inbox_paused LIMIT 0; \
             SELECT id, account_id, body, received_at FROM \"{s}\".alm_archive LIMIT 0; \
             SELECT archive_id, idx, account_id, received_at, event_id, event_name, user_id, \
             lo_instance_id, happened_at, decision, reason, attempts, error \
             FROM \"{s}\".alm_archive_events LIMIT 0"
        );
        let check = async {
            let client = self.pool.get().await.map_err(|e| {
                pg_error(
                    &format!("cannot connect to {}", self.target),
                    scrubbed(&e, url),
                )
            })?;
            client.batch_execute(&sql).await.map_err(|e| {
                pg_error(
                    &format!(
                        "the inbox tables in schema {s} are missing or unreadable: run \
                         PostgresInbox::migrate (or sql/postgres.sql) first, and grant the role \
                         USAGE on the schema and SELECT, INSERT, UPDATE, DELETE on its tables"
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
