//! The example axum receiver facing hostile clients (issue 29): credentials
//! checked before the body, read timeouts on headers and bodies, a cap on
//! concurrent requests and on bytes buffered, and one summary line for
//! refused requests instead of one per request.
#![cfg(all(feature = "axum", feature = "env"))]

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alm_webhooks::auth::{BasicAuth, SignatureAuth};
use support::process::example;

const SECRET: &str = "front-door-secret";

/// The example receivers, both behind the library's guard (the tower
/// layer for axum, the middleware for actix-web).
const GUARDED: [&str; 2] = ["axum_receiver", "actix_receiver"];

/// The axum receiver, with its stderr lines kept.
struct DeliveryReceiver {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<Vec<String>>>,
    stdout: Arc<Mutex<Vec<String>>>,
}

impl Drop for DeliveryReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl DeliveryReceiver {
    fn start(env: &[(&str, &str)]) -> Self {
        Self::start_example("axum_receiver", env)
    }

    /// `name`, one of [`GUARDED`].
    fn start_example(name: &str, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(example(name));
        command
            .env("ALM_MODE", "inbox")
            .env("ALM_LISTEN", "127.0.0.1:0")
            .env("ALM_AUTH", "signature")
            .env("ALM_SIGNING_SECRET", SECRET)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("the receiver starts");
        let stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("listening on http://") {
                    let _ = tx.send(rest.trim_end_matches("/webhooks").to_owned());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&out);
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the receiver says where it listens")
            .parse()
            .expect("an address");
        Self {
            child,
            addr,
            stderr: lines,
            stdout: out,
        }
    }

    /// Resident memory of the process, in bytes.
    fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc status");
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmRSS");
        kb * 1024
    }

    fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        stream
    }
}

