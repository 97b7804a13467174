//! [`EngineBuilder`]: the engine's configuration.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::clock::Clock;
use super::counters::Counters;
use super::{Engine, Inner};
use crate::store::Store;
use crate::{EventFamily, EventName};

/// Configures an [`Engine`]; start with [`Engine::builder`].
///
/// ```
/// use std::time::Duration;
/// use alm_webhooks::Engine;
/// use alm_webhooks::store::MemoryStore;
///
/// let engine = Engine::builder(MemoryStore::new())
///     .dedup_window(Duration::from_secs(8 * 24 * 3600)) // ALM retries for 7 days
///     .claim_lease(Duration::from_secs(60))
///     .build();
/// assert_eq!(engine.counters().processed, 0);
/// ```
#[derive(Debug)]
pub struct EngineBuilder<S> {
    pub(super) store: S,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) dedup_window: Duration,
    pub(super) state_retention: Duration,
    pub(super) lease: Duration,
    pub(super) in_flight_wait: Duration,
    pub(super) commit_batch: usize,
    pub(super) future_skew: Duration,
    pub(super) families: HashMap<Box<str>, EventFamily>,
}

impl<S: Store> EngineBuilder<S> {
    /// How long decided events are remembered (default 8 days: ALM retries
    /// for 7).
    #[must_use]
    pub fn dedup_window(mut self, window: Duration) -> Self {
        self.dedup_window = window;
        self
    }

    /// How long an entity's rule state is kept after its last change
    /// (default [`DEFAULT_STATE_RETENTION`](super::DEFAULT_STATE_RETENTION),
    /// 400 days), apart from the dedup window: a completion must still
    /// make a `LEARNER_PROGRESS` weeks later redundant, and an enrollment
    /// months older than a record's unenrollment must still be stale.
    ///
    /// The cost is one state per learner record (and per learning object
    /// and instance) that changed within the retention. Per record, for a
    /// key like `learner/1234/12345678/course:1234567_1234567`:
    ///
    /// | store | bytes per record |
    /// |---|---|
    /// | memory | 72 in the table entry (128-bit key fingerprint, state, version, expiry), 83–166 with the table's spare room |
    /// | PostgreSQL | about 290 measured (200 in `alm_states`, 90 in its two indexes; 100,000 records) |
    /// | Redis | about 250 measured (`MEMORY USAGE` of one state key) |
    /// | SQLite | about 225 measured (the table and an index on its expiry; 100,000 records) |
    ///
    /// A million learner records are then about 0.1–0.2 GB in memory and
    /// 0.2–0.3 GB on disk.
    ///
    /// Shorter than the dedup window is raised to it.
    ///
    /// ```
    /// use alm_webhooks::{Engine, store::MemoryStore};
    /// use std::time::Duration;
    /// let engine = Engine::builder(MemoryStore::new())
    ///     .state_retention(Duration::from_secs(2 * 365 * 24 * 3600))
    ///     .build();
    /// # let _ = engine;
    /// ```
    #[must_use]
    pub fn state_retention(mut self, retention: Duration) -> Self {
        self.state_retention = retention;
        self
    }

    /// How long a claim holds, unless renewed, before another attempt may
    /// take the event over (default 60 s). The engine renews the claims it
    /// holds every third of the lease while handlers run, so a handler (or
    /// a chunk of them) may run longer than the lease; what the lease
    /// bounds is how long a crashed process's events wait for their
    /// redelivery. Keep it well above a store round trip. If a claim is
    /// lost anyway (a store restart), the engine claims the event again to
    /// record the handler's outcome (or answers
    /// [`Decision::InFlight`](super::Decision::InFlight) if another attempt holds it
    /// by then).
    #[must_use]
    pub fn claim_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// How long one delivery may wait, in all, for events in flight
    /// elsewhere before answering [`Decision::InFlight`](super::Decision::InFlight)
    /// (default 2 s, well inside ALM's 5 s read timeout). The budget is
    /// per delivery, not per event: once it is spent, every further event
    /// held elsewhere is answered busy at once.
    #[must_use]
    pub fn in_flight_wait(mut self, wait: Duration) -> Self {
        self.in_flight_wait = wait;
        self
    }

