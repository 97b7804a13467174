//! The learner projection on PostgreSQL: the property test through the
//! engine (200 generated histories per run: each is a few transactions on
//! a server), the reads, the CSV export, and a user's own commit hook that
//! holds one row per processed event across a process dropped between
//! handler and commit and a rolled-back commit. Each test has a schema of
//! its own (`alm_proj_…`), dropped at the end. Without a server the tests
//! are skipped, except under `CI=true`, where they fail.
#![cfg(feature = "postgres")]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use alm_webhooks::Engine;
use alm_webhooks::projection::{LearnerChanges, LearnerStatus};
use alm_webhooks::store::{
    BoxFuture, ClaimToken, Decided, MemoryStore, PostgresHook, PostgresStore,
};
use alm_webhooks::{AccountId, BoxError, Envelope, UserId};
use support::learners;
use tokio_postgres::Transaction;

const HISTORIES: u64 = 200;

fn url() -> String {
    std::env::var("ALM_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn schema() -> String {
    format!(
        "alm_proj_{}_{:08x}",
        std::process::id(),
        ClaimToken::random().0 as u32
    )
}

async fn connect(schema: &str) -> Option<PostgresStore> {
    let url = url();
    let store = match PostgresStore::migrate(&url, schema).await {
        Ok(()) => PostgresStore::connect_with_schema(&url, schema).await,
        Err(e) => Err(e),
    };
    match store {
        Ok(store) => Some(store),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("PostgreSQL not reachable at {url} (CI=true, so this fails): {e:?}")
        }
        Err(e) => {
            eprintln!("skipped: PostgreSQL not reachable at {url}: {e}");
            None
        }
    }
}

#[tokio::test]
async fn every_history_converges_to_the_merge_of_its_set() {
    let schema = schema();
    let Some(store) = connect(&schema).await else {
        return;
    };
    let store = store.with_learner_projection().await.unwrap();
    let engine = Engine::builder(store.clone()).build();
    let mut rng = learners::Rng::new(learners::seed());
    let histories: Vec<_> = (0..HISTORIES)
        .map(|h| learners::history(&mut rng, h))
        .collect();
    learners::deliver(&engine, &histories, &mut rng).await;
    for history in &histories {
        let (account, user) = learners::user(history);
        let expected = learners::expected(history);
        let instance: alm_webhooks::LoInstanceId =
            learners::instance(history.user, false).parse().unwrap();
        let actual = store
            .learner_record(account, user, &instance)
            .await
            .unwrap();
        learners::assert_same(actual, &expected, history);
        assert_eq!(
            store
                .learner_records_of_user(account, user)
                .await
                .unwrap()
                .len(),
            1
        );
        let of_instance = store
            .learner_records_of_instance(account, &instance)
            .await
            .unwrap();
        assert_eq!(of_instance.len(), 1);
    }
    let all = store.learner_changes_since(0, 10_000).await.unwrap();
    assert_eq!(all.records.len(), HISTORIES as usize);
    assert!(
        store
            .learner_changes_since(all.cursor, 10)
            .await
            .unwrap()
            .records
            .is_empty()
    );
    let (csv, rows) = store.export_learner_csv(Vec::new()).await.unwrap();
    assert_eq!(rows, HISTORIES);
    assert_eq!(
        String::from_utf8_lossy(&csv).lines().count(),
        HISTORIES as usize + 1
    );
    // The server renders the CSV from the columns: byte for byte what the
    // crate's writer makes of the records rebuilt from their merge state.
    let mut expected = alm_webhooks::projection::TranscriptCsv::new(Vec::new()).unwrap();
    let records = store.learner_records_stream().await.unwrap();
    futures_util::pin_mut!(records);
    while let Some(record) = futures_util::StreamExt::next(&mut records).await {
        expected.write(&record.unwrap()).unwrap();
    }
    let (csv, expected) = (
        String::from_utf8(csv).unwrap(),
        String::from_utf8(expected.finish().unwrap()).unwrap(),
    );
    for (n, (got, want)) in csv.lines().zip(expected.lines()).enumerate() {
        assert_eq!(got, want, "line {n} of the CSV");
    }
    assert_eq!(csv.len(), expected.len());
    store.drop_schema().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_at_once_converge_too() {
    let schema = schema();
    let Some(store) = connect(&schema).await else {
        return;
    };
    let store = store.with_learner_projection().await.unwrap();
    let (one, two) = (
        Engine::builder(store.clone()).build(),
        Engine::builder(store.clone()).build(),
    );
    let mut rng = learners::Rng::new(learners::seed());
    // Few records, many events each: commits of one record meet.
    let histories: Vec<_> = (0..40).map(|h| learners::history(&mut rng, h)).collect();
    learners::deliver_concurrently([&one, &two], &histories, &mut rng).await;
    for history in &histories {
        let (account, user) = learners::user(history);
        let instance: alm_webhooks::LoInstanceId =
            learners::instance(history.user, false).parse().unwrap();
        let actual = store
            .learner_record(account, user, &instance)
            .await
            .unwrap();
        learners::assert_same(actual, &learners::expected(history), history);
    }
    store.drop_schema().await.unwrap();
}

fn envelope(events: &[&str]) -> Envelope {
    let body = format!(r#"{{"accountId":1,"events":[{}]}}"#, events.join(","));
    Envelope::from_slice(body.as_bytes()).unwrap()
}

const ENROLL: &str = r#"{"eventId":"a","eventName":"COURSE_ENROLLMENT","timestamp":10,"data":{"userId":7,"loId":"course:1","loInstanceId":"course:1_2"}}"#;
const COMPLETE: &str = r#"{"eventId":"b","eventName":"COURSE_COMPLETED","timestamp":30,"data":{"userId":7,"loId":"course:1","loInstanceId":"course:1_2","hasPassed":true}}"#;
const PROGRESS: &str = r#"{"eventId":"c","eventName":"LEARNER_PROGRESS","timestamp":20,"data":{"userId":7,"loId":"course:1","loInstanceId":"course:1_2","progressPercent":50}}"#;

/// A user's hook: one row per processed event in a table of their own;
/// fails while `failures` is above zero.
struct Processed {
    table: String,
    failures: Arc<AtomicUsize>,
}

impl PostgresHook for Processed {
    fn on_commit<'a>(
        &'a self,
        tx: &'a Transaction<'_>,
        decided: &'a [Decided<'_>],
    ) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            for d in decided.iter().filter(|d| d.is_processed()) {
                let sql = format!("INSERT INTO {} (event_id) VALUES ($1)", self.table);
                tx.execute(&sql, &[&d.event.event_id.as_str()]).await?;
            }
            let left = self.failures.load(Ordering::SeqCst);
            if left > 0 {
                self.failures.store(left - 1, Ordering::SeqCst);
                return Err("the disk is full".into());
            }
            Ok(())
        })
    }
}