/// The head of a `POST /webhooks` declaring `length` body bytes.
fn head(length: usize, headers: &[(&str, String)]) -> String {
    let mut head = format!(
        "POST /webhooks HTTP/1.1\r\nhost: test\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n"
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    head
}

/// Reads what the server sends until it closes (or 15 s pass); returns the
/// text and how long it took.
fn read_all(stream: &mut TcpStream) -> (String, Duration) {
    let started = Instant::now();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    (
        String::from_utf8_lossy(&response).into_owned(),
        started.elapsed(),
    )
}

fn status(response: &str) -> u16 {
    response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A well-formed signature header that matches nothing (an attacker's).
fn forged_signature() -> (&'static str, String) {
    ("x-alm-signature", "ab".repeat(32))
}

#[test]
fn basic_auth_with_wrong_credentials_is_refused_before_the_body() {
    for name in GUARDED {
        basic_auth_with_wrong_credentials_is_refused_before_the_body_on(name);
    }
}

fn basic_auth_with_wrong_credentials_is_refused_before_the_body_on(name: &str) {
    eprintln!("-- {name}");
    let r = DeliveryReceiver::start_example(
        name,
        &[
            ("ALM_AUTH", "basic"),
            ("ALM_BASIC_USER", "alm"),
            ("ALM_BASIC_PASSWORD", "right password"),
        ],
    );
    let mut stream = r.connect();
    let wrong = BasicAuth::header_value("alm", "wrong password");
    let head = head(
        1_000_000,
        &[("authorization", wrong.to_str().unwrap().into())],
    );
    stream.write_all(head.as_bytes()).unwrap();
    // Not one byte of the body is sent: the answer must not wait for it.
    let (response, took) = read_all(&mut stream);
    assert_eq!(status(&response), 401, "{response}");
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
    assert!(
        response
            .to_ascii_lowercase()
            .contains("www-authenticate: basic"),
        "{response}"
    );
}

#[test]
fn a_missing_or_malformed_signature_is_refused_before_the_body() {
    for name in GUARDED {
        a_missing_or_malformed_signature_is_refused_before_the_body_on(name);
    }
}

fn a_missing_or_malformed_signature_is_refused_before_the_body_on(name: &str) {
    eprintln!("-- {name}");
    let r = DeliveryReceiver::start_example(name, &[]);
    for headers in [
        vec![],
        vec![("x-alm-signature", "not-a-signature".to_owned())],
    ] {
        let mut stream = r.connect();
        stream
            .write_all(head(1_000_000, &headers).as_bytes())
            .unwrap();
        let (response, took) = read_all(&mut stream);
        assert_eq!(status(&response), 401, "{headers:?}: {response}");
        assert!(took < Duration::from_secs(3), "answered after {took:?}");
    }
}

#[test]
fn a_half_sent_header_is_closed_within_the_read_timeout() {
    for name in GUARDED {
        a_half_sent_header_is_closed_within_the_read_timeout_on(name);
    }
}

fn a_half_sent_header_is_closed_within_the_read_timeout_on(name: &str) {
    eprintln!("-- {name}");
    let r = DeliveryReceiver::start_example(name, &[("ALM_READ_TIMEOUT_MS", "1000")]);
    let mut stream = r.connect();
    stream
        .write_all(b"POST /webhooks HTTP/1.1\r\nhost: test\r\ncontent-le")
        .unwrap();
    let (_, took) = read_all(&mut stream);
    assert!(
        took < Duration::from_secs(4),
        "a half-sent header was still open after {took:?}"
    );
    // A connection that sends nothing at all is closed too.
    let mut silent = r.connect();
    let (_, took) = read_all(&mut silent);
    assert!(
        took < Duration::from_secs(4),
        "a silent connection was still open after {took:?}"
    );
}

#[test]
fn a_half_sent_body_is_closed_within_the_read_timeout() {
    for name in GUARDED {
        a_half_sent_body_is_closed_within_the_read_timeout_on(name);
    }
}

fn a_half_sent_body_is_closed_within_the_read_timeout_on(name: &str) {
    eprintln!("-- {name}");
    let r = DeliveryReceiver::start_example(name, &[("ALM_READ_TIMEOUT_MS", "1000")]);
    let mut stream = r.connect();
    stream
        .write_all(head(1_000, &[forged_signature()]).as_bytes())
        .unwrap();
    stream.write_all(br#"{"accountId":1,"#).unwrap();
    let (response, took) = read_all(&mut stream);
    assert!(
        took < Duration::from_secs(4),
        "a half-sent body was still open after {took:?}"
    );
    assert_eq!(status(&response), 408, "{response}");
}

#[test]
fn over_the_concurrency_cap_the_answer_is_503_with_retry_after() {
    for name in GUARDED {
        over_the_concurrency_cap_the_answer_is_503_with_retry_after_on(name);
    }
}

fn over_the_concurrency_cap_the_answer_is_503_with_retry_after_on(name: &str) {
    eprintln!("-- {name}");
    let r = DeliveryReceiver::start_example(name, &[("ALM_MAX_CONCURRENT_REQUESTS", "2")]);
    // Two requests in progress, each stalled in its body.
    let stalled: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut s = r.connect();
            s.write_all(head(1_000, &[forged_signature()]).as_bytes())
                .unwrap();
            s.write_all(b"{").unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let body = br#"{"accountId":7,"events":[]}"#;
    let signature = SignatureAuth::new(SECRET).sign(body);
    let mut stream = r.connect();
    stream
        .write_all(head(body.len(), &[("x-alm-signature", signature.clone())]).as_bytes())
        .unwrap();
    stream.write_all(body).unwrap();
    let mut response = vec![0; 4096];
    let n = stream.read(&mut response).unwrap();
    let response = String::from_utf8_lossy(&response[..n]).to_ascii_lowercase();
    assert_eq!(status(&response), 503, "{response}");
    assert!(response.contains("retry-after: "), "{response}");
    drop(stalled);
    std::thread::sleep(Duration::from_millis(300));
    // Once they are gone, a delivery is accepted again.
    let mut stream = r.connect();
    stream
        .write_all(head(body.len(), &[("x-alm-signature", signature)]).as_bytes())
        .unwrap();
    stream.write_all(body).unwrap();
    let mut response = vec![0; 4096];
    let n = stream.read(&mut response).unwrap();
    assert_eq!(
        status(&String::from_utf8_lossy(&response[..n])),
        202,
        "after the stalled requests left"
    );
}

#[test]
fn forty_slow_unauthenticated_senders_do_not_grow_memory() {
    for name in GUARDED {
        forty_slow_unauthenticated_senders_do_not_grow_memory_on(name);
    }
}

fn forty_slow_unauthenticated_senders_do_not_grow_memory_on(name: &str) {
    eprintln!("-- {name}");
    let r = DeliveryReceiver::start_example(name, &[]);
    std::thread::sleep(Duration::from_millis(300));
    let idle = r.rss();
    let almost = alm_webhooks::DEFAULT_MAX_BODY_BYTES - 1;
    let chunk = vec![b' '; 64 * 1024];
    // Each sends 8 MiB − 1 but the last byte, then stalls.
    let senders: Vec<TcpStream> = (0..40)
        .map(|_| {
            let mut s = r.connect();
            s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
            let _ = s.write_all(head(almost, &[forged_signature()]).as_bytes());
            let mut sent = 0;
            while sent + chunk.len() < almost {
                if s.write_all(&chunk).is_err() {
                    break; // refused (and closed) early: fine
                }
                sent += chunk.len();
            }
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let grown = r.rss().saturating_sub(idle);
    drop(senders);
    eprintln!("40 stalled senders: +{} MB resident", grown / (1024 * 1024));
    assert!(
        grown < 64 * 1024 * 1024,
        "40 stalled unauthenticated senders grew the process by {} MB",
        grown / (1024 * 1024)
    );
}

#[test]
fn refused_requests_are_summarised_not_logged_one_by_one() {
    for name in GUARDED {
        refused_requests_are_summarised_not_logged_one_by_one_on(name);
    }
}

fn refused_requests_are_summarised_not_logged_one_by_one_on(name: &str) {
    eprintln!("-- {name}");
    let r = DeliveryReceiver::start_example(name, &[("ALM_REFUSAL_SUMMARY_MS", "1000")]);
    std::thread::sleep(Duration::from_millis(200));
    let before = r.stderr.lock().unwrap().len();
    for _ in 0..50 {
        let mut stream = r.connect();
        stream.write_all(head(2, &[]).as_bytes()).unwrap();
        stream.write_all(b"{}").unwrap();
        let (response, _) = read_all(&mut stream);
        assert_eq!(status(&response), 401);
    }
    std::thread::sleep(Duration::from_millis(1_800));
    let lines = r.stderr.lock().unwrap()[before..].to_vec();
    assert!(
        !lines.is_empty() && lines.len() <= 2,
        "expected one or two summary lines, got {lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("50 unauthorized")),
        "{lines:?}"
    );
}

#[test]
fn a_million_events_in_one_delivery_are_quarantined_whole_once() {
    let r = DeliveryReceiver::start(&[]);
    let body = format!(
        r#"{{"accountId":7,"events":[{}]}}"#,
        vec!["1"; 1_000_000].join(",")
    );
    let signature = SignatureAuth::new(SECRET).sign(body.as_bytes());
    let mut stream = r.connect();
    stream
        .write_all(head(body.len(), &[("x-alm-signature", signature)]).as_bytes())
        .unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    let (response, took) = read_all(&mut stream);
    assert_eq!(status(&response), 202, "{response}");
    assert!(response.contains("quarantined"), "{response}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    std::thread::sleep(Duration::from_millis(500));
    let lines = r.stdout.lock().unwrap().clone();
    assert_eq!(
        lines.len(),
        1,
        "one line, not one per event: {:?}",
        &lines[..lines.len().min(3)]
    );
    assert!(
        lines[0].contains(r#""decision":"quarantined""#)
            && lines[0].contains("more than 50000 events in one delivery"),
        "{}",
        lines[0]
    );
}

#[test]
fn a_short_admin_token_stops_the_receiver_at_start() {
    let output = Command::new(example("axum_receiver"))
        .env("ALM_LISTEN", "127.0.0.1:0")
        .env("ALM_AUTH", "signature")
        .env("ALM_SIGNING_SECRET", SECRET)
        .env("ALM_ADMIN_TOKEN", "t")
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("ALM_ADMIN_TOKEN") && stderr.contains("at least 32"),
        "{stderr}"
    );
}

#[test]
fn a_timestamp_header_outside_the_signed_content_stops_the_receiver_at_start() {
    let output = Command::new(example("axum_receiver"))
        .env("ALM_LISTEN", "127.0.0.1:0")
        .env("ALM_AUTH", "signature")
        .env("ALM_SIGNING_SECRET", SECRET)
        .env("ALM_TIMESTAMP_HEADER", "x-alm-timestamp")
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("ALM_TIMESTAMP_HEADER") && stderr.contains("not in the signed content"),
        "{stderr}"
    );
}

#[test]
fn a_libpq_password_in_the_store_or_inbox_setting_is_never_printed() {
    for var in ["ALM_STORE", "ALM_INBOX"] {
        let output = Command::new(example("axum_receiver"))
            .env("ALM_LISTEN", "127.0.0.1:0")
            .env("ALM_AUTH", "signature")
            .env("ALM_SIGNING_SECRET", SECRET)
            .env(var, "host=db.internal password=hunter2 user=alm")
            .output()
            .expect("runs");
        assert_eq!(output.status.code(), Some(2), "{var}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(var), "{var}: {stderr}");
        assert!(
            !stderr.contains("hunter2") && !stderr.contains("db.internal"),
            "{var}: {stderr}"
        );
    }
}

#[test]
fn captures_keep_only_authenticated_requests_redacted_and_capped() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("front-door-capture-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let r = DeliveryReceiver::start(&[
        ("ALM_AUTH", "basic"),
        ("ALM_BASIC_USER", "alm"),
        ("ALM_BASIC_PASSWORD", "hunter2"),
        ("ALM_CAPTURE_DIR", dir.to_str().unwrap()),
        ("ALM_CAPTURE_MAX_FILES", "2"),
    ]);
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "the capture folder is private");
    let body = br#"{"accountId":7,"events":[]}"#;
    let send = |password: &str| {
        let auth = BasicAuth::header_value("alm", password);
        let mut stream = r.connect();
        stream
            .write_all(
                head(
                    body.len(),
                    &[("authorization", auth.to_str().unwrap().into())],
                )
                .as_bytes(),
            )
            .unwrap();
        stream.write_all(body).unwrap();
        status(&read_all(&mut stream).0)
    };
    for _ in 0..10 {
        assert_eq!(send("wrong"), 401);
    }
    for _ in 0..3 {
        assert_eq!(send("hunter2"), 202);
    }
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(
        files.len(),
        2,
        "only authenticated requests, at most 2: {files:?}"
    );
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        assert!(text.contains("authorization: [REDACTED]"), "{text}");
        let credentials = BasicAuth::header_value("alm", "hunter2");
        assert!(
            !text.contains(&credentials.to_str().unwrap()[6..]),
            "{text}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn parse_errors_describe_the_json_and_never_copy_its_values() {
    let r = DeliveryReceiver::start(&[("ALM_ON_MALFORMED", "refuse")]);
    let value = format!("jane.doe@example.com {}", "x".repeat(1024 * 1024));
    let body = format!(r#"{{"accountId":"{value}","events":[]}}"#);
    let signature = SignatureAuth::new(SECRET).sign(body.as_bytes());
    let mut stream = r.connect();
    stream
        .write_all(head(body.len(), &[("x-alm-signature", signature)]).as_bytes())
        .unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    let (response, _) = read_all(&mut stream);
    assert_eq!(
        status(&response),
        400,
        "{}",
        &response[..response.len().min(300)]
    );
    assert!(response.len() < 1_000, "a {} byte answer", response.len());
    assert!(!response.contains("jane.doe"), "{response}");
    assert!(response.contains("accountId"), "{response}");
}

/// Posts `body` with `headers` on a fresh connection; returns the answer.
fn post_signed(r: &DeliveryReceiver, headers: &[(&str, String)], body: &[u8]) -> String {
    let mut stream = r.connect();
    stream
        .write_all(head(body.len(), headers).as_bytes())
        .unwrap();
    stream.write_all(body).unwrap();
    read_all(&mut stream).0
}

#[test]
fn a_replay_within_the_tolerance_is_acknowledged_and_not_kept_again() {
    let r = DeliveryReceiver::start(&[
        ("ALM_SIGNED_CONTENT", "{x-alm-timestamp}.{body}"),
        ("ALM_TIMESTAMP_HEADER", "x-alm-timestamp"),
    ]);
    let body = br#"{"accountId":7,"events":[]}"#;
    let now = time::OffsetDateTime::now_utc().unix_timestamp().to_string();
    let auth = SignatureAuth::new(SECRET)
        .with_signed_content("{x-alm-timestamp}.{body}".parse().unwrap())
        .with_timestamp_header(http::HeaderName::from_static("x-alm-timestamp"));
    let mut signed = http::HeaderMap::new();
    signed.insert("x-alm-timestamp", now.parse().unwrap());
    let signature = auth.sign_request(&signed, body).unwrap();
    let headers = [
        ("x-alm-timestamp", now.clone()),
        ("x-alm-signature", signature),
    ];
    let first = post_signed(&r, &headers, body);
    assert_eq!(status(&first), 202, "{first}");
    assert!(first.contains(r#""delivery":"#), "{first}");
    // The same signed delivery again, as an attacker who captured it
    // would send it: acknowledged, never appended a second time.
    for _ in 0..3 {
        let replay = post_signed(&r, &headers, body);
        assert_eq!(status(&replay), 202, "{replay}");
        assert!(replay.contains(r#""replay":true"#), "{replay}");
        assert!(!replay.contains(r#""delivery":"#), "{replay}");
    }
    // Another delivery (another timestamp) is appended as usual.
    let later = (time::OffsetDateTime::now_utc().unix_timestamp() + 1).to_string();
    let mut signed = http::HeaderMap::new();
    signed.insert("x-alm-timestamp", later.parse().unwrap());
    let signature = auth.sign_request(&signed, body).unwrap();
    let other = post_signed(
        &r,
        &[("x-alm-timestamp", later), ("x-alm-signature", signature)],
        body,
    );
    assert!(other.contains(r#""delivery":"#), "{other}");
}

#[test]
fn the_example_receivers_admin_answers_keep_the_security_headers() {
    for name in GUARDED {
        eprintln!("-- {name}");
        let r = DeliveryReceiver::start_example(
            name,
            &[("ALM_ADMIN_TOKEN", "front-door-admin-token-0123456789abcdef")],
        );
        for (path, expected) in [("/admin", 200), ("/admin/inbox", 401)] {
            let mut stream = r.connect();
            let request = format!("GET {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n");
            stream.write_all(request.as_bytes()).unwrap();
            let (response, _) = read_all(&mut stream);
            assert_eq!(status(&response), expected, "{name} {path}: {response}");
            let head = response.to_ascii_lowercase();
            for header in [
                "content-security-policy: ",
                "frame-ancestors 'none'",
                "x-content-type-options: nosniff",
                "cache-control: no-store",
            ] {
                assert!(
                    head.contains(header),
                    "{name} {path}: no {header}\n{response}"
                );
            }
            if expected == 401 {
                assert!(
                    head.contains("www-authenticate: bearer"),
                    "{name}: {response}"
                );
            }
        }
    }
}
