//! Dead letters and quarantined bodies: what the inbox keeps for a person.

use rusqlite::{OptionalExtension, TransactionBehavior, params};
use time::OffsetDateTime;

use super::{DEAD_LETTER_COLUMNS, SqliteInbox, dead_letter, insert_delivery, quarantined};
use crate::AccountId;
use crate::inbox::types::unix_millis;
use crate::inbox::{
    DeadLetter, DeadLetterId, DeliveryId, InboxError, KeptCounts, NewQuarantined, QuarantineId,
    Quarantined, replay_body,
};

impl SqliteInbox {
    pub(super) async fn kept_quarantine(
        &self,
        body: NewQuarantined<'_>,
    ) -> Result<QuarantineId, InboxError> {
        let account = body.account_id.map(|a| a.get() as i64);
        let (bytes, error) = (body.body.to_vec(), body.error.to_owned());
        let at = unix_millis(body.received_at);
        self.run_acknowledged("quarantine", move |conn| {
            conn.query_row(
                "INSERT INTO alm_quarantine (account_id, body, error, received_ms) \
                 VALUES (?1, ?2, ?3, ?4) RETURNING id",
                params![account, bytes, error, at],
                |r| r.get::<_, i64>(0),
            )
        })
        .await
        .map(|id| QuarantineId(id as u64))
    }

    pub(super) async fn kept_dead_letters(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, InboxError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        self.run("list dead letters", move |conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {DEAD_LETTER_COLUMNS} FROM alm_dead_letters WHERE id > ?2 \
                 ORDER BY id LIMIT ?1"
            ))?;
            stmt.query_map([limit, after], dead_letter)?.collect()
        })
        .await
    }

    pub(super) async fn kept_dead_letter(
        &self,
        id: DeadLetterId,
    ) -> Result<Option<DeadLetter>, InboxError> {
        self.run("read a dead letter", move |conn| {
            conn.query_row(
                &format!("SELECT {DEAD_LETTER_COLUMNS} FROM alm_dead_letters WHERE id = ?1"),
                [id.0 as i64],
                dead_letter,
            )
            .optional()
        })
        .await
    }

    pub(super) async fn kept_discard_dead_letter(
        &self,
        id: DeadLetterId,
    ) -> Result<bool, InboxError> {
        self.run("discard a dead letter", move |conn| {
            Ok(conn.execute("DELETE FROM alm_dead_letters WHERE id = ?1", [id.0 as i64])? == 1)
        })
        .await
    }

    pub(super) async fn kept_replay_dead_letter(
        &self,
        id: DeadLetterId,
        now: OffsetDateTime,
    ) -> Result<Option<DeliveryId>, InboxError> {
        let now_ms = unix_millis(now);
        self.run("replay a dead letter", move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let letter: Option<(i64, String)> = tx
                .query_row(
                    "DELETE FROM alm_dead_letters WHERE id = ?1 RETURNING account_id, event",
                    [id.0 as i64],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((account, event)) = letter else {
                return Ok(None);
            };
            let body = replay_body(AccountId(account as u64), &event);
            let new = insert_delivery(&tx, account as u64, &body, now_ms)?;
            tx.commit()?;
            Ok(Some(DeliveryId(new)))
        })
        .await
    }

    pub(super) async fn kept_quarantined(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Quarantined>, InboxError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        self.run("list quarantined bodies", move |conn| {
            let mut stmt = conn.prepare(
                "SELECT id, account_id, body, error, received_ms FROM alm_quarantine \
                 WHERE id > ?2 ORDER BY id LIMIT ?1",
            )?;
            stmt.query_map([limit, after], quarantined)?.collect()
        })
        .await
    }

    pub(super) async fn kept_quarantined_body(
        &self,
        id: QuarantineId,
    ) -> Result<Option<Quarantined>, InboxError> {
        self.run("read a quarantined body", move |conn| {
            conn.query_row(
                "SELECT id, account_id, body, error, received_ms FROM alm_quarantine WHERE id = ?1",
                [id.0 as i64],
                quarantined,
            )
            .optional()
        })
        .await
    }

    pub(super) async fn kept_discard_quarantined(
        &self,
        id: QuarantineId,
    ) -> Result<bool, InboxError> {
        self.run("discard a quarantined body", move |conn| {
            Ok(conn.execute("DELETE FROM alm_quarantine WHERE id = ?1", [id.0 as i64])? == 1)
        })
        .await
    }

    pub(super) async fn kept_replay_quarantined(
        &self,
        id: QuarantineId,
        account_id: AccountId,
        now: OffsetDateTime,
    ) -> Result<Option<DeliveryId>, InboxError> {
        let now_ms = unix_millis(now);
        self.run("replay a quarantined body", move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let body: Option<Vec<u8>> = tx
                .query_row(
                    "DELETE FROM alm_quarantine WHERE id = ?1 RETURNING body",
                    [id.0 as i64],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(body) = body else {
                return Ok(None);
            };
            let new = insert_delivery(&tx, account_id.get(), &body, now_ms)?;
            tx.commit()?;
            Ok(Some(DeliveryId(new)))
        })
        .await
    }

    pub(super) async fn kept_of_account(
        &self,
        account_id: AccountId,
    ) -> Result<KeptCounts, InboxError> {
        let account = account_id.get() as i64;
        self.run("count what is kept of an account", move |conn| {
            conn.query_row(super::sql::KEPT_OF, [account], |r| {
                let count = |i| r.get::<_, i64>(i).map(|n| n as u64);
                Ok(KeptCounts::new(count(0)?, count(1)?, count(2)?))
            })
        })
        .await
    }

    pub(super) async fn kept_most_kept_of_one_account(&self) -> Result<KeptCounts, InboxError> {
        self.run("count what the fullest account keeps", |conn| {
            conn.query_row(super::sql::MOST_KEPT_OF_ONE_ACCOUNT, [], |r| {
                let count = |i| r.get::<_, i64>(i).map(|n| n as u64);
                Ok(KeptCounts::new(count(0)?, count(1)?, count(2)?))
            })
        })
        .await
    }
}
