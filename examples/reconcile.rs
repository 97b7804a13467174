//! A dropped completion, found and repaired.
//!
//! ALM's API double (the simulator's) stands in for an account. Three
//! learners enroll in a course and complete it, but the webhook event of
//! one completion is lost on the way. The learner table (kept by the
//! engine's handler) misses it; one report job finds it; the repair goes
//! through the engine like any event.
//!
//! ```sh
//! cargo run --example reconcile --features alm-api,simulator
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alm_webhooks::Engine;
use alm_webhooks::alm_api::reconcile::{LearnerRecord, LearnerStatus, LearnerTable, Reconciler};
use alm_webhooks::alm_api::{AlmApi, ApiConfig};
use alm_webhooks::simulator::alm_api::{AlmApiDouble, DoubleOptions};
use alm_webhooks::simulator::scenario::{envelope, learner_event};
use alm_webhooks::store::MemoryStore;
use alm_webhooks::{
    AccountId, BoxError, Envelope, Event, EventData, LoInstanceId, Timestamp, UserId,
};

/// The learner table: written only by the engine's handler.
#[derive(Clone, Default)]
struct Table(Arc<Mutex<BTreeMap<(UserId, LoInstanceId), LearnerRecord>>>);

impl LearnerTable for Table {
    async fn learner_records(&self, _account: AccountId) -> Result<Vec<LearnerRecord>, BoxError> {
        Ok(self.0.lock().unwrap().values().cloned().collect())
    }
}

impl Table {
    fn apply(&self, event: &Event) {
        let (Some(user), Some(instance)) = (event.user_id(), event.lo_instance_id().cloned())
        else {
            return;
        };
        let origin = event
            .other
            .get("origin")
            .and_then(|o| o.as_str())
            .unwrap_or("webhook");
        let mut rows = self.0.lock().unwrap();
        let row = rows
            .entry((user, instance.clone()))
            .or_insert_with(|| LearnerRecord::new(user, instance, LearnerStatus::Enrolled));
        if let EventData::Completion(d) = &event.data {
            row.status = LearnerStatus::Completed;
            row.date_completed = d.date_completed.clone();
        }
        println!(
            "  table: {} {} -> {:?} (from {origin})",
            event.event_name, user, row.status
        );
    }
}

async fn deliver(
    engine: &Engine<MemoryStore>,
    table: &Table,
    envelope: Envelope,
) -> Result<(), BoxError> {
    let table = table.clone();
    engine
        .process(envelope, move |event| {
            table.apply(&event);
            async { Ok::<(), BoxError>(()) }
        })
        .await?;
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let double = AlmApiDouble::start(DoubleOptions::default()).await?;
    let engine = Engine::builder(MemoryStore::new()).build();
    let table = Table::default();

    let course = "course:4242_1";
    let mut sent = Vec::new();
    for user in 1..=3 {
        sent.push(learner_event(
            &format!("enr-{user}"),
            "COURSE_ENROLLMENT",
            1_725_000_000,
            user,
            course,
        ));
    }
    let completions: Vec<_> = (1..=3)
        .map(|user| {
            learner_event(
                &format!("done-{user}"),
                "COURSE_COMPLETED",
                1_725_003_600,
                user,
                course,
            )
        })
        .collect();
    // ALM knows every event; learner 2's completion never reaches us.
    double.record_sent(&envelope(1234, &sent));
    double.record_sent(&envelope(1234, &completions));
    sent.push(completions[0].clone());
    sent.push(completions[2].clone());
    println!("webhooks (learner 2's completion is lost):");
    deliver(
        &engine,
        &table,
        Envelope::from_slice(&envelope(1234, &sent))?,
    )
    .await?;

    let options = double.options();
    let api = AlmApi::new(ApiConfig::new(
        double.base(),
        &options.client_id,
        &options.client_secret,
        &options.refresh_token,
    ))?;
    let reconciler = Reconciler::new(api, table.clone(), AccountId(1234));
    let found = reconciler
        .bulk(
            Timestamp::from_epoch(1_724_990_000)?,
            Timestamp::from_epoch(1_725_100_000)?,
            Duration::from_millis(100),
            Duration::from_secs(30),
        )
        .await?;
    println!(
        "reconciliation (one report job): {} difference(s)",
        found.differences.len()
    );
    for d in &found.differences {
        println!("  user {} in {}: {:?}", d.user_id, d.lo_instance_id, d.kind);
    }
    if let Some(repairs) = found.repair_envelope() {
        println!("repair, through the engine:");
        deliver(&engine, &table, repairs).await?;
    }
    let rows = table.learner_records(AccountId(1234)).await?;
    let completed = rows
        .iter()
        .filter(|r| r.status == LearnerStatus::Completed)
        .count();
    println!("completed in the table: {completed} of {}", rows.len());
    assert_eq!(completed, 3);
    Ok(())
}
