//! Model-based tests: the engine against a reference model written here,
//! separately, over random interleavings; and convergence of a record's
//! final status under reordering and duplication.

mod support;

use std::collections::{HashMap, HashSet};

use alm_webhooks::rules::{self, EntityState, Lifecycle};
use alm_webhooks::store::MemoryStore;
use alm_webhooks::{Decision, IgnoreReason};
use alm_webhooks::{Engine, Envelope};
use proptest::prelude::*;
use support::{envelope, instance, learner, lo, unknown};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Enroll,
    EnrollBatch,
    Unenroll,
    UnenrollBatch,
    Complete,
    CompleteBatch,
    Rollback,
    RollbackBatch,
    Progress,
    LoChange,
    InstanceChange,
    Stats,
    Unknown,
}

const KINDS: [Kind; 13] = [
    Kind::Enroll,
    Kind::EnrollBatch,
    Kind::Unenroll,
    Kind::UnenrollBatch,
    Kind::Complete,
    Kind::CompleteBatch,
    Kind::Rollback,
    Kind::RollbackBatch,
    Kind::Progress,
    Kind::LoChange,
    Kind::InstanceChange,
    Kind::Stats,
    Kind::Unknown,
];

impl Kind {
    /// Whether ALM sends it in real time (the other stream is the batch
    /// events and `LEARNER_PROGRESS`).
    fn is_real_time(self) -> bool {
        matches!(
            self,
            Kind::Enroll | Kind::Unenroll | Kind::Complete | Kind::Rollback
        )
    }

    fn is_lifecycle(self) -> bool {
        !matches!(
            self,
            Kind::Progress | Kind::LoChange | Kind::InstanceChange | Kind::Stats | Kind::Unknown
        )
    }
}

#[derive(Debug, Clone)]
struct Ev {
    account: u64,
    id: u8,
    kind: Kind,
    ts: i64,
    user: u64,
    /// The learning object: 1 and 2 are courses, 3 a learning path whose
    /// id is spelled `learning_program:` when `snake`.
    slot: u8,
    snake: bool,
    /// Whether the handler fails on it.
    fails: bool,
}

impl Ev {
    fn json(&self) -> String {
        let id = format!("id-{}", self.id);
        let lo_type = match (self.slot, self.snake) {
            (3, true) => "learning_program",
            (3, false) => "learningProgram",
            _ => "course",
        };
        let inst = format!("{lo_type}:{}_{}", self.slot, self.slot);
        let lo_id = format!("{lo_type}:{}", self.slot);
        match self.kind {
            Kind::Enroll => learner(&id, "COURSE_ENROLLMENT", self.ts, self.user, &inst),
            Kind::EnrollBatch => learner(&id, "COURSE_ENROLLMENT_BATCH", self.ts, self.user, &inst),
            Kind::Unenroll => learner(&id, "COURSE_UNENROLLMENT", self.ts, self.user, &inst),
            Kind::UnenrollBatch => {
                learner(&id, "COURSE_UNENROLLMENT_BATCH", self.ts, self.user, &inst)
            }
            Kind::Complete => learner(&id, "COURSE_COMPLETED", self.ts, self.user, &inst),
            Kind::CompleteBatch => {
                learner(&id, "COURSE_COMPLETED_BATCH", self.ts, self.user, &inst)
            }
            Kind::Rollback => learner(
                &id,
                "LEARNING_PATH_COMPLETION_ROLLBACK",
                self.ts,
                self.user,
                &inst,
            ),
            Kind::RollbackBatch => learner(
                &id,
                "LEARNING_PATH_COMPLETION_ROLLBACK_BATCH",
                self.ts,
                self.user,
                &inst,
            ),
            Kind::Progress => learner(&id, "LEARNER_PROGRESS", self.ts, self.user, &inst),
            Kind::LoChange => lo(&id, "LEARNING_OBJECT_MODIFICATION", self.ts, &lo_id),
            Kind::InstanceChange => {
                instance(&id, "LEARNING_OBJECT_INSTANCE_MODIFICATION", self.ts, &inst)
            }
            Kind::Stats => instance(&id, "CI_STATS", self.ts, &inst),
            Kind::Unknown => unknown(&id, self.ts),
        }
    }
}

fn ev() -> impl Strategy<Value = Ev> {
    (
        (1..=2u64, 0..12u8, 0..KINDS.len(), 0..8i64),
        (1..=2u64, 1..=3u8, any::<bool>(), 0..10u8),
    )
        .prop_map(|((account, id, k, ts), (user, slot, snake, fails))| Ev {
            account,
            id,
            kind: KINDS[k],
            ts,
            user,
            slot,
            snake,
            fails: fails == 0,
        })
}

