//! One claim and one commit inside an open transaction: what a lone
//! operation and a set-based one both run, so the two cannot differ.

use rusqlite::{OptionalExtension, Transaction, params};

use super::{STATUS_CLAIMED, STATUS_DECIDED};
use crate::store::{Claim, ClaimOwner, CommitOutcome};

/// A claim, ready to run: the event, the owner claiming it, the lease end
/// and `now` (Unix milliseconds), and the state to read when it is won.
pub(super) struct ClaimRow {
    pub(super) account: i64,
    pub(super) event: String,
    pub(super) token: ClaimOwner,
    pub(super) lease_until: i64,
    pub(super) now_ms: i64,
    pub(super) state_key: Option<String>,
}

/// A commit, ready to run (times in Unix milliseconds).
pub(super) struct CommitRow {
    pub(super) account: i64,
    pub(super) event: String,
    pub(super) token: [u8; 32],
    pub(super) until: i64,
    /// Until when the state written by `update` is kept.
    pub(super) state_until: i64,
    /// The state key, the expected version, and the state as JSON.
    pub(super) update: Option<(String, i64, String)>,
}

/// Claims one event; when won, reads its state as (version, JSON).
pub(super) fn claim(
    tx: &Transaction<'_>,
    row: &ClaimRow,
) -> rusqlite::Result<(Claim, Option<(i64, String)>)> {
    type Existing = (i64, Option<i64>, Option<i64>, Option<Vec<u8>>);
    let existing: Option<Existing> = tx
        .prepare_cached(
            "SELECT status, lease_until_ms, remember_until_ms, token FROM alm_events \
             WHERE account_id = ?1 AND event_id = ?2",
        )?
        .query_row(params![row.account, row.event], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    let bytes = row.token.to_bytes();
    match existing {
        Some((STATUS_DECIDED, _, Some(until), _)) if until > row.now_ms => {
            return Ok((Claim::AlreadyDecided, None));
        }
        // A live claim is in flight, unless it is an earlier attempt's of
        // the same holder (same first 16 bytes, another lease): taken over.
        Some((STATUS_CLAIMED, Some(end), _, held)) if end > row.now_ms => {
            let held = held.unwrap_or_default();
            if held == bytes || held.get(..16) != Some(&bytes[..16]) {
                return Ok((Claim::InFlight, None));
            }
        }
        _ => {}
    }
    tx.prepare_cached(
        "INSERT OR REPLACE INTO alm_events \
         (account_id, event_id, status, token, lease_until_ms, remember_until_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, NULL)",
    )?
    .execute(params![
        row.account,
        row.event,
        STATUS_CLAIMED,
        &bytes[..],
        row.lease_until
    ])?;
    let state = match &row.state_key {
        Some(key) => load(tx, key)?,
        None => None,
    };
    Ok((Claim::Claimed(row.token), state))
}

/// A state as (version, JSON), if stored.
pub(super) fn load(
    tx: &rusqlite::Connection,
    key: &str,
) -> rusqlite::Result<Option<(i64, String)>> {
    tx.prepare_cached("SELECT version, state FROM alm_states WHERE state_key = ?1")?
        .query_row(params![key], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
}

/// One commit: token check, version check, then both writes.
pub(super) fn commit(tx: &Transaction<'_>, row: &CommitRow) -> rusqlite::Result<CommitOutcome> {
    let held: Option<i64> = tx
        .prepare_cached(
            "SELECT 1 FROM alm_events WHERE account_id = ?1 AND event_id = ?2 \
             AND status = ?3 AND token = ?4",
        )?
        .query_row(
            params![row.account, row.event, STATUS_CLAIMED, &row.token[..]],
            |r| r.get(0),
        )
        .optional()?;
    if held.is_none() {
        return Ok(CommitOutcome::LeaseLost);
    }
    if let Some((state_key, expected, json)) = &row.update {
        let current: i64 = tx
            .prepare_cached("SELECT version FROM alm_states WHERE state_key = ?1")?
            .query_row(params![state_key], |r| r.get(0))
            .optional()?
            .unwrap_or(0);
        if current != *expected {
            return Ok(CommitOutcome::StateChanged);
        }
        tx.prepare_cached(
            "INSERT OR REPLACE INTO alm_states (state_key, version, state, expires_ms) \
             VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![
            state_key,
            current.saturating_add(1),
            json,
            row.state_until
        ])?;
    }
    tx.prepare_cached(
        "UPDATE alm_events SET status = ?3, token = NULL, lease_until_ms = NULL, \
         remember_until_ms = ?4 WHERE account_id = ?1 AND event_id = ?2",
    )?
    .execute(params![row.account, row.event, STATUS_DECIDED, row.until])?;
    Ok(CommitOutcome::Committed)
}
