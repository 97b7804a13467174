//! A network that black-holes (packets dropped, no reset) between the
//! receiver and PostgreSQL or Redis: `../shared/tools/latency-proxy` sits in
//! between and is stopped with `SIGSTOP`, so connections stay open and
//! nothing answers. Every call must still end within its bound: an append
//! is answered `503` well inside ALM's 5 s, a store call fails within its
//! own bound, `shutdown(500 ms)` returns within about 1.5 s; after
//! `SIGCONT` everything works again.
#![cfg(all(feature = "postgres", feature = "redis"))]

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use alm_webhooks::inbox::WorkerOptions;
use alm_webhooks::inbox::{Inbox, PostgresInbox, RedisInbox};
use alm_webhooks::rules::StateKey;
use alm_webhooks::store::{ClaimToken, DedupKey, PostgresStore, RedisStore, Store};
use alm_webhooks::{AccountId, Authentication, Endpoint, EventId};
use http::{HeaderMap, StatusCode};

/// The bounds asserted, with slack for a loaded machine.
const ANSWER_503_WITHIN: Duration = Duration::from_secs(3);
const SHUTDOWN_WITHIN: Duration = Duration::from_millis(2500);

/// The latency proxy binary: `ALM_LATENCY_PROXY`, or built from
/// `../shared/tools/latency-proxy` into a target dir outside the repository.
fn proxy_binary() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("ALM_LATENCY_PROXY") {
        return Some(PathBuf::from(path));
    }
    let manifest =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/tools/latency-proxy/Cargo.toml");
    if !manifest.exists() {
        return None;
    }
    let target = std::env::temp_dir().join("lp-target");
    let built = Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet", "--manifest-path"])
        .arg(&manifest)
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .ok()?;
    built
        .success()
        .then(|| target.join("release/latency-proxy"))
}

/// A running proxy from a free port to `target`; killed when dropped.
struct Proxy {
    child: Child,
    port: u16,
}

impl Proxy {
    fn start(target: u16) -> Option<Self> {
        let Some(binary) = proxy_binary() else {
            skip("the latency proxy is missing (set ALM_LATENCY_PROXY)");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(binary)
            .args([port.to_string(), target.to_string(), "0".to_owned()])
            .stderr(Stdio::null())
            .spawn()
            .expect("the proxy starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the proxy listens");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Self { child, port })
    }

    /// `SIGSTOP` (black-hole) or `SIGCONT` (recover).
    fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success());
        if signal == "-STOP" {
            self.wait_until_stopped();
        }
    }

    /// `kill` returns once the signal is queued, not once every thread of
    /// the proxy has stopped: under load a forwarding thread could still
    /// pass a request and its answer. Waits (up to 5 s) until the kernel
    /// shows every thread stopped (`T` in `/proc/PID/task/*/stat`).
    fn wait_until_stopped(&self) {
        let tasks = format!("/proc/{}/task", self.child.id());
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let stopped = std::fs::read_dir(&tasks).is_ok_and(|dir| {
                dir.flatten().all(|task| {
                    std::fs::read_to_string(task.path().join("stat")).is_ok_and(|stat| {
                        // `pid (comm) S …`: the state follows the last `)`.
                        stat.rsplit_once(')')
                            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['T', 't']))
                    })
                })
            });
            if stopped {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the proxy did not stop within 5 s"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.signal("-CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn skip(why: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{why}; CI needs it"
    );
    eprintln!("skipped: {why}");
}

fn body(account: u64, id: &str) -> Vec<u8> {
    format!(
        r#"{{"accountId":{account},"events":[{}]}}"#,
        support::unknown(id, 1_725_600_000)
    )
    .into_bytes()
}

fn key() -> DedupKey {
    DedupKey {
        account_id: AccountId(7),
        event_id: "blackhole-1".parse::<EventId>().unwrap(),
    }
}

/// Runs `call`, failing the test (instead of hanging it) after 20 s;
/// returns its answer and how long it took.
async fn timed<T>(what: &str, call: impl std::future::Future<Output = T>) -> (T, Duration) {
    let start = Instant::now();
    let answer = tokio::time::timeout(Duration::from_secs(20), call)
        .await
        .unwrap_or_else(|_| panic!("{what} did not return within 20 s"));
    (answer, start.elapsed())
}