async fn counts(url: &str, table: &str) -> Vec<(String, i64)> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let sql = format!("SELECT event_id, COUNT(*) FROM {table} GROUP BY event_id ORDER BY event_id");
    client
        .query(&sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[tokio::test]
async fn a_users_hook_holds_one_row_per_processed_event_after_a_crash_and_a_failed_commit() {
    let schema = schema();
    let Some(store) = connect(&schema).await else {
        return;
    };
    let table = format!("\"{schema}\".my_processed");
    let (client, connection) = tokio_postgres::connect(&url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE TABLE {table} (event_id TEXT NOT NULL)"))
        .await
        .unwrap();
    let failures = Arc::new(AtomicUsize::new(0));
    let hooked = |store: PostgresStore| {
        let hook = Processed {
            table: table.clone(),
            failures: Arc::clone(&failures),
        };
        async move {
            store
                .with_hook(hook)
                .with_learner_projection()
                .await
                .unwrap()
        }
    };
    let runs = Arc::new(AtomicUsize::new(0));
    // 1. The process is dropped while the handler of the second event runs.
    {
        let engine = Engine::builder(hooked(store.clone()).await)
            .claim_lease(Duration::from_millis(300))
            .build();
        let runs = Arc::clone(&runs);
        let handler = move |event: alm_webhooks::Event| {
            let runs = Arc::clone(&runs);
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
                if event.event_id.as_str() == "c" {
                    std::future::pending::<()>().await;
                }
                Ok(())
            }
        };
        let delivery = engine.process(envelope(&[ENROLL, PROGRESS, COMPLETE]), handler);
        assert!(
            tokio::time::timeout(Duration::from_millis(500), delivery)
                .await
                .is_err()
        );
    }
    assert!(counts(&url(), &table).await.is_empty());
    tokio::time::sleep(Duration::from_millis(350)).await;
    // 2. Restarted, the commit fails every time the engine tries it (six
    //    times: once, again at once, then after 25, 100, 250 and 500 ms):
    //    all rolls back.
    failures.store(6, Ordering::SeqCst);
    let engine = Engine::builder(hooked(store.clone()).await)
        .claim_lease(Duration::from_millis(300))
        .build();
    let handled = |_| {
        runs.fetch_add(1, Ordering::SeqCst);
        async { Ok(()) }
    };
    let first = engine
        .process(envelope(&[ENROLL, PROGRESS, COMPLETE]), handled)
        .await;
    assert!(
        !first.as_ref().is_ok_and(|r| r.is_acknowledged()),
        "{first:?}"
    );
    assert!(counts(&url(), &table).await.is_empty());
    assert_eq!(failures.load(Ordering::SeqCst), 0);
    tokio::time::sleep(Duration::from_millis(350)).await;
    // 3. ALM delivers again, twice: one row per processed event.
    for _ in 0..2 {
        let report = engine
            .process(envelope(&[ENROLL, PROGRESS, COMPLETE]), handled)
            .await
            .unwrap();
        assert!(report.is_acknowledged(), "{report:?}");
    }
    assert_eq!(
        counts(&url(), &table).await,
        vec![
            ("a".to_owned(), 1),
            ("b".to_owned(), 1),
            ("c".to_owned(), 1)
        ]
    );
    assert!(runs.load(Ordering::SeqCst) >= 6);
    let record = store
        .learner_record(AccountId(1), UserId(7), &"course:1_2".parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.status, LearnerStatus::Completed);
    store.drop_schema().await.unwrap();
}

/// A store keeping the learner table in `schema`, and its engine, which
/// has processed [`ENROLL`] and [`PROGRESS`] (`None`: no server).
async fn enrolled_with_progress(schema: &str) -> Option<(PostgresStore, Engine<PostgresStore>)> {
    let store = connect(schema).await?;
    let engine = Engine::builder(store.clone().with_learner_projection().await.unwrap()).build();
    for e in [ENROLL, PROGRESS] {
        engine
            .process(envelope(&[e]), |_| async { Ok(()) })
            .await
            .unwrap();
    }
    Some((store, engine))
}

/// The change feed of a new schema's store after [`enrolled_with_progress`],
/// then after one more delivery of `events` (acknowledged).
async fn changes_after_enrolled_with_progress(
    events: &[&str],
) -> Option<(PostgresStore, LearnerChanges, LearnerChanges)> {
    let (store, engine) = enrolled_with_progress(&schema()).await?;
    let before = store.learner_changes_since(0, 10).await.unwrap();
    let report = engine
        .process(envelope(events), |_| async { Ok(()) })
        .await
        .unwrap();
    assert!(report.is_acknowledged(), "{report:?}");
    let after = store
        .learner_changes_since(before.cursor, 10)
        .await
        .unwrap();
    Some((store, before, after))
}

/// A progress older than the record's newest, arriving last: it wins no
/// field, so the row is not written again (its `seq` stays).
const OLDER_PROGRESS: &str = r#"{"eventId":"d","eventName":"LEARNER_PROGRESS","timestamp":15,"data":{"userId":7,"loId":"course:1","loInstanceId":"course:1_2","progressPercent":40}}"#;

#[tokio::test]
async fn an_event_that_wins_no_field_leaves_the_row_as_it_was() {
    let Some((store, before, after)) =
        changes_after_enrolled_with_progress(&[OLDER_PROGRESS]).await
    else {
        return;
    };
    assert_eq!(before.records.len(), 1);
    assert!(after.records.is_empty(), "{:?}", after.records);
    assert_eq!(after.cursor, before.cursor);
    let all = store.learner_changes_since(0, 10).await.unwrap();
    assert_eq!(all.records, before.records);
    store.drop_schema().await.unwrap();
}

/// Another learner's enrollment, with its source: a record of its own.
const OTHER_ENROLL: &str = r#"{"eventId":"e","eventName":"COURSE_ENROLLMENT","timestamp":12,"data":{"userId":8,"loId":"course:1","loInstanceId":"course:1_2","enrollmentSource":"ADMIN_ENROLL"}}"#;

/// One commit that changes a record (the upsert) and adds one (the binary
/// `COPY`): both are numbered after every earlier change, and both rows
/// hold what the memory store's projection holds for the same events, in
/// their merge state (which the reads decode) and in their columns (which
/// the CSV export reads).
#[tokio::test]
async fn a_commit_that_changes_one_record_and_adds_another_writes_both() {
    let Some((store, _, after)) =
        changes_after_enrolled_with_progress(&[COMPLETE, OTHER_ENROLL]).await
    else {
        return;
    };
    let mut users: Vec<u64> = after.records.iter().map(|r| r.user_id.get()).collect();
    users.sort_unstable();
    assert_eq!(users, [7, 8], "{:?}", after.records);

    let oracle = Engine::builder(MemoryStore::new().with_learner_projection()).build();
    for events in [&[ENROLL][..], &[PROGRESS], &[COMPLETE, OTHER_ENROLL]] {
        oracle
            .process(envelope(events), |_| async { Ok(()) })
            .await
            .unwrap();
    }
    for record in &after.records {
        let mut expected = oracle
            .store()
            .learner_record(record.account_id, record.user_id, &record.lo_instance_id)
            .unwrap();
        expected.updated_at = record.updated_at;
        assert_eq!(*record, expected);
    }
    // Every column but the last (`Updated At`, the store's clock).
    let without_updated_at = |csv: Vec<u8>| -> Vec<String> {
        let text = String::from_utf8(csv).unwrap();
        text.lines()
            .map(|line| line.rsplit_once(',').unwrap().0.to_owned())
            .collect()
    };
    let (columns, rows) = store.export_learner_csv(Vec::new()).await.unwrap();
    let (expected, _) = oracle.store().export_learner_csv(Vec::new()).unwrap();
    assert_eq!(rows, 2);
    assert_eq!(without_updated_at(columns), without_updated_at(expected));
    let completed = after.records.iter().find(|r| r.user_id.get() == 7).unwrap();
    assert_eq!(completed.status, LearnerStatus::Completed);
    assert_eq!(completed.has_passed, Some(true));
    let added = after.records.iter().find(|r| r.user_id.get() == 8).unwrap();
    assert_eq!(
        added.enrollment_source.as_ref().map(|s| s.as_str()),
        Some("ADMIN_ENROLL")
    );
    assert_eq!(added.date_completed, None);
    store.drop_schema().await.unwrap();
}

#[tokio::test]
async fn a_jsonb_merge_state_of_an_earlier_release_is_moved_to_text() {
    let schema = schema();
    let Some((store, _)) = enrolled_with_progress(&schema).await else {
        return;
    };
    let instance: alm_webhooks::LoInstanceId = "course:1_2".parse().unwrap();
    let before = store
        .learner_record(AccountId(1), UserId(7), &instance)
        .await
        .unwrap()
        .unwrap();
    // The column as an earlier release made it: JSONB (which writes its
    // text back with spaces, in its own key order).
    let (client, connection) = tokio_postgres::connect(&url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let table = format!("\"{schema}\".alm_learner_records");
    let column_type = || async {
        let row = client
            .query_one(
                "SELECT data_type FROM information_schema.columns WHERE table_schema = $1 \
                 AND table_name = 'alm_learner_records' AND column_name = 'merge_state'",
                &[&schema],
            )
            .await
            .unwrap();
        row.get::<_, String>(0)
    };
    assert_eq!(column_type().await, "text");
    client
        .batch_execute(&format!(
            "ALTER TABLE {table} ALTER COLUMN merge_state TYPE JSONB USING merge_state::jsonb"
        ))
        .await
        .unwrap();
    assert_eq!(column_type().await, "jsonb");
    PostgresStore::migrate(&url(), &schema).await.unwrap();
    assert_eq!(column_type().await, "text");
    let again = PostgresStore::connect_with_schema(&url(), &schema)
        .await
        .unwrap()
        .with_learner_projection()
        .await
        .unwrap();
    assert_eq!(
        again
            .learner_record(AccountId(1), UserId(7), &instance)
            .await
            .unwrap(),
        Some(before)
    );
    // The next event merges into the moved row.
    Engine::builder(again.clone())
        .build()
        .process(envelope(&[COMPLETE]), |_| async { Ok(()) })
        .await
        .unwrap();
    let after = again
        .learner_record(AccountId(1), UserId(7), &instance)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.status, LearnerStatus::Completed);
    store.drop_schema().await.unwrap();
}
