//! A delivery's events and decisions on their way to the store: events of
//! a chunk to decide, pending decisions (decided, not committed yet),
//! settled ones, and the delivery's bookkeeping.

use std::collections::{HashMap, HashSet};
use std::time::SystemTime;

use super::failure::EventFailure;
use super::tally::Tally;
use crate::Decision;
use crate::rules::{EntityState, StateKey};
use crate::store::{
    Claim, ClaimOwner, ClaimRequest, Commit, Decided, DedupKey, StateUpdate, Versioned,
};
use crate::{AccountId, Event, EventError, EventFamily, EventId, EventName};

/// A decision that needs no commit (or could not be made).
#[derive(Debug)]
pub(super) struct Final {
    pub(super) decision: Decision,
    /// Why the event failed.
    pub(super) error: Option<EventFailure>,
    /// The event's id as sent, when known.
    pub(super) event_id: Option<EventId>,
    /// Why the event was rejected.
    pub(super) event_error: Option<Box<EventError>>,
}

impl Final {
    pub(super) fn new(decision: Decision, event_id: Option<EventId>) -> Self {
        Self {
            decision,
            error: None,
            event_id,
            event_error: None,
        }
    }
}

/// What one event's first pass came to.
#[derive(Debug)]
pub(super) enum Step {
    /// Decided: nothing more to commit.
    Final(Final),
    /// Decided, to be committed with the batch.
    Pending(Decision),
}

/// A decision made and not committed yet.
pub(super) struct Pending {
    pub(super) index: usize,
    pub(super) key: DedupKey,
    /// The id as sent, when the key holds the name too (unknown events).
    pub(super) sent_id: Option<EventId>,
    pub(super) token: ClaimOwner,
    pub(super) state_key: Option<StateKey>,
    /// The state the decision was made on.
    pub(super) loaded: Versioned,
    /// The state it leads to.
    pub(super) next: EntityState,
    /// Processed or ignored.
    pub(super) decision: Decision,
    pub(super) family: EventFamily,
    /// The time the rules use, in milliseconds.
    pub(super) at: i64,
    /// The event, while the handler has not had it (ignored events, which
    /// are decided again if their claim has to be taken again). Boxed, to
    /// keep `Pending` small as it moves through the batch.
    pub(super) event: Option<Box<Event>>,
    /// A copy of the event for the store's commit hooks, when it has any.
    pub(super) copy: Option<Box<Event>>,
}

impl Pending {
    /// The commit of this decision. A processed event swaps its entity's
    /// state (checking the version it was decided on); an ignored one only
    /// marks the event decided, so it changes neither the state, its version
    /// nor its expiry. (An ignored decision read the state without writing
    /// it: if another delivery changes the state meanwhile, the outcome is
    /// the one of the ignored event decided just before that change.)
    pub(super) fn commit(&self, remember_until: SystemTime, state_until: SystemTime) -> Commit<'_> {
        let update = match self.decision {
            Decision::Processed => self.state_key.as_ref().map(|k| StateUpdate {
                key: k,
                expected_version: self.loaded.version,
                state: &self.next,
            }),
            _ => None,
        };
        Commit {
            key: &self.key,
            token: self.token,
            update,
            remember_until,
            state_until,
        }
    }

    /// The event as the store's commit hooks see it.
    pub(super) fn decided(&self) -> Option<Decided<'_>> {
        let event = self.copy.as_deref()?;
        Some(Decided {
            event,
            decision: self.decision,
        })
    }

    /// The event's id as sent.
    pub(super) fn into_event_id(self) -> EventId {
        self.sent_id.unwrap_or(self.key.event_id)
    }
}

/// A pending decision made final by its commit.
pub(super) struct Settled {
    pub(super) index: usize,
    pub(super) event_id: EventId,
    pub(super) decision: Decision,
    pub(super) error: Option<EventFailure>,
}

/// No commit is tried again once this long has passed since the error,
/// when the delivery is answered while its sender waits
/// ([`Engine::process`](super::Engine::process)).
pub(super) const RECOMMIT_WITHIN: std::time::Duration = std::time::Duration::from_secs(1);

/// A delivery's decisions awaiting their commit, and what the delivery
/// has learnt so far.
pub(super) struct Batch {
    /// Who the delivery's claims are held by.
    pub(super) owner: ClaimOwner,
    /// How long, after a transient store error, the decisions whose
    /// handlers ran are committed again before the error is returned.
    pub(super) recommit_within: std::time::Duration,
    pub(super) pending: Vec<Pending>,
    /// Decisions made final by the last flush.
    pub(super) settled: Vec<Settled>,
    /// How many outcomes, from the first, are counted and traced.
    pub(super) reported: usize,
    /// Entities with an event in this delivery that failed, is busy or was
    /// deferred: their later events are deferred too.
    pub(super) held_back: HashSet<StateKey>,
    /// When the delivery's wait for events in flight elsewhere ends (set by
    /// the first wait).
    pub(super) wait_until: Option<tokio::time::Instant>,
    /// Each entity's state as this chunk's decisions left it (and the
    /// version its store copy has once they are committed): a later event
    /// of the entity in the chunk is decided on it, not on the state its
    /// claim read before the chunk's decisions.
    pub(super) states: HashMap<StateKey, Versioned, foldhash::fast::RandomState>,
    /// When the held claims were taken or last renewed.
    pub(super) renewed: tokio::time::Instant,
    /// The allocation a chunk's [`ClaimRequest`]s are built in, kept
    /// between chunks and deliveries (see [`recycle`]).
    pub(super) requests: Vec<ClaimRequest<'static>>,
    /// The allocation a flush's [`Commit`]s are built in.
    pub(super) commits: Vec<Commit<'static>>,
    /// The delivery's metrics, recorded when it ends.
    pub(super) tally: Tally,
}

