//! The PostgreSQL inbox set up as the store is: TLS by `sslmode`
//! (`require`, `verify-full` against the local server's certificate), the
//! tables made by one migration and used by a role that may only read and
//! write rows, and one pool shared by the store and the inbox.
#![cfg(feature = "postgres")]

mod support;

use std::sync::Arc;
use std::time::Duration;

use alm_webhooks::inbox::WorkerOptions;
use alm_webhooks::inbox::{AnyInbox, Inbox, NewDelivery, PostgresInbox};
use alm_webhooks::store::{ClaimToken, PostgresStore};
use alm_webhooks::{AccountId, Authentication, Endpoint, Engine};
use http::{HeaderMap, StatusCode};
use time::OffsetDateTime;

fn url() -> String {
    std::env::var("ALM_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// `url()` with another host (and user), and these query parameters.
fn url_with(user: Option<&str>, host: &str, params: &str) -> String {
    let base = url();
    let (scheme, rest) = base.split_once("://").unwrap();
    let (userinfo, hostpart) = rest.rsplit_once('@').unwrap_or(("postgres", rest));
    let user = user.unwrap_or(userinfo);
    let (authority, path) = hostpart.split_once('/').unwrap_or((hostpart, "test"));
    let port = authority.rsplit_once(':').map_or("5432", |(_, p)| p);
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{scheme}://{user}@{host}:{port}/{path}{sep}{params}")
}

fn unique(what: &str) -> String {
    format!("alm_{what}_{:08x}", ClaimToken::random().0 as u32)
}

/// A direct connection as the owner, for checks and clean-up.
async fn owner() -> Option<tokio_postgres::Client> {
    match tokio_postgres::connect(&url(), tokio_postgres::NoTls).await {
        Ok((client, connection)) => {
            tokio::spawn(connection);
            Some(client)
        }
        Err(e) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "PostgreSQL is required under CI=true ({e})"
            );
            eprintln!("skipped: PostgreSQL not reachable ({e})");
            None
        }
    }
}

fn delivery(now: OffsetDateTime) -> NewDelivery<'static> {
    NewDelivery {
        account_id: AccountId(7),
        body: br#"{"accountId":7,"events":[]}"#,
        received_at: now,
    }
}

