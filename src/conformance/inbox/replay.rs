//! The replay jobs' checks: a rerun runs each processed event's handler
//! once more and changes no decision and no learner record; an
//! unprocessed replay runs only what was not processed; a replay never
//! overtakes a live delivery of its account; cancel.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use time::OffsetDateTime;

use super::{Fixture, T0, learner};
use crate::inbox::NewDelivery;
use crate::inbox::{
    ArchiveFilter, ArchivedDelivery, Inbox, ReplayId, ReplayJobs, ReplayMode, ReplayRequest,
    ReplayState, ReplayStatus, RetryPolicy, WorkerOptions, Workers,
};
use crate::store::{LearnerReads, MemoryStore};
use crate::{BoxError, Engine, Event};

/// The handler's calls, by event id, in order.
#[derive(Clone, Default)]
struct Calls(Arc<Mutex<Vec<String>>>);

impl Calls {
    fn push(&self, id: &str) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(id.to_owned());
    }

    fn all(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for id in self.all() {
            *counts.entry(id).or_default() += 1;
        }
        counts
    }
}

/// A handler that records each call and fails for `doomed` while `fail`
/// says so.
fn recording(
    calls: &Calls,
    fail: &Arc<std::sync::atomic::AtomicBool>,
) -> impl Fn(Event) -> std::future::Ready<Result<(), BoxError>> + Send + Sync + 'static {
    let (calls, fail) = (calls.clone(), Arc::clone(fail));
    move |event: Event| {
        calls.push(event.event_id.as_str());
        let failing =
            event.event_id.as_str() == "doomed" && fail.load(std::sync::atomic::Ordering::SeqCst);
        std::future::ready(if failing {
            Err("CRM refused".into())
        } else {
            Ok(())
        })
    }
}

fn body(events: &[String]) -> Vec<u8> {
    format!(r#"{{"accountId":1,"events":[{}]}}"#, events.join(",")).into_bytes()
}

/// An hour ago, to the second: deliveries received then are well inside
/// the archive's retention (a pool sweeps what is older).
static BASE: std::sync::LazyLock<i64> =
    std::sync::LazyLock::new(|| OffsetDateTime::now_utc().unix_timestamp() - 3600);

/// `seconds` after [`BASE`].
/// With microseconds, which the archive keeps to the millisecond (a
/// replay's pages must still move on).
fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(*BASE + seconds).expect("a recent time")
        + time::Duration::microseconds(123_456)
}

/// A delivery of account 1 received `seconds` after [`BASE`].
fn delivery(body: &[u8], seconds: i64) -> NewDelivery<'_> {
    NewDelivery {
        account_id: crate::AccountId(1),
        body,
        received_at: at(seconds),
    }
}

const ONCE: RetryPolicy = RetryPolicy {
    max_attempts: 1,
    base: Duration::ZERO,
    max: Duration::ZERO,
};

/// Workers with the archive on, one attempt, reporting to `jobs`.
fn workers<I: Inbox>(
    engine: &Engine<MemoryStore>,
    inbox: &Arc<I>,
    jobs: &ReplayJobs,
) -> Workers<MemoryStore, I> {
    Workers::new(engine.clone(), Arc::clone(inbox)).with_options(
        WorkerOptions::new()
            .with_retry(ONCE)
            .with_replays(jobs.clone()),
    )
}

/// Runs every delivery that may be taken now.
async fn drain<I: Inbox, H, Fut>(workers: &Workers<MemoryStore, I>, handler: &H)
where
    H: Fn(Event) -> Fut + Send + Sync,
    Fut: std::future::Future<Output = Result<(), BoxError>> + Send,
{
    while workers.run_once(handler).await.unwrap() {}
}

