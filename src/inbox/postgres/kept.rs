//! Dead letters and quarantined bodies: what the inbox keeps for a person.

use deadpool_postgres::GenericClient;
use time::OffsetDateTime;

use super::rows::{
    DEAD_LETTER_COLUMNS, QUARANTINE_COLUMNS, column_text, column_u64, dead_letter, quarantined,
    refused,
};
use super::{PostgresInbox, pg_error};
use crate::AccountId;
use crate::inbox::{
    DeadLetter, DeadLetterId, DeliveryId, InboxError, InboxStats, KeptCounts, NewDeadLetter,
    NewQuarantined, QuarantineId, Quarantined, replay_body,
};

impl PostgresInbox {
    pub(super) async fn kept_quarantine(
        &self,
        body: NewQuarantined<'_>,
    ) -> Result<QuarantineId, InboxError> {
        let sql = format!(
            "INSERT INTO {} (account_id, body, error, received_at) VALUES ($1, $2, $3, $4) \
             RETURNING id",
            self.t("alm_quarantine")
        );
        let account = body.account_id.map(|a| a.get() as i64);
        let rows = self
            .query(
                "quarantine",
                &sql,
                &[
                    &account,
                    &body.body,
                    &body.error.as_bytes(),
                    &body.received_at,
                ],
            )
            .await?;
        let row = rows
            .first()
            .ok_or_else(|| InboxError::new("postgres: quarantine returned no id"))?;
        Ok(QuarantineId(column_u64(row, 0)?))
    }

