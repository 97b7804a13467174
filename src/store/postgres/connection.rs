//! How the store and the inbox reach PostgreSQL: one way to read a
//! connection string (TLS, timeouts, keepalives), one pool, one bound on
//! every call. Everything here has a default a connection string can
//! change (see [`PostgresStore`](super::PostgresStore)'s **Timeouts**).

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use super::pg_error;
use super::redact::{describe, scrubbed};
use super::sql::valid_schema;
use super::tls::{Tls, split_tls};
use crate::store::StoreError;

/// The pool's size: at most this many connections per pool.
pub(crate) const POOL_SIZE: usize = 16;

/// How long opening one connection may take in all (TCP, TLS, start-up),
/// when the URL's `connect_timeout` does not say.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a call waits for a free connection of the pool before it fails
/// (transient, so the delivery is answered `503`): well inside ALM's 5 s.
pub(crate) const POOL_WAIT_TIMEOUT: Duration = Duration::from_secs(2);

/// The server-side bound on one statement (`statement_timeout`), unless
/// the URL's `options` set one.
pub(crate) const STATEMENT_TIMEOUT: Duration = Duration::from_secs(3);

/// The server-side bound on waiting for a row or table lock
/// (`lock_timeout`), unless the URL's `options` set one.
pub(crate) const LOCK_TIMEOUT: Duration = Duration::from_secs(2);

/// The client-side bound on one call (a pooled connection, and the
/// statements the call sends): the network can fail in ways no server
/// setting sees (packets dropped, a peer that stopped answering).
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(4);

/// How long an idle connection waits before its first TCP keepalive probe,
/// unless the URL's `keepalives_idle` says.
pub(crate) const KEEPALIVES_IDLE: Duration = Duration::from_secs(15);

/// Between TCP keepalive probes, unless the URL's `keepalives_interval`
/// says.
pub(crate) const KEEPALIVES_INTERVAL: Duration = Duration::from_secs(5);

/// Unanswered keepalive probes before the connection is dropped, unless
/// the URL's `keepalives_retries` says.
pub(crate) const KEEPALIVES_RETRIES: u32 = 3;

/// How long sent data may stay unacknowledged before the kernel drops the
/// connection (`TCP_USER_TIMEOUT`, Linux), unless the URL's
/// `tcp_user_timeout` says.
pub(crate) const TCP_USER_TIMEOUT: Duration = Duration::from_secs(10);

/// Every statement planned for its own parameters, unless the URL's
/// `options` set `plan_cache_mode`. The statements are prepared once per
/// connection (parsed once), but a plan kept for all parameters
/// (PostgreSQL's generic plan, chosen after five executions) is the plan
/// of the tables as they were then: made while `alm_events` was small, it
/// hashes the whole table for every delivery once it is large (until the
/// next `ANALYZE`), where a plan for the parameters probes the key index
/// for each event. Planning each execution costs a fraction of a
/// millisecond; the generic plan cost a scan of every remembered event.
const PLAN_CACHE_MODE: &str = " -c plan_cache_mode=force_custom_plan";

/// tokio-postgres' `keepalives_idle` when nothing sets it.
const DRIVER_KEEPALIVES_IDLE: Duration = Duration::from_secs(2 * 60 * 60);

/// What a connection string says, with the crate's defaults filled in.
pub(crate) struct Settings {
    pub(crate) config: tokio_postgres::Config,
    pub(crate) tls: Tls,
    /// `host:port/db`, for messages and `Debug` (never a password).
    pub(crate) target: String,
}

/// Refuses a schema name the SQL could not quote as is.
pub(crate) fn check_schema(schema: &str) -> Result<(), StoreError> {
    if valid_schema(schema) {
        return Ok(());
    }
    Err(StoreError::new(format!(
        "postgres: invalid schema name {schema:?} (expected [a-z_][a-z0-9_]*, at most 63 bytes)"
    )))
}

