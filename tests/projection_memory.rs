//! The learner projection in memory: the property test through the engine
//! (2,000 generated histories per run), the reads and the CSV export, and
//! one delivery over several rounds of the store's locks.

mod support;

use alm_webhooks::Engine;
use alm_webhooks::store::MemoryStore;
use support::learners;

const HISTORIES: u64 = 2_000;

#[tokio::test]
async fn every_history_converges_to_the_merge_of_its_set() {
    let engine = Engine::builder(MemoryStore::new().with_learner_projection()).build();
    let mut rng = learners::Rng::new(learners::seed());
    let histories: Vec<_> = (0..HISTORIES)
        .map(|h| learners::history(&mut rng, h))
        .collect();
    learners::deliver(&engine, &histories, &mut rng).await;
    let store = engine.store();
    for history in &histories {
        let (account, user) = learners::user(history);
        let instance: alm_webhooks::LoInstanceId =
            learners::instance(history.user, false).parse().unwrap();
        let expected = learners::expected(history);
        learners::assert_same(
            store.learner_record(account, user, &instance),
            &expected,
            history,
        );
        assert_eq!(store.learner_records_of_user(account, user).len(), 1);
        assert_eq!(
            store.learner_records_of_instance(account, &instance).len(),
            1
        );
    }
    let all = store.learner_changes_since(0, usize::MAX);
    assert_eq!(all.records.len(), HISTORIES as usize);
    assert!(
        store
            .learner_changes_since(all.cursor, 10)
            .records
            .is_empty()
    );
    let half = store.learner_changes_since(0, 1_000);
    assert_eq!(half.records.len(), 1_000);
    assert_eq!(
        store
            .learner_changes_since(half.cursor, usize::MAX)
            .records
            .len(),
        1_000
    );
    let (csv, rows) = store.export_learner_csv(Vec::new()).unwrap();
    assert_eq!(rows, HISTORIES);
    assert_eq!(
        String::from_utf8(csv).unwrap().lines().count(),
        HISTORIES as usize + 1
    );
}

#[tokio::test]
async fn without_the_projection_nothing_is_kept() {
    let engine = Engine::builder(MemoryStore::new()).build();
    let mut rng = learners::Rng::new(1);
    let histories: Vec<_> = (0..3).map(|h| learners::history(&mut rng, h)).collect();
    learners::deliver(&engine, &histories, &mut rng).await;
    assert!(
        engine
            .store()
            .learner_changes_since(0, 10)
            .records
            .is_empty()
    );
}

/// One delivery longer than a round of the memory store's locks (256
/// events): each learner's enrollment and completion fall in different
/// rounds, and the record takes both, with one change per record.
#[tokio::test]
async fn a_delivery_of_several_lock_rounds_merges_every_event() {
    use alm_webhooks::projection::LearnerStatus;
    use alm_webhooks::{AccountId, Envelope, LoInstanceId, UserId};

    const LEARNERS: u64 = 300;
    let engine = Engine::builder(MemoryStore::new().with_learner_projection()).build();
    let event = |id: String, name: &str, at: u64, user: u64| {
        format!(
            r#"{{"eventId":"{id}","eventName":"{name}","timestamp":{at},"data":{{"userId":{user},"loId":"course:1","loInstanceId":"course:1_2","dateEnrolled":{at},"dateCompleted":{at}}}}}"#
        )
    };
    let enrollments = (0..LEARNERS).map(|u| event(format!("e{u}"), "COURSE_ENROLLMENT", 1_000, u));
    let completions = (0..LEARNERS).map(|u| event(format!("c{u}"), "COURSE_COMPLETED", 2_000, u));
    let events: Vec<String> = enrollments.chain(completions).collect();
    let body = format!(r#"{{"accountId":1,"events":[{}]}}"#, events.join(","));
    let report = engine
        .process(Envelope::from_slice(body.as_bytes()).unwrap(), |_| async {
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(report.outcomes.len(), 2 * LEARNERS as usize);
    let store = engine.store();
    let instance: LoInstanceId = "course:1_2".parse().unwrap();
    for user in 0..LEARNERS {
        let record = store
            .learner_record(AccountId(1), UserId(user), &instance)
            .unwrap_or_else(|| panic!("no record for learner {user}"));
        assert_eq!(record.status, LearnerStatus::Completed, "learner {user}");
        assert_eq!(record.last_event_id.as_str(), format!("c{user}"));
        assert!(record.date_enrolled.is_some(), "learner {user}");
    }
    let changes = store.learner_changes_since(0, usize::MAX);
    assert_eq!(changes.records.len(), LEARNERS as usize);
}
