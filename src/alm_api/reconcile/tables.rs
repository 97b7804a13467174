//! The learner projection (see [`crate::projection`]) as the table
//! reconciliation reads: each store that keeps it implements
//! [`LearnerTable`], so reconciliation compares ALM with the table this
//! crate keeps.

use std::sync::Arc;

use super::diff::{LearnerRecord, LearnerStatus, LearnerTable};
use crate::projection::{self, utc_text};
use crate::store::MemoryStore;
use crate::{AccountId, BoxError, Timestamp, UserId};

/// A projection row as reconciliation compares it; `None` for an
/// unenrolled record (ALM lists no enrollment for it: a re-enrollment it
/// knows of and the table missed shows as [`Missing`](super::DifferenceKind::Missing)).
pub(crate) fn from_projection(row: &projection::LearnerRecord) -> Option<LearnerRecord> {
    let status = match row.status {
        projection::LearnerStatus::Enrolled => LearnerStatus::Enrolled,
        projection::LearnerStatus::InProgress => LearnerStatus::Started,
        projection::LearnerStatus::Completed => LearnerStatus::Completed,
        _ => return None,
    };
    let time = |t: Option<time::OffsetDateTime>| {
        t.and_then(|t| Timestamp::from_rfc3339(&utc_text(t)).ok())
    };
    let mut record = LearnerRecord::new(row.user_id, row.lo_instance_id.clone(), status);
    // ALM reports whole percents: 99.5 is 99 there too.
    record.progress_percent = Some(row.progress_percent.clamp(0.0, 100.0) as u8);
    record.date_enrolled = time(row.date_enrolled);
    record.date_completed = time(row.date_completed);
    Some(record)
}

const NO_PROJECTION: &str =
    "this MemoryStore keeps no learner projection (with_learner_projection)";

fn records(rows: Vec<projection::LearnerRecord>) -> Vec<LearnerRecord> {
    rows.iter().filter_map(from_projection).collect()
}

/// The memory store's projection
/// ([`MemoryStore::with_learner_projection`]); an error if it keeps none
/// (an empty table would make every record of ALM look missing).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use alm_webhooks::{AccountId, store::MemoryStore};
/// use alm_webhooks::alm_api::reconcile::LearnerTable;
/// let store = MemoryStore::new().with_learner_projection();
/// assert!(store.learner_records(AccountId(1)).await.unwrap().is_empty());
/// assert!(MemoryStore::new().learner_records(AccountId(1)).await.is_err());
/// # }
/// ```
impl LearnerTable for MemoryStore {
    async fn learner_records(&self, account: AccountId) -> Result<Vec<LearnerRecord>, BoxError> {
        if !self.keeps_learner_projection() {
            return Err(NO_PROJECTION.into());
        }
        Ok(records(self.learner_records_of_account(account)))
    }

    async fn learner_records_of_user(
        &self,
        account: AccountId,
        user: UserId,
    ) -> Result<Vec<LearnerRecord>, BoxError> {
        if !self.keeps_learner_projection() {
            return Err(NO_PROJECTION.into());
        }
        Ok(records(MemoryStore::learner_records_of_user(
            self, account, user,
        )))
    }
}

/// `LearnerTable` for a SQL store's projection (table
/// `alm_learner_records`), through its own indexed reads.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
macro_rules! sql_learner_table {
    ($store:ty) => {
        impl LearnerTable for $store {
            async fn learner_records(
                &self,
                account: AccountId,
            ) -> Result<Vec<LearnerRecord>, BoxError> {
                Ok(records(self.learner_records_of_account(account).await?))
            }

            async fn learner_records_of_user(
                &self,
                account: AccountId,
                user: UserId,
            ) -> Result<Vec<LearnerRecord>, BoxError> {
                Ok(records(
                    <$store>::learner_records_of_user(self, account, user).await?,
                ))
            }
        }
    };
}

#[cfg(feature = "sqlite")]
sql_learner_table!(crate::store::SqliteStore);
#[cfg(feature = "postgres")]
sql_learner_table!(crate::store::PostgresStore);

