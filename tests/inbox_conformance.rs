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
}
