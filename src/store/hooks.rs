//! What a commit hook receives: the events decided in a commit.
//!
//! A store may run effects in the same atomic step as the decisions it
//! commits ([`Store::commit_decided`](super::Store::commit_decided)): on
//! SQLite and PostgreSQL, in the same database transaction (user hooks:
//! [`SqliteHook`](super::SqliteHook), [`PostgresHook`](super::PostgresHook));
//! in memory, under the lock the commit holds. Either the decisions and
//! the effects are all written, or none is: an event whose commit fails is
//! decided again (its handler runs again) and the effects run with the
//! commit that finally succeeds, once.
//!
//! External effects (a call to a CRM) cannot join a transaction: they
//! stay in the handler, which runs before the commit, at least once.

use crate::Decision;
use crate::Event;

/// An event decided in a commit, with its decision
/// ([`Decision::Processed`] or [`Decision::Ignored`]).
///
/// ```
/// use alm_webhooks::{Decision, Envelope};
/// use alm_webhooks::store::Decided;
/// let body = br#"{"accountId":1,"events":[{"eventId":"e1","eventName":"NEW_THING"}]}"#;
/// let envelope = Envelope::from_slice(body).unwrap();
/// let event = envelope.parsed().next().unwrap();
/// let decided = Decided { event, decision: Decision::Processed };
/// assert!(decided.is_processed());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Decided<'a> {
    /// The event.
    pub event: &'a Event,
    /// What the engine decided.
    pub decision: Decision,
}

impl Decided<'_> {
    /// Whether the event was processed (its handler ran): a hook that
    /// keeps one row per processed event filters on this.
    pub fn is_processed(&self) -> bool {
        self.decision == Decision::Processed
    }
}
