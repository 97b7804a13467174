//! The accounts the learner projection holds records of, on PostgreSQL.

use super::connection::bounded;
use super::{PostgresStore, pg_error, timed_out};
use crate::AccountId;
use crate::store::StoreError;

impl PostgresStore {
    /// The accounts that have learner records, in order: one index probe
    /// per account (a loose index scan of the primary key), not a scan of
    /// the table.
    ///
    /// # Errors
    ///
    /// When the database fails.
    pub async fn learner_accounts(&self) -> Result<Vec<AccountId>, StoreError> {
        let table = self.learner_table();
        let sql = format!(
            "WITH RECURSIVE a(id) AS (SELECT MIN(account_id) FROM {table} \
             UNION ALL SELECT (SELECT MIN(account_id) FROM {table} WHERE account_id > a.id) \
             FROM a WHERE a.id IS NOT NULL) SELECT id FROM a WHERE id IS NOT NULL"
        );
        let read = async {
            let client = self.client().await?;
            client
                .query(&sql, &[])
                .await
                .map_err(|e| pg_error("cannot read learner accounts", e))
        };
        let rows = bounded(self.timeout, read, timed_out).await?;
        Ok(rows
            .iter()
            .map(|r| AccountId(r.get::<_, i64>(0) as u64))
            .collect())
    }
}