/// The part every backend shares: black-hole, then check the endpoint,
/// the store and the shutdown; recover.
async fn black_hole<S: Store, I: Inbox + 'static>(
    name: &str,
    proxy: &Proxy,
    store: &S,
    inbox: Arc<I>,
    store_bound: Duration,
) {
    // The engine's store is checked on its own below; the endpoint's is
    // in memory on purpose, so only the inbox is behind the black hole.
    let endpoint = Endpoint::builder(Authentication::None)
        .engine(alm_webhooks::Engine::in_memory())
        .inbox(Arc::clone(&inbox), WorkerOptions::new().with_count(2))
        .handler(|_event| async { Ok(()) })
        .build()
        .unwrap();
    let headers = HeaderMap::new();
    let answer = endpoint.handle(&headers, &body(7, "before")).await;
    assert_eq!(answer.status(), StatusCode::ACCEPTED, "{name}: {answer}");
    let now = SystemTime::now();
    let state = StateKey::LearningObject {
        account_id: AccountId(7),
        lo_id: "course:1".parse().unwrap(),
    };
    store.load(&state).await.expect("the store answers");

    proxy.signal("-STOP");
    let (answer, took) = timed("the append", endpoint.handle(&headers, &body(7, "during"))).await;
    eprintln!(
        "{name}: black-holed append answered {} in {took:?}",
        answer.status()
    );
    assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE, "{name}");
    assert!(took < ANSWER_503_WITHIN, "{name}: 503 after {took:?}");

    let key = key();
    let claim = store.claim(
        &key,
        alm_webhooks::store::ClaimOwner::random(),
        Duration::from_secs(30),
        now,
    );
    let (claimed, took) = timed("a store call", claim).await;
    eprintln!("{name}: black-holed store call failed in {took:?}");
    let error = claimed.expect_err("no answer from the store");
    assert!(error.is_transient(), "{name}: {error:?}");
    assert!(
        took < store_bound + Duration::from_secs(1),
        "{name}: {took:?}"
    );

    let (_, took) = timed("shutdown", endpoint.shutdown(Duration::from_millis(500))).await;
    eprintln!("{name}: shutdown(500 ms) returned in {took:?}");
    assert!(took < SHUTDOWN_WITHIN, "{name}: shutdown took {took:?}");

    proxy.signal("-CONT");
    let deadline = Instant::now() + Duration::from_secs(20);
    let token = loop {
        let claim = store.claim(
            &key,
            alm_webhooks::store::ClaimOwner::random(),
            Duration::from_secs(30),
            SystemTime::now(),
        );
        match timed("a store call after recovery", claim).await.0 {
            Ok(claim) => break claim,
            Err(e) if Instant::now() < deadline => {
                eprintln!("{name}: not yet back: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("{name}: the store did not recover: {e:?}"),
        }
    };
    if let alm_webhooks::store::Claim::Claimed(token) = token {
        store.release(&key, token).await.unwrap();
    }
    let endpoint = Endpoint::builder(Authentication::None)
        .engine(alm_webhooks::Engine::in_memory())
        .inbox(inbox, WorkerOptions::new().with_count(1))
        .handler(|_event| async { Ok(()) })
        .build()
        .unwrap();
    let answer = endpoint.handle(&headers, &body(7, "after")).await;
    assert_eq!(answer.status(), StatusCode::ACCEPTED, "{name}: {answer}");
    assert!(endpoint.shutdown(Duration::from_secs(5)).await);
}

fn postgres_url() -> String {
    std::env::var("ALM_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_black_hole_is_bounded() {
    let direct = postgres_url();
    if !support::services::reachable(&direct, 5432) {
        return skip("PostgreSQL is not reachable");
    }
    let Some(proxy) = Proxy::start(5432) else {
        return;
    };
    let schema = format!("alm_blackhole_{:08x}", ClaimToken::random().0 as u32);
    PostgresStore::migrate(&direct, &schema).await.unwrap();
    let through = format!(
        "postgres://postgres@127.0.0.1:{}/test?application_name={schema}",
        proxy.port
    );
    let store = PostgresStore::connect_with_schema(&through, &schema)
        .await
        .unwrap();
    let inbox = PostgresInbox::connect_with_schema(&through, &schema)
        .await
        .unwrap();
    let bound = PostgresStore::CALL_TIMEOUT;
    black_hole("postgres", &proxy, &store, Arc::new(inbox), bound).await;
    drop(proxy);
    let owner = PostgresStore::connect_with_schema(&direct, &schema)
        .await
        .unwrap();
    owner.drop_schema().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_black_hole_is_bounded() {
    if !support::services::reachable("redis://127.0.0.1:6379/", 6379) {
        return skip("Redis is not reachable");
    }
    let Some(proxy) = Proxy::start(6379) else {
        return;
    };
    let prefix = format!("alm-blackhole-{:08x}:", ClaimToken::random().0 as u32);
    let _purge = support::services::Purge(format!("redis://127.0.0.1:6379/?prefix={prefix}"));
    let through = format!("redis://127.0.0.1:{}/", proxy.port);
    let store = RedisStore::connect_with_prefix(&through, &prefix)
        .await
        .unwrap();
    let inbox = RedisInbox::connect_with_prefix(&through, &prefix)
        .await
        .unwrap();
    let bound = RedisStore::RESPONSE_TIMEOUT;
    black_hole("redis", &proxy, &store, Arc::new(inbox), bound).await;
}
