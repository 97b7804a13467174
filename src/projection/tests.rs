//! The merge against an independent oracle: sort the set of events by the
//! merge order and replay it as a state machine, one event after another.

use proptest::prelude::*;
use time::OffsetDateTime;

use super::event::{EventKey, LearnerEvent, LearnerEventKind as K, ordered_bits};
use super::record::from_millis;
use super::{LearnerRecord, LearnerStatus, merge};
use crate::event::EnrollmentSource;
use crate::{AccountId, EventName, UserId};

fn name(kind: K, batch: bool) -> EventName {
    match (kind, batch) {
        (K::Enrollment, false) => EventName::CourseEnrollment,
        (K::Enrollment, true) => EventName::CourseEnrollmentBatch,
        (K::Progress, _) => EventName::LearnerProgress,
        (K::Completion, false) => EventName::CourseCompleted,
        (K::Completion, true) => EventName::CourseCompletedBatch,
        (K::Rollback, false) => EventName::LearningPathCompletionRollback,
        (K::Rollback, true) => EventName::LearningPathCompletionRollbackBatch,
        (K::Unenrollment, false) => EventName::CourseUnenrollment,
        (K::Unenrollment, true) => EventName::CourseUnenrollmentBatch,
    }
}

/// One generated event: (kind, seconds, batch, date, percent, passed, source).
type Spec = (
    u8,
    u8,
    bool,
    Option<u8>,
    Option<u8>,
    Option<bool>,
    Option<bool>,
);

fn build(i: usize, spec: &Spec) -> LearnerEvent {
    let &(kind, at, batch, date, percent, passed, source) = spec;
    let kind = [
        K::Enrollment,
        K::Progress,
        K::Completion,
        K::Rollback,
        K::Unenrollment,
    ][usize::from(kind) % 5];
    let percent = percent
        .filter(|_| kind == K::Progress)
        .map(|p| f64::from(p % 5) * 25.0);
    LearnerEvent {
        account_id: AccountId(1),
        user_id: UserId(7),
        lo_instance_id: "course:1_2".parse().unwrap(),
        key: EventKey {
            at: i64::from(at) * 1000,
            kind,
            tie: percent.map_or(0, ordered_bits),
            event_id: format!("e{i}").parse().unwrap(),
        },
        event_name: name(kind, batch),
        date: date
            .filter(|_| kind != K::Unenrollment)
            .map(|d| i64::from(d) * 60_000),
        percent,
        has_passed: passed.filter(|_| kind == K::Completion),
        enrollment_source: source.filter(|_| kind != K::Progress).map(|s| {
            if s {
                EnrollmentSource::SelfEnroll
            } else {
                EnrollmentSource::AdminEnroll
            }
        }),
    }
}

/// The oracle: the set sorted by the merge order, replayed in that order.
#[derive(Debug, PartialEq)]
struct Expected {
    status: LearnerStatus,
    progress_percent: f64,
    date_enrolled: Option<OffsetDateTime>,
    date_started: Option<OffsetDateTime>,
    date_completed: Option<OffsetDateTime>,
    has_passed: Option<bool>,
    enrollment_source: Option<EnrollmentSource>,
    last: (String, EventName, OffsetDateTime),
}

fn oracle(set: &[LearnerEvent]) -> Expected {
    let mut sorted: Vec<&LearnerEvent> = set.iter().collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    let mut status = None;
    let mut attempt_percent = 0.0;
    let (mut started, mut completed, mut passed) = (None, None, None);
    let (mut enrolled, mut source, mut last) = (None, None, None);
    for e in sorted {
        last = Some((e.key.event_id.to_string(), e.event_name.clone(), e.key.at));
        match e.key.kind {
            K::Enrollment | K::Rollback => {
                status = Some(LearnerStatus::Enrolled);
                attempt_percent = 0.0;
                (started, completed, passed) = (None, None, None);
                if e.key.kind == K::Enrollment {
                    enrolled = Some(e.date.unwrap_or(e.key.at));
                } else if e.date.is_some() {
                    enrolled = e.date;
                }
            }
            K::Progress => {
                if status != Some(LearnerStatus::Completed) {
                    status = Some(LearnerStatus::InProgress);
                }
                if let Some(p) = e.percent {
                    attempt_percent = p;
                }
                if e.date.is_some() {
                    started = e.date;
                }
            }
            K::Completion => {
                status = Some(LearnerStatus::Completed);
                completed = Some(e.date.unwrap_or(e.key.at));
                passed = e.has_passed;
            }
            K::Unenrollment => status = Some(LearnerStatus::Unenrolled),
        }
        if e.key.kind != K::Progress && e.enrollment_source.is_some() {
            source.clone_from(&e.enrollment_source);
        }
    }
    let status = status.unwrap();
    let (id, name, at) = last.unwrap();
    Expected {
        status,
        progress_percent: if status == LearnerStatus::Completed {
            100.0
        } else {
            attempt_percent
        },
        date_enrolled: enrolled.map(from_millis),
        date_started: started.map(from_millis),
        date_completed: completed.map(from_millis),
        has_passed: passed,
        enrollment_source: source,
        last: (id, name, from_millis(at)),
    }
}