/// The reference model: a direct reading of the rules table in
/// `engine::rules`, of the dedup keys, and of deferral within a delivery.
#[derive(Default)]
struct Model {
    seen: HashSet<(u64, u8, bool)>,
    records: HashMap<(u64, u64, u8), Record>,
    newest: HashMap<(u64, &'static str, u8), i64>,
    /// Entities with a failed or deferred event in the current delivery.
    held: HashSet<(u64, &'static str, u64, u8)>,
}

#[derive(Default, Clone, Copy)]
struct Record {
    newest: Option<i64>,
    completed: bool,
    /// The newest progress since the latest lifecycle event.
    progress: Option<i64>,
    /// The newest progress ever processed (rule 4: progress never goes
    /// back).
    last_progress: Option<i64>,
}

impl Model {
    fn new_delivery(&mut self) {
        self.held.clear();
    }

    fn entity(e: &Ev) -> Option<(u64, &'static str, u64, u8)> {
        match e.kind {
            Kind::LoChange => Some((e.account, "lo", 0, e.slot)),
            Kind::InstanceChange => Some((e.account, "instance", 0, e.slot)),
            Kind::Stats => Some((e.account, "stats", 0, e.slot)),
            Kind::Unknown => None,
            _ => Some((e.account, "learner", e.user, e.slot)),
        }
    }

    fn decide(&mut self, e: &Ev) -> Decision {
        let entity = Self::entity(e);
        if entity.is_some_and(|k| self.held.contains(&k)) {
            return Decision::Deferred;
        }
        // Unknown events are deduplicated under their name too.
        let dedup = (e.account, e.id, e.kind == Kind::Unknown);
        if self.seen.contains(&dedup) {
            return Decision::Duplicate;
        }
        let decision = self.rules(e, e.fails);
        match decision {
            Decision::Failed => {
                if let Some(k) = entity {
                    self.held.insert(k);
                }
            }
            _ => {
                self.seen.insert(dedup);
            }
        }
        decision
    }

    /// The rules; a processed event whose handler fails changes nothing.
    fn rules(&mut self, e: &Ev, fails: bool) -> Decision {
        let stale = |newest: Option<i64>| newest.is_some_and(|n| e.ts < n);
        match e.kind {
            Kind::Progress => {
                let rec = self.records.entry((e.account, e.user, e.slot)).or_default();
                if rec.completed {
                    return Decision::Ignored(IgnoreReason::ProgressAfterCompletion);
                }
                if rec.last_progress.is_some_and(|p| e.ts < p) {
                    return Decision::Ignored(IgnoreReason::OlderProgress);
                }
                if fails {
                    return Decision::Failed;
                }
                rec.last_progress = Some(rec.last_progress.map_or(e.ts, |p| p.max(e.ts)));
                if !stale(rec.newest) {
                    rec.progress = Some(rec.progress.map_or(e.ts, |p| p.max(e.ts)));
                }
            }
            kind if kind.is_lifecycle() => {
                let rec = self.records.entry((e.account, e.user, e.slot)).or_default();
                let enrollment = matches!(e.kind, Kind::Enroll | Kind::EnrollBatch);
                if enrollment && rec.progress.is_some_and(|p| e.ts <= p) {
                    return Decision::Ignored(IgnoreReason::EnrollmentAfterProgress);
                }
                if stale(rec.newest) {
                    return Decision::Ignored(IgnoreReason::Stale);
                }
                if fails {
                    return Decision::Failed;
                }
                rec.newest = Some(e.ts);
                rec.completed = matches!(e.kind, Kind::Complete | Kind::CompleteBatch);
                rec.progress = None;
            }
            Kind::LoChange | Kind::InstanceChange | Kind::Stats => {
                let space = match e.kind {
                    Kind::LoChange => "lo",
                    Kind::InstanceChange => "instance",
                    _ => "stats",
                };
                let newest = self.newest.get(&(e.account, space, e.slot)).copied();
                if stale(newest) {
                    return Decision::Ignored(IgnoreReason::Stale);
                }
                if fails {
                    return Decision::Failed;
                }
                self.newest.insert((e.account, space, e.slot), e.ts);
            }
            _ => {
                if fails {
                    return Decision::Failed;
                }
            }
        }
        Decision::Processed
    }
}

/// Splits events into envelopes of consecutive events of one account.
fn deliveries(events: &[Ev]) -> Vec<(Envelope, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=events.len() {
        if i == events.len() || events[i].account != events[start].account || i - start == 4 {
            let json: Vec<String> = events[start..i].iter().map(Ev::json).collect();
            out.push((envelope(events[start].account, &json), i - start));
            start = i;
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Random events (any order, duplicates, failing handlers, both
    /// spellings of a learning path) in deliveries of up to four: the
    /// engine decides as the model does, one by one (`commit_batch(1)`)
    /// and set-based, in chunks of 2 to 5 events and whole deliveries (the
    /// default).
    #[test]
    fn engine_matches_the_reference_model(
        events in proptest::collection::vec(ev(), 1..40),
        commit_batch in prop_oneof![1usize..6, Just(usize::MAX)],
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let engine = Engine::builder(MemoryStore::new()).commit_batch(commit_batch).build();
        let mut model = Model::default();
        let mut got = Vec::new();
        let mut expected = Vec::new();
        runtime.block_on(async {
            let mut start = 0;
            for (envelope, len) in deliveries(&events) {
                let batch = &events[start..start + len];
                start += len;
                let report = engine.process(envelope, |event| {
                    let fails = batch.iter().any(|e| e.fails && format!("id-{}", e.id) == event.event_id.as_str());
                    async move { if fails { Err("handler failed".into()) } else { Ok(()) } }
                }).await.unwrap();
                got.extend(report.outcomes.into_iter().map(|o| o.decision));
                model.new_delivery();
                for e in batch {
                    // The handler fails on an id if it fails on any of its
                    // copies in the delivery (it sees only the id).
                    let fails = batch.iter().any(|x| x.fails && x.id == e.id);
                    expected.push(model.decide(&Ev { fails, ..e.clone() }));
                }
            }
        });
        prop_assert_eq!(got, expected);
    }
}

/// A plausible history of one record, re-enrollments included: each step
/// is allowed by the status before it (progress only while enrolled; a
/// completed, unenrolled or rolled-back record can be enrolled again), each
/// lifecycle event real time or batch.
fn history() -> impl Strategy<Value = Vec<Kind>> {
    proptest::collection::vec((0..4usize, any::<bool>()), 1..14).prop_map(|choices| {
        let mut out = Vec::new();
        let mut status: Option<Lifecycle> = None;
        for (c, batch) in choices {
            let pick = |rt: Kind, bt: Kind| if batch { bt } else { rt };
            let kind = match status {
                None | Some(Lifecycle::Unenrolled) => pick(Kind::Enroll, Kind::EnrollBatch),
                Some(Lifecycle::Enrolled | Lifecycle::CompletionRolledBack) => match c {
                    0 | 1 => Kind::Progress,
                    2 => pick(Kind::Complete, Kind::CompleteBatch),
                    _ => pick(Kind::Unenroll, Kind::UnenrollBatch),
                },
                Some(Lifecycle::Completed) => match c {
                    0 | 1 => pick(Kind::Rollback, Kind::RollbackBatch),
                    2 => pick(Kind::Enroll, Kind::EnrollBatch),
                    _ => pick(Kind::Unenroll, Kind::UnenrollBatch),
                },
                Some(_) => unreachable!("no other status"),
            };
            status = match kind {
                Kind::Enroll | Kind::EnrollBatch => Some(Lifecycle::Enrolled),
                Kind::Complete | Kind::CompleteBatch => Some(Lifecycle::Completed),
                Kind::Rollback | Kind::RollbackBatch => Some(Lifecycle::CompletionRolledBack),
                Kind::Unenroll | Kind::UnenrollBatch => Some(Lifecycle::Unenrolled),
                _ => status,
            };
            out.push(kind);
        }
        out
    })
}

/// One minute between steps, as ALM's minute-precision dates make likely.
const STEP: i64 = 60;

/// An arrival order ALM allows for events at `1000 + STEP * i`: the real-time
/// and the non-real-time streams (batch events and `LEARNER_PROGRESS`) each
/// arrive in time order, each with its own growing delay, so either may
/// overtake the other by any amount; a `LEARNER_PROGRESS` may be delayed up
/// to 15 minutes more; and redeliveries repeat events after their first
/// arrival.
fn allowed_order(kinds: &[Kind], delays: &[(u16, u16)], dupes: &[(usize, usize)]) -> Vec<usize> {
    let (mut real_time, mut other) = (0i64, 0i64);
    let mut arrivals: Vec<(i64, usize)> = Vec::new();
    for (i, kind) in kinds.iter().enumerate() {
        let (grow, progress_delay) = delays[i % delays.len()];
        let at = 1000 + STEP * i as i64;
        let arrival = if kind.is_real_time() {
            real_time += i64::from(grow);
            at + real_time
        } else {
            other += i64::from(grow);
            let extra = if *kind == Kind::Progress {
                i64::from(progress_delay % 901)
            } else {
                0
            };
            at + other + extra
        };
        arrivals.push((arrival, i));
    }
    arrivals.sort();
    let mut order: Vec<usize> = arrivals.into_iter().map(|(_, i)| i).collect();
    for &(which, after) in dupes {
        let first = which % order.len();
        let at = first + 1 + after % (order.len() - first);
        order.insert(at, order[first]);
    }
    order
}

fn final_status(kinds: &[(Kind, i64)], order: &[usize]) -> Option<Lifecycle> {
    let mut state = EntityState::default();
    let mut seen = HashSet::new();
    for &i in order {
        if !seen.insert(i) {
            continue; // a duplicate never reaches the rules
        }
        let (kind, ts) = kinds[i];
        let e = Ev {
            account: 1,
            id: i as u8,
            kind,
            ts,
            user: 1,
            slot: 1,
            snake: false,
            fails: false,
        };
        let envelope = envelope(1, &[e.json()]);
        let event = envelope.parsed().next().unwrap();
        state = rules::decide(&state, event).1;
    }
    state.learner_status()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// For a plausible history with distinct times, every arrival order ALM
    /// allows, with redeliveries, ends in the same status as time order.
    #[test]
    fn final_status_converges_for_every_order_alm_allows(
        kinds in history(),
        delays in proptest::collection::vec((0u16..2000, any::<u16>()), 1..16),
        dupes in proptest::collection::vec((any::<usize>(), any::<usize>()), 0..5),
    ) {
        let timed: Vec<(Kind, i64)> = kinds.iter().enumerate().map(|(i, k)| (*k, 1000 + i as i64 * STEP)).collect();
        let in_order: Vec<usize> = (0..timed.len()).collect();
        let order = allowed_order(&kinds, &delays, &dupes);
        prop_assert_eq!(
            final_status(&timed, &order),
            final_status(&timed, &in_order),
            "order {:?}", order
        );
    }
}

/// The one order that still depends on arrival (named in `engine::rules`):
/// two lifecycle events with the same time are both processed, so the one
/// that arrives last decides the status. Rule 3 cannot order what the
/// timestamps do not.
#[test]
fn equal_times_let_the_last_arrival_win() {
    let timed = [(Kind::Enroll, 60), (Kind::Complete, 60)];
    assert_eq!(final_status(&timed, &[0, 1]), Some(Lifecycle::Completed));
    assert_eq!(final_status(&timed, &[1, 0]), Some(Lifecycle::Enrolled));
}

/// Formerly an exception: progress that overtakes a batch re-enrollment.
/// History: enroll (t0), unenroll (t1), batch enroll (t2), progress (t3).
/// Arriving progress first, rule 1 ignores the t2 enrollment, and the
/// progress, newer than the unenrollment, says the learner is enrolled.
#[test]
fn progress_overtaking_a_batch_re_enrollment_leaves_the_record_enrolled() {
    let timed = [
        (Kind::Enroll, 0),
        (Kind::Unenroll, 60),
        (Kind::EnrollBatch, 120),
        (Kind::Progress, 180),
    ];
    assert_eq!(
        final_status(&timed, &[0, 1, 2, 3]),
        Some(Lifecycle::Enrolled)
    );
    assert_eq!(
        final_status(&timed, &[0, 1, 3, 2]),
        Some(Lifecycle::Enrolled)
    );
}

/// Formerly an exception: a re-enrollment after completion and progress is
/// processed whatever the arrival (August 2026: ALM sends re-enrollments).
#[test]
fn a_re_enrollment_after_completion_and_progress_reopens_in_any_order() {
    let timed = [
        (Kind::Enroll, 0),
        (Kind::Progress, 60),
        (Kind::Complete, 120),
        (Kind::EnrollBatch, 180),
    ];
    for order in [[0, 1, 2, 3], [3, 0, 1, 2], [0, 2, 3, 1], [0, 2, 1, 3]] {
        assert_eq!(
            final_status(&timed, &order),
            Some(Lifecycle::Enrolled),
            "{order:?}"
        );
    }
}
