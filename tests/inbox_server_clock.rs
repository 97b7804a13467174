//! The shared inboxes (PostgreSQL, Redis) keep their leases on the
//! server's clock: two takers whose clocks differ by ±30 s never both hold a
//! delivery. And a PostgreSQL inbox made by an earlier version (`TEXT`
//! columns, no `abandoned`) is brought up to date, keeping what it held.
//! A service that is not reachable is skipped (a failure under `CI=true`).

#![cfg(any(feature = "postgres", feature = "redis"))]

mod support;

use std::time::Duration;

use alm_webhooks::AccountId;
use alm_webhooks::inbox::{Inbox, NewDelivery};
use time::OffsetDateTime;

const SKEW: time::Duration = time::Duration::seconds(30);
const LEASE: Duration = Duration::from_secs(5);

fn delivery(body: &[u8]) -> NewDelivery<'_> {
    NewDelivery {
        account_id: AccountId(11),
        body,
        received_at: OffsetDateTime::now_utc(),
    }
}

/// A taker whose clock is 30 s slow and one whose clock is 30 s fast, both
/// ways round: never both hold the delivery.
async fn clocks_apart_never_share_a_delivery<I: Inbox>(inbox: &I) {
    let slow = || OffsetDateTime::now_utc() - SKEW;
    let fast = || OffsetDateTime::now_utc() + SKEW;

    inbox.append(delivery(b"one")).await.unwrap();
    let first = inbox
        .take(LEASE, slow())
        .await
        .unwrap()
        .expect("a delivery");
    assert!(
        inbox.take(LEASE, fast()).await.unwrap().is_none(),
        "a taker 60 s ahead must not see the slow taker's lease as run out"
    );
    assert!(
        inbox
            .renew(first.id, first.token, LEASE, slow())
            .await
            .unwrap()
    );
    assert!(inbox.take(LEASE, fast()).await.unwrap().is_none());
    let stats = inbox.stats(fast()).await.unwrap();
    assert_eq!(stats.in_flight, 1, "in flight whoever asks: {stats:?}");
    assert!(inbox.complete(first.id, first.token, &[]).await.unwrap());

    inbox.append(delivery(b"two")).await.unwrap();
    let second = inbox
        .take(LEASE, fast())
        .await
        .unwrap()
        .expect("a delivery");
    assert!(
        inbox.take(LEASE, slow()).await.unwrap().is_none(),
        "nor the other way round"
    );
    assert_eq!(second.attempts, 1);
    assert!(inbox.complete(second.id, second.token, &[]).await.unwrap());
}

fn required(service: &str, e: &dyn std::fmt::Display) -> bool {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{service} is required under CI=true but is not reachable ({e})");
    }
    eprintln!("skipped: {service} not reachable ({e})");
    false
}

#[cfg(feature = "postgres")]
mod postgres {
    use alm_webhooks::AccountId;
    use alm_webhooks::inbox::{Inbox, LEASE_RAN_OUT, NewDeadLetter, PostgresInbox};
    use time::OffsetDateTime;

    use super::{LEASE, clocks_apart_never_share_a_delivery, delivery, required};

