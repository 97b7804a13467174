//! The shipped alert rules and dashboard against a real receiver: the
//! example receiver (inbox mode, its defaults, `install_prometheus`) takes
//! ALM-shaped traffic; its `/metrics` page must carry every series that
//! every rule and every dashboard panel queries (the `_bucket` series where
//! a quantile is taken), and a real Prometheus server that scrapes it and
//! evaluates `deploy/prometheus/alerts.yml` must raise exactly the alerts
//! the traffic calls for.
//!
//! The Prometheus server is Debian's `prometheus` package (installed by
//! `.ci/run`); without it the second test says it was skipped, and fails
//! under `CI=true`.
#![cfg(all(feature = "prometheus", feature = "axum", feature = "env"))]

mod support;

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use support::process::{Running, prometheus_sample, request, request_to, signed_post, start};

const RULES: &str = "deploy/prometheus/alerts.yml";
const DASHBOARD: &str = "deploy/grafana/alm-webhooks.json";

fn manifest(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn receiver() -> Running {
    // The example receiver's own defaults (`support::process::start` sets
    // inline mode and refusal for older tests), with rate limits far above
    // what the test sends, so the rate limit's series exist (they do only
    // where a limit is set).
    start(
        "axum_receiver",
        &[
            ("ALM_MODE", "inbox"),
            ("ALM_ON_MALFORMED", "quarantine"),
            ("ALM_RATE_LIMIT", "100000"),
            ("ALM_ACCOUNT_RATE_LIMIT", "100000"),
        ],
    )
}

fn scrape(addr: SocketAddr) -> String {
    let (status, page) = request_to(addr, "GET", "/metrics", &[], b"");
    assert_eq!(status, 200, "{page}");
    page
}

fn now_secs() -> i64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(now.as_secs()).unwrap()
}

fn enrollment(id: &str, user: u64, ts: i64) -> String {
    format!(
        r#"{{"eventId":"{id}","eventName":"COURSE_ENROLLMENT","timestamp":{ts},"data":{{"userId":{user},"loId":"course:77","loInstanceId":"course:77_1","loType":"course","enrollmentSource":"SELF_ENROLL","dateEnrolled":{ts}}}}}"#
    )
}

