//! The inbox conformance suite (`alm_webhooks::conformance::inbox`) on
//! every backend this build has: memory always; SQLite, PostgreSQL and
//! Redis behind their features. PostgreSQL is at `ALM_TEST_POSTGRES_URL`
//! and Redis at `ALM_TEST_REDIS_URL`; a service that is not reachable is
//! skipped with a message (a failure under `CI=true`). Each check uses its
//! own schema, key prefix or file and removes it afterwards.

#![cfg(feature = "inbox-conformance")]

mod support;

mod memory {
    use std::sync::Arc;

    use alm_webhooks::inbox::MemoryInbox;

    use alm_webhooks::conformance::inbox::Fixture;
    use alm_webhooks::inbox_conformance;

    async fn memory() -> Option<Fixture<MemoryInbox>> {
        Some(Fixture {
            inbox: Arc::new(MemoryInbox::new()),
            cleanup: None,
        })
    }

    inbox_conformance!(memory());
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use std::sync::Arc;

    use alm_webhooks::inbox::SqliteInbox;

    use alm_webhooks::conformance::inbox::Fixture;
    use alm_webhooks::inbox_conformance;

    /// Removes the database file and its WAL when dropped.
    struct RemoveFile(std::path::PathBuf);

    impl Drop for RemoveFile {
        fn drop(&mut self) {
            for suffix in ["", "-wal", "-shm"] {
                let mut path = self.0.clone().into_os_string();
                path.push(suffix);
                let _ = std::fs::remove_file(path);
            }
        }
    }

    async fn sqlite() -> Option<Fixture<SqliteInbox>> {
        let token = alm_webhooks::inbox::LeaseToken::random().0;
        let path = std::env::temp_dir().join(format!("alm-inbox-test-{token:032x}.db"));
        Some(Fixture {
            inbox: Arc::new(SqliteInbox::open(&path).expect("the file opens")),
            cleanup: Some(Box::new(RemoveFile(path))),
        })
    }

    inbox_conformance!(sqlite());
}

#[cfg(feature = "postgres")]
mod postgres {
    use std::sync::Arc;

    use alm_webhooks::inbox::PostgresInbox;
    use alm_webhooks::store::PostgresStore;

    use alm_webhooks::conformance::inbox::Fixture;
    use alm_webhooks::inbox_conformance;

    fn url() -> String {
        std::env::var("ALM_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
    }

    /// Drops the test's schema when dropped.
    struct DropSchema(String);

    impl Drop for DropSchema {
        fn drop(&mut self) {
            let schema = self.0.clone();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async {
                    if let Ok(store) = PostgresStore::connect_with_schema(&url(), &schema).await {
                        let _ = store.drop_schema().await;
                    }
                });
            })
            .join()
            .unwrap();
        }
    }

    async fn postgres() -> Option<Fixture<PostgresInbox>> {
        let token = alm_webhooks::inbox::LeaseToken::random().0 as u64;
        let schema = format!("alm_inbox_test_{token:016x}");
        let migrated = PostgresInbox::migrate(&url(), &schema).await;
        let connected = match migrated {
            Ok(()) => PostgresInbox::connect_with_schema(&url(), &schema).await,
            Err(e) => Err(e),
        };
        match connected {
            Ok(inbox) => Some(Fixture {
                inbox: Arc::new(inbox),
                cleanup: Some(Box::new(DropSchema(schema))),
            }),
            Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
                panic!("PostgreSQL is required under CI=true but is not reachable ({e})")
            }
            Err(e) => {
                eprintln!("skipped: PostgreSQL not reachable ({e}); set ALM_TEST_POSTGRES_URL");
                None
            }
        }
    }

    inbox_conformance!(postgres());
}

#[cfg(feature = "redis")]
mod redis {
    use std::sync::Arc;

    use alm_webhooks::inbox::RedisInbox;

    use crate::support::redis_keys::purge;
    use alm_webhooks::conformance::inbox::Fixture;
    use alm_webhooks::inbox_conformance;

    fn url() -> String {
        std::env::var("ALM_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned())
    }

    /// Deletes the test's keys when dropped.
    struct Purge(String);

    impl Drop for Purge {
        fn drop(&mut self) {
            purge(&url(), &self.0);
        }
    }

    async fn redis() -> Option<Fixture<RedisInbox>> {
        let token = alm_webhooks::inbox::LeaseToken::random().0 as u64;
        let prefix = format!("alm-inbox-test:{token:016x}:");
        match RedisInbox::connect_with_prefix(&url(), &prefix).await {
            Ok(inbox) => Some(Fixture {
                inbox: Arc::new(inbox),
                cleanup: Some(Box::new(Purge(prefix))),
            }),
            Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
                panic!("Redis is required under CI=true but is not reachable ({e})")
            }
            Err(e) => {
                eprintln!("skipped: Redis not reachable ({e}); set ALM_TEST_REDIS_URL");
                None
            }
        }
    }

