//! Set-based operations: what [`Store::claim_many`](super::Store::claim_many)
//! takes, and how many events a store sends at once.

use super::DedupKey;
use crate::rules::StateKey;

/// The most events a store sends in one statement or script; a longer
/// slice goes out in chunks of this size (one round trip each).
pub const MANY_CHUNK: usize = 2_000;

/// One event to claim with [`Store::claim_many`](super::Store::claim_many):
/// its dedup key and, if it has one, the entity whose state to read when
/// the claim is won.
///
/// ```
/// use alm_webhooks::store::{ClaimRequest, DedupKey};
/// use alm_webhooks::AccountId;
///
/// let key = DedupKey { account_id: AccountId(1), event_id: "e1".parse().unwrap() };
/// let request = ClaimRequest { key: &key, state: None };
/// assert_eq!(request.key.event_id.as_str(), "e1");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ClaimRequest<'a> {
    /// The event.
    pub key: &'a DedupKey,
    /// Its entity, or `None` for an event without state.
    pub state: Option<&'a StateKey>,
}