/// Reads `url` (a URL or libpq's `key=value` words): TLS by `sslmode` and
/// `sslrootcert`, and every timeout and keepalive the URL leaves out set
/// to the crate's default.
pub(crate) fn settings(url: &str) -> Result<Settings, StoreError> {
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
    if config.get_keepalives_idle() == DRIVER_KEEPALIVES_IDLE {
        config.keepalives_idle(KEEPALIVES_IDLE);
    }
    if config.get_keepalives_interval().is_none() {
        config.keepalives_interval(KEEPALIVES_INTERVAL);
    }
    if config.get_keepalives_retries().is_none() {
        config.keepalives_retries(KEEPALIVES_RETRIES);
    }
    if config.get_tcp_user_timeout().is_none() {
        config.tcp_user_timeout(TCP_USER_TIMEOUT);
    }
    // Every statement and transaction is written for READ COMMITTED (a
    // version check re-reads a row another transaction changed): set it
    // whatever the database's default. The timeouts and the plan cache's
    // mode only when the URL's `options` do not set them.
    let mut options = config.get_options().unwrap_or_default().to_owned();
    options.push_str(" -c default_transaction_isolation=read\\ committed");
    for (name, default) in [
        ("statement_timeout", STATEMENT_TIMEOUT),
        ("lock_timeout", LOCK_TIMEOUT),
    ] {
        if !options.contains(name) {
            options.push_str(&format!(" -c {name}={}", default.as_millis()));
        }
    }
    if !options.contains("plan_cache_mode") {
        options.push_str(PLAN_CACHE_MODE);
    }
    // The statements are short: compiling one (JIT), which the planner
    // asks for when a bulk delivery meets large tables, costs far more
    // than running it (a second against 30 ms for a 5,000-event claim).
    if !options.contains("jit") {
        options.push_str(" -c jit=off");
    }
    config.options(options.trim_start());
    let target = describe(&config);
    Ok(Settings {
        config,
        tls,
        target,
    })
}

/// A pool on `settings`: [`POOL_SIZE`] connections, a call waits at most
/// [`POOL_WAIT_TIMEOUT`] for one, and opening one takes at most the
/// connection timeout.
pub(crate) fn pool(settings: Settings) -> Result<Pool, StoreError> {
    let create = settings
        .config
        .get_connect_timeout()
        .copied()
        .unwrap_or(CONNECT_TIMEOUT);
    let manager_config = ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    };
    let manager = match settings.tls {
        Tls::Off => Manager::from_config(settings.config, NoTls, manager_config),
        Tls::On(tls) => Manager::from_config(settings.config, tls, manager_config),
    };
    Pool::builder(manager)
        .max_size(POOL_SIZE)
        .wait_timeout(Some(POOL_WAIT_TIMEOUT))
        .create_timeout(Some(create))
        .recycle_timeout(Some(POOL_WAIT_TIMEOUT))
        .runtime(Runtime::Tokio1)
        .build()
        .map_err(|e| pg_error("cannot build the connection pool", e))
}

/// One connection outside any pool (for `migrate`), and the task that
/// drives it. Bounded by the connection timeout.
pub(crate) async fn connect_once(
    settings: Settings,
    url: &str,
) -> Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>), StoreError> {
    let limit = settings
        .config
        .get_connect_timeout()
        .copied()
        .unwrap_or(CONNECT_TIMEOUT);
    let target = settings.target;
    let cannot = |e: tokio_postgres::Error| {
        pg_error(&format!("cannot connect to {target}"), scrubbed(&e, url))
    };
    let connecting = async {
        Ok(match settings.tls {
            Tls::Off => {
                let (client, connection) = settings.config.connect(NoTls).await.map_err(cannot)?;
                (client, tokio::spawn(async move { drop(connection.await) }))
            }
            Tls::On(tls) => {
                let (client, connection) = settings.config.connect(tls).await.map_err(cannot)?;
                (client, tokio::spawn(async move { drop(connection.await) }))
            }
        })
    };
    match tokio::time::timeout(limit, connecting).await {
        Ok(connected) => connected,
        Err(_) => Err(StoreError::new(format!(
            "postgres: cannot connect to {target} within {limit:?}"
        ))),
    }
}

/// The error of a call that did not finish within its bound.
#[derive(Debug, thiserror::Error)]
#[error("no answer within {0:?} (the network or the server is stuck)")]
pub(crate) struct TimedOut(pub(crate) Duration);

/// Runs `call`, failing with [`TimedOut`] (wrapped by `error`) when it
/// takes longer than `limit`.
pub(crate) async fn bounded<T, E>(
    limit: Duration,
    call: impl Future<Output = Result<T, E>>,
    error: impl FnOnce(TimedOut) -> E,
) -> Result<T, E> {
    match tokio::time::timeout(limit, call).await {
        Ok(answer) => answer,
        Err(_) => Err(error(TimedOut(limit))),
    }
}

