//! The inbox's archive: its size per archived event on each backend, and
//! the search over 10⁶ archived events on SQLite and PostgreSQL.
//!
//! ```sh
//! cargo run --release --example archive_bench --features simulator,postgres,redis,sqlite -- [EVENTS]
//! ```
//!
//! *Size*: workers drain 200 deliveries of 100 learner events (the
//! simulator's, about 300 bytes each as sent) with the archive on; then the
//! archive's tables and indexes (SQLite's `dbstat`, PostgreSQL's
//! `pg_total_relation_size`) or keys (Redis's `MEMORY USAGE`) are summed and
//! divided by the events archived. *Search*: `EVENTS` (default 10⁶) events
//! in deliveries of 10, received one second apart over the last days,
//! 20 per learner (50,000 learners) and 1,000 per instance, are written by
//! SQL; then [`Inbox::search_archive`] is timed for a learner, an event id,
//! an instance and a learner within a day, 50 times each with other
//! values. PostgreSQL: `ALM_TEST_POSTGRES_URL` or
//! `postgres://postgres@127.0.0.1:5432/test`; Redis: `ALM_TEST_REDIS_URL` or
//! `redis://127.0.0.1:6379/`; each in a schema, prefix or file of its own,
//! removed at the end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use alm_webhooks::inbox::{
    ArchiveFilter, Inbox, NewDelivery, PostgresInbox, RedisInbox, SqliteInbox, Workers,
};
use alm_webhooks::simulator::scenario::{envelope, learner_event};
use alm_webhooks::store::{ClaimToken, MemoryStore};
use alm_webhooks::{AccountId, Engine, Event, UserId};
use time::OffsetDateTime;

const DELIVERIES: u64 = 200;
const PER_DELIVERY: u64 = 100;

/// Drains 200 deliveries of 100 events through workers that archive;
/// the bytes of the bodies as sent.
async fn fill_by_workers<I: Inbox>(inbox: Arc<I>) -> u64 {
    let mut sent = 0;
    let now = OffsetDateTime::now_utc();
    for d in 0..DELIVERIES {
        let events: Vec<_> = (0..PER_DELIVERY)
            .map(|n| {
                let user = d * PER_DELIVERY + n;
                let instance = format!("course:{}_{}", 1000 + user % 97, 2000 + user % 89);
                learner_event(
                    &format!("size-{d}-{n}"),
                    "COURSE_ENROLLMENT",
                    1_725_600_000,
                    user,
                    &instance,
                )
            })
            .collect();
        let body = envelope(7, &events);
        sent += body.len() as u64;
        let delivery = NewDelivery {
            account_id: AccountId(7),
            body: &body,
            received_at: now,
        };
        inbox.append(delivery).await.expect("append");
    }
    let workers = Workers::new(
        Engine::builder(MemoryStore::new()).build(),
        Arc::clone(&inbox),
    );
    let handler = |_: Event| async { Ok(()) };
    while workers.run_once(&handler).await.expect("a delivery") {}
    sent
}

fn report_size(backend: &str, bytes: u64, sent: u64) {
    let events = DELIVERIES * PER_DELIVERY;
    println!(
        "{backend}: {bytes} bytes for {events} archived events: {:.0} bytes per event \
         ({:.0} bytes per event as sent)",
        bytes as f64 / events as f64,
        sent as f64 / events as f64
    );
}

/// p50 and the slowest of `times`, in ms.
fn summary(times: &mut [Duration]) -> String {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "p50 {:.2} ms, max {:.2} ms",
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1])
    )
}

