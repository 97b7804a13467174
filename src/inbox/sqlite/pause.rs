//! Pauses, kept in `alm_inbox_paused`: one row per paused account
//! (`every = 0`), and one for every account (`every = 1, account_id = 0`).
//! A pause or a resume is on disk when it returns (`synchronous=FULL`, as
//! an acknowledgement): an operator's decision survives a power cut.

use rusqlite::params;
use time::OffsetDateTime;

use super::SqliteInbox;
use crate::AccountId;
use crate::inbox::types::{from_millis, unix_millis};
use crate::inbox::{InboxError, Pause, PauseScope};

/// A scope as its row's key: `(every, account_id)`.
fn key(scope: PauseScope) -> (i64, i64) {
    match scope {
        PauseScope::All => (1, 0),
        PauseScope::Account(id) => (0, id.get() as i64),
    }
}

impl SqliteInbox {
    pub(super) async fn pause_scope(
        &self,
        scope: PauseScope,
        now: OffsetDateTime,
    ) -> Result<(), InboxError> {
        let (every, account) = key(scope);
        let since = unix_millis(now);
        self.run_acknowledged("pause", move |conn| {
            conn.execute(
                "INSERT OR IGNORE INTO alm_inbox_paused (every, account_id, since_ms) \
                 VALUES (?1, ?2, ?3)",
                params![every, account, since],
            )
        })
        .await
        .map(drop)
    }

    pub(super) async fn resume_scope(&self, scope: PauseScope) -> Result<bool, InboxError> {
        let (every, account) = key(scope);
        self.run_acknowledged("resume", move |conn| {
            if every == 1 {
                conn.execute("DELETE FROM alm_inbox_paused", [])
            } else {
                conn.execute(
                    "DELETE FROM alm_inbox_paused WHERE every = 0 AND account_id = ?1",
                    [account],
                )
            }
        })
        .await
        .map(|n| n > 0)
    }

    pub(super) async fn pause_list(&self) -> Result<Vec<Pause>, InboxError> {
        self.run("list pauses", |conn| {
            let mut stmt = conn.prepare(
                "SELECT every, account_id, since_ms FROM alm_inbox_paused \
                 ORDER BY every DESC, account_id",
            )?;
            stmt.query_map([], |r| {
                let scope = if r.get::<_, i64>(0)? == 1 {
                    PauseScope::All
                } else {
                    PauseScope::Account(AccountId(r.get::<_, i64>(1)? as u64))
                };
                Ok(Pause::new(scope, from_millis(r.get(2)?)))
            })?
            .collect()
        })
        .await
    }
}
