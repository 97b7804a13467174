//! The inbox conformance suite (`tests/support/inbox_conformance.rs`) on
//! every backend this build has: memory always; SQLite, PostgreSQL and
//! Redis behind their features. PostgreSQL is at `ALM_TEST_POSTGRES_URL`
//! and Redis at `ALM_TEST_REDIS_URL`; a service that is not reachable is
//! skipped with a message (a failure under `CI=true`). Each check uses its
//! own schema, key prefix or file and removes it afterwards.

mod support;

mod memory {
    use std::sync::Arc;

    use alm_webhooks::inbox::MemoryInbox;

    use crate::inbox_conformance;
    use crate::support::inbox_conformance::Fixture;

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

    use crate::inbox_conformance;
    use crate::support::inbox_conformance::Fixture;

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