    inbox_conformance!(redis());

    /// The keys under `pattern`, by `SCAN`.
    fn keys(pattern: &str) -> Vec<String> {
        use ::redis::Commands;
        let client = ::redis::Client::open(url()).unwrap();
        let mut con = client.get_connection().unwrap();
        let mut found: Vec<String> = con
            .scan_match(pattern)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        found.sort();
        found
    }

    /// The archive's index entries are written under the names the search
    /// reads (`ax:e:`, `ax:u:`, `ax:i:`, members `{id, 20 digits}:{position,
    /// 6 digits}`), and the sweep removes every one the archived delivery
    /// lists: nothing of the archive is left behind.
    #[tokio::test]
    async fn the_archive_index_is_written_as_listed_and_swept_whole() {
        use ::redis::Commands;
        use alm_webhooks::inbox::{ArchivedEvent, Inbox, NewDelivery};
        use alm_webhooks::{AccountId, EventName, UserId};
        use time::OffsetDateTime;

        let Some(f) = redis().await else { return };
        let inbox = &*f.inbox;
        let p = inbox.prefix().to_owned();
        let t0 = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let mut ids = Vec::new();
        for n in 0..2u64 {
            let body = format!("{{\"n\":{n}}}");
            ids.push(
                inbox
                    .append(NewDelivery {
                        account_id: AccountId(n + 1),
                        body: body.as_bytes(),
                        received_at: t0,
                    })
                    .await
                    .unwrap(),
            );
        }
        for n in 0..2u32 {
            let taken = inbox
                .take(std::time::Duration::from_secs(30), t0)
                .await
                .unwrap()
                .expect("a delivery");
            let events: Vec<ArchivedEvent> = (0..3)
                .map(|i| {
                    // Ids the JSON of the sweep's list must spell exactly:
                    // a `/` (which Lua's cjson escapes), non-ASCII text, a
                    // quote and a backslash.
                    ArchivedEvent::new(i, "processed")
                        .with_event_id(format!("ev-{n}-{i}/ü😀\"\\").parse().unwrap())
                        .with_event_name(EventName::from("COURSE_ENROLLMENT"))
                        .with_user_id(UserId(u64::from(70 + i)))
                        .with_lo_instance_id("course:1_2".parse().unwrap())
                })
                .collect();
            assert!(
                inbox
                    .complete_archived(taken.id, taken.token, &[], &events)
                    .await
                    .unwrap()
            );
        }
        let client = ::redis::Client::open(url()).unwrap();
        let mut con = client.get_connection().unwrap();
        let by_event: Vec<String> = con
            .zrange(format!("{p}ax:e:ev-1-2/ü😀\"\\"), 0, -1)
            .unwrap();
        assert_eq!(by_event, [format!("{:020}:000002", ids[1].0)]);
        let of_user: Vec<String> = con.zrange(format!("{p}ax:u:71"), 0, -1).unwrap();
        assert_eq!(
            of_user,
            [
                format!("{:020}:000001", ids[0].0),
                format!("{:020}:000001", ids[1].0)
            ]
        );
        // An archived delivery's hash holds its account, body and time
        // (copied inside Redis from the delivery's), its events and its
        // index entries; nothing of its lease or attempts.
        for id in &ids {
            let mut fields: Vec<String> = con.hkeys(format!("{p}ar:{}", id.0)).unwrap();
            fields.sort();
            assert_eq!(fields, ["a", "b", "k", "r", "v"]);
            let body: Vec<u8> = con.hget(format!("{p}ar:{}", id.0), "b").unwrap();
            assert!(body.starts_with(b"{\"n\":"), "{body:?}");
        }
        // The instance's three entries of a delivery are added together.
        let of_instance: Vec<String> = con.zrange(format!("{p}ax:i:course:1_2"), 0, -1).unwrap();
        let expected: Vec<String> = ids
            .iter()
            .flat_map(|id| (0..3).map(move |i| format!("{:020}:{i:06}", id.0)))
            .collect();
        assert_eq!(of_instance, expected);
        assert_eq!(
            keys(&format!("{p}ax:*")).len(),
            6 + 3 + 1,
            "6 ids, 3 users, 1 instance"
        );

        let later = t0 + time::Duration::seconds(1);
        assert_eq!(inbox.sweep_archive(later, 10).await.unwrap(), 2);
        assert!(keys(&format!("{p}ax:*")).is_empty(), "no index entry left");
        assert!(
            keys(&format!("{p}ar*")).is_empty(),
            "no archived delivery left"
        );
    }
}
