//! The dedup and ordering engine: decides, for each event of an accepted
//! delivery, whether your handler should process it, and records the
//! outcome.
//!
//! For each event, in delivery order:
//!
//! 1. An event that did not parse is [`Decision::Malformed`], with its
//!    [`EventError`](crate::EventError) in the outcome (it has no
//!    trustworthy key, so nothing is recorded).
//! 2. An event whose entity already has an event in this delivery that
//!    failed, is busy or was deferred is [`Decision::Deferred`]: a later
//!    event of a record is never processed before an earlier one. Nothing
//!    is recorded; the redelivery decides both, in order.
//! 3. The event is claimed in the store under its [dedup
//!    key](crate::store::DedupKey::for_event) (`accountId`, `eventId`, and
//!    the name for unknown events). If it was already decided (processed or
//!    ignored) within the dedup window, it is a [`Decision::Duplicate`]. If
//!    another attempt holds it, the engine waits for that attempt to
//!    finish, then reports a duplicate, or [`Decision::InFlight`] if it is still
//!    running. The wait is one budget per delivery
//!    ([`EngineBuilder::in_flight_wait`]): once it is spent, every
//!    further event held elsewhere is busy at once.
//! 4. The entity's state is read with the claim and [`rules::decide_facts`](crate::rules::decide_facts)
//!    says processed or ignored (a time more than
//!    [`EngineBuilder::future_skew`] ahead counts as now). An ignored event
//!    is recorded as decided, so a redelivery of it is a duplicate; its
//!    entity's state is left as it was.
//! 5. For a processed event the handler runs. Only if it succeeds is the
//!    event recorded and the state advanced, in one atomic commit. If it
//!    fails or panics (in its future or in the closure that makes it), the
//!    claim is released and nothing is recorded ([`Decision::Failed`]); the
//!    delivery is answered with a `5xx` and ALM's redelivery processes the
//!    event. If the process dies mid-handler, the claim's lease expires and
//!    the redelivery processes it.
//!
//! Decided events are remembered for the dedup window (8 days); entity
//! states for [`EngineBuilder::state_retention`] (400 days) after their last
//! change.
//!
//! **Store round trips.** A delivery is decided as one chunk
//! ([`EngineBuilder::commit_batch`] sets smaller chunks): the chunk's
//! events are claimed, with their states, in one [`Store::claim_many`],
//! decided in order in memory (handlers included), and committed in one
//! [`Store::commit_many`]. A delivery then costs two store calls whatever
//! its size, duplicates included (a shared store sends a call's slices of
//! [`MANY_CHUNK`](crate::store::MANY_CHUNK) events in one round trip or a
//! few: see `BENCHMARKS.md`). Decisions are the ones made claiming and
//! committing one event at a time (`commit_batch(1)`):
//!
//! - a later event of an entity decided earlier in the chunk is decided on
//!   the state that decision leads to (its commit expects the version one
//!   up, as [`Store::commit_many`] documents). If another delivery
//!   commits to the same record between this chunk's claims and its
//!   commit, the chain's first commit is refused, and so is the rest of
//!   the chain (the store writes a later link only after one the call
//!   wrote): each is decided again on the state found, so nothing is
//!   written over the other delivery's change;
//! - an event held elsewhere (or this delivery's own repeat of an
//!   `eventId`) is claimed again alone, after the chunk's decisions so far
//!   are committed, within the delivery's wait budget: only those cost more
//!   round trips;
//! - a claim taken for an event then deferred (step 2) is released at once.
//!
//! **Crash semantics.** The handlers of a chunk run before the chunk is
//! committed: if the process dies in between, their claims expire with the
//! lease and ALM's redelivery processes those events again (at-least-once,
//! as after a crash between one handler and its commit, for up to a chunk
//! of events). A delivery processed again with [`Engine::process_as`] and
//! the same holder (from an inbox) does not wait for that lease: it takes
//! its own leftover claims over at once. A transient store error commits the decisions whose
//! handlers ran before it leaves [`Engine::process`], and releases the
//! chunk's other claims, so that the redelivery runs again only the event
//! that met the error. A permanent one ([`StoreError::is_transient`] is
//! `false`) about one event is that event's [`Decision::Failed`], with the
//! store's message: a set-based call that meets one is made again event
//! by event, so that only the event it is about fails.
//!
//! **Lease, chunk and slowest handler.** A chunk's claims are taken
//! together, so they are held while all of the chunk's handlers run. Every
//! third of the [lease](EngineBuilder::claim_lease) the claims still held are
//! renewed ([`Store::renew_many`]), before a handler and while a slow one
//! runs, so no claim expires under a handler, however long one handler or
//! a whole chunk takes. What the lease bounds is a crash: the events of a
//! dead process are redelivered once its lease has run out. Choose a lease
//! a few times a store round trip at the least (renewals must land within a
//! third of it), and short enough that a crashed replica's events are not
//! held for long; the default, 60 s, suits handlers of any length. A claim
//! lost anyway (a store restart) shows at its commit, and is claimed again
//! as below.
//!
//! Every commit of a processed event checks the entity state's version. If
//! the state moved while the event was being decided (another delivery for
//! the same record committed in between, which ALM's per-account ordering
//! makes rare), the event is decided again on the new state; if its handler
//! already ran, the handler does not run again and its effect is folded
//! into the new state with [`rules::apply`](crate::rules::apply). If a handler outlived its
//! lease and its claim is gone, the event is claimed again (as a stranger:
//! never taken back from a later attempt of the same delivery): already decided
//! elsewhere, it is a duplicate; claimed, the handler's outcome is
//! committed; in flight elsewhere, it is busy.

mod batch;
mod builder;
mod catch;
mod clock;
mod commit;
mod counters;
mod delivery;
mod failure;
mod flow;
pub(crate) mod handle;
mod holding;
mod learners;
mod pool;
mod renew;
pub(crate) mod report;
mod spans;
mod tally;

use std::time::Duration;

pub(crate) use batch::Facts;
pub use builder::EngineBuilder;
pub(crate) use catch::{CatchUnwind, RATE_WAITED};
pub use clock::{Clock, ManualClock, SystemClock};
pub use counters::CounterSnapshot;
pub use failure::EventFailure;
pub(crate) use failure::chain as error_chain;
pub(crate) use handle::{Engine, Inner};
pub(crate) use report::DeliveryReport;
pub use report::EventOutcome;

#[cfg(doc)]
use crate::Decision;
use crate::rules::StateKey;
use crate::store::{ClaimOwner, MemoryStore, Store, StoreError};
use crate::{AccountId, BoxError, Envelope, Event, EventFamily, EventName};
use counters::Counters;

/// Remembered this long by default: 8 days (ALM retries for 7).
pub const DEFAULT_DEDUP_WINDOW: Duration = Duration::from_secs(8 * 24 * 3600);
/// Entity states are kept this long after their last change by default:
/// 400 days (a year, and more).
pub const DEFAULT_STATE_RETENTION: Duration = Duration::from_secs(400 * 24 * 3600);
/// A claim's default lease: 60 s.
pub const DEFAULT_CLAIM_LEASE: Duration = Duration::from_secs(60);
/// The default wait, per delivery, for events in flight elsewhere: 2 s, well
/// inside ALM's 5 s read timeout.
pub const DEFAULT_IN_FLIGHT_WAIT: Duration = Duration::from_secs(2);
/// How far ahead of the clock a `timestamp` may be by default: 1 day.
pub const DEFAULT_FUTURE_SKEW: Duration = Duration::from_secs(24 * 3600);