/// Times the four searches on `inbox`, 50 times each.
async fn searches<I: Inbox>(backend: &str, inbox: &I, events: u64, newest: OffsetDateTime) {
    let users = (events / 20).max(1);
    let instances = (events / 1000).max(1);
    let mut kinds: Vec<(&str, Vec<Duration>, usize)> = Vec::new();
    for kind in ["userId", "eventId", "loInstanceId", "userId within a day"] {
        let mut times = Vec::new();
        let mut found = 0;
        for k in 0..50u64 {
            let pick = (k * 7919) % users;
            let filter = match kind {
                "userId" => ArchiveFilter::new().with_user_id(UserId(pick)),
                "eventId" => ArchiveFilter::new()
                    .with_event_id(format!("ev-{}", (k * 104_729) % events).parse().unwrap()),
                "loInstanceId" => ArchiveFilter::new().with_lo_instance_id(
                    format!("course:{}_1", (k * 31) % instances)
                        .parse()
                        .unwrap(),
                ),
                _ => ArchiveFilter::new()
                    .with_user_id(UserId(pick))
                    .received_from(newest - Duration::from_secs(events / 10 / 2))
                    .received_before(
                        newest - Duration::from_secs(events / 10 / 2) + Duration::from_secs(86_400),
                    ),
            };
            let started = Instant::now();
            let hits = inbox.search_archive(&filter, 100).await.expect("a search");
            times.push(started.elapsed());
            found += hits.len();
        }
        kinds.push((kind, times, found));
    }
    for (kind, mut times, found) in kinds {
        println!(
            "{backend}, {events} archived events, by {kind}: {} ({:.1} events found per search)",
            summary(&mut times),
            found as f64 / 50.0
        );
    }
}

/// The SQL that fills the events of deliveries `1..=events/10` (10 each),
/// received a second apart ending at `newest_ms`; `{archive}` and
/// `{events}` are the tables, `{n}` the series.
fn sqlite_fill(events: u64, newest_ms: i64) -> [String; 2] {
    let deliveries = events / 10;
    let first = newest_ms - (deliveries as i64) * 1000;
    [
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {deliveries}) \
             INSERT INTO alm_archive (id, account_id, body, received_ms) \
             SELECT 1000000000 + i, 7, zeroblob(3000), {first} + i * 1000 FROM n"
        ),
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {} ) \
             INSERT INTO alm_archive_events (archive_id, idx, account_id, received_ms, event_id, \
             event_name, user_id, lo_instance_id, timestamp_ms, decision, reason, attempts, error) \
             SELECT 1000000000 + i / 10 + 1, i % 10, 7, {first} + (i / 10 + 1) * 1000, 'ev-' || i, \
             'COURSE_ENROLLMENT', i % {users}, 'course:' || (i % {instances}) || '_1', {first}, \
             'processed', NULL, 1, NULL FROM n",
            events - 1,
            users = (events / 20).max(1),
            instances = (events / 1000).max(1),
        ),
    ]
}

async fn sqlite(events: u64) {
    let path = std::env::temp_dir().join(format!(
        "alm-archive-bench-{:08x}.db",
        ClaimToken::random().0 as u32
    ));
    let inbox = Arc::new(SqliteInbox::open(&path).expect("a SQLite file"));
    let sent = fill_by_workers(Arc::clone(&inbox)).await;
    let conn = rusqlite::Connection::open(&path).expect("a second connection");
    let size: i64 = conn
        .query_row(
            "SELECT sum(pgsize) FROM dbstat WHERE name LIKE 'alm_archive%'",
            [],
            |r| r.get(0),
        )
        .expect("dbstat");
    report_size("SQLite", size as u64, sent);
    conn.execute_batch("DELETE FROM alm_archive_events; DELETE FROM alm_archive;")
        .expect("emptied");
    let newest = OffsetDateTime::now_utc();
    let newest_ms = (newest.unix_timestamp_nanos() / 1_000_000) as i64;
    let fill = Instant::now();
    for sql in sqlite_fill(events, newest_ms) {
        conn.execute_batch(&sql).expect("the fill");
    }
    conn.execute_batch("ANALYZE").expect("analyze");
    eprintln!(
        "SQLite: {events} events written in {:.1} s",
        fill.elapsed().as_secs_f64()
    );
    searches("SQLite", &*inbox, events, newest).await;
    drop(conn);
    drop(inbox);
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}

/// `VACUUM ANALYZE` of each table (one statement each: not in a
/// transaction).
async fn vacuum(client: &tokio_postgres::Client, tables: [&String; 2]) {
    for table in tables {
        client
            .batch_execute(&format!("VACUUM ANALYZE {table}"))
            .await
            .expect("vacuum");
    }
}