    pub(super) async fn kept_dead_letters(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, InboxError> {
        let sql = format!(
            "SELECT {DEAD_LETTER_COLUMNS} FROM {} WHERE id > $2 ORDER BY id LIMIT $1",
            self.t("alm_dead_letters")
        );
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        self.query("list dead letters", &sql, &[&limit, &after])
            .await?
            .iter()
            .map(dead_letter)
            .collect()
    }

    pub(super) async fn kept_dead_letter(
        &self,
        id: DeadLetterId,
    ) -> Result<Option<DeadLetter>, InboxError> {
        let sql = format!(
            "SELECT {DEAD_LETTER_COLUMNS} FROM {} WHERE id = $1",
            self.t("alm_dead_letters")
        );
        self.query("read a dead letter", &sql, &[&(id.0 as i64)])
            .await?
            .first()
            .map(dead_letter)
            .transpose()
    }

    pub(super) async fn kept_discard_dead_letter(
        &self,
        id: DeadLetterId,
    ) -> Result<bool, InboxError> {
        let sql = format!("DELETE FROM {} WHERE id = $1", self.t("alm_dead_letters"));
        Ok(self
            .execute("discard a dead letter", &sql, &[&(id.0 as i64)])
            .await?
            == 1)
    }

    pub(super) async fn kept_replay_dead_letter(
        &self,
        id: DeadLetterId,
        now: OffsetDateTime,
    ) -> Result<Option<DeliveryId>, InboxError> {
        let delete = format!(
            "DELETE FROM {} WHERE id = $1 RETURNING account_id, event",
            self.t("alm_dead_letters")
        );
        self.move_to_inbox("replay a dead letter", &delete, id.0 as i64, now, |row| {
            let account = column_u64(row, 0)?;
            let event = column_text(row, 1)?.unwrap_or_default();
            Ok((account, replay_body(AccountId(account), &event)))
        })
        .await
    }

    pub(super) async fn kept_quarantined(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Quarantined>, InboxError> {
        let sql = format!(
            "SELECT {QUARANTINE_COLUMNS} FROM {} WHERE id > $2 ORDER BY id LIMIT $1",
            self.t("alm_quarantine")
        );
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        self.query("list quarantined bodies", &sql, &[&limit, &after])
            .await?
            .iter()
            .map(quarantined)
            .collect()
    }

    pub(super) async fn kept_quarantined_body(
        &self,
        id: QuarantineId,
    ) -> Result<Option<Quarantined>, InboxError> {
        let sql = format!(
            "SELECT {QUARANTINE_COLUMNS} FROM {} WHERE id = $1",
            self.t("alm_quarantine")
        );
        self.query("read a quarantined body", &sql, &[&(id.0 as i64)])
            .await?
            .first()
            .map(quarantined)
            .transpose()
    }

    pub(super) async fn kept_discard_quarantined(
        &self,
        id: QuarantineId,
    ) -> Result<bool, InboxError> {
        let sql = format!("DELETE FROM {} WHERE id = $1", self.t("alm_quarantine"));
        Ok(self
            .execute("discard a quarantined body", &sql, &[&(id.0 as i64)])
            .await?
            == 1)
    }

    pub(super) async fn kept_replay_quarantined(
        &self,
        id: QuarantineId,
        account_id: AccountId,
        now: OffsetDateTime,
    ) -> Result<Option<DeliveryId>, InboxError> {
        let delete = format!(
            "DELETE FROM {} WHERE id = $1 RETURNING body",
            self.t("alm_quarantine")
        );
        self.move_to_inbox(
            "replay a quarantined body",
            &delete,
            id.0 as i64,
            now,
            |row| {
                let body = row
                    .try_get(0)
                    .map_err(|e| pg_error("unexpected quarantine row", e))?;
                Ok((account_id.get(), body))
            },
        )
        .await
    }

    /// Deletes a delivery (`delete`, with its id and token) and keeps its
    /// dead letters, in one transaction.
    pub(super) async fn complete_keeping(
        &self,
        delete: &str,
        delivery: i64,
        token: Vec<u8>,
        dead_letters: &[NewDeadLetter],
    ) -> Result<bool, InboxError> {
        let mut client = self.client().await?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| pg_error("cannot begin complete", e))?;
        let n = tx
            .execute(delete, &[&delivery, &token])
            .await
            .map_err(|e| pg_error("complete failed", e))?;
        if n != 1 {
            return Ok(false);
        }
        self.keep_letters(&tx, dead_letters).await?;
        tx.commit()
            .await
            .map_err(|e| pg_error("complete failed", e))?;
        Ok(true)
    }

    /// Keeps `dead_letters` in the transaction `tx`.
    pub(super) async fn keep_letters(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        dead_letters: &[NewDeadLetter],
    ) -> Result<(), InboxError> {
        let insert = format!(
            "INSERT INTO {} (account_id, event_id, event_name, event, error, attempts, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            self.t("alm_dead_letters")
        );
        for l in dead_letters {
            let attempts = i32::try_from(l.attempts).unwrap_or(i32::MAX);
            tx.execute(
                &insert,
                &[
                    &(l.account_id.get() as i64),
                    &l.event_id.as_deref().map(str::as_bytes),
                    &l.event_name.as_deref().map(str::as_bytes),
                    &l.event.as_bytes(),
                    &l.error.as_bytes(),
                    &attempts,
                    &l.at,
                ],
            )
            .await
            .map_err(|e| {
                let permanent = refused(&e);
                let error = pg_error("keeping a dead letter failed", e);
                if permanent { error.permanent() } else { error }
            })?;
        }
        Ok(())
    }

    pub(super) async fn kept_stats(&self, now: OffsetDateTime) -> Result<InboxStats, InboxError> {
        let sql = format!(
            "SELECT count(*),
                    count(*) FILTER (WHERE lease_until > clock_timestamp()),
                    count(*) FILTER (WHERE (lease_until IS NULL OR lease_until <= clock_timestamp())
                                       AND not_before > $1),
                    min(received_at),
                    (SELECT count(*) FROM {}),
                    (SELECT count(*) FROM {}),
                    (SELECT coalesce(sum(octet_length(body)), 0)::BIGINT FROM {})
             FROM {}",
            self.t("alm_dead_letters"),
            self.t("alm_quarantine"),
            self.t("alm_quarantine"),
            self.t("alm_inbox")
        );
        let rows = self.query("stats", &sql, &[&now]).await?;
        let row = rows
            .first()
            .ok_or_else(|| InboxError::new("postgres: stats returned no row"))?;
        let get = |e| pg_error("unexpected stats row", e);
        let count = |i| row.try_get::<_, i64>(i).map(|n| n as u64).map_err(get);
        let (total, in_flight, retrying) = (count(0)?, count(1)?, count(2)?);
        let oldest: Option<OffsetDateTime> = row.try_get(3).map_err(get)?;
        Ok(InboxStats::new(
            total - in_flight - retrying,
            in_flight,
            retrying,
            count(4)?,
            count(5)?,
            oldest.map(|t| crate::inbox::types::age(now, t)),
        )
        .with_quarantined_bytes(count(6)?))
    }

    /// What is kept of one account, in one round trip through the
    /// `account_id` indexes.
    pub(super) async fn kept_of_account(
        &self,
        account_id: AccountId,
    ) -> Result<KeptCounts, InboxError> {
        let sql = format!(
            "SELECT (SELECT count(*) FROM {dl} WHERE account_id = $1),
                    (SELECT count(*) FROM {q} WHERE account_id = $1),
                    (SELECT coalesce(sum(octet_length(body)), 0)::BIGINT FROM {q}
                     WHERE account_id = $1)",
            dl = self.t("alm_dead_letters"),
            q = self.t("alm_quarantine"),
        );
        let account = account_id.get() as i64;
        let what = "count what is kept of an account";
        kept_counts(what, &self.query(what, &sql, &[&account]).await?)
    }

    /// For each count, the most that one account keeps, in one round trip
    /// (a grouped count over the `account_id` indexes).
    pub(super) async fn kept_most_kept_of_one_account(&self) -> Result<KeptCounts, InboxError> {
        let sql = format!(
            "SELECT (SELECT coalesce(max(n), 0) FROM
                        (SELECT count(*) AS n FROM {dl} GROUP BY account_id) AS c),
                    (SELECT coalesce(max(n), 0) FROM
                        (SELECT count(*) AS n FROM {q} WHERE account_id IS NOT NULL
                         GROUP BY account_id) AS c),
                    (SELECT coalesce(max(b), 0)::BIGINT FROM
                        (SELECT sum(octet_length(body)) AS b FROM {q}
                         WHERE account_id IS NOT NULL GROUP BY account_id) AS c)",
            dl = self.t("alm_dead_letters"),
            q = self.t("alm_quarantine"),
        );
        let what = "count what the fullest account keeps";
        kept_counts(what, &self.query(what, &sql, &[]).await?)
    }
}

/// The three counts of a [`KeptCounts`] query's one row.
fn kept_counts(what: &str, rows: &[tokio_postgres::Row]) -> Result<KeptCounts, InboxError> {
    let row = rows
        .first()
        .ok_or_else(|| InboxError::new(format!("postgres: {what} returned no row")))?;
    let count = |i| {
        row.try_get::<_, i64>(i)
            .map(|n| n as u64)
            .map_err(|e| pg_error(&format!("{what}: unexpected row"), e))
    };
    Ok(KeptCounts::new(count(0)?, count(1)?, count(2)?))
}
