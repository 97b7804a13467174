//! Generated learner histories for the projection tests: a set of events
//! per record, delivered in a shuffled order with duplicates, in
//! envelopes of one to four events; and the row the pure merge gives the
//! set (`projection::merge` is itself checked against an independent
//! oracle in the crate's unit tests).

use alm_webhooks::Engine;
use alm_webhooks::projection::{self, LearnerEvent, LearnerRecord};
use alm_webhooks::store::Store;
use alm_webhooks::{AccountId, Envelope, UserId};

/// A small xorshift generator: histories are reproducible from a seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The seed: `PROJECTION_SEED` if set, else the clock (printed).
pub fn seed() -> u64 {
    let seed = std::env::var("PROJECTION_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("PROJECTION_SEED={seed}");
    seed
}

pub const ACCOUNT: u64 = 77;
const BASE: i64 = 1_725_000_000;

/// The instance of history `h` (a learning path in both spellings, every
/// third history).
pub fn instance(h: u64, spelling: bool) -> String {
    match (h % 3, spelling) {
        (0, false) => format!("learning_program:{h}_1"),
        (0, true) => format!("learningProgram:{h}_1"),
        _ => format!("course:{h}_1"),
    }
}

/// One event of history `h` (user `h`), number `i`, as ALM's JSON.
fn event(rng: &mut Rng, h: u64, i: usize) -> String {
    let ts = BASE + rng.below(6) as i64;
    let date = |rng: &mut Rng, field: &str| match rng.below(3) {
        0 => String::new(),
        _ => format!(r#","{field}":{}"#, BASE - 600 + 60 * rng.below(10) as i64),
    };
    let source = |rng: &mut Rng| match rng.below(3) {
        0 => String::new(),
        1 => r#","enrollmentSource":"SELF_ENROLL""#.to_owned(),
        _ => r#","enrollmentSource":"ADMIN_ENROLL""#.to_owned(),
    };
    let path = h % 3 == 0;
    let prefix = if path { "LEARNING_PATH" } else { "COURSE" };
    let batch = if rng.below(2) == 0 { "" } else { "_BATCH" };
    let (name, extra) = match rng.below(if path { 5 } else { 4 }) {
        0 => (
            format!("{prefix}_ENROLLMENT{batch}"),
            date(rng, "dateEnrolled") + &source(rng),
        ),
        1 => {
            let percent = match rng.below(6) {
                0 => String::new(),
                p => format!(r#","progressPercent":{}"#, (p - 1) * 25),
            };
            (
                "LEARNER_PROGRESS".to_owned(),
                date(rng, "dateStarted") + &percent,
            )
        }
        2 => {
            let passed = match rng.below(3) {
                0 => String::new(),
                1 => r#","hasPassed":true"#.to_owned(),
                _ => r#","hasPassed":false"#.to_owned(),
            };
            (
                format!("{prefix}_COMPLETED{batch}"),
                date(rng, "dateCompleted") + &passed + &source(rng),
            )
        }
        3 => (format!("{prefix}_UNENROLLMENT{batch}"), source(rng)),
        _ => (
            format!("{prefix}_COMPLETION_ROLLBACK{batch}"),
            date(rng, "dateEnrolled"),
        ),
    };
    let instance = instance(h, rng.below(2) == 0);
    let lo = instance.rsplit_once('_').unwrap().0.to_owned();
    format!(
        r#"{{"eventId":"h{h}-e{i}","eventName":"{name}","timestamp":{ts},"data":{{"userId":{h},"loId":"{lo}","loInstanceId":"{instance}"{extra}}}}}"#
    )
}

/// A generated history: its set of events and the deliveries that carry
/// them (shuffled, each event one to three times, one to four per
/// envelope; every progress delayed past the rest, in one history of four).
#[derive(Debug)]
pub struct History {
    pub user: u64,
    pub set: Vec<String>,
    pub deliveries: Vec<String>,
}

pub fn history(rng: &mut Rng, h: u64) -> History {
    let n = 1 + rng.below(8) as usize;
    let set: Vec<String> = (0..n).map(|i| event(rng, h, i)).collect();
    let mut order: Vec<&String> = Vec::new();
    for e in &set {
        for _ in 0..=rng.below(3) {
            order.push(e);
        }
    }
    for i in (1..order.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        order.swap(i, j);
    }
    if rng.below(4) == 0 {
        order.sort_by_key(|e| e.contains("LEARNER_PROGRESS"));
    }
    let mut deliveries = Vec::new();
    let mut rest = &order[..];
    while !rest.is_empty() {
        let k = (1 + rng.below(4) as usize).min(rest.len());
        let events: Vec<&str> = rest[..k].iter().map(|s| s.as_str()).collect();
        deliveries.push(format!(
            r#"{{"accountId":{ACCOUNT},"events":[{}]}}"#,
            events.join(",")
        ));
        rest = &rest[k..];
    }
    History {
        user: h,
        set,
        deliveries,
    }
}

/// The row the pure merge gives the history's set.
pub fn expected(history: &History) -> LearnerRecord {
    let body = format!(
        r#"{{"accountId":{ACCOUNT},"events":[{}]}}"#,
        history.set.join(",")
    );
    let envelope = Envelope::from_slice(body.as_bytes()).unwrap();
    let mut row: Option<LearnerRecord> = None;
    for event in envelope.parsed() {
        let fact = LearnerEvent::from_event(event).unwrap();
        row = Some(projection::merge(
            row.as_ref(),
            &fact,
            time::OffsetDateTime::UNIX_EPOCH,
        ));
    }
    row.unwrap()
}

/// Delivers every history's deliveries through `engine`, interleaving the
/// histories.
pub async fn deliver<S: Store>(engine: &Engine<S>, histories: &[History], rng: &mut Rng) {
    let mut queues: Vec<std::collections::VecDeque<&String>> = histories
        .iter()
        .map(|h| h.deliveries.iter().collect())
        .collect();
    loop {
        let open: Vec<usize> = (0..queues.len())
            .filter(|&i| !queues[i].is_empty())
            .collect();
        if open.is_empty() {
            break;
        }
        let pick = open[rng.below(open.len() as u64) as usize];
        let body = queues[pick].pop_front().unwrap();
        let envelope = Envelope::from_slice(body.as_bytes()).unwrap();
        let report = engine
            .process(envelope, |_| async { Ok(()) })
            .await
            .unwrap();
        assert!(report.is_acknowledged(), "{report:?}");
    }
}

/// Asserts that `actual` is `expected`, field by field, `updated_at` aside.
pub fn assert_same(actual: Option<LearnerRecord>, expected: &LearnerRecord, history: &History) {
    let Some(mut actual) = actual else {
        panic!("no row for user {}: {:#?}", history.user, history.set);
    };
    actual.updated_at = expected.updated_at;
    assert_eq!(
        &actual, expected,
        "history of user {}: {:#?}",
        history.user, history.set
    );
}

pub fn user(h: &History) -> (AccountId, UserId) {
    (AccountId(ACCOUNT), UserId(h.user))
}

/// Delivers every history's deliveries through two engines at once (each
/// delivery to one of them, at random), so that events of one record are
/// committed concurrently; a delivery not acknowledged (an event in flight
/// on the other engine) is delivered again, as ALM would.
pub async fn deliver_concurrently<S: Store>(
    engines: [&Engine<S>; 2],
    histories: &[History],
    rng: &mut Rng,
) {
    let mut queues: [Vec<&String>; 2] = [Vec::new(), Vec::new()];
    for history in histories {
        for body in &history.deliveries {
            queues[rng.below(2) as usize].push(body);
        }
    }
    let run = |engine: &'static str, queue: Vec<&String>, e: &Engine<S>| {
        let e = e.clone();
        let queue: Vec<String> = queue.into_iter().cloned().collect();
        async move {
            for body in queue {
                loop {
                    let envelope = Envelope::from_slice(body.as_bytes()).unwrap();
                    let report = e.process(envelope, |_| async { Ok(()) }).await;
                    match report {
                        Ok(r) if r.is_acknowledged() => break,
                        Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(5)).await,
                        Err(error) => panic!("{engine}: {error}"),
                    }
                }
            }
        }
    };
    let [a, b] = queues;
    tokio::join!(run("first", a, engines[0]), run("second", b, engines[1]));
}
