//! Heap allocations on the warm in-memory path (issue 28): a counting
//! global allocator around `Engine::process` on a `MemoryStore`, once the
//! engine, the store and this thread are warm.
//!
//! An event costs no allocation of its own: a delivery makes the same
//! number of allocations whatever its size. What a delivery does allocate:
//!
//! - the report's `outcomes` (handed to the caller);
//! - the answers of `Store::claim_many` and, for two events or more, of
//!   `Store::commit_many`: the trait returns them in a `Vec` (a lone
//!   commit goes through `Store::commit`, which returns its outcome).
//!
//! Everything else (the chunk, pending and settled decisions, the states
//! a chunk's decisions lead to, claim requests, commits, the store's
//! fingerprints) lives in buffers kept between deliveries, and ids are
//! shared, not copied (`EventId`, `LoId`, `LoInstanceId` are
//! reference-counted).
//!
//! The body is parsed outside the count (parsing allocates each event's
//! ids and names: it is the front door's work, not the engine's); the
//! events' own memory is freed inside it, which is no allocation.

use std::alloc::System;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::SystemTime;

use alm_webhooks::store::{MemoryStore, Store};
use alm_webhooks::{Decision, Engine, Envelope};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Allocations a warm delivery of one event makes: the report, the
/// `claim_many` answers.
const ONE_EVENT: usize = 2;
/// Allocations a warm delivery of two events or more makes: the report,
/// the `claim_many` answers, the `commit_many` outcomes.
const MANY_EVENTS: usize = 3;

/// Polls `future` to its end on this thread: the memory store never makes
/// the engine wait, so no runtime (and none of its allocations) is needed.
fn run<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}

/// A body of `count` new `COURSE_ENROLLMENT`s (ids from `first`), or, with
/// `completions`, of each learner's enrollment followed by its completion
/// (so that a chunk decides an entity twice, on the state its first
/// decision leads to).
fn body(first: usize, count: usize, completions: bool) -> Vec<u8> {
    let event = |n: usize| {
        let (name, user) = match completions {
            true if n % 2 == 1 => ("COURSE_COMPLETED", 1_000_000 + n - 1),
            _ => ("COURSE_ENROLLMENT", 1_000_000 + n),
        };
        format!(
            r#"{{"eventId":"29123ec1-4576-4ec5-a057-{n:012}","eventName":"{name}","timestamp":{ts},"data":{{"userId":{user},"loId":"course:1234567","loInstanceId":"course:1234567_1234567","loType":"course","enrollmentSource":"SELF_ENROLL","dateEnrolled":1725524713}}}}"#,
            ts = 1_725_524_713 + n,
        )
    };
    let events: Vec<String> = (first..first + count).map(event).collect();
    format!(r#"{{"accountId":1234,"events":[{}]}}"#, events.join(",")).into_bytes()
}

/// An engine on a memory store, and the next event number.
struct Bench {
    engine: Engine<MemoryStore>,
    next: usize,
}

impl Bench {
    fn new() -> Self {
        Self {
            engine: Engine::builder(MemoryStore::new()).build(),
            next: 0,
        }
    }

    /// Processes `envelope`; the allocations made, and the decisions.
    fn count(&self, envelope: Envelope) -> (usize, Vec<Decision>) {
        let region = Region::new(GLOBAL);
        let report = run(self.engine.process(envelope, |event| async move {
            drop(event);
            Ok(())
        }));
        let change = region.change();
        let report = report.expect("the memory store never fails");
        let decisions = report.outcomes.iter().map(|o| o.decision).collect();
        (change.allocations + change.reallocations, decisions)
    }

    /// A new delivery of `events` events; its allocations, checked to be
    /// decided as `Processed`, and the body (to deliver it again).
    fn fresh(&mut self, events: usize, completions: bool) -> (usize, Vec<u8>) {
        let body = body(self.next, events, completions);
        self.next += events;
        let envelope = Envelope::from_slice(&body).expect("a valid body");
        let (allocations, decisions) = self.count(envelope);
        assert_eq!(decisions, vec![Decision::Processed; events]);
        (allocations, body)
    }

    /// Forgets every decided event and state, keeping the store's tables
    /// (their capacity), as the benchmarks' fixed states do.
    fn forget(&self) {
        let later = SystemTime::now() + std::time::Duration::from_secs(1000 * 24 * 3600);
        run(self.engine.store().sweep(later)).expect("the memory store never fails");
    }
}

/// One test (the allocator counts every thread's allocations, so no other
/// test may run beside it in this binary).
#[test]
fn a_warm_delivery_allocates_the_same_whatever_its_size() {
    let mut bench = Bench::new();
    let sizes = [1, 2, 10, 100, 1000];
    // Warm: the store's tables first, with a delivery five times the
    // largest measured (a table grows when one of its 64 shards meets more
    // claims at once than it ever had: 5,000 events give each shard about
    // 78, a 1,000-event delivery at most about 30); then the engine's
    // buffers (a 5,000-event delivery's are too large to keep), the
    // store's scratch and this thread's metrics keys (feature `metrics`,
    // no recorder: one per label set, so duplicates too).
    bench.fresh(5000, false);
    bench.forget();
    for _ in 0..3 {
        for events in sizes {
            bench.fresh(events, false);
            let (_, body) = bench.fresh(events, true);
            bench.count(Envelope::from_slice(&body).expect("a valid body"));
        }
        bench.forget();
    }
    for events in sizes {
        for completions in [false, true] {
            let (allocations, body) = bench.fresh(events, completions);
            let bound = if events == 1 { ONE_EVENT } else { MANY_EVENTS };
            assert_eq!(
                allocations, bound,
                "{events} events (completions: {completions})"
            );
            // The same delivery again: every event a duplicate, and no
            // commit (so no `commit_many` outcomes).
            let again = Envelope::from_slice(&body).expect("a valid body");
            let (allocations, decisions) = bench.count(again);
            assert_eq!(decisions, vec![Decision::Duplicate; events]);
            assert_eq!(allocations, ONE_EVENT, "{events} duplicates");
        }
        bench.forget();
    }
}
