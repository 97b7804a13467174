//! The learner projection's reads on Redis: records by key, by user, by
//! instance, by account, the change feed and the CSV export.

use std::collections::HashMap;
use std::io::Write;

use super::{RedisStore, redis_error};
use crate::projection::{
    LearnerChanges, LearnerRecord, TranscriptCsv, from_millis, record_from_slots,
};
use crate::store::StoreError;
use crate::{AccountId, LoInstanceId, UserId};

/// How many records one read of the export asks for.
const EXPORT_PAGE: isize = 2_000;

type Hash = HashMap<String, String>;

impl RedisStore {
    /// The records (with their sequence numbers) stored at `members`, in
    /// that order, in one round trip (`None` where there is none).
    async fn records_at(
        &self,
        members: &[String],
    ) -> Result<Vec<Option<(u64, LearnerRecord)>>, StoreError> {
        if members.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = ::redis::pipe();
        for member in members {
            pipe.hgetall(self.record_key(member));
        }
        let mut conn = self.conn.clone();
        let hashes: Vec<Hash> = pipe
            .query_async(&mut conn)
            .await
            .map_err(|e| redis_error("learner records read failed", e))?;
        hashes
            .into_iter()
            .map(|h| (!h.is_empty()).then(|| decode(h)).transpose())
            .collect()
    }

    /// The record of a learner in an instance (either spelling of a
    /// learning path), if any event of it was decided.
    ///
    /// # Errors
    ///
    /// When Redis fails, or a stored record does not decode.
    pub async fn learner_record(
        &self,
        account: AccountId,
        user: UserId,
        lo_instance: &LoInstanceId,
    ) -> Result<Option<LearnerRecord>, StoreError> {
        let member = Self::record_member(account, user, &lo_instance.canonical());
        Ok(self
            .records_at(&[member])
            .await?
            .pop()
            .flatten()
            .map(|(_, r)| r))
    }

    /// Every record of a learner, by instance id.
    ///
    /// # Errors
    ///
    /// When Redis fails, or a stored record does not decode.
    pub async fn learner_records_of_user(
        &self,
        account: AccountId,
        user: UserId,
    ) -> Result<Vec<LearnerRecord>, StoreError> {
        let mut instances = self.members(self.user_key(account, user)).await?;
        instances.sort();
        let members: Vec<_> = instances
            .iter()
            .filter_map(|i| i.parse::<LoInstanceId>().ok())
            .map(|i| Self::record_member(account, user, &i))
            .collect();
        Ok(self
            .records_at(&members)
            .await?
            .into_iter()
            .flatten()
            .map(|(_, r)| r)
            .collect())
    }

    /// Every record of an instance, by user id.
    ///
    /// # Errors
    ///
    /// When Redis fails, or a stored record does not decode.
    pub async fn learner_records_of_instance(
        &self,
        account: AccountId,
        lo_instance: &LoInstanceId,
    ) -> Result<Vec<LearnerRecord>, StoreError> {
        let instance = lo_instance.canonical();
        let users = self.members(self.instance_key(account, &instance)).await?;
        let mut users: Vec<u64> = users.iter().filter_map(|u| u.parse().ok()).collect();
        users.sort_unstable();
        let members: Vec<_> = users
            .into_iter()
            .map(|u| Self::record_member(account, UserId(u), &instance))
            .collect();
        Ok(self
            .records_at(&members)
            .await?
            .into_iter()
            .flatten()
            .map(|(_, r)| r)
            .collect())
    }

    /// The accounts that have learner records, in order.
    ///
    /// # Errors
    ///
    /// When Redis fails.
    pub async fn learner_accounts(&self) -> Result<Vec<AccountId>, StoreError> {
        let ids = self.members(format!("{}lr-accounts", self.prefix)).await?;
        let mut ids: Vec<u64> = ids.iter().filter_map(|a| a.parse().ok()).collect();
        ids.sort_unstable();
        Ok(ids.into_iter().map(AccountId).collect())
    }

    /// Every record of an account, by user id then instance id.
    ///
    /// # Errors
    ///
    /// When Redis fails, or a stored record does not decode.
    pub async fn learner_records_of_account(
        &self,
        account: AccountId,
    ) -> Result<Vec<LearnerRecord>, StoreError> {
        let members = self.members(self.account_key(account)).await?;
        let mut records = Vec::with_capacity(members.len());
        for page in members.chunks(EXPORT_PAGE as usize) {
            records.extend(
                self.records_at(page)
                    .await?
                    .into_iter()
                    .flatten()
                    .map(|(_, r)| r),
            );
        }
        records.sort_by(|a, b| {
            (a.user_id, a.lo_instance_id.as_str()).cmp(&(b.user_id, b.lo_instance_id.as_str()))
        });
        Ok(records)
    }