fn seen(row: &LearnerRecord) -> Expected {
    Expected {
        status: row.status,
        progress_percent: row.progress_percent,
        date_enrolled: row.date_enrolled,
        date_started: row.date_started,
        date_completed: row.date_completed,
        has_passed: row.has_passed,
        enrollment_source: row.enrollment_source.clone(),
        last: (
            row.last_event_id.to_string(),
            row.last_event_name.clone(),
            row.last_event_time,
        ),
    }
}

/// An arrival order of `set`: shuffled by `seed`, each event one to three
/// times, and (if `delay`) every progress after every other event.
fn arrival(set: &[LearnerEvent], seed: u64, delay: bool) -> Vec<&LearnerEvent> {
    let mut state = seed | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut order: Vec<&LearnerEvent> = Vec::with_capacity(set.len() * 2);
    for e in set {
        for _ in 0..=(next() % 3) {
            order.push(e);
        }
    }
    for i in (1..order.len()).rev() {
        let j = usize::try_from(next() % (i as u64 + 1)).unwrap();
        order.swap(i, j);
    }
    if delay {
        order.sort_by_key(|e| e.key.kind == K::Progress);
    }
    order
}

fn fold(order: &[&LearnerEvent]) -> LearnerRecord {
    let mut row: Option<LearnerRecord> = None;
    for (i, e) in order.iter().enumerate() {
        let now = from_millis(i64::try_from(i).unwrap());
        row = Some(merge(row.as_ref(), e, now));
    }
    row.unwrap()
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        0u8..5,
        0u8..6,
        any::<bool>(),
        proptest::option::of(0u8..4),
        proptest::option::weighted(0.8, 0u8..5),
        proptest::option::of(any::<bool>()),
        proptest::option::of(any::<bool>()),
    )
}

/// Histories per run: each case checks two arrival orders of one set.
const CASES: u32 = 50_000;

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_row_is_a_function_of_the_set(
        specs in proptest::collection::vec(spec(), 1..9),
        seeds in (any::<u64>(), any::<u64>()),
        delay in any::<bool>(),
    ) {
        let set: Vec<LearnerEvent> = specs.iter().enumerate().map(|(i, s)| build(i, s)).collect();
        let expected = oracle(&set);
        let one = fold(&arrival(&set, seeds.0, delay));
        let two = fold(&arrival(&set, seeds.1, false));
        prop_assert_eq!(&seen(&one), &expected);
        prop_assert_eq!(&seen(&two), &expected);
        prop_assert_eq!(&one.summary, &two.summary);
        prop_assert_eq!(one.lo_type.as_str(), "course");
    }
}

#[test]
fn a_rollback_that_arrives_before_its_completion_still_wins() {
    let set = [
        build(0, &(0, 1, false, None, None, None, None)),
        build(1, &(2, 3, false, Some(1), None, Some(true), None)),
        build(2, &(3, 4, false, None, None, None, None)),
    ];
    let row = fold(&[&set[2], &set[1], &set[0]]);
    assert_eq!(row.status, LearnerStatus::Enrolled);
    assert_eq!(row.progress_percent, 0.0);
    assert_eq!(row.date_completed, None);
    assert_eq!(row.last_event_id.as_str(), "e2");
}

#[test]
fn progress_delayed_past_a_completion_leaves_it_completed() {
    let set = [
        build(0, &(1, 1, false, Some(0), Some(2), None, None)),
        build(1, &(2, 2, false, None, None, Some(true), None)),
    ];
    let row = fold(&[&set[1], &set[0]]);
    assert_eq!(row.status, LearnerStatus::Completed);
    assert_eq!(row.progress_percent, 100.0);
    assert_eq!(row.has_passed, Some(true));
    assert_eq!(row.date_started, Some(from_millis(0)));
}

#[test]
fn learning_path_spellings_are_one_record_and_one_type() {
    let mut event = build(0, &(0, 1, false, None, None, None, None));
    event.lo_instance_id = "learning_program:5_6".parse().unwrap();
    let row = merge(None, &event, from_millis(0));
    assert_eq!(row.lo_instance_id.as_str(), "learningProgram:5_6");
    assert_eq!(row.lo_id.as_str(), "learningProgram:5");
    assert_eq!(row.lo_type.as_str(), "learningProgram");
}