    /// How many events of a delivery are claimed together
    /// ([`Store::claim_many`]) and committed together
    /// ([`Store::commit_many`]); default: the whole delivery; 0 counts as
    /// 1.
    ///
    /// The default makes a delivery cost a constant number of store calls
    /// whatever its size (see the [engine docs](super) and
    /// `BENCHMARKS.md`). A smaller chunk bounds how many handlers run again
    /// after a crash (the handlers of a chunk run before its commit) and
    /// how many claims are held at once. `commit_batch(1)` claims and
    /// commits one event at a time, each decision committed before the next
    /// event is claimed: two round trips per event, the engine before
    /// set-based stores. Decisions are the same whatever the chunk.
    ///
    /// ```
    /// use alm_webhooks::{Engine, store::MemoryStore};
    /// let engine = Engine::builder(MemoryStore::new()).commit_batch(500).build();
    /// # let _ = engine;
    /// ```
    #[must_use]
    pub fn commit_batch(mut self, events: usize) -> Self {
        self.commit_batch = events.max(1);
        self
    }

    /// How far ahead of the engine's clock an event's `timestamp` may be
    /// (default [`DEFAULT_FUTURE_SKEW`](super::DEFAULT_FUTURE_SKEW), 1 day).
    /// A time further ahead is taken as "now" for ordering: otherwise one
    /// event stamped in 2096 would make every later lifecycle event of its
    /// record stale for good. Such events are counted
    /// ([`CounterSnapshot::future_times`](super::CounterSnapshot::future_times))
    /// and traced.
    #[must_use]
    pub fn future_skew(mut self, skew: Duration) -> Self {
        self.future_skew = skew;
        self
    }

    /// Puts the events named `name` in `family`, so that they take part in
    /// the ordering rules: for the completion events ALM has not named yet
    /// (alternate and equivalent completions, retroactive completion and
    /// incompletion; a revocation is a [`EventFamily::CompletionRollback`]),
    /// and for names ALM adds later.
    ///
    /// Applies to names this crate does not know (known names keep their
    /// own family). Their `data` stays as received; the engine reads the
    /// fields the family needs from it (`userId` and `loInstanceId` for a
    /// learner's record, `loId` for a learning object, `loInstanceId` for an
    /// instance) and needs a `timestamp`. An event that lacks them is
    /// [`Decision::Malformed`](super::Decision::Malformed), with an
    /// [`EventError`](crate::EventError) naming the field.
    ///
    /// ```
    /// use alm_webhooks::{Engine, EventFamily, store::MemoryStore};
    /// let engine = Engine::builder(MemoryStore::new())
    ///     .event_family("COURSE_ALTERNATE_COMPLETED", EventFamily::Completion)
    ///     .event_family("COURSE_RETROACTIVE_INCOMPLETION", EventFamily::CompletionRollback)
    ///     .build();
    /// # let _ = engine;
    /// ```
    #[must_use]
    pub fn event_family(mut self, name: impl Into<EventName>, family: EventFamily) -> Self {
        if let EventName::Unknown(name) = name.into() {
            self.families.insert(name, family);
        }
        self
    }

    /// Where "now" comes from (default: the system clock).
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Builds the engine.
    pub fn build(self) -> Engine<S> {
        Engine {
            inner: Arc::new(Inner {
                store: self.store,
                clock: self.clock,
                dedup_window: self.dedup_window,
                state_retention: self.state_retention.max(self.dedup_window),
                lease: self.lease,
                in_flight_wait: self.in_flight_wait,
                commit_batch: self.commit_batch,
                future_skew: self.future_skew,
                future_skew_ms: i64::try_from(self.future_skew.as_millis()).unwrap_or(i64::MAX),
                families: self.families,
                counters: Counters::default(),
                pool: super::pool::Pool::default(),
                written: tokio::sync::Notify::new(),
            }),
        }
    }
}
