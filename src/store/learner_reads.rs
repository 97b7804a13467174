//! [`LearnerReads`]: the learner projection's reads, object-safe, for
//! code that serves the table whatever store keeps it (the admin API's
//! `/records` and `/records.csv`).

use std::io::Write;

use super::{BoxFuture, MemoryStore, StoreError};
use crate::projection::LearnerRecord;
use crate::{AccountId, LoInstanceId, UserId};

/// The reads of a store that keeps the learner projection, as one
/// object-safe trait (each store also has them as its own methods, without
/// the boxing): memory, SQLite, PostgreSQL, Redis and
/// [`AnyStore`](super::AnyStore) implement it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::sync::Arc;
/// use alm_webhooks::store::{LearnerReads, MemoryStore};
/// let table: Arc<dyn LearnerReads> = Arc::new(MemoryStore::new().with_learner_projection());
/// assert!(table.accounts().await.unwrap().is_empty());
/// let (_, rows) = table.export_csv(Box::new(Vec::new())).await.unwrap();
/// assert_eq!(rows, 0);
/// # }
/// ```
pub trait LearnerReads: Send + Sync {
    /// The accounts that have records, in order.
    fn accounts(&self) -> BoxFuture<'_, Result<Vec<AccountId>, StoreError>>;

    /// The record of a learner in an instance, if any.
    fn record<'a>(
        &'a self,
        account: AccountId,
        user: UserId,
        lo_instance: &'a LoInstanceId,
    ) -> BoxFuture<'a, Result<Option<LearnerRecord>, StoreError>>;

    /// Every record of a learner, by instance id.
    fn records_of_user(
        &self,
        account: AccountId,
        user: UserId,
    ) -> BoxFuture<'_, Result<Vec<LearnerRecord>, StoreError>>;

    /// Every record of an instance, by user id.
    fn records_of_instance<'a>(
        &'a self,
        account: AccountId,
        lo_instance: &'a LoInstanceId,
    ) -> BoxFuture<'a, Result<Vec<LearnerRecord>, StoreError>>;

    /// Every record of an account, by user id then instance id.
    fn records_of_account(
        &self,
        account: AccountId,
    ) -> BoxFuture<'_, Result<Vec<LearnerRecord>, StoreError>>;

    /// The CSV export into `out`, streamed; gives `out` back with the
    /// number of rows.
    #[allow(clippy::type_complexity)]
    fn export_csv(
        &self,
        out: Box<dyn Write + Send>,
    ) -> BoxFuture<'_, Result<(Box<dyn Write + Send>, u64), StoreError>>;
}

impl LearnerReads for MemoryStore {
    fn accounts(&self) -> BoxFuture<'_, Result<Vec<AccountId>, StoreError>> {
        let accounts = self.learner_accounts();
        Box::pin(async move { Ok(accounts) })
    }

    fn record<'a>(
        &'a self,
        account: AccountId,
        user: UserId,
        lo_instance: &'a LoInstanceId,
    ) -> BoxFuture<'a, Result<Option<LearnerRecord>, StoreError>> {
        let record = self.learner_record(account, user, lo_instance);
        Box::pin(async move { Ok(record) })
    }

    fn records_of_user(
        &self,
        account: AccountId,
        user: UserId,
    ) -> BoxFuture<'_, Result<Vec<LearnerRecord>, StoreError>> {
        let records = self.learner_records_of_user(account, user);
        Box::pin(async move { Ok(records) })
    }

    fn records_of_instance<'a>(
        &'a self,
        account: AccountId,
        lo_instance: &'a LoInstanceId,
    ) -> BoxFuture<'a, Result<Vec<LearnerRecord>, StoreError>> {
        let records = self.learner_records_of_instance(account, lo_instance);
        Box::pin(async move { Ok(records) })
    }

    fn records_of_account(
        &self,
        account: AccountId,
    ) -> BoxFuture<'_, Result<Vec<LearnerRecord>, StoreError>> {
        let records = self.learner_records_of_account(account);
        Box::pin(async move { Ok(records) })
    }

    fn export_csv(
        &self,
        out: Box<dyn Write + Send>,
    ) -> BoxFuture<'_, Result<(Box<dyn Write + Send>, u64), StoreError>> {
        let exported = self.export_learner_csv(out);
        Box::pin(async move { exported })
    }
}