/// The Redis store's projection
/// ([`RedisStore::with_learner_projection`](crate::store::RedisStore::with_learner_projection));
/// an error if it keeps none (Redis would answer an empty table, and every
/// record of ALM would look missing).
#[cfg(feature = "redis")]
impl LearnerTable for crate::store::RedisStore {
    async fn learner_records(&self, account: AccountId) -> Result<Vec<LearnerRecord>, BoxError> {
        if !self.keeps_learner_projection() {
            return Err(NO_REDIS_PROJECTION.into());
        }
        Ok(records(self.learner_records_of_account(account).await?))
    }

    async fn learner_records_of_user(
        &self,
        account: AccountId,
        user: UserId,
    ) -> Result<Vec<LearnerRecord>, BoxError> {
        if !self.keeps_learner_projection() {
            return Err(NO_REDIS_PROJECTION.into());
        }
        Ok(records(
            crate::store::RedisStore::learner_records_of_user(self, account, user).await?,
        ))
    }
}

#[cfg(feature = "redis")]
const NO_REDIS_PROJECTION: &str =
    "this RedisStore keeps no learner projection (with_learner_projection)";

/// A table shared with the engine that writes it
/// (`Engine::builder(Arc::clone(&store))`).
impl<T: LearnerTable> LearnerTable for Arc<T> {
    fn learner_records(
        &self,
        account: AccountId,
    ) -> impl Future<Output = Result<Vec<LearnerRecord>, BoxError>> + Send {
        T::learner_records(self, account)
    }

    fn learner_records_of_user(
        &self,
        account: AccountId,
        user: UserId,
    ) -> impl Future<Output = Result<Vec<LearnerRecord>, BoxError>> + Send {
        T::learner_records_of_user(self, account, user)
    }
}

/// The store a receiver configured from a URL: memory, SQLite, PostgreSQL
/// or Redis with the projection on; an error for a custom store.
impl LearnerTable for crate::store::AnyStore {
    async fn learner_records(&self, account: AccountId) -> Result<Vec<LearnerRecord>, BoxError> {
        use crate::store::AnyStore;
        match self {
            AnyStore::Memory(s) => s.learner_records(account).await,
            #[cfg(feature = "sqlite")]
            AnyStore::Sqlite(s) => s.learner_records(account).await,
            #[cfg(feature = "postgres")]
            AnyStore::Postgres(s) => s.learner_records(account).await,
            #[cfg(feature = "redis")]
            AnyStore::Redis(s) => s.learner_records(account).await,
            _ => Err(NO_TABLE.into()),
        }
    }

    async fn learner_records_of_user(
        &self,
        account: AccountId,
        user: UserId,
    ) -> Result<Vec<LearnerRecord>, BoxError> {
        use crate::store::AnyStore;
        match self {
            AnyStore::Memory(s) => LearnerTable::learner_records_of_user(s, account, user).await,
            #[cfg(feature = "sqlite")]
            AnyStore::Sqlite(s) => LearnerTable::learner_records_of_user(s, account, user).await,
            #[cfg(feature = "postgres")]
            AnyStore::Postgres(s) => LearnerTable::learner_records_of_user(s, account, user).await,
            #[cfg(feature = "redis")]
            AnyStore::Redis(s) => LearnerTable::learner_records_of_user(s, account, user).await,
            _ => Err(NO_TABLE.into()),
        }
    }
}

const NO_TABLE: &str =
    "this store keeps no learner table (memory, SQLite, PostgreSQL and Redis do)";

/// The projection of the store an engine writes: a reconciler over
/// `engine.clone()` reads the table the engine keeps.
impl<S: crate::store::Store + LearnerTable> LearnerTable for crate::Engine<S> {
    fn learner_records(
        &self,
        account: AccountId,
    ) -> impl Future<Output = Result<Vec<LearnerRecord>, BoxError>> + Send {
        self.store().learner_records(account)
    }

    fn learner_records_of_user(
        &self,
        account: AccountId,
        user: UserId,
    ) -> impl Future<Output = Result<Vec<LearnerRecord>, BoxError>> + Send {
        self.store().learner_records_of_user(account, user)
    }
}
