//! The learner projection on SQLite: the property test through the engine
//! (300 generated histories per run, fewer than the pure merge's 100,000
//! because each is a few transactions on a file), the reads, the CSV
//! export, and a user's own commit hook that holds one row per processed
//! event across a process dropped between handler and commit.
#![cfg(feature = "sqlite")]

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use alm_webhooks::Engine;
use alm_webhooks::projection::LearnerStatus;
use alm_webhooks::store::rusqlite::{self, Transaction};
use alm_webhooks::store::{ClaimToken, Decided, SqliteStore};
use alm_webhooks::{AccountId, BoxError, Envelope, UserId};
use support::learners;

const HISTORIES: u64 = 300;

struct TempDb(PathBuf);

impl TempDb {
    fn new() -> Self {
        let random = ClaimToken::random().0 as u64;
        let name = format!("alm-proj-{}-{random:016x}.db", std::process::id());
        Self(std::env::temp_dir().join(name))
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut path = self.0.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

#[tokio::test]
async fn every_history_converges_to_the_merge_of_its_set() {
    let db = TempDb::new();
    let store = SqliteStore::open(&db.0)
        .unwrap()
        .with_learner_projection()
        .await
        .unwrap();
    let engine = Engine::builder(store).build();
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
        let actual = engine
            .store()
            .learner_record(account, user, &instance)
            .await
            .unwrap();
        learners::assert_same(actual, &expected, history);
        let of_user = engine
            .store()
            .learner_records_of_user(account, user)
            .await
            .unwrap();
        assert_eq!(of_user.len(), 1);
        let of_instance = engine
            .store()
            .learner_records_of_instance(account, &instance)
            .await
            .unwrap();
        assert_eq!(of_instance.len(), 1);
        assert_eq!(of_instance[0].user_id, user);
    }
    // The change feed gives every record once, then nothing.
    let all = engine
        .store()
        .learner_changes_since(0, 10_000)
        .await
        .unwrap();
    assert_eq!(all.records.len(), HISTORIES as usize);
    let none = engine
        .store()
        .learner_changes_since(all.cursor, 10)
        .await
        .unwrap();
    assert!(none.records.is_empty());
    assert_eq!(none.cursor, all.cursor);
    let (csv, rows) = engine.store().export_learner_csv(Vec::new()).await.unwrap();
    assert_eq!(rows, HISTORIES);
    let text = String::from_utf8(csv).unwrap();
    assert_eq!(text.lines().count(), HISTORIES as usize + 1);
    assert!(text.starts_with("Account ID,User ID,Training ID,Training Type,Instance ID,Status"));
    // The export copies the stored columns: byte for byte what the crate's
    // writer makes of the records rebuilt from their merge state.
    let mut expected = alm_webhooks::projection::TranscriptCsv::new(Vec::new()).unwrap();
    for account in engine.store().learner_accounts().await.unwrap() {
        let records = engine
            .store()
            .learner_records_of_account(account)
            .await
            .unwrap();
        for record in &records {
            expected.write(record).unwrap();
        }
    }
    let expected = String::from_utf8(expected.finish().unwrap()).unwrap();
    for (n, (got, want)) in text.lines().zip(expected.lines()).enumerate() {
        assert_eq!(got, want, "line {n} of the CSV");
    }
    assert_eq!(text.len(), expected.len());
}

fn envelope(events: &[&str]) -> Envelope {
    let body = format!(r#"{{"accountId":1,"events":[{}]}}"#, events.join(","));
    Envelope::from_slice(body.as_bytes()).unwrap()
}

const ENROLL: &str = r#"{"eventId":"a","eventName":"COURSE_ENROLLMENT","timestamp":10,"data":{"userId":7,"loId":"course:1","loInstanceId":"course:1_2","enrollmentSource":"SELF_ENROLL"}}"#;
const COMPLETE: &str = r#"{"eventId":"b","eventName":"COURSE_COMPLETED","timestamp":30,"data":{"userId":7,"loId":"course:1","loInstanceId":"course:1_2","dateCompleted":30,"hasPassed":true}}"#;
const PROGRESS: &str = r#"{"eventId":"c","eventName":"LEARNER_PROGRESS","timestamp":20,"data":{"userId":7,"loId":"course:1","loInstanceId":"course:1_2","progressPercent":50,"dateStarted":15}}"#;

#[tokio::test]
async fn ignored_events_are_merged_too() {
    let store = SqliteStore::open_in_memory()
        .unwrap()
        .with_learner_projection()
        .await
        .unwrap();
    let engine = Engine::builder(store).build();
    // The progress arrives after the completion: the rules ignore it (rule
    // 2), the record still takes its `dateStarted`.
    for e in [ENROLL, COMPLETE, PROGRESS] {
        engine
            .process(envelope(&[e]), |_| async { Ok(()) })
            .await
            .unwrap();
    }
    let record = engine
        .store()
        .learner_record(AccountId(1), UserId(7), &"course:1_2".parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.status, LearnerStatus::Completed);
    assert_eq!(record.progress_percent, 100.0);
    assert_eq!(record.has_passed, Some(true));
    assert_eq!(record.last_event_id.as_str(), "b");
    assert_eq!(record.date_started.map(|t| t.unix_timestamp()), Some(15));
    assert_eq!(
        record.enrollment_source.map(|s| s.to_string()).as_deref(),
        Some("SELF_ENROLL")
    );
}

/// A user's hook: one row per processed event in a table of their own.
fn processed_rows(tx: &Transaction<'_>, decided: &[Decided<'_>]) -> Result<(), BoxError> {
    for d in decided.iter().filter(|d| d.is_processed()) {
        tx.execute(
            "INSERT INTO my_processed (event_id) VALUES (?1)",
            [d.event.event_id.as_str()],
        )?;
    }
    Ok(())
}

fn counts(db: &TempDb) -> Vec<(String, i64)> {
    let conn = rusqlite::Connection::open(&db.0).unwrap();
    let mut statement = conn
        .prepare("SELECT event_id, COUNT(*) FROM my_processed GROUP BY event_id ORDER BY event_id")
        .unwrap();
    statement
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

async fn open(db: &TempDb) -> SqliteStore {
    let store = SqliteStore::open(&db.0).unwrap();
    store
        .run_sql("CREATE TABLE IF NOT EXISTS my_processed (event_id TEXT NOT NULL)")
        .await
        .unwrap();
    store
        .with_hook(processed_rows)
        .with_learner_projection()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_users_hook_holds_one_row_per_processed_event_after_a_crash_and_a_failed_commit() {
    let db = TempDb::new();
    let runs = Arc::new(AtomicUsize::new(0));
    // 1. The process is dropped while the handler of the second event
    //    runs: the first event's handler ran, nothing is committed.
    {
        let engine = Engine::builder(open(&db).await)
            .claim_lease(Duration::from_millis(200))
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
            tokio::time::timeout(Duration::from_millis(300), delivery)
                .await
                .is_err()
        );
    }
    assert!(counts(&db).is_empty());
    tokio::time::sleep(Duration::from_millis(250)).await;
    // 2. Restarted, the commit fails (a hook that fails, as a disk that
    //    fills, every time the engine tries the commit: six times, once,
    //    again at once, then after 25, 100, 250 and 500 ms): the decisions
    //    and both hooks' rows roll back.
    let failures = Arc::new(AtomicUsize::new(6));
    let failing = {
        let failures = Arc::clone(&failures);
        move |_: &Transaction<'_>, _: &[Decided<'_>]| -> Result<(), BoxError> {
            let left = failures.load(Ordering::SeqCst);
            if left > 0 {
                failures.store(left - 1, Ordering::SeqCst);
                return Err("the disk is full".into());
            }
            Ok(())
        }
    };
    let engine = Engine::builder(open(&db).await.with_hook(failing))
        .claim_lease(Duration::from_millis(200))
        .build();
    let handled = |_| {
        runs.fetch_add(1, Ordering::SeqCst);
        async { Ok(()) }
    };
    let first = engine
        .process(envelope(&[ENROLL, PROGRESS, COMPLETE]), handled)
        .await;
    let acknowledged = first.as_ref().is_ok_and(|r| r.is_acknowledged());
    assert!(
        !acknowledged,
        "the failed commit must not be acknowledged: {first:?}"
    );
    assert!(counts(&db).is_empty());
    assert_eq!(failures.load(Ordering::SeqCst), 0);
    tokio::time::sleep(Duration::from_millis(250)).await;
    // 3. ALM delivers again (twice): every processed event has one row.
    for _ in 0..2 {
        let report = engine
            .process(envelope(&[ENROLL, PROGRESS, COMPLETE]), handled)
            .await
            .unwrap();
        assert!(report.is_acknowledged(), "{report:?}");
    }
    assert_eq!(
        counts(&db),
        vec![
            ("a".to_owned(), 1),
            ("b".to_owned(), 1),
            ("c".to_owned(), 1)
        ]
    );
    assert!(
        runs.load(Ordering::SeqCst) >= 6,
        "handlers ran at least twice each"
    );
    let record = engine
        .store()
        .learner_record(AccountId(1), UserId(7), &"course:1_2".parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.status, LearnerStatus::Completed);
}

/// `merge_state` as rows written before the packed form held it: the
/// summary's own JSON, each winning key written out in every field.
fn unpacked(packed: &str) -> String {
    let p: serde_json::Value = serde_json::from_str(packed).unwrap();
    let keys = p["k"].as_array().unwrap();
    let key = |n: &serde_json::Value| {
        let k = &keys[n.as_u64().unwrap() as usize];
        serde_json::json!({"at": k[0], "kind": k[1], "tie": k[2], "event_id": k[3]})
    };
    let mut old = serde_json::Map::new();
    for field in ["lifecycle", "attempt", "progress"] {
        old.insert(
            field.into(),
            p.get(field).map_or(serde_json::Value::Null, key),
        );
    }
    for field in [
        "last",
        "percent",
        "started",
        "completion",
        "enrolled",
        "source",
    ] {
        let won = p.get(field).map_or(
            serde_json::Value::Null,
            |w| serde_json::json!({"key": key(&w[0]), "value": w[1]}),
        );
        old.insert(field.into(), won);
    }
    serde_json::Value::Object(old).to_string()
}

#[tokio::test]
async fn a_row_from_before_the_packed_merge_state_reads_and_merges() {
    let db = TempDb::new();
    let instance: alm_webhooks::LoInstanceId = "course:1_2".parse().unwrap();
    let store = SqliteStore::open(&db.0)
        .unwrap()
        .with_learner_projection()
        .await
        .unwrap();
    let engine = Engine::builder(store).build();
    let process = |e: &'static str| engine.process(envelope(&[e]), |_| async { Ok(()) });
    process(ENROLL).await.unwrap();
    let record = || {
        engine
            .store()
            .learner_record(AccountId(1), UserId(7), &instance)
    };
    let before = record().await.unwrap().unwrap();
    // Rewrite the row's merge state as the previous release wrote it.
    let conn = rusqlite::Connection::open(&db.0).unwrap();
    let state = || -> String {
        conn.query_row("SELECT merge_state FROM alm_learner_records", [], |r| {
            r.get(0)
        })
        .unwrap()
    };
    let packed = state();
    assert!(packed.starts_with(r#"{"k":"#), "{packed}");
    conn.execute(
        "UPDATE alm_learner_records SET merge_state = ?1",
        [unpacked(&packed)],
    )
    .unwrap();
    assert!(state().contains(r#""event_id":"a""#));
    assert_eq!(record().await.unwrap().unwrap(), before);
    // The next events merge into it, and it is written packed again.
    process(COMPLETE).await.unwrap();
    process(PROGRESS).await.unwrap();
    let after = record().await.unwrap().unwrap();
    assert_eq!(after.status, LearnerStatus::Completed);
    assert_eq!(after.date_started.map(|t| t.unix_timestamp()), Some(15));
    assert_eq!(
        after.enrollment_source.map(|s| s.to_string()).as_deref(),
        Some("SELF_ENROLL")
    );
    assert!(state().starts_with(r#"{"k":"#));
}

/// A progress older than the record's newest, arriving last: it wins no
/// field, so the row is not written again (its `seq` stays).
const OLDER_PROGRESS: &str = r#"{"eventId":"d","eventName":"LEARNER_PROGRESS","timestamp":15,"data":{"userId":7,"loId":"course:1","loInstanceId":"course:1_2","progressPercent":40}}"#;

#[tokio::test]
async fn an_event_that_wins_no_field_leaves_the_row_as_it_was() {
    let store = SqliteStore::open_in_memory()
        .unwrap()
        .with_learner_projection()
        .await
        .unwrap();
    let engine = Engine::builder(store).build();
    for e in [ENROLL, PROGRESS] {
        engine
            .process(envelope(&[e]), |_| async { Ok(()) })
            .await
            .unwrap();
    }
    let before = engine.store().learner_changes_since(0, 10).await.unwrap();
    assert_eq!(before.records.len(), 1);
    let report = engine
        .process(envelope(&[OLDER_PROGRESS]), |_| async { Ok(()) })
        .await
        .unwrap();
    assert!(report.is_acknowledged(), "{report:?}");
    let after = engine
        .store()
        .learner_changes_since(before.cursor, 10)
        .await
        .unwrap();
    assert!(after.records.is_empty(), "{:?}", after.records);
    assert_eq!(after.cursor, before.cursor);
    let all = engine.store().learner_changes_since(0, 10).await.unwrap();
    assert_eq!(all.records, before.records);
}

/// The table as versions before the rowid layout made it: `WITHOUT ROWID`,
/// keyed by the record, with a unique index on `seq`.
const EARLIER_TABLE: &str = "
CREATE TABLE alm_learner_records (
    account_id INTEGER NOT NULL, user_id INTEGER NOT NULL, lo_instance_id TEXT NOT NULL,
    lo_id TEXT NOT NULL, lo_type TEXT NOT NULL, status TEXT NOT NULL,
    progress_percent REAL NOT NULL, date_enrolled TEXT, date_started TEXT,
    date_completed TEXT, has_passed INTEGER, enrollment_source TEXT,
    last_event_id TEXT NOT NULL, last_event_name TEXT NOT NULL, last_event_time TEXT NOT NULL,
    updated_at TEXT NOT NULL, seq INTEGER NOT NULL, merge_state TEXT NOT NULL,
    PRIMARY KEY (account_id, user_id, lo_instance_id)
) WITHOUT ROWID;
CREATE INDEX alm_learner_records_instance ON alm_learner_records (account_id, lo_instance_id, user_id);
CREATE UNIQUE INDEX alm_learner_records_seq ON alm_learner_records (seq);
";

#[tokio::test]
async fn a_table_of_the_earlier_form_is_moved_with_its_rows() {
    let (earlier, now) = (TempDb::new(), TempDb::new());
    let instance: alm_webhooks::LoInstanceId = "course:1_2".parse().unwrap();
    // The same events into a table of the earlier form (its rows copied
    // from a present-form table: the columns are the same) and into one
    // of the present form.
    let present = SqliteStore::open(&now.0)
        .unwrap()
        .with_learner_projection()
        .await
        .unwrap();
    let engine = Engine::builder(present).build();
    for e in [ENROLL, PROGRESS] {
        engine
            .process(envelope(&[e]), |_| async { Ok(()) })
            .await
            .unwrap();
    }
    let record = || {
        engine
            .store()
            .learner_record(AccountId(1), UserId(7), &instance)
    };
    let expected = record().await.unwrap().unwrap();
    {
        let conn = rusqlite::Connection::open(&earlier.0).unwrap();
        conn.execute_batch(EARLIER_TABLE).unwrap();
        conn.execute("ATTACH DATABASE ?1 AS present", [now.0.to_str().unwrap()])
            .unwrap();
        conn.execute_batch(
            "INSERT INTO alm_learner_records (account_id, user_id, lo_instance_id, lo_id, \
             lo_type, status, progress_percent, date_enrolled, date_started, date_completed, \
             has_passed, enrollment_source, last_event_id, last_event_name, last_event_time, \
             updated_at, seq, merge_state) SELECT account_id, user_id, lo_instance_id, lo_id, \
             lo_type, status, progress_percent, date_enrolled, date_started, date_completed, \
             has_passed, enrollment_source, last_event_id, last_event_name, last_event_time, \
             updated_at, seq, merge_state FROM present.alm_learner_records",
        )
        .unwrap();
    }
    let moved = SqliteStore::open(&earlier.0)
        .unwrap()
        .with_learner_projection()
        .await
        .unwrap();
    assert_eq!(
        moved
            .learner_record(AccountId(1), UserId(7), &instance)
            .await
            .unwrap(),
        Some(expected.clone())
    );
    let feed = moved.learner_changes_since(0, 10).await.unwrap();
    assert_eq!(feed.records, vec![expected]);
    let conn = rusqlite::Connection::open(&earlier.0).unwrap();
    let form: String = conn
        .query_row(
            "SELECT sql FROM sqlite_master WHERE name = 'alm_learner_records'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        !form.to_ascii_uppercase().contains("WITHOUT ROWID"),
        "{form}"
    );
    let indexes: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'alm_learner_records' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        indexes,
        ["alm_learner_records_instance", "alm_learner_records_key"]
    );
    // Opened again, the moved table is left as it is; the next event merges.
    let engine = Engine::builder(
        SqliteStore::open(&earlier.0)
            .unwrap()
            .with_learner_projection()
            .await
            .unwrap(),
    )
    .build();
    engine
        .process(envelope(&[COMPLETE]), |_| async { Ok(()) })
        .await
        .unwrap();
    let after = engine
        .store()
        .learner_record(AccountId(1), UserId(7), &instance)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.status, LearnerStatus::Completed);
}
