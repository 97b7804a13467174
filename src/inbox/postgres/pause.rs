//! Pauses, kept in `alm_inbox_paused`: one row per paused account
//! (`every` false), and one for every account (`every` true, `account_id` 0).

use time::OffsetDateTime;

use super::PostgresInbox;
use crate::AccountId;
use crate::inbox::{InboxError, Pause, PauseScope};

/// A scope as its row's key: `(every, account_id)`.
fn key(scope: PauseScope) -> (bool, i64) {
    match scope {
        PauseScope::All => (true, 0),
        PauseScope::Account(id) => (false, id.get() as i64),
    }
}

impl PostgresInbox {
    pub(super) async fn pause_scope(
        &self,
        scope: PauseScope,
        now: OffsetDateTime,
    ) -> Result<(), InboxError> {
        let (every, account) = key(scope);
        let sql = format!(
            "INSERT INTO {} (every, account_id, since) VALUES ($1, $2, $3) \
             ON CONFLICT (every, account_id) DO NOTHING",
            self.t("alm_inbox_paused")
        );
        self.execute("pause", &sql, &[&every, &account, &now])
            .await
            .map(drop)
    }

    pub(super) async fn resume_scope(&self, scope: PauseScope) -> Result<bool, InboxError> {
        let (every, account) = key(scope);
        let table = self.t("alm_inbox_paused");
        let lifted = if every {
            let sql = format!("DELETE FROM {table}");
            self.execute("resume", &sql, &[]).await?
        } else {
            let sql = format!("DELETE FROM {table} WHERE NOT every AND account_id = $1");
            self.execute("resume", &sql, &[&account]).await?
        };
        Ok(lifted > 0)
    }

    pub(super) async fn pause_list(&self) -> Result<Vec<Pause>, InboxError> {
        let sql = format!(
            "SELECT every, account_id, since FROM {} ORDER BY every DESC, account_id",
            self.t("alm_inbox_paused")
        );
        let rows = self.query("list pauses", &sql, &[]).await?;
        rows.iter()
            .map(|row| {
                let get = |e| super::pg_error("unexpected pause row", e);
                let scope = if row.try_get::<_, bool>(0).map_err(get)? {
                    PauseScope::All
                } else {
                    PauseScope::Account(AccountId(super::rows::column_u64(row, 1)?))
                };
                Ok(Pause::new(scope, row.try_get(2).map_err(get)?))
            })
            .collect()
    }
}
