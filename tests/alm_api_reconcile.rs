//! Reconciliation against the double: a week of learner events with 1 % of
//! them dropped before sending; one report job finds every record the
//! table got wrong, the repairs go through the engine, and records that
//! ALM and the table agreed on are not touched.
#![cfg(all(feature = "alm-api", feature = "simulator"))]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alm_webhooks::alm_api::reconcile::{
    DifferenceKind, LearnerRecord, LearnerStatus, LearnerTable, ORIGIN_FIELD, ReconcileError,
    Reconciler,
};
use alm_webhooks::alm_api::{AlmApi, ApiConfig, WhenOverBudget};
use alm_webhooks::engine::Engine;
use alm_webhooks::simulator::alm_api::{AlmApiDouble, DoubleOptions};
use alm_webhooks::simulator::scenario::{EventJson, drop_share, envelope};
use alm_webhooks::store::MemoryStore;
use alm_webhooks::{
    AccountId, BoxError, Envelope, Event, EventData, LoInstanceId, Timestamp, UserId,
};
use serde_json::json;

type Key = (UserId, LoInstanceId);

/// The learner table as a projection keeps it (the stand-in for issue 23's):
/// written only by the engine's handler.
#[derive(Clone, Default)]
struct Table(Arc<Mutex<BTreeMap<Key, LearnerRecord>>>);

impl LearnerTable for Table {
    async fn learner_records(&self, _account: AccountId) -> Result<Vec<LearnerRecord>, BoxError> {
        Ok(self.0.lock().unwrap().values().cloned().collect())
    }
}

impl Table {
    /// The handler: applies what the engine decided to process.
    fn apply(&self, event: &Event) {
        let (Some(user), Some(instance)) = (event.user_id(), event.lo_instance_id().cloned())
        else {
            return;
        };
        let mut rows = self.0.lock().unwrap();
        let row = rows
            .entry((user, instance.clone()))
            .or_insert_with(|| LearnerRecord::new(user, instance, LearnerStatus::Enrolled));
        match &event.data {
            EventData::Enrollment(d) => row.date_enrolled = d.date_enrolled.clone(),
            EventData::LearnerProgress(d) if row.status != LearnerStatus::Completed => {
                row.status = LearnerStatus::Started;
                row.progress_percent = d.progress_percent.map(|p| p.get() as u8);
            }
            EventData::Completion(d) => {
                row.status = LearnerStatus::Completed;
                row.progress_percent = Some(100);
                row.date_completed = d.date_completed.clone();
            }
            _ => {}
        }
    }

    fn snapshot(&self) -> BTreeMap<Key, LearnerRecord> {
        self.0.lock().unwrap().clone()
    }
}

const WEEK_START: i64 = 1_725_000_000;

/// 1,000 learners × 10 courses: an enrollment, progress, and for 6 in 10 a
/// completion, spread over a week: 100,000 events.
fn week() -> Vec<EventJson> {
    let mut events = Vec::new();
    let mut clock = WEEK_START;
    for step in 0..10u64 {
        for user in 1..=1000u64 {
            for course in 0..10u64 {
                let instance = format!("course:{}_{}", 500 + course, 900 + course);
                let lo = format!("course:{}", 500 + course);
                clock += 6; // 100,000 events over about 7 days
                let id = format!("ev-{user}-{course}-{step}");
                let data = json!({"userId": user, "loId": lo, "loInstanceId": instance, "loType": "course"});
                let event = match step {
                    0 => {
                        json!({"eventId": id, "eventName": "COURSE_ENROLLMENT", "timestamp": clock,
                        "data": {"dateEnrolled": clock, "enrollmentSource": "SELF_ENROLL", "userId": user,
                                 "loId": lo, "loInstanceId": instance, "loType": "course"}})
                    }
                    9 if (user + course) % 10 < 6 => {
                        json!({"eventId": id, "eventName": "COURSE_COMPLETED",
                        "timestamp": clock, "data": {"dateCompleted": clock, "hasPassed": true, "userId": user,
                                 "loId": lo, "loInstanceId": instance, "loType": "course"}})
                    }
                    _ => {
                        let mut data = data;
                        data["progressPercent"] = json!(step * 10);
                        data["dateStarted"] = json!(WEEK_START);
                        json!({"eventId": id, "eventName": "LEARNER_PROGRESS", "timestamp": clock, "data": data})
                    }
                };
                events.push(event);
            }
        }
    }
    events
}