/// Waits (at most about 10 s) until `until` holds for the job's status.
async fn watch(
    jobs: &ReplayJobs,
    id: ReplayId,
    until: impl Fn(&ReplayStatus) -> bool,
) -> ReplayStatus {
    for _ in 0..1000 {
        let status = jobs.status(id).expect("the job is known");
        if until(&status) {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the job never got there: {:?}", jobs.status(id));
}

/// The learner table's CSV export.
async fn csv(store: &MemoryStore) -> Vec<u8> {
    #[derive(Clone)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let out = Shared(Arc::default());
    let (_, rows) = LearnerReads::export_csv(store, Box::new(out.clone()))
        .await
        .unwrap();
    assert!(rows > 0, "the table has records");
    let written = out.0.lock().unwrap_or_else(PoisonError::into_inner);
    written.clone()
}

async fn archived<I: Inbox>(inbox: &I) -> Vec<ArchivedDelivery> {
    inbox
        .archived(&ArchiveFilter::new(), None, 100)
        .await
        .unwrap()
}

/// Two deliveries of account 1 processed with the archive on: `e1` and
/// `e3` processed, `doomed` dead-lettered, `e1` again a duplicate.
async fn history<I: Inbox>(
    inbox: &Arc<I>,
    engine: &Engine<MemoryStore>,
    handler: &(impl Fn(Event) -> std::future::Ready<Result<(), BoxError>> + Send + Sync),
) {
    let record = "course:1_2";
    let first = body(&[
        learner("e1", "COURSE_ENROLLMENT", T0, 7, record),
        learner("doomed", "COURSE_ENROLLMENT", T0, 9, "course:3_4"),
    ]);
    let second = body(&[
        learner("e3", "LEARNER_PROGRESS", T0 + 1, 7, record),
        learner("e1", "COURSE_ENROLLMENT", T0, 7, record),
    ]);
    inbox.append(delivery(&first, 0)).await.unwrap();
    inbox.append(delivery(&second, 1)).await.unwrap();
    drain(&workers(engine, inbox, &ReplayJobs::new()), handler).await;
}

fn range(mode: ReplayMode) -> ReplayRequest {
    let filter = ArchiveFilter::new()
        .received_from(at(-1))
        .received_before(at(10));
    ReplayRequest::new(filter, mode)
}

/// A rerun runs the handler once more for each event the archive says was
/// processed (not a duplicate, not a dead letter), a step at a time; no
/// decision of the archive changes, nothing is archived again, and the
/// learner table's CSV export is byte-identical.
pub async fn a_rerun_runs_each_processed_event_once_more_and_changes_nothing<I: Inbox>(
    f: Fixture<I>,
) {
    let inbox = Arc::clone(&f.inbox);
    let engine = Engine::builder(MemoryStore::new().with_learner_projection()).build();
    let store = engine.store();
    let (calls, fail) = (
        Calls::default(),
        Arc::new(std::sync::atomic::AtomicBool::new(true)),
    );
    let handler = recording(&calls, &fail);
    history(&inbox, &engine, &handler).await;
    let before = (archived(&*inbox).await, csv(store).await);
    let letters = inbox.dead_letters(10).await.unwrap().len();
    assert_eq!(
        calls.counts(),
        BTreeMap::from([("doomed".into(), 1), ("e1".into(), 1), ("e3".into(), 1)])
    );

    let jobs = ReplayJobs::new().with_step(1);
    let _pool = workers(&engine, &inbox, &jobs).start(handler);
    let id = jobs.start(Arc::clone(&inbox), range(ReplayMode::Rerun));
    let status = watch(&jobs, id, |s| s.state != ReplayState::Running).await;
    assert_eq!(
        (status.state, status.matched, status.done),
        (ReplayState::Done, 2, 2),
        "{status:?}"
    );
    assert_eq!(
        calls.counts(),
        BTreeMap::from([("doomed".into(), 1), ("e1".into(), 2), ("e3".into(), 2)]),
        "each processed event once more, nothing else"
    );
    assert_eq!(
        archived(&*inbox).await,
        before.0,
        "no decision changed, nothing archived again"
    );
    assert_eq!(
        csv(store).await,
        before.1,
        "the learner table is byte-identical"
    );
    assert_eq!(inbox.dead_letters(10).await.unwrap().len(), letters);
}

/// An unprocessed replay goes through the engine again: the processed
/// events are duplicates (no handler), the dead-lettered one runs.
pub async fn an_unprocessed_replay_runs_only_what_was_not_processed<I: Inbox>(f: Fixture<I>) {
    let inbox = Arc::clone(&f.inbox);
    let engine = Engine::builder(MemoryStore::new()).build();
    let (calls, fail) = (
        Calls::default(),
        Arc::new(std::sync::atomic::AtomicBool::new(true)),
    );
    let handler = recording(&calls, &fail);
    history(&inbox, &engine, &handler).await;
    fail.store(false, std::sync::atomic::Ordering::SeqCst);

    let jobs = ReplayJobs::new();
    let _pool = workers(&engine, &inbox, &jobs).start(handler);
    let id = jobs.start(Arc::clone(&inbox), range(ReplayMode::Unprocessed));
    let status = watch(&jobs, id, |s| s.state != ReplayState::Running).await;
    assert_eq!(
        (status.state, status.matched, status.done),
        (ReplayState::Done, 4, 4),
        "{status:?}"
    );
    assert_eq!(
        calls.counts(),
        BTreeMap::from([("doomed".into(), 2), ("e1".into(), 1), ("e3".into(), 1)]),
        "only the dead-lettered event ran again"
    );
    let found = inbox
        .search_archive(
            &ArchiveFilter::new().with_event_id("doomed".parse().unwrap()),
            10,
        )
        .await
        .unwrap();
    let decisions: Vec<&str> = found.iter().map(|f| f.event.decision.as_str()).collect();
    assert_eq!(
        decisions,
        ["failed", "processed"],
        "the replay's decisions are archived as a new delivery"
    );
}

/// A replay queues at the tail of the account: a live delivery queued
/// before it runs first, one queued after it runs after.
pub async fn a_replay_never_overtakes_a_live_delivery<I: Inbox>(f: Fixture<I>) {
    let inbox = Arc::clone(&f.inbox);
    let engine = Engine::builder(MemoryStore::new()).build();
    let (calls, fail) = (
        Calls::default(),
        Arc::new(std::sync::atomic::AtomicBool::new(false)),
    );
    let handler = recording(&calls, &fail);
    let record = "course:1_2";
    let old = body(&[learner("e1", "COURSE_ENROLLMENT", T0, 7, record)]);
    inbox.append(delivery(&old, 0)).await.unwrap();
    let jobs = ReplayJobs::new();
    let workers = workers(&engine, &inbox, &jobs);
    drain(&workers, &handler).await;

    let live = |id: &str| body(&[learner(id, "LEARNER_PROGRESS", T0 + 5, 7, record)]);
    inbox
        .append(delivery(&live("live-before"), 20))
        .await
        .unwrap();
    let id = jobs.start(Arc::clone(&inbox), range(ReplayMode::Rerun));
    watch(&jobs, id, |s| s.matched == 1).await;
    inbox
        .append(delivery(&live("live-after"), 21))
        .await
        .unwrap();
    drain(&workers, &handler).await;
    let status = watch(&jobs, id, |s| s.state != ReplayState::Running).await;
    assert_eq!((status.state, status.done), (ReplayState::Done, 1));
    assert_eq!(calls.all(), ["e1", "live-before", "e1", "live-after"]);
}

/// Cancel: no further step is queued, and the step already queued is
/// dropped unprocessed by the workers.
pub async fn a_cancelled_replay_queues_no_more_and_drops_its_step<I: Inbox>(f: Fixture<I>) {
    let inbox = Arc::clone(&f.inbox);
    let engine = Engine::builder(MemoryStore::new()).build();
    let (calls, fail) = (
        Calls::default(),
        Arc::new(std::sync::atomic::AtomicBool::new(false)),
    );
    let handler = recording(&calls, &fail);
    for (i, t) in [(1, 0), (2, 1), (3, 2)] {
        let one = body(&[learner(
            &format!("e{i}"),
            "COURSE_ENROLLMENT",
            T0,
            i,
            "course:1_2",
        )]);
        inbox.append(delivery(&one, t)).await.unwrap();
    }
    let jobs = ReplayJobs::new().with_step(2);
    let workers = workers(&engine, &inbox, &jobs);
    drain(&workers, &handler).await;
    assert_eq!(calls.all().len(), 3);

    let id = jobs.start(Arc::clone(&inbox), range(ReplayMode::Rerun));
    watch(&jobs, id, |s| s.matched == 2).await;
    assert!(jobs.cancel(id));
    assert!(!jobs.cancel(id), "a cancelled job is over");
    drain(&workers, &handler).await;
    let status = jobs.status(id).unwrap();
    assert_eq!(
        (status.state, status.matched, status.done),
        (ReplayState::Cancelled, 2, 0)
    );
    assert_eq!(
        calls.all().len(),
        3,
        "the queued step was dropped unprocessed"
    );
    assert_eq!(inbox.stats(at(100)).await.unwrap().pending, 0);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(jobs.status(id).unwrap().matched, 2, "no further step");
}