    fn url() -> String {
        std::env::var("ALM_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
    }

    fn schema() -> String {
        let token = alm_webhooks::inbox::LeaseToken::random().0 as u64;
        format!("alm_inbox_clock_{token:016x}")
    }

    async fn raw_client() -> Option<tokio_postgres::Client> {
        match tokio_postgres::connect(&url(), tokio_postgres::NoTls).await {
            Ok((client, connection)) => {
                tokio::spawn(connection);
                Some(client)
            }
            Err(e) => {
                required("PostgreSQL", &e);
                None
            }
        }
    }

    #[tokio::test]
    async fn postgres_leases_run_on_the_server_clock() {
        let Some(client) = raw_client().await else {
            return;
        };
        let schema = schema();
        PostgresInbox::migrate(&url(), &schema).await.unwrap();
        let inbox = PostgresInbox::connect_with_schema(&url(), &schema)
            .await
            .unwrap();
        clocks_apart_never_share_a_delivery(&inbox).await;
        client
            .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
            .await
            .unwrap();
    }

    /// The tables as versions before the BYTEA texts made them.
    const OLD_TABLES: &str = "
        CREATE TABLE alm_inbox (id BIGSERIAL PRIMARY KEY, account_id BIGINT NOT NULL,
            body BYTEA NOT NULL, received_at TIMESTAMPTZ NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, not_before TIMESTAMPTZ,
            lease_token BYTEA, lease_until TIMESTAMPTZ);
        CREATE INDEX alm_inbox_account ON alm_inbox (account_id, id);
        CREATE TABLE alm_dead_letters (id BIGSERIAL PRIMARY KEY, account_id BIGINT NOT NULL,
            event_id TEXT, event_name TEXT, event TEXT NOT NULL, error TEXT NOT NULL,
            attempts INTEGER NOT NULL, at TIMESTAMPTZ NOT NULL);
        CREATE TABLE alm_quarantine (id BIGSERIAL PRIMARY KEY, account_id BIGINT,
            body BYTEA NOT NULL, error TEXT NOT NULL, received_at TIMESTAMPTZ NOT NULL);
        INSERT INTO alm_inbox (account_id, body, received_at, attempts, last_error)
            VALUES (11, 'old', now(), 2, 'CRM down (é)');
        INSERT INTO alm_dead_letters (account_id, event_id, event_name, event, error, attempts, at)
            VALUES (11, 'e1', 'COURSE_COMPLETED', '{\"eventId\":\"e1\"}', 'boom', 3, now());
        INSERT INTO alm_quarantine (account_id, body, error, received_at)
            VALUES (NULL, '\\x00ff', 'not JSON', now());";

    #[tokio::test]
    async fn postgres_tables_of_an_earlier_version_are_upgraded_keeping_their_rows() {
        let Some(client) = raw_client().await else {
            return;
        };
        let schema = schema();
        client
            .batch_execute(&format!(
                "CREATE SCHEMA \"{schema}\"; SET search_path TO \"{schema}\"; {OLD_TABLES}"
            ))
            .await
            .unwrap();
        // Before: a NUL cannot be kept in those TEXT columns (SQLSTATE 22021).
        // The migration (`sql/postgres.sql`) brings the tables up to date.
        let refused = client
            .execute(
                &format!("UPDATE \"{schema}\".alm_dead_letters SET error = $1"),
                &[&"a\0b"],
            )
            .await
            .unwrap_err();
        assert_eq!(refused.code().map(|c| c.code()), Some("22021"), "{refused}");

        PostgresInbox::migrate(&url(), &schema).await.unwrap();
        let inbox = PostgresInbox::connect_with_schema(&url(), &schema)
            .await
            .unwrap();
        let old = &inbox.dead_letters(10).await.unwrap()[0].letter;
        assert_eq!(
            (
                old.event_id.as_deref(),
                old.event.as_str(),
                old.error.as_str()
            ),
            (Some("e1"), r#"{"eventId":"e1"}"#, "boom")
        );
        let q = &inbox.quarantined(10).await.unwrap()[0];
        assert_eq!(
            (q.body.as_slice(), q.error.as_str()),
            (&[0u8, 0xff][..], "not JSON")
        );
        let taken = inbox
            .take(LEASE, OffsetDateTime::now_utc())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (taken.attempts, taken.abandoned, taken.last_error.as_deref()),
            (3, 0, Some("CRM down (é)"))
        );
        let letter = NewDeadLetter {
            account_id: AccountId(11),
            event_id: Some("nul\0id".into()),
            event_name: None,
            event: r#"{"eventId":"nul\u0000id"}"#.into(),
            error: "malformed".into(),
            attempts: 3,
            at: OffsetDateTime::from_unix_timestamp(OffsetDateTime::now_utc().unix_timestamp())
                .unwrap(),
        };
        assert!(
            inbox
                .complete(taken.id, taken.token, std::slice::from_ref(&letter))
                .await
                .unwrap()
        );
        assert_eq!(inbox.dead_letters(10).await.unwrap()[1].letter, letter);
        // Connecting again leaves the upgraded tables as they are.
        let again = PostgresInbox::connect_with_schema(&url(), &schema)
            .await
            .unwrap();
        assert_eq!(again.dead_letters(10).await.unwrap().len(), 2);
        inbox.append(delivery(b"new")).await.unwrap();
        let taken = inbox
            .take(
                std::time::Duration::from_millis(200),
                OffsetDateTime::now_utc(),
            )
            .await
            .unwrap()
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        let retaken = inbox
            .take(LEASE, OffsetDateTime::now_utc())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(retaken.id, taken.id);
        assert_eq!(retaken.last_error.as_deref(), Some(LEASE_RAN_OUT));
        client
            .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
            .await
            .unwrap();
    }
}

#[cfg(feature = "redis")]
mod redis {
    use alm_webhooks::inbox::RedisInbox;

    use super::{clocks_apart_never_share_a_delivery, required};
    use crate::support::redis_keys::purge;

    #[tokio::test]
    async fn redis_leases_run_on_the_server_clock() {
        let url = std::env::var("ALM_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned());
        let token = alm_webhooks::inbox::LeaseToken::random().0 as u64;
        let prefix = format!("alm-inbox-clock:{token:016x}:");
        let inbox = match RedisInbox::connect_with_prefix(&url, &prefix).await {
            Ok(inbox) => inbox,
            Err(e) => {
                required("Redis", &e);
                return;
            }
        };
        clocks_apart_never_share_a_delivery(&inbox).await;
        purge(&url, &prefix);
    }
}