fn truth_record(double: &AlmApiDouble, key: &Key) -> Option<(LearnerStatus, u8)> {
    let truth = double.truth(key.0, &key.1)?;
    Some((
        LearnerStatus::from_alm(truth.state).unwrap(),
        truth.progress_percent,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_week_with_one_percent_dropped_is_found_by_one_report_and_repaired_through_the_engine() {
    let double = AlmApiDouble::start(DoubleOptions {
        job_delay: Duration::from_millis(300),
        ..DoubleOptions::default()
    })
    .await
    .unwrap();
    let events = week();
    assert_eq!(events.len(), 100_000);
    let (sent, dropped) = drop_share(events, 0.01, 27);
    let dropped_count = dropped.len();
    assert!((800..1200).contains(&dropped_count), "{dropped_count}");

    // ALM knows everything, in the order it happened.
    let all: Vec<_> = {
        let mut all: Vec<_> = sent.iter().chain(&dropped).cloned().collect();
        all.sort_by_key(|e| e["timestamp"].as_i64());
        all
    };
    for chunk in all.chunks(1000) {
        double.record_sent(&envelope(1234, chunk));
    }
    // The receiver gets what was not dropped, through the engine.
    let engine = Engine::builder(MemoryStore::new()).build();
    let table = Table::default();
    let started = Instant::now();
    for chunk in sent.chunks(100) {
        let body = envelope(1234, chunk);
        let t = table.clone();
        engine
            .process(Envelope::from_slice(&body).unwrap(), move |event| {
                t.apply(&event);
                async { Ok::<(), BoxError>(()) }
            })
            .await
            .unwrap();
    }
    let delivered_in = started.elapsed();

    let before = table.snapshot();
    let wrong: BTreeSet<Key> = {
        let mut keys: BTreeSet<Key> = before.keys().cloned().collect();
        for e in &dropped {
            keys.insert((
                UserId(e["data"]["userId"].as_u64().unwrap()),
                e["data"]["loInstanceId"].as_str().unwrap().parse().unwrap(),
            ));
        }
        keys.into_iter()
            .filter(|k| {
                let ours = before
                    .get(k)
                    .map(|r| (r.status, r.progress_percent.unwrap_or(0)));
                ours != truth_record(&double, k)
            })
            .collect()
    };
    assert!(!wrong.is_empty());

    // Bulk: one report job, no budgeted call.
    let o = double.options();
    let api = AlmApi::new(ApiConfig::new(
        double.base(),
        &o.client_id,
        &o.client_secret,
        &o.refresh_token,
    ))
    .unwrap();
    let reconciler = Reconciler::new(api, table.clone(), AccountId(1234));
    let from = Timestamp::from_epoch(WEEK_START).unwrap();
    let to = Timestamp::from_epoch(WEEK_START + 8 * 86_400).unwrap();
    let found = reconciler
        .bulk(
            from.clone(),
            to.clone(),
            Duration::from_millis(100),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    let found_keys: BTreeSet<Key> = found
        .differences
        .iter()
        .filter(|d| !matches!(d.kind, DifferenceKind::CompletionDate))
        .map(|d| (d.user_id, d.lo_instance_id.clone()))
        .collect();
    assert_eq!(
        found_keys, wrong,
        "every record the table got wrong, and only those"
    );
    let counts = double.counts();
    assert_eq!(
        (counts.jobs_created, counts.limited_requests),
        (1, 0),
        "{counts:?}"
    );

    // A second report the same day is refused (default: 1 a day).
    let again = reconciler
        .bulk(
            from,
            to,
            Duration::from_millis(100),
            Duration::from_secs(30),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(again, ReconcileError::ReportLimit { per_day: 1, .. }),
        "{again:?}"
    );

    // Repair: synthetic events through the engine, marked as reconciliation.
    let repairs = found.repair_envelope().expect("something to repair");
    assert!(
        repairs
            .parsed()
            .all(|e| e.other[ORIGIN_FIELD] == "reconciliation")
    );
    let touched = Arc::new(Mutex::new(BTreeSet::new()));
    let (t, seen) = (table.clone(), Arc::clone(&touched));
    engine
        .process(repairs, move |event| {
            seen.lock().unwrap().insert((
                event.user_id().unwrap(),
                event.lo_instance_id().unwrap().clone(),
            ));
            t.apply(&event);
            async { Ok::<(), BoxError>(()) }
        })
        .await
        .unwrap();
    let after = table.snapshot();
    for key in &wrong {
        let ours = after
            .get(key)
            .map(|r| (r.status, r.progress_percent.unwrap_or(0)));
        assert_eq!(ours, truth_record(&double, key), "{key:?} repaired");
    }
    let touched = touched.lock().unwrap().clone();
    assert!(
        touched.is_subset(&wrong),
        "0 records changed that ALM and the table agreed on"
    );
    for (key, row) in &before {
        if !wrong.contains(key) {
            assert_eq!(after.get(key), Some(row), "{key:?} untouched");
        }
    }
    eprintln!(
        "100,000 events, {dropped_count} dropped, {} records wrong, {} differences, delivered in {delivered_in:?}",
        wrong.len(),
        found.differences.len()
    );

    // Targeted: one learner's enrollments, within the budget, agree now.
    let (user, _) = wrong.iter().next().unwrap().clone();
    let check = reconciler
        .check_user(user, WhenOverBudget::Fail)
        .await
        .unwrap();
    assert!(
        check
            .differences
            .iter()
            .all(|d| matches!(d.kind, DifferenceKind::CompletionDate)),
        "{:?}",
        check.differences
    );
    assert!(
        double.counts().limited_requests <= 2,
        "{:?}",
        double.counts()
    );
}