/// The reads of a shared store, each its own `learner_*` method boxed.
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "redis"))]
macro_rules! shared_learner_reads {
    ($store:ty) => {
        impl LearnerReads for $store {
            fn accounts(&self) -> BoxFuture<'_, Result<Vec<AccountId>, StoreError>> {
                Box::pin(self.learner_accounts())
            }

            fn record<'a>(
                &'a self,
                account: AccountId,
                user: UserId,
                lo_instance: &'a LoInstanceId,
            ) -> BoxFuture<'a, Result<Option<LearnerRecord>, StoreError>> {
                Box::pin(self.learner_record(account, user, lo_instance))
            }

            fn records_of_user(
                &self,
                account: AccountId,
                user: UserId,
            ) -> BoxFuture<'_, Result<Vec<LearnerRecord>, StoreError>> {
                Box::pin(self.learner_records_of_user(account, user))
            }

            fn records_of_instance<'a>(
                &'a self,
                account: AccountId,
                lo_instance: &'a LoInstanceId,
            ) -> BoxFuture<'a, Result<Vec<LearnerRecord>, StoreError>> {
                Box::pin(self.learner_records_of_instance(account, lo_instance))
            }

            fn records_of_account(
                &self,
                account: AccountId,
            ) -> BoxFuture<'_, Result<Vec<LearnerRecord>, StoreError>> {
                Box::pin(self.learner_records_of_account(account))
            }

            fn export_csv(
                &self,
                out: Box<dyn Write + Send>,
            ) -> BoxFuture<'_, Result<(Box<dyn Write + Send>, u64), StoreError>> {
                Box::pin(self.export_learner_csv(out))
            }
        }
    };
}

#[cfg(feature = "sqlite")]
shared_learner_reads!(super::SqliteStore);
#[cfg(feature = "postgres")]
shared_learner_reads!(super::PostgresStore);
#[cfg(feature = "redis")]
shared_learner_reads!(super::RedisStore);

/// The store a URL named; a custom store keeps no learner table here
/// (every read fails, saying so).
impl LearnerReads for super::AnyStore {
    fn accounts(&self) -> BoxFuture<'_, Result<Vec<AccountId>, StoreError>> {
        match self.learner_reads() {
            Ok(reads) => reads.accounts(),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }

    fn record<'a>(
        &'a self,
        account: AccountId,
        user: UserId,
        lo_instance: &'a LoInstanceId,
    ) -> BoxFuture<'a, Result<Option<LearnerRecord>, StoreError>> {
        match self.learner_reads() {
            Ok(reads) => reads.record(account, user, lo_instance),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }

    fn records_of_user(
        &self,
        account: AccountId,
        user: UserId,
    ) -> BoxFuture<'_, Result<Vec<LearnerRecord>, StoreError>> {
        match self.learner_reads() {
            Ok(reads) => reads.records_of_user(account, user),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }

    fn records_of_instance<'a>(
        &'a self,
        account: AccountId,
        lo_instance: &'a LoInstanceId,
    ) -> BoxFuture<'a, Result<Vec<LearnerRecord>, StoreError>> {
        match self.learner_reads() {
            Ok(reads) => reads.records_of_instance(account, lo_instance),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }

    fn records_of_account(
        &self,
        account: AccountId,
    ) -> BoxFuture<'_, Result<Vec<LearnerRecord>, StoreError>> {
        match self.learner_reads() {
            Ok(reads) => reads.records_of_account(account),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }

    fn export_csv(
        &self,
        out: Box<dyn Write + Send>,
    ) -> BoxFuture<'_, Result<(Box<dyn Write + Send>, u64), StoreError>> {
        match self.learner_reads() {
            Ok(reads) => reads.export_csv(out),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }
}

impl super::AnyStore {
    fn learner_reads(&self) -> Result<&dyn LearnerReads, StoreError> {
        use super::AnyStore;
        match self {
            AnyStore::Memory(s) => Ok(s),
            #[cfg(feature = "sqlite")]
            AnyStore::Sqlite(s) => Ok(s),
            #[cfg(feature = "postgres")]
            AnyStore::Postgres(s) => Ok(s),
            #[cfg(feature = "redis")]
            AnyStore::Redis(s) => Ok(s),
            AnyStore::Custom(_) => Err(StoreError::new(
                "this store keeps no learner table (memory, SQLite, PostgreSQL and Redis do)",
            )),
        }
    }
}
