//! A SQLite inbox file made by an earlier version (no `abandoned` column)
//! is brought up to date when opened, keeping its deliveries and counts.

#![cfg(feature = "sqlite")]

use std::time::Duration;

use alm_webhooks::inbox::{Inbox, SqliteInbox};
use time::OffsetDateTime;

/// The inbox table as versions before attempts were counted at take made it.
const OLD_INBOX: &str = "
CREATE TABLE alm_inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id INTEGER NOT NULL,
    body BLOB NOT NULL,
    received_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    not_before_ms INTEGER,
    lease_token BLOB,
    lease_until_ms INTEGER
);
INSERT INTO alm_inbox (account_id, body, received_ms, attempts, last_error)
    VALUES (5, x'6f6c64', 1750000000000, 2, 'CRM down');";

#[tokio::test]
async fn an_inbox_file_of_an_earlier_version_is_upgraded_keeping_its_deliveries() {
    let token = alm_webhooks::inbox::LeaseToken::random().0;
    let path = std::env::temp_dir().join(format!("alm-inbox-upgrade-{token:032x}.db"));
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(OLD_INBOX)
        .unwrap();
    let inbox = SqliteInbox::open(&path).unwrap();
    let now = OffsetDateTime::now_utc();
    let taken = inbox
        .take(Duration::from_secs(30), now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(taken.body, b"old");
    assert_eq!(
        (taken.attempts, taken.abandoned, taken.last_error.as_deref()),
        (3, 0, Some("CRM down")),
        "two attempts made before, this one counted at take"
    );
    drop(inbox);
    let again = SqliteInbox::open(&path).expect("opened again, the column already there");
    assert_eq!(again.stats(now).await.unwrap().in_flight, 1);
    drop(again);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}