fn delivery(events: &[String]) -> Vec<u8> {
    format!(r#"{{"accountId":4242,"events":[{}]}}"#, events.join(",")).into_bytes()
}

/// One round of traffic, as a troubled ALM account produces it: 5 new
/// enrollments two hours old (late: the lag alert), each redelivered three
/// times (duplicates: 15 of 27 events), 7 enrollments older than what was
/// applied to their records (stale: 7 of 27, over the rule's 20 %), 5 deliveries with a
/// forged signature, and in the first round a body that is not an envelope
/// (quarantined) and an event that does not parse (a dead letter).
fn round(addr: SocketAddr, round: u64) {
    let old = now_secs() - 7200;
    let fresh: Vec<String> = (0..5)
        .map(|i| {
            let user = round * 10 + i;
            enrollment(&format!("r{round}-e{i}"), user, old)
        })
        .collect();
    let body = delivery(&fresh);
    for _ in 0..4 {
        assert_eq!(signed_post(addr, &body).0, 202);
    }
    let stale: Vec<String> = (0..7)
        .map(|i| {
            let user = round * 10 + i % 5;
            let ts = old - 600 - i64::try_from(i).unwrap();
            enrollment(&format!("r{round}-s{i}"), user, ts)
        })
        .collect();
    assert_eq!(signed_post(addr, &delivery(&stale)).0, 202);
    for _ in 0..5 {
        let headers = [("x-alm-signature", "00".repeat(32))];
        let (status, _) = request(addr, "POST", &headers, &delivery(&fresh));
        assert_eq!(status, 401);
    }
    if round == 0 {
        assert_eq!(signed_post(addr, br#"{"not":"an envelope"}"#).0, 202);
        let broken = delivery(&[r#"{"eventId":"broken-1","timestamp":"soon"}"#.to_owned()]);
        assert_eq!(signed_post(addr, &broken).0, 202);
    }
}

/// Every selector (`alm_webhooks_…{…}`) in the rules and the dashboard,
/// as (series name, label matchers).
fn selectors() -> BTreeSet<(String, Vec<String>)> {
    let rules = std::fs::read_to_string(manifest(RULES)).unwrap();
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(manifest(DASHBOARD)).unwrap()).unwrap();
    let mut texts = vec![rules];
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            texts.push(target["expr"].as_str().unwrap_or_default().to_owned());
        }
    }
    let mut found = BTreeSet::new();
    for text in &texts {
        let mut rest = text.as_str();
        while let Some(at) = rest.find("alm_webhooks_") {
            rest = &rest[at..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let name = rest[..end].to_owned();
            rest = &rest[end..];
            let mut labels = Vec::new();
            if let Some(inner) = rest.strip_prefix('{') {
                let close = inner.find('}').expect("a closed selector");
                labels = inner[..close]
                    .split(',')
                    .map(|m| m.trim().to_owned())
                    .filter(|m| !m.is_empty())
                    .collect();
                rest = &inner[close..];
            }
            found.insert((name, labels));
        }
    }
    found
}

#[test]
fn a_real_receiver_exports_every_series_the_rules_and_dashboard_query() {
    let running = receiver();
    // On a healthy receiver that has seen nothing yet, the counters the
    // rules take rates of are there, at zero.
    let page = scrape(running.addr);
    for (name, labels) in [
        ("alm_webhooks_store_errors_total", vec![]),
        (
            "alm_webhooks_deliveries_total",
            vec![r#"outcome="unauthorized""#],
        ),
        (
            "alm_webhooks_deliveries_total",
            vec![r#"outcome="unavailable""#],
        ),
        ("alm_webhooks_events_total", vec![r#"decision="duplicate""#]),
        (
            "alm_webhooks_events_total",
            vec![r#"decision="ignored""#, r#"reason="stale""#],
        ),
    ] {
        assert_eq!(
            prometheus_sample(&page, name, &labels),
            Some(0.0),
            "{name}{labels:?} at start:\n{page}"
        );
    }
    round(running.addr, 0);
    let deadline = Instant::now() + Duration::from_secs(30);
    let page = loop {
        let page = scrape(running.addr);
        let processed = prometheus_sample(
            &page,
            "alm_webhooks_events_total",
            &[r#"decision="processed""#, r#"event="COURSE_ENROLLMENT""#],
        );
        let dead = prometheus_sample(&page, "alm_webhooks_dead_letters", &[]);
        if processed == Some(5.0) && dead == Some(1.0) || Instant::now() > deadline {
            break page;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let missing: Vec<_> = selectors()
        .into_iter()
        .filter(|(name, labels)| {
            let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
            prometheus_sample(&page, name, &labels).is_none()
        })
        .collect();
    assert!(missing.is_empty(), "not in the scrape: {missing:?}\n{page}");
    // The histograms are histograms: the quantiles have buckets to read.
    for histogram in [
        "alm_webhooks_ack_seconds",
        "alm_webhooks_handler_seconds",
        "alm_webhooks_event_lag_seconds",
    ] {
        assert!(
            page.contains(&format!("{histogram}_bucket{{")),
            "{histogram} is not exported as a histogram:\n{page}"
        );
    }
}

/// A Prometheus server on a free port, scraping `target` every second and
/// evaluating the shipped rules every second.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    _dir: TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn prometheus(target: SocketAddr) -> Option<Prometheus> {
    if Command::new("prometheus")
        .arg("--version")
        .output()
        .is_err()
    {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "prometheus is required in CI (Debian package prometheus)"
        );
        eprintln!("skipped: no prometheus binary (apt-get install prometheus)");
        return None;
    }
    let dir = std::env::temp_dir().join(format!(
        "alm-prometheus-{}-{}",
        std::process::id(),
        target.port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let config = format!(
        "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
         rule_files: [{rules:?}]\n\
         scrape_configs:\n  - job_name: alm\n    static_configs: [{{targets: [\"{target}\"]}}]\n",
        rules = manifest(RULES).display().to_string(),
    );
    std::fs::write(dir.join("prometheus.yml"), config).unwrap();
    let addr = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let child = Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus starts");
    Some(Prometheus {
        child,
        addr,
        _dir: TempDir(dir),
    })
}

impl Prometheus {
    /// A JSON answer of the HTTP API; `None` while the server is not up.
    fn api(&self, path: &str) -> Option<Value> {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(self.addr).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .ok()?;
        let head = format!(
            "GET {path} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n",
            self.addr
        );
        stream.write_all(head.as_bytes()).ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let (head, body) = response.split_once("\r\n\r\n")?;
        if !head.starts_with("HTTP/1.1 200") {
            return None;
        }
        // Prometheus answers small replies in one piece, larger ones chunked.
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            let mut json = String::new();
            let mut rest = body;
            while let Some((size, tail)) = rest.split_once("\r\n") {
                let size = usize::from_str_radix(size.trim(), 16).ok()?;
                if size == 0 {
                    break;
                }
                json.push_str(tail.get(..size)?);
                rest = tail.get(size + 2..)?;
            }
            return serde_json::from_str(&json).ok();
        }
        serde_json::from_str(body).ok()
    }

    /// The result of an instant query.
    fn query(&self, promql: &str) -> Vec<Value> {
        let mut encoded = String::new();
        for b in promql.bytes() {
            if b.is_ascii_alphanumeric() {
                encoded.push(char::from(b));
            } else {
                encoded.push_str(&format!("%{b:02X}"));
            }
        }
        self.api(&format!("/api/v1/query?query={encoded}"))
            .and_then(|v| v["data"]["result"].as_array().cloned())
            .unwrap_or_default()
    }

    /// The alerts pending or firing now, by name.
    fn alerts(&self) -> BTreeSet<String> {
        self.api("/api/v1/alerts")
            .and_then(|v| v["data"]["alerts"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|a| a["labels"]["alertname"].as_str().map(str::to_owned))
            .collect()
    }
}

#[test]
fn prometheus_raises_the_shipped_alerts_from_a_real_receivers_scrape() {
    let running = receiver();
    let Some(server) = prometheus(running.addr) else {
        return;
    };
    // Wait until the receiver has been scraped at least twice, so that
    // the traffic below is an increase Prometheus sees.
    let deadline = Instant::now() + Duration::from_secs(60);
    while server
        .query("count_over_time(alm_webhooks_store_errors_total[1m])")
        .first()
        .and_then(|s| s["value"][1].as_str()?.parse::<f64>().ok())
        .is_none_or(|n| n < 2.0)
    {
        assert!(
            Instant::now() < deadline,
            "prometheus never scraped the receiver"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // On a healthy receiver a rule over the store errors' rate has a
    // series to read, at zero.
    let errors = server.query("sum(rate(alm_webhooks_store_errors_total[5m]))");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["value"][1], "0", "{errors:?}");

    let expected: BTreeSet<String> = [
        "AlmWebhooksAuthenticationFailures",
        "AlmWebhooksDeadLetters",
        "AlmWebhooksDuplicateRatioHigh",
        "AlmWebhooksEventLag",
        "AlmWebhooksQuarantined",
        "AlmWebhooksStaleRatioHigh",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut sent = 0;
    let raised = loop {
        // Traffic keeps flowing while Prometheus scrapes, as in life.
        if sent < 8 {
            round(running.addr, sent);
            sent += 1;
        }
        let raised = server.alerts();
        if raised == expected || Instant::now() > deadline {
            break raised;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(
        raised, expected,
        "alerts pending or firing (the store and the backlog are healthy: \
         AlmWebhooksStoreUnavailable and AlmWebhooksInboxBacklog stay quiet)"
    );
}

#[test]
fn prometheus_raises_the_account_cap_alert_before_the_cap() {
    // The example receiver with a small per-account cap on quarantined
    // bytes, from its environment.
    let running = start(
        "axum_receiver",
        &[
            ("ALM_MODE", "inbox"),
            ("ALM_ON_MALFORMED", "quarantine"),
            ("ALM_MAX_QUARANTINED_BYTES_PER_ACCOUNT", "1000"),
        ],
    );
    let page = scrape(running.addr);
    let ratio = "alm_webhooks_kept_fullest_account_ratio";
    assert_eq!(
        prometheus_sample(&page, ratio, &[]),
        Some(0.0),
        "at start:\n{page}"
    );
    let Some(server) = prometheus(running.addr) else {
        return;
    };
    // A broken body of account 5, 850 bytes: 85 % of what it may keep.
    let broken = |bytes: usize| {
        let body = format!(r#"{{"accountId":5,"events":"{}"}}"#, "x".repeat(bytes - 27));
        assert_eq!(body.len(), bytes);
        body.into_bytes()
    };
    assert_eq!(signed_post(running.addr, &broken(850)).0, 202);
    assert_eq!(
        prometheus_sample(&scrape(running.addr), ratio, &[]),
        Some(0.85)
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while !server.alerts().contains("AlmWebhooksKeptNearAccountCap") {
        assert!(Instant::now() < deadline, "{:?}", server.alerts());
        std::thread::sleep(Duration::from_millis(250));
    }
    // Past the cap the account is refused; another account is accepted.
    // (Under 90 % of its caps an account's counts are trusted for a second.)
    std::thread::sleep(Duration::from_millis(1_100));
    assert_eq!(signed_post(running.addr, &broken(200)).0, 202);
    std::thread::sleep(Duration::from_millis(1_100));
    assert_eq!(signed_post(running.addr, &broken(100)).0, 503);
    let other = br#"{"accountId":6,"events":[]}"#;
    assert_eq!(signed_post(running.addr, other).0, 202);
}