/// The SQL that creates every table the crate owns (`sql/postgres.sql`).
pub(crate) const MIGRATION_SQL: &str = include_str!("../../../sql/postgres.sql");

/// Creates the schema (unless `public`) and every table in it, in one
/// transaction under an advisory lock (see `PostgresStore::migrate`).
pub(crate) async fn migrate(url: &str, schema: &str) -> Result<(), StoreError> {
    check_schema(schema)?;
    let (mut client, connection) = connect_once(settings(url)?, url).await?;
    let result = async {
        let tx = client
            .transaction()
            .await
            .map_err(|e| pg_error("cannot begin the migration", e))?;
        // A migration may wait for another one and build indexes on big
        // tables: it gets minutes, not the calls' seconds.
        tx.batch_execute("SET LOCAL statement_timeout = '10min'; SET LOCAL lock_timeout = '5min'")
            .await
            .map_err(|e| pg_error("cannot set the migration's timeouts", e))?;
        // `IF NOT EXISTS` alone can still fail on a race in the catalogs,
        // so migrations run one at a time.
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

/// Checks that a pool the application opened runs at `READ COMMITTED`,
/// which the statements are written for.
pub(crate) async fn check_isolation(pool: &Pool) -> Result<(), StoreError> {
    let level = bounded(
        CALL_TIMEOUT,
        async {
            let client = pool
                .get()
                .await
                .map_err(|e| pg_error("cannot get a connection from the pool", e))?;
            let row = client
                .query_one("SHOW default_transaction_isolation", &[])
                .await
                .map_err(|e| pg_error("cannot read the isolation level", e))?;
            Ok::<String, StoreError>(row.get(0))
        },
        |e| pg_error("cannot read the isolation level", e),
    )
    .await?;
    if level == "read committed" {
        return Ok(());
    }
    Err(StoreError::new(format!(
        "postgres: the pool's connections run at {level:?}; alm-webhooks needs \
         \"read committed\" (set default_transaction_isolation on the role, the \
         database or the pool's connection options)"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_what_the_url_leaves_out() {
        let s = settings("postgres://u@h/db").unwrap();
        assert_eq!(s.config.get_connect_timeout(), Some(&CONNECT_TIMEOUT));
        assert_eq!(s.config.get_tcp_user_timeout(), Some(&TCP_USER_TIMEOUT));
        assert_eq!(s.config.get_keepalives_idle(), KEEPALIVES_IDLE);
        assert_eq!(s.config.get_keepalives_retries(), Some(KEEPALIVES_RETRIES));
        let options = s.config.get_options().unwrap();
        assert!(options.contains("-c statement_timeout=3000"), "{options}");
        assert!(options.contains("-c lock_timeout=2000"), "{options}");
        assert!(
            options.contains("-c plan_cache_mode=force_custom_plan"),
            "{options}"
        );
        assert!(options.contains("-c jit=off"), "{options}");
        assert_eq!(s.target, "h:5432/db");
    }

    #[test]
    fn the_url_wins() {
        let s = settings(
            "postgres://u@h/db?connect_timeout=1&tcp_user_timeout=3&keepalives_idle=60\
             &options=-c%20statement_timeout%3D9000%20-c%20plan_cache_mode%3Dauto\
             %20-c%20jit%3Don",
        )
        .unwrap();
        assert_eq!(
            s.config.get_connect_timeout(),
            Some(&Duration::from_secs(1))
        );
        assert_eq!(
            s.config.get_tcp_user_timeout(),
            Some(&Duration::from_secs(3))
        );
        assert_eq!(s.config.get_keepalives_idle(), Duration::from_secs(60));
        let options = s.config.get_options().unwrap();
        assert!(options.contains("statement_timeout=9000"), "{options}");
        assert!(!options.contains("statement_timeout=3000"), "{options}");
        assert!(options.contains("lock_timeout=2000"), "{options}");
        assert!(options.contains("plan_cache_mode=auto"), "{options}");
        assert!(!options.contains("force_custom_plan"), "{options}");
        assert!(!options.contains("jit=off"), "{options}");
    }
}
