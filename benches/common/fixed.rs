//! Receivers under test whose remembered state stays at a fixed size, so
//! that iteration N of a benchmark costs what iteration 1 costs, however
//! long criterion runs.
//!
//! Each receiver starts with `remembered` ids already seen (never the ids of
//! the deliveries measured). Every measured delivery brings new ids, so the
//! state grows; once it has grown by the slack (1 % of `remembered`, or a
//! single delivery when `remembered` is 0), the receiver forgets every id it
//! was not prefilled with, keeping its tables' capacity (warm, as a running
//! receiver's are), outside the timed region. The state measured on is
//! therefore `remembered` ids, plus at most 1 %. Prefilling, signing and
//! forgetting happen outside the timer: only the handling of the delivery is
//! timed.

use std::collections::{HashMap, HashSet};
use std::hint::black_box;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use alm_webhooks::Engine;
use alm_webhooks::auth::SignatureAuth;
use alm_webhooks::store::{DedupKey, MemoryStore, Store};
use alm_webhooks::{AccountId, Authentication, DeliveryReceiver};
use http::HeaderMap;

use super::SECRET;

/// The next id for a measured delivery: never one a receiver remembers.
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// One signed delivery of new events.
pub(crate) struct Delivery {
    pub(crate) body: Vec<u8>,
    /// The HMAC-SHA256 signature, hex.
    pub(crate) hex: String,
    /// The same signature in the `x-alm-signature` header.
    pub(crate) headers: HeaderMap,
}

impl Delivery {
    /// A delivery of `events` events none of which was ever seen.
    pub(crate) fn fresh(events: usize) -> Self {
        let body = super::body(NEXT.fetch_add(events, Ordering::Relaxed), events);
        let hex = SignatureAuth::new(SECRET).sign(&body);
        let mut headers = HeaderMap::new();
        headers.insert("x-alm-signature", hex.parse().expect("a header value"));
        Self { body, hex, headers }
    }
}

/// A receiver measured on a fixed-size state.
pub(crate) trait Subject {
    /// What one measured call takes, made from a delivery outside the timer.
    type Input: From<Delivery>;
    /// The receiver with `remembered` ids already seen.
    fn prefilled(remembered: usize) -> Self;
    /// Forgets every id seen since it was prefilled, keeping the tables'
    /// capacity.
    fn reset(&mut self);
    /// Handles one input (timed); the number of events it decided.
    fn handle(&mut self, input: Self::Input) -> usize;
}

/// The id a prefilled receiver remembers at position `n`: another shape
/// than the measured deliveries' ids, so never one of them.
pub(crate) fn prefill_id(n: usize) -> String {
    format!("prefill-{n}")
}

/// A subject and how far its state has grown since it was built.
pub(crate) struct Fixed<S> {
    slack: usize,
    grown: usize,
    subject: S,
}

impl<S: Subject> Fixed<S> {
    /// A subject with `remembered` ids seen, kept within 1 % of that size.
    pub(crate) fn new(remembered: usize) -> Self {
        Self {
            slack: remembered / 100,
            grown: 0,
            subject: S::prefilled(remembered),
        }
    }

    /// For criterion's `iter_custom`: handles `iters` fresh deliveries of
    /// `events` events and returns the time spent handling them alone.
    pub(crate) fn measure(&mut self, iters: u64, events: usize) -> Duration {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            if self.grown + events > self.slack.max(events) {
                self.subject.reset();
                self.grown = 0;
            }
            let input = S::Input::from(Delivery::fresh(events));
            let start = Instant::now();
            let decided = black_box(self.subject.handle(black_box(input)));
            total += start.elapsed();
            assert_eq!(decided, events, "every event is new");
            self.grown += events;
        }
        total
    }
}

/// This crate: size check, HMAC, typed parse, then the engine (dedup and
/// ordering rules) on the memory store, with a handler that does nothing.
pub(crate) struct Ours {
    receiver: DeliveryReceiver,
    engine: Engine<MemoryStore>,
}

/// One runtime for every receiver, as an application has.
static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime")
});

/// Until when prefilled ids are remembered: later than anything the engine
/// writes for a measured delivery (its dedup window, its rule state's
/// retention), so that a sweep at [`forget_after`] keeps exactly them.
fn prefill_until() -> std::time::SystemTime {
    time::macros::datetime!(2100-01-01 0:00 UTC).into()
}

/// A sweep at this time forgets what measured deliveries wrote, and keeps
/// the prefilled ids.
fn forget_after() -> std::time::SystemTime {
    time::macros::datetime!(2099-01-01 0:00 UTC).into()
}