/// Appends, takes and completes one delivery: every statement the inbox
/// runs on the way.
async fn round_trip(inbox: &impl Inbox) {
    let now = OffsetDateTime::now_utc();
    let id = inbox.append(delivery(now)).await.expect("append");
    let taken = inbox
        .take(Duration::from_secs(30), now)
        .await
        .expect("take")
        .expect("the delivery is there");
    assert_eq!(taken.id, id);
    assert!(
        inbox
            .complete(taken.id, taken.token, &[])
            .await
            .expect("complete")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbox_connects_over_tls_like_the_store() {
    let Some(client) = owner().await else { return };
    let ssl: String = client.query_one("SHOW ssl", &[]).await.unwrap().get(0);
    let cert_file: String = client
        .query_one("SHOW ssl_cert_file", &[])
        .await
        .unwrap()
        .get(0);
    if ssl != "on" || std::fs::read(&cert_file).is_err() {
        eprintln!("skipped: the server has no TLS (ssl = {ssl}) or its certificate is unreadable");
        return;
    }
    let schema = unique("inbox_tls");
    let app = unique("inbox_tls_app");
    PostgresInbox::migrate(&url(), &schema).await.unwrap();

    // `require`: encrypted, the certificate not verified (libpq's meaning).
    let required = url_with(
        None,
        "127.0.0.1",
        &format!("sslmode=require&application_name={app}"),
    );
    let inbox = PostgresInbox::connect_with_schema(&required, &schema)
        .await
        .expect("require connects");
    round_trip(&inbox).await;
    let encrypted: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) \
             WHERE application_name = $1 AND ssl",
            &[&app],
        )
        .await
        .unwrap()
        .get(0);
    assert!(encrypted >= 1, "the inbox's connections are encrypted");

    // `verify-full` against the server's certificate, which names localhost.
    let verified = url_with(
        None,
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={cert_file}"),
    );
    let inbox = PostgresInbox::connect_with_schema(&verified, &schema)
        .await
        .expect("verify-full connects");
    round_trip(&inbox).await;
    // Through `AnyInbox` too, as the example receivers open it.
    let any = AnyInbox::from_url(&format!("{verified}&schema={schema}"))
        .await
        .expect("AnyInbox takes the same URL");
    round_trip(&any).await;
    // The host name is checked.
    let wrong_host = url_with(
        None,
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={cert_file}"),
    );
    PostgresInbox::connect_with_schema(&wrong_host, &schema)
        .await
        .expect_err("127.0.0.1 is not the certificate's name");

    client
        .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_that_only_reads_and_writes_rows_runs_the_inbox_after_migrate() {
    let Some(client) = owner().await else { return };
    let schema = unique("inbox_dml");
    let role = unique("dml");
    let as_role = url_with(Some(&role), "127.0.0.1", "application_name=alm_dml");
    client
        .batch_execute(&format!("CREATE ROLE {role} LOGIN"))
        .await
        .unwrap();

    // Before the migration: the inbox says what to do, and creates nothing.
    let before = PostgresInbox::connect_with_schema(&url(), &schema)
        .await
        .expect_err("no tables yet");
    assert!(before.to_string().contains("migrate") || format!("{before:?}").contains("migrate"));

    PostgresStore::migrate(&url(), &schema).await.unwrap();
    client
        .batch_execute(&format!(
            "GRANT USAGE ON SCHEMA \"{schema}\" TO {role}; \
             GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA \"{schema}\" TO {role}"
        ))
        .await
        .unwrap();
    let result = async {
        let inbox = PostgresInbox::connect_with_schema(&as_role, &schema)
            .await
            .expect("the DML-only role connects");
        round_trip(&inbox).await;
        let store = PostgresStore::connect_with_schema(&as_role, &schema)
            .await
            .expect("the store too");
        let engine = Engine::builder(store).build();
        let envelope = support::envelope(7, &[support::unknown("dml-1", 1)]);
        engine
            .process(envelope, |_| async { Ok(()) })
            .await
            .expect("the store's statements run as the DML-only role");
        // The role may not migrate: the tables were the owner's to make.
        PostgresInbox::migrate(&as_role, &unique("inbox_dml_denied"))
            .await
            .expect_err("no CREATE right");
    }
    .await;
    client
        .batch_execute(&format!(
            "DROP SCHEMA \"{schema}\" CASCADE; DROP OWNED BY {role}; DROP ROLE {role}"
        ))
        .await
        .unwrap();
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_and_the_inbox_share_one_pool() {
    let Some(client) = owner().await else { return };
    let schema = unique("shared_pool");
    let app = unique("shared_pool_app");
    PostgresStore::migrate(&url(), &schema).await.unwrap();
    let store = PostgresStore::connect_with_schema(
        &url_with(None, "127.0.0.1", &format!("application_name={app}")),
        &schema,
    )
    .await
    .unwrap();
    let pool = store.pool().clone();
    let inbox = PostgresInbox::from_pool(store.pool().clone(), store.schema())
        .await
        .expect("the inbox takes the store's pool");
    let inbox = Arc::new(inbox);
    let endpoint = Endpoint::builder(Authentication::None)
        .engine(Engine::builder(store).build())
        .inbox(Arc::clone(&inbox), WorkerOptions::new().with_count(4))
        .handler(|_event| async { Ok(()) })
        .build()
        .unwrap();
    for n in 0..20 {
        let body = format!(
            r#"{{"accountId":{},"events":[{}]}}"#,
            n % 5,
            support::unknown(&format!("shared-{n}"), 1)
        );
        let answer = endpoint.handle(&HeaderMap::new(), body.as_bytes()).await;
        assert_eq!(answer.status(), StatusCode::ACCEPTED, "{answer}");
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while inbox
        .stats(OffsetDateTime::now_utc())
        .await
        .unwrap()
        .pending
        > 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the workers drain the inbox"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(endpoint.shutdown(Duration::from_secs(10)).await);
    let processed: i64 = client
        .query_one(
            &format!("SELECT count(*) FROM \"{schema}\".alm_events WHERE status = 1"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        processed, 20,
        "every delivery processed through the workers"
    );
    let connections: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
            &[&app],
        )
        .await
        .unwrap()
        .get(0);
    let status = pool.status();
    assert_eq!(
        connections as usize, status.size,
        "every connection the store and the inbox opened is the one pool's"
    );
    assert!(status.size <= status.max_size);
    drop(pool);
    client
        .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .await
        .unwrap();
}

/// The compression of each delivery-body column (`l`: lz4, empty: the
/// server's default).
async fn body_compression(client: &tokio_postgres::Client, schema: &str) -> Vec<(String, String)> {
    client
        .query(
            "SELECT c.relname::text, a.attcompression::text FROM pg_attribute a \
             JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND a.attname = 'body' \
               AND c.relname IN ('alm_inbox', 'alm_archive', 'alm_quarantine') \
             ORDER BY 1",
            &[&schema],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

/// Delivery bodies are compressed with lz4 where the server has it
/// (pglz, the default, takes 10-25 ms of a 1.3 MB append): on the tables
/// the migration makes, and on tables an earlier release made, whose
/// bodies stay as they were stored, byte for byte; migrating again
/// changes nothing. A server without lz4 keeps its default.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migration_compresses_delivery_bodies_with_lz4_where_the_server_has_it() {
    let Some(client) = owner().await else { return };
    let version: i32 = client
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .unwrap()
        .get(0);
    let lz4: bool = client
        .query_one(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'",
            &[],
        )
        .await
        .is_ok_and(|row| row.get(0));
    if version < 140000 {
        eprintln!("skipped: PostgreSQL {version} has no per-column compression");
        return;
    }
    let expected = if lz4 { "l" } else { "" };
    let each = |c: &str| {
        ["alm_archive", "alm_inbox", "alm_quarantine"]
            .map(|t| (t.to_owned(), c.to_owned()))
            .to_vec()
    };
    let schema = unique("inbox_lz4");
    PostgresStore::migrate(&url(), &schema).await.unwrap();
    assert_eq!(body_compression(&client, &schema).await, each(expected));

    // The tables as an earlier release made them, holding a body.
    client
        .batch_execute(&format!(
            "ALTER TABLE \"{schema}\".alm_inbox ALTER COLUMN body SET COMPRESSION pglz; \
             ALTER TABLE \"{schema}\".alm_archive ALTER COLUMN body SET COMPRESSION pglz; \
             ALTER TABLE \"{schema}\".alm_quarantine ALTER COLUMN body SET COMPRESSION pglz"
        ))
        .await
        .unwrap();
    assert_eq!(body_compression(&client, &schema).await, each("p"));
    let events: Vec<String> = (0..2_000)
        .map(|n| support::unknown(&format!("lz4-{n}"), 1))
        .collect();
    let body = format!(r#"{{"accountId":7,"events":[{}]}}"#, events.join(",")).into_bytes();
    let inbox = PostgresInbox::connect_with_schema(&url(), &schema)
        .await
        .unwrap();
    let append = || {
        inbox.append(NewDelivery {
            account_id: AccountId(7),
            body: &body,
            received_at: OffsetDateTime::now_utc(),
        })
    };
    append().await.unwrap();

    PostgresStore::migrate(&url(), &schema).await.unwrap();
    assert_eq!(body_compression(&client, &schema).await, each(expected));
    append().await.unwrap();
    PostgresStore::migrate(&url(), &schema).await.unwrap();
    assert_eq!(body_compression(&client, &schema).await, each(expected));

    let rows = client
        .query(
            &format!(
                "SELECT pg_column_compression(body), body FROM \"{schema}\".alm_inbox ORDER BY id"
            ),
            &[],
        )
        .await
        .unwrap();
    let stored: Vec<(Option<String>, Vec<u8>)> =
        rows.iter().map(|row| (row.get(0), row.get(1))).collect();
    let now = if lz4 { "lz4" } else { "pglz" };
    assert_eq!(
        stored,
        [
            (Some("pglz".to_owned()), body.clone()),
            (Some(now.to_owned()), body.clone())
        ]
    );
    client
        .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .await
        .unwrap();
}
