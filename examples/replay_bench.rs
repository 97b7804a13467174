//! How fast a replay job runs: events per second from `POST /admin/replays`
//! to `done`, on SQLite and PostgreSQL, in each mode.
//!
//! ```sh
//! cargo run --release --example replay_bench --features simulator,postgres,sqlite -- [DELIVERIES]
//! ```
//!
//! `DELIVERIES` (default 2,000) deliveries of 10 learner events (the
//! simulator's `COURSE_ENROLLMENT`, 5 accounts) are drained through a pool
//! of the default 4 workers with the archive on; then a replay job of the
//! whole range runs with the default step (100 deliveries) through the same
//! pool, with a handler that does nothing: `rerun` (the handler again, no
//! engine), then `unprocessed` (the engine finds every event a duplicate).
//! The time is from the job's start to its `done`. PostgreSQL:
//! `ALM_TEST_POSTGRES_URL` or `postgres://postgres@127.0.0.1:5432/test`, in
//! a schema of its own, dropped at the end; SQLite: a file in the temporary
//! directory, removed at the end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use alm_webhooks::inbox::{
    ArchiveFilter, Inbox, NewDelivery, PostgresInbox, ReplayJobs, ReplayMode, ReplayRequest,
    ReplayState, SqliteInbox, WorkerOptions, Workers,
};
use alm_webhooks::simulator::scenario::{envelope, learner_event};
use alm_webhooks::store::{ClaimToken, MemoryStore};
use alm_webhooks::{AccountId, Engine, Event};
use time::OffsetDateTime;

const PER_DELIVERY: u64 = 10;

async fn bench<I: Inbox>(backend: &str, inbox: Arc<I>, deliveries: u64) {
    let start = OffsetDateTime::now_utc() - time::Duration::seconds(1);
    for d in 0..deliveries {
        let account = 1 + d % 5;
        let events: Vec<_> = (0..PER_DELIVERY)
            .map(|n| {
                let user = d * PER_DELIVERY + n;
                let instance = format!("course:{}_{}", 1000 + user % 97, 2000 + user % 89);
                let id = format!("replay-{d}-{n}");
                learner_event(&id, "COURSE_ENROLLMENT", 1_725_600_000, user, &instance)
            })
            .collect();
        let body = envelope(account, &events);
        let delivery = NewDelivery {
            account_id: AccountId(account),
            body: &body,
            received_at: OffsetDateTime::now_utc(),
        };
        inbox.append(delivery).await.expect("append");
    }
    let jobs = ReplayJobs::new();
    let engine = Engine::builder(MemoryStore::new()).build();
    let pool = Workers::new(engine, Arc::clone(&inbox))
        .with_options(WorkerOptions::new().with_replays(jobs.clone()))
        .start(|_: Event| async { Ok(()) });
    let drained = Instant::now();
    while inbox
        .stats(OffsetDateTime::now_utc())
        .await
        .expect("stats")
        .pending
        > 0
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drain = drained.elapsed();
    let end = OffsetDateTime::now_utc() + time::Duration::seconds(1);
    let events = deliveries * PER_DELIVERY;
    println!(
        "{backend}: drained {events} events in {:.2} s ({:.0} events/s, archive on)",
        drain.as_secs_f64(),
        events as f64 / drain.as_secs_f64()
    );
    for mode in [ReplayMode::Rerun, ReplayMode::Unprocessed] {
        let filter = ArchiveFilter::new()
            .received_from(start)
            .received_before(end);
        let began = Instant::now();
        let id = jobs.start(Arc::clone(&inbox), ReplayRequest::new(filter, mode));
        let status = loop {
            let status = jobs.status(id).expect("the job");
            if status.state != ReplayState::Running {
                break status;
            }

            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let took = began.elapsed();
        assert_eq!(
            (status.state, status.matched, status.done),
            (ReplayState::Done, events, events),
            "{status:?}"
        );
        println!(
            "{backend}: {} replay of {events} events in {:.2} s ({:.0} events/s)",
            mode.as_str(),
            took.as_secs_f64(),
            events as f64 / took.as_secs_f64()
        );
    }
    pool.shutdown(Duration::from_secs(10)).await;
}

#[tokio::main]
async fn main() {
    let deliveries = std::env::args()
        .nth(1)
        .map_or(2_000, |n| n.parse().expect("a number of deliveries"));
    let token = ClaimToken::random().0 as u32;
    let path = std::env::temp_dir().join(format!("alm-replay-bench-{token:08x}.db"));
    let sqlite = Arc::new(SqliteInbox::open(&path).expect("the file opens"));
    bench("SQLite", sqlite, deliveries).await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }

    let url = std::env::var("ALM_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let schema = format!("alm_replay_bench_{token:08x}");
    PostgresInbox::migrate(&url, &schema)
        .await
        .expect("PostgreSQL is reachable");
    let postgres = Arc::new(
        PostgresInbox::connect_with_schema(&url, &schema)
            .await
            .expect("connect"),
    );
    bench("PostgreSQL", postgres, deliveries).await;
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
        .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .await
        .expect("drop the schema");
}