async fn postgres(events: u64) {
    let url = std::env::var("ALM_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let schema = format!("alm_archive_bench_{:08x}", ClaimToken::random().0 as u32);
    if let Err(e) = PostgresInbox::migrate(&url, &schema).await {
        println!("PostgreSQL skipped: {e}");
        return;
    }
    let inbox = Arc::new(
        PostgresInbox::connect_with_schema(&url, &schema)
            .await
            .expect("connected"),
    );
    let sent = fill_by_workers(Arc::clone(&inbox)).await;
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("a connection");
    tokio::spawn(connection);
    let (a, e) = (
        format!("\"{schema}\".alm_archive"),
        format!("\"{schema}\".alm_archive_events"),
    );
    vacuum(&client, [&a, &e]).await;
    let size: i64 = client
        .query_one(
            &format!("SELECT pg_total_relation_size('{a}') + pg_total_relation_size('{e}')"),
            &[],
        )
        .await
        .expect("the size")
        .get(0);
    report_size("PostgreSQL", size as u64, sent);
    client
        .batch_execute(&format!("TRUNCATE {a}, {e}"))
        .await
        .expect("emptied");
    let newest = OffsetDateTime::now_utc();
    let deliveries = events / 10;
    let fill = Instant::now();
    let sql = format!(
        "INSERT INTO {a} (id, account_id, body, received_at) \
         SELECT 1000000000 + i, 7, convert_to(repeat('x', 3000), 'UTF8'), \
                $1::timestamptz - ({deliveries} - i) * interval '1 second' \
         FROM generate_series(1, {deliveries}) AS i; \
         INSERT INTO {e} (archive_id, idx, account_id, received_at, event_id, event_name, user_id, \
             lo_instance_id, happened_at, decision, reason, attempts, error) \
         SELECT 1000000000 + i / 10 + 1, i % 10, 7, \
                $1::timestamptz - ({deliveries} - (i / 10 + 1)) * interval '1 second', \
                convert_to('ev-' || i, 'UTF8'), convert_to('COURSE_ENROLLMENT', 'UTF8'), \
                i % {users}, convert_to('course:' || (i % {instances}) || '_1', 'UTF8'), \
                $1::timestamptz, 'processed', NULL, 1, NULL \
         FROM generate_series(0, {last}) AS i",
        users = (events / 20).max(1),
        instances = (events / 1000).max(1),
        last = events - 1,
    );
    // Two statements with a parameter each: run them one at a time.
    for statement in sql.split("; ") {
        client
            .execute(statement, &[&newest])
            .await
            .expect("the fill");
    }
    vacuum(&client, [&a, &e]).await;
    eprintln!(
        "PostgreSQL: {events} events written in {:.1} s",
        fill.elapsed().as_secs_f64()
    );
    searches("PostgreSQL", &*inbox, events, newest).await;
    client
        .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .await
        .expect("dropped");
}

async fn redis() {
    let url = std::env::var("ALM_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned());
    let prefix = format!("alm-archive-bench-{:08x}:", ClaimToken::random().0 as u32);
    let inbox = match RedisInbox::connect_with_prefix(&url, &prefix).await {
        Ok(inbox) => Arc::new(inbox),
        Err(e) => {
            println!("Redis skipped: {e}");
            return;
        }
    };
    let sent = fill_by_workers(Arc::clone(&inbox)).await;
    let client = redis::Client::open(url.as_str()).expect("a client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("a connection");
    let mut bytes = 0u64;
    for pattern in [format!("{prefix}inbox:ar*"), format!("{prefix}inbox:ax:*")] {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(&pattern)
            .query_async(&mut conn)
            .await
            .expect("keys");
        for key in &keys {
            let used: Option<u64> = redis::cmd("MEMORY")
                .arg("USAGE")
                .arg(key)
                .arg("SAMPLES")
                .arg(0)
                .query_async(&mut conn)
                .await
                .expect("memory usage");
            bytes += used.unwrap_or(0);
        }
    }
    report_size("Redis", bytes, sent);
    let all: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .expect("keys");
    for chunk in all.chunks(1000) {
        let _: () = redis::cmd("DEL")
            .arg(chunk)
            .query_async(&mut conn)
            .await
            .expect("deleted");
    }
}

#[tokio::main]
async fn main() {
    let events: u64 = std::env::args()
        .nth(1)
        .map_or(1_000_000, |n| n.parse().expect("a number of events"));
    sqlite(events).await;
    postgres(events).await;
    redis().await;
}
