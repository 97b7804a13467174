//! The learner table's CSV export over 10⁶ rows, on SQLite and PostgreSQL:
//! rows per second and the process's peak memory (the export streams, so it
//! must not grow with the table).
//!
//! ```sh
//! cargo run --release --all-features --example learner_export_bench -- [ROWS]
//! ```
//!
//! One record is made through the engine (so its merge state is real), then
//! copied `ROWS - 1` times by SQL with other user ids; the export then
//! writes every row to a counting sink. PostgreSQL: `ALM_TEST_POSTGRES_URL`
//! or `postgres://postgres@127.0.0.1:5432/test`, in a schema of its own,
//! dropped at the end.

use std::io::Write;
use std::time::Instant;

use alm_webhooks::store::{ClaimToken, PostgresStore, SqliteStore};
use alm_webhooks::{Engine, Envelope};

/// Counts the bytes written, keeps none.
#[derive(Debug, Default)]
struct Counting(u64);

impl Write for Counting {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0 += bytes.len() as u64;
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn one_learner() -> Envelope {
    let body = br#"{"accountId":5,"events":[
      {"eventId":"t-1","eventName":"COURSE_ENROLLMENT","timestamp":1725000000,
       "data":{"userId":0,"loId":"course:1","loInstanceId":"course:1_1","dateEnrolled":1725000000,"enrollmentSource":"SELF_ENROLL"}},
      {"eventId":"t-2","eventName":"COURSE_COMPLETED","timestamp":1725000100,
       "data":{"userId":0,"loId":"course:1","loInstanceId":"course:1_1","dateCompleted":1725000100,"hasPassed":true}}]}"#;
    Envelope::from_slice(body).expect("a good envelope")
}

/// The peak resident set so far (`VmHWM`), in MB.
fn peak_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn report(store: &str, rows: u64, bytes: u64, seconds: f64, before: f64) {
    println!(
        "{store}: {rows} rows ({:.0} MB of CSV) in {seconds:.2} s: {:.0} rows/s; peak RSS {:.0} MB ({:+.0} MB during the export)",
        bytes as f64 / 1e6,
        rows as f64 / seconds,
        peak_mb(),
        peak_mb() - before
    );
}

async fn sqlite(rows: u64) {
    let path = std::env::temp_dir().join(format!(
        "alm-export-bench-{:08x}.db",
        ClaimToken::random().0 as u32
    ));
    let store = SqliteStore::open(&path)
        .expect("a SQLite file")
        .with_learner_projection()
        .await
        .expect("the table");
    let engine = Engine::builder(store.clone()).build();
    engine
        .process(one_learner(), |_| async { Ok(()) })
        .await
        .expect("processed");
    let fill = Instant::now();
    let sql = format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {}) \
         INSERT INTO alm_learner_records SELECT account_id, user_id + i, lo_instance_id, lo_id, \
         lo_type, status, progress_percent, date_enrolled, date_started, date_completed, \
         has_passed, enrollment_source, last_event_id, last_event_name, last_event_time, \
         updated_at, seq + i, merge_state FROM alm_learner_records, n",
        rows - 1
    );
    store.run_sql(&sql).await.expect("the copies");
    eprintln!(
        "sqlite: {rows} rows made in {:.1} s",
        fill.elapsed().as_secs_f64()
    );
    let before = peak_mb();
    let start = Instant::now();
    let (out, written) = store
        .export_learner_csv(Counting::default())
        .await
        .expect("the export");
    report(
        "SQLite",
        written,
        out.0,
        start.elapsed().as_secs_f64(),
        before,
    );
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}

async fn postgres(rows: u64) {
    let url = std::env::var("ALM_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let schema = format!("alm_export_bench_{:08x}", ClaimToken::random().0 as u32);
    if let Err(e) = PostgresStore::migrate(&url, &schema).await {
        println!("PostgreSQL skipped: {e}");
        return;
    }
    let store = PostgresStore::connect_with_schema(&url, &schema)
        .await
        .expect("connected")
        .with_learner_projection()
        .await
        .expect("the table");
    let engine = Engine::builder(store.clone()).build();
    engine
        .process(one_learner(), |_| async { Ok(()) })
        .await
        .expect("processed");
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("a connection");
    tokio::spawn(connection);
    let fill = Instant::now();
    let table = format!("\"{schema}\".alm_learner_records");
    let sql = format!(
        "INSERT INTO {table} SELECT account_id, user_id + i, lo_instance_id, lo_id, lo_type, \
         status, progress_percent, date_enrolled, date_started, date_completed, has_passed, \
         enrollment_source, last_event_id, last_event_name, last_event_time, updated_at, \
         seq + i, merge_state FROM {table}, generate_series(1, {}) AS i",
        rows - 1
    );
    client.batch_execute(&sql).await.expect("the copies");
    client
        .batch_execute(&format!("ANALYZE {table}"))
        .await
        .expect("analyze");
    eprintln!(
        "postgres: {rows} rows made in {:.1} s",
        fill.elapsed().as_secs_f64()
    );
    let before = peak_mb();
    let start = Instant::now();
    let (out, written) = store
        .export_learner_csv(Counting::default())
        .await
        .expect("the export");
    report(
        "PostgreSQL",
        written,
        out.0,
        start.elapsed().as_secs_f64(),
        before,
    );
    store.drop_schema().await.expect("dropped");
}

#[tokio::main]
async fn main() {
    let rows: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000)
        .max(1);
    sqlite(rows).await;
    postgres(rows).await;
}