/// `spare`'s allocation, emptied, for values of another lifetime: the
/// standard library's `collect` from a vector's own `into_iter` reuses the
/// allocation when the element types have the same size and alignment, as
/// two lifetimes of one type do (no element is ever mapped: it is empty).
/// This is how a buffer of borrowed values outlives the borrows; the
/// allocation test (`tests/hot_path_allocations.rs`) checks that it holds.
pub(super) fn recycle<'b, T: Reborrow<'b>>(mut spare: Vec<T>) -> Vec<T::As> {
    spare.clear();
    spare.into_iter().map(|_| unreachable!("empty")).collect()
}

/// A type with a lifetime, and the same type with the lifetime `'b`.
pub(super) trait Reborrow<'b> {
    type As;
}

impl<'b> Reborrow<'b> for ClaimRequest<'_> {
    type As = ClaimRequest<'b>;
}

impl<'b> Reborrow<'b> for Commit<'_> {
    type As = Commit<'b>;
}

impl Batch {
    /// A delivery's batch, its claims held by `owner`.
    pub(super) fn new(owner: ClaimOwner) -> Self {
        Self {
            owner,
            recommit_within: RECOMMIT_WITHIN,
            pending: Vec::new(),
            settled: Vec::new(),
            reported: 0,
            held_back: HashSet::new(),
            wait_until: None,
            states: HashMap::default(),
            renewed: tokio::time::Instant::now(),
            requests: Vec::new(),
            commits: Vec::new(),
            tally: Tally::default(),
        }
    }

    /// Makes this batch (a finished delivery's, emptied by
    /// [`Batch::clear`]) a new delivery's, its claims held by `owner`.
    pub(super) fn restart(&mut self, owner: ClaimOwner) {
        self.owner = owner;
        self.recommit_within = RECOMMIT_WITHIN;
        self.reported = 0;
        self.wait_until = None;
        self.renewed = tokio::time::Instant::now();
    }

    /// Empties every buffer, keeping its capacity.
    pub(super) fn clear(&mut self) {
        self.pending.clear();
        self.settled.clear();
        self.held_back.clear();
        self.states.clear();
    }

    /// How many events the buffers have room for: the largest vector's
    /// capacity, or half a table's (a table keeps an eighth of its slots
    /// free and doubles, so it has room for up to twice its entries).
    pub(super) fn capacity(&self) -> usize {
        [
            self.pending.capacity(),
            self.settled.capacity(),
            self.held_back.capacity() / 2,
            self.states.capacity() / 2,
            self.requests.capacity(),
            self.commits.capacity(),
            self.tally.capacity(),
        ]
        .into_iter()
        .max()
        .unwrap_or(0)
    }

    /// Remembers the state `pending`'s decision leads to, for the later
    /// events of its entity in the chunk: the next state one version up
    /// when the decision writes it, else the state as read.
    pub(super) fn advance(&mut self, pending: &Pending) {
        let Some(key) = &pending.state_key else {
            return;
        };
        let state = match pending.decision {
            Decision::Processed => Versioned {
                state: pending.next.clone(),
                version: pending.loaded.version + 1,
            },
            Decision::Ignored(_) => pending.loaded.clone(),
            _ => {
                self.states.remove(key);
                return;
            }
        };
        match self.states.get_mut(key) {
            Some(known) => *known = state,
            None => {
                self.states.insert(key.clone(), state);
            }
        }
    }

    /// Notes an event's final decision: if it is not final (failed, busy,
    /// deferred), its entity's later events in this delivery are deferred.
    pub(super) fn note(&mut self, key: Option<&StateKey>, decision: Decision) {
        if let Some(key) = key.filter(|_| !decision.is_final()) {
            if !self.held_back.contains(key) {
                self.held_back.insert(key.clone());
            }
        }
    }
}

/// What the rules need of one event: its entity, family and time.
pub(crate) struct Facts {
    pub(crate) state_key: Option<StateKey>,
    pub(crate) family: EventFamily,
    /// Milliseconds since the epoch, at most now + the skew.
    pub(crate) at: i64,
    /// Whether the event's own time was too far ahead (`at` is now).
    pub(crate) future: bool,
    /// Now minus the event's own time, in milliseconds (`None` for an
    /// event without rules): what `alm_webhooks_event_lag_seconds` records.
    pub(crate) lag_ms: Option<i64>,
}

/// One event of a chunk, ready to be decided.
pub(super) struct Prepared {
    pub(super) index: usize,
    pub(super) account_id: AccountId,
    pub(super) event: Event,
    pub(super) facts: Facts,
    pub(super) key: DedupKey,
    /// The id as sent, when the key holds the name too (unknown events).
    pub(super) sent_id: Option<EventId>,
    /// What the chunk's `claim_many` answered for it; `None` when it was
    /// not claimed with the chunk (its entity was already held back, or
    /// the engine claims one event at a time).
    pub(super) answer: Option<(Claim, Versioned)>,
}

/// One item of a chunk: an event to decide, or one decided already.
/// Not boxed: the chunk's buffer is kept between deliveries, so an event
/// costs no allocation of its own.
#[allow(clippy::large_enum_variant)]
pub(super) enum Item {
    Event(Prepared),
    Final(usize, Option<EventName>, Final),
}

impl Item {
    /// The claim this item holds, not yet decided.
    pub(super) fn held(&self) -> Option<(&DedupKey, ClaimOwner)> {
        match self {
            Self::Event(p) => match p.answer {
                Some((Claim::Claimed(token), _)) => Some((&p.key, token)),
                _ => None,
            },
            Self::Final(..) => None,
        }
    }
}
