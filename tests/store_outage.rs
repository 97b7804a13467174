//! The store going away and coming back, through a real receiver: while the
//! store is down deliveries get 503 and nothing is recorded; once it is back,
//! ALM's redeliveries are processed exactly once.
#![cfg(all(
    feature = "axum",
    feature = "redis",
    feature = "simulator",
    feature = "env"
))]

mod support;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alm_webhooks::simulator::scenario::{envelope, learner_event};
use support::process::{decisions, signed_post, start, wait_for_lines};

/// A private Redis with an append-only file in a temp dir, so a restart
/// keeps its data.
struct PrivateRedis {
    child: Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl PrivateRedis {
    fn start(port: u16, dir: &std::path::Path) -> Option<Self> {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
            ])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Self {
            child,
            port,
            dir: dir.to_owned(),
        })
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn store_outage_gives_503_and_recovery_processes_once() {
    let dir = std::env::temp_dir().join(format!("alm-outage-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    let Some(mut redis) = PrivateRedis::start(port, &dir) else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("redis-server could not be started; CI needs it");
        }
        eprintln!("skipped: no redis-server on this machine");
        return;
    };
    let store = format!("redis://127.0.0.1:{port}/");
    let r = start("axum_receiver", &[("ALM_STORE", &store)]);
    let first = envelope(
        1234,
        &[learner_event(
            "before",
            "COURSE_ENROLLMENT",
            1,
            1,
            "course:1_2",
        )],
    );
    let during: Vec<_> = (0..10)
        .map(|i| {
            learner_event(
                &format!("during-{i}"),
                "COURSE_ENROLLMENT",
                1,
                10 + i,
                "course:1_2",
            )
        })
        .collect();
    let during = envelope(1234, &during);
    assert_eq!(signed_post(r.addr, &first).0, 202);

    redis.stop();
    let (status, body) = signed_post(r.addr, &during);
    assert_eq!(status, 503, "store down: {body}");
    assert!(body.contains("store unavailable"), "{body}");

    let mut redis = PrivateRedis::start(redis.port, &redis.dir.clone()).expect("redis restarts");
    // ALM retries with backoff until acknowledged.
    let mut acknowledged = false;
    for _ in 0..40 {
        if signed_post(r.addr, &during).0 == 202 {
            acknowledged = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(
        acknowledged,
        "the redelivery is acknowledged once the store is back"
    );
    // Two more redeliveries, each sent again as ALM would while answered
    // 503 (the connection to the restarted server may still be settling).
    for body in [&during, &first] {
        let acknowledged = (0..40).any(|_| {
            let ok = signed_post(r.addr, body).0 == 202;
            if !ok {
                std::thread::sleep(Duration::from_millis(250));
            }
            ok
        });
        assert!(
            acknowledged,
            "a redelivery after the recovery is acknowledged"
        );
    }
    let lines = wait_for_lines(&r, 1 + 10 + 10 + 1);
    let d = decisions(&lines);
    let processed: Vec<_> = d
        .iter()
        .filter(|(_, x)| x == "processed")
        .map(|(id, _)| id.clone())
        .collect();
    assert_eq!(
        processed.len(),
        11,
        "each event processed exactly once: {d:?}"
    );
    assert!(
        d[d.len() - 11..].iter().all(|(_, x)| x == "duplicate"),
        "{d:?}"
    );
    redis.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
