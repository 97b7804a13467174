//! What the learner projection costs: engine throughput (envelopes of 100
//! learner events, every event a record of its own or one of ten per
//! learner) with and without it, and the CSV export's rows per second, on
//! SQLite and PostgreSQL. Ignored (a measurement, not a check):
//! `cargo test --release --all-features --test projection_cost -- --ignored --nocapture`.
#![cfg(all(feature = "sqlite", feature = "postgres"))]

use std::time::Instant;

use alm_webhooks::Engine;
use alm_webhooks::Envelope;
use alm_webhooks::store::{ClaimToken, PostgresStore, SqliteStore, Store};

const EVENTS: usize = 20_000;
const PER_ENVELOPE: usize = 100;

fn envelopes(run: &str) -> Vec<Envelope> {
    let names = ["COURSE_ENROLLMENT", "LEARNER_PROGRESS", "COURSE_COMPLETED"];
    (0..EVENTS / PER_ENVELOPE)
        .map(|e| {
            let events: Vec<String> = (0..PER_ENVELOPE)
                .map(|i| {
                    let n = e * PER_ENVELOPE + i;
                    format!(
                        r#"{{"eventId":"{run}-{n}","eventName":"{}","timestamp":{},"data":{{"userId":{},"loId":"course:{}","loInstanceId":"course:{}_1","progressPercent":50}}}}"#,
                        names[n % 3],
                        1_725_000_000 + n,
                        n / 10,
                        n % 10,
                        n % 10
                    )
                })
                .collect();
            let body = format!(r#"{{"accountId":5,"events":[{}]}}"#, events.join(","));
            Envelope::from_slice(body.as_bytes()).unwrap()
        })
        .collect()
}

async fn drain<S: Store>(store: S, run: &str) -> f64 {
    let engine = Engine::builder(store).build();
    let envelopes = envelopes(run);
    let start = Instant::now();
    for envelope in envelopes {
        let report = engine
            .process(envelope, |_| async { Ok(()) })
            .await
            .unwrap();
        assert!(report.is_acknowledged());
    }
    EVENTS as f64 / start.elapsed().as_secs_f64()
}

/// A hook that writes nothing: what the hooked transaction costs alone.
struct Noop;

impl alm_webhooks::store::PostgresHook for Noop {
    fn on_commit<'a>(
        &'a self,
        _: &'a tokio_postgres::Transaction<'_>,
        _: &'a [alm_webhooks::store::Decided<'_>],
    ) -> alm_webhooks::store::BoxFuture<'a, Result<(), alm_webhooks::BoxError>> {
        Box::pin(async { Ok(()) })
    }
}

fn temp(name: &str) -> std::path::PathBuf {
    let random = ClaimToken::random().0 as u64;
    std::env::temp_dir().join(format!("alm-cost-{name}-{random:016x}.db"))
}

#[tokio::test]
#[ignore = "a measurement"]
async fn cost_of_the_projection() {
    let (off_path, on_path) = (temp("off"), temp("on"));
    let off = drain(SqliteStore::open(&off_path).unwrap(), "s-off").await;
    let store = SqliteStore::open(&on_path)
        .unwrap()
        .with_learner_projection()
        .await
        .unwrap();
    let on = drain(store.clone(), "s-on").await;
    println!(
        "sqlite: {off:.0} events/s without, {on:.0} with the projection ({:+.1} %)",
        (on / off - 1.0) * 100.0
    );
    let start = Instant::now();
    let (_, rows) = store.export_learner_csv(std::io::sink()).await.unwrap();
    println!(
        "sqlite: CSV export {rows} rows at {:.0} rows/s",
        rows as f64 / start.elapsed().as_secs_f64()
    );
    for path in [off_path, on_path] {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }

    let url = std::env::var("ALM_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let schema = format!("alm_cost_{:08x}", ClaimToken::random().0 as u32);
    if let Err(e) = PostgresStore::migrate(&url, &schema).await {
        println!("postgres skipped: {e}");
        return;
    }
    let store = PostgresStore::connect_with_schema(&url, &schema)
        .await
        .unwrap();
    let off = drain(store.clone(), "p-off").await;
    let noop = drain(store.clone().with_hook(Noop), "p-noop").await;
    println!("postgres: {noop:.0} events/s with a hook that does nothing");
    let projected = store.clone().with_learner_projection().await.unwrap();
    let on = drain(projected, "p-on").await;
    println!(
        "postgres: {off:.0} events/s without, {on:.0} with the projection ({:+.1} %)",
        (on / off - 1.0) * 100.0
    );
    let start = Instant::now();
    let (_, rows) = store.export_learner_csv(std::io::sink()).await.unwrap();
    println!(
        "postgres: CSV export {rows} rows at {:.0} rows/s",
        rows as f64 / start.elapsed().as_secs_f64()
    );
    store.drop_schema().await.unwrap();
}