impl Ours {
    /// The engine alone, on a parsed envelope.
    fn decide(&self, envelope: alm_webhooks::Envelope) -> usize {
        let report = RUNTIME
            .block_on(self.engine.process(envelope, |_| async { Ok(()) }))
            .expect("the memory store never fails");
        report.outcomes.len()
    }
}

impl Subject for Ours {
    type Input = Delivery;

    fn prefilled(remembered: usize) -> Self {
        let mut store = MemoryStore::with_capacity(remembered);
        if std::env::var("ALM_PROJECTION").is_ok_and(|on| on == "1") {
            store = store.with_learner_projection();
        }
        let until = prefill_until();
        for n in 0..remembered {
            let key = DedupKey {
                account_id: AccountId(1234),
                event_id: prefill_id(n).parse().expect("an event id"),
            };
            store.remember(&key, until);
        }
        Self {
            receiver: DeliveryReceiver::new(Authentication::Signature(SignatureAuth::new(SECRET))),
            engine: Engine::builder(store).build(),
        }
    }

    fn reset(&mut self) {
        RUNTIME
            .block_on(self.engine.store().sweep(forget_after()))
            .expect("the memory store never fails");
    }

    fn handle(&mut self, delivery: Self::Input) -> usize {
        let envelope = self
            .receiver
            .receive(&delivery.headers, &delivery.body)
            .expect("a valid delivery");
        self.decide(envelope)
    }
}

impl From<Delivery> for alm_webhooks::Envelope {
    fn from(delivery: Delivery) -> Self {
        Self::from_slice(&delivery.body).expect("a valid delivery")
    }
}

/// Only the engine: the delivery is checked and parsed outside the timer,
/// `Engine::process` alone is timed.
pub(crate) struct EngineOnly(Ours);

impl Subject for EngineOnly {
    type Input = alm_webhooks::Envelope;

    fn prefilled(remembered: usize) -> Self {
        Self(Ours::prefilled(remembered))
    }

    fn reset(&mut self) {
        self.0.reset();
    }

    fn handle(&mut self, envelope: Self::Input) -> usize {
        self.0.decide(envelope)
    }
}

/// Baseline 1: HMAC, `serde_json::Value`, a `HashMap<String, _>` of ids.
pub(crate) struct Naive(HashMap<String, ()>);

impl Subject for Naive {
    type Input = Delivery;

    fn prefilled(remembered: usize) -> Self {
        let mut seen = HashMap::with_capacity(remembered);
        for n in 0..remembered {
            seen.insert(prefill_id(n), ());
        }
        Self(seen)
    }

    fn reset(&mut self) {
        self.0.retain(|id, ()| id.starts_with("prefill-"));
    }

    fn handle(&mut self, delivery: Self::Input) -> usize {
        super::naive(&delivery.body, &delivery.hex, &mut self.0)
    }
}

/// A floor's set of hashed ids, and a copy of the prefilled ones to reset
/// it to.
pub(crate) struct HashedIds {
    seen: HashSet<u64>,
    prefilled: HashSet<u64>,
}

impl HashedIds {
    fn prefilled(remembered: usize) -> Self {
        let prefilled: HashSet<u64> = (0..remembered)
            .map(|n| super::hash_id(&prefill_id(n)))
            .collect();
        Self {
            seen: prefilled.clone(),
            prefilled,
        }
    }

    fn reset(&mut self) {
        let prefilled = &self.prefilled;
        self.seen.retain(|hash| prefilled.contains(hash));
    }
}

/// Baseline 2: HMAC, event headers only (`data` raw), a set of hashed ids.
pub(crate) struct Floor(HashedIds);

impl Subject for Floor {
    type Input = Delivery;

    fn prefilled(remembered: usize) -> Self {
        Self(HashedIds::prefilled(remembered))
    }

    fn reset(&mut self) {
        self.0.reset();
    }

    fn handle(&mut self, delivery: Self::Input) -> usize {
        super::floor(&delivery.body, &delivery.hex, &mut self.0.seen)
    }
}

/// Baseline 3: HMAC, every event typed into the crate's data types, a set of
/// hashed ids.
pub(crate) struct TypedFloor(HashedIds);

impl Subject for TypedFloor {
    type Input = Delivery;

    fn prefilled(remembered: usize) -> Self {
        Self(HashedIds::prefilled(remembered))
    }

    fn reset(&mut self) {
        self.0.reset();
    }

    fn handle(&mut self, delivery: Self::Input) -> usize {
        super::typed_floor(&delivery.body, &delivery.hex, &mut self.0.seen)
    }
}
