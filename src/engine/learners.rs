//! The learner table of the store an engine writes, read through the
//! engine (a clone shares it): what a receiver's admin API serves.

use std::io::Write;

use super::Engine;
use crate::projection::LearnerRecord;
use crate::store::{BoxFuture, LearnerReads, Store, StoreError};
use crate::{AccountId, LoInstanceId, UserId};

/// The reads of the engine's store.
///
/// ```
/// use std::sync::Arc;
/// use alm_webhooks::Engine;
/// use alm_webhooks::store::{LearnerReads, MemoryStore};
/// let engine = Engine::builder(MemoryStore::new().with_learner_projection()).build();
/// let table: Arc<dyn LearnerReads> = Arc::new(engine.clone());
/// # let _ = table;
/// ```
impl<S: Store + LearnerReads> LearnerReads for Engine<S> {
    fn accounts(&self) -> BoxFuture<'_, Result<Vec<AccountId>, StoreError>> {
        self.store().accounts()
    }

    fn record<'a>(
        &'a self,
        account: AccountId,
        user: UserId,
        lo_instance: &'a LoInstanceId,
    ) -> BoxFuture<'a, Result<Option<LearnerRecord>, StoreError>> {
        self.store().record(account, user, lo_instance)
    }

    fn records_of_user(
        &self,
        account: AccountId,
        user: UserId,
    ) -> BoxFuture<'_, Result<Vec<LearnerRecord>, StoreError>> {
        self.store().records_of_user(account, user)
    }

    fn records_of_instance<'a>(
        &'a self,
        account: AccountId,
        lo_instance: &'a LoInstanceId,
    ) -> BoxFuture<'a, Result<Vec<LearnerRecord>, StoreError>> {
        self.store().records_of_instance(account, lo_instance)
    }

    fn records_of_account(
        &self,
        account: AccountId,
    ) -> BoxFuture<'_, Result<Vec<LearnerRecord>, StoreError>> {
        self.store().records_of_account(account)
    }

    fn export_csv(
        &self,
        out: Box<dyn Write + Send>,
    ) -> BoxFuture<'_, Result<(Box<dyn Write + Send>, u64), StoreError>> {
        self.store().export_csv(out)
    }
}