    async fn members(&self, key: String) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn.clone();
        ::redis::cmd("SMEMBERS")
            .arg(key)
            .query_async(&mut conn)
            .await
            .map_err(|e| redis_error("learner records read failed", e))
    }

    /// The feed's members after `cursor`, with their sequence numbers.
    async fn feed_after(
        &self,
        cursor: u64,
        limit: isize,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let mut conn = self.conn.clone();
        ::redis::cmd("ZRANGEBYSCORE")
            .arg(self.feed_key())
            .arg(format!("({cursor}"))
            .arg("+inf")
            .arg("WITHSCORES")
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .query_async(&mut conn)
            .await
            .map_err(|e| redis_error("learner changes read failed", e))
    }

    /// Up to `limit` records changed after `cursor` (0 for all), oldest
    /// change first: a change feed for incremental sync. A record changed
    /// twice appears once, at its latest change.
    ///
    /// # Errors
    ///
    /// When Redis fails, or a stored record does not decode.
    pub async fn learner_changes_since(
        &self,
        cursor: u64,
        limit: usize,
    ) -> Result<LearnerChanges, StoreError> {
        let limit = isize::try_from(limit).unwrap_or(isize::MAX);
        let feed = self.feed_after(cursor, limit).await?;
        let members: Vec<_> = feed.iter().map(|(m, _)| m.clone()).collect();
        let rows = self.records_at(&members).await?;
        // A record changed since the feed was read is given as it is now,
        // at the feed's place (it comes again at its new one).
        let rows = feed
            .into_iter()
            .zip(rows)
            .filter_map(|((_, seq), row)| Some((seq, row?.1)))
            .collect();
        Ok(LearnerChanges::from_rows(rows, cursor))
    }

    /// Writes every learner record as CSV ([`TranscriptCsv`]) into `out`,
    /// in the change feed's order, a page of records at a time (nothing
    /// else is kept in memory), and gives `out` back with the number of
    /// rows. Redis has no snapshot to read from: a record that changes
    /// while the export runs is written where the feed then places it, so
    /// it may appear twice (the later line is the newer), never not at all.
    ///
    /// # Errors
    ///
    /// When Redis or `out` fails.
    pub async fn export_learner_csv<W: Write + Send + 'static>(
        &self,
        out: W,
    ) -> Result<(W, u64), StoreError> {
        let failed = |e: std::io::Error| StoreError::with_source("redis: the export failed", e);
        let mut csv = TranscriptCsv::new(out).map_err(failed)?;
        let mut cursor = 0;
        loop {
            let feed = self.feed_after(cursor, EXPORT_PAGE).await?;
            let Some((_, last)) = feed.last() else {
                break;
            };
            cursor = *last;
            let members: Vec<_> = feed.iter().map(|(m, _)| m.clone()).collect();
            let rows = self.records_at(&members).await?;
            for ((_, seq), row) in feed.iter().zip(&rows) {
                // Moved on since the page was read: written at its new place.
                if let Some((_, record)) = row.as_ref().filter(|(s, _)| s == seq) {
                    csv.write(record).map_err(failed)?;
                }
            }
        }
        let rows = csv.rows();
        Ok((csv.finish().map_err(failed)?, rows))
    }
}

/// A record's hash as its record and sequence number.
fn decode(hash: Hash) -> Result<(u64, LearnerRecord), StoreError> {
    let bad = |what: &str| StoreError::new(format!("redis: a learner record {what}"));
    let field = |name: &str| hash.get(name).ok_or_else(|| bad(&format!("has no {name}")));
    let account = AccountId(
        field("account")?
            .parse()
            .map_err(|_| bad("has a bad account"))?,
    );
    let user = UserId(field("user")?.parse().map_err(|_| bad("has a bad user"))?);
    let instance: LoInstanceId = field("instance")?
        .parse()
        .map_err(|_| bad("has a bad instance"))?;
    let seq: u64 = field("seq")?.parse().map_err(|_| bad("has a bad seq"))?;
    let updated: i64 = field("u")?.parse().map_err(|_| bad("has a bad time"))?;
    let slots = hash
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("w:")?.to_owned(), v.clone())));
    let record = record_from_slots(account, user, instance, slots, from_millis(updated))
        .map_err(|e| super::bad_data("a learner record does not decode", e))?;
    Ok((seq, record))
}
