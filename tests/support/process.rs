//! Example receivers as child processes: start one, talk HTTP/1.1 to it, and
//! collect the decision lines it prints.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alm_webhooks::auth::SignatureAuth;
use serde_json::Value;

const SECRET: &str = "receiver-test-secret";

/// A receiver process, its address, and the decision lines it printed.
pub struct Running {
    pub child: Child,
    pub addr: SocketAddr,
    pub lines: Arc<Mutex<Vec<Value>>>,
    /// Every line it wrote on stderr so far.
    pub stderr: Arc<Mutex<Vec<String>>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn example(name: &str) -> PathBuf {
    let mut dir = std::env::current_exe().expect("test binary path");
    dir.pop();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} missing: run `cargo test --all-features`, which builds the examples",
        path.display()
    );
    path
}

/// Starts a receiver. Unless `env` says otherwise it runs as receivers did
/// before the inbox (`ALM_MODE=inline`, `ALM_ON_MALFORMED=refuse`): the
/// inbox mode's tests pass `ALM_MODE=inbox`.
pub fn start(name: &str, env: &[(&str, &str)]) -> Running {
    let mut command = Command::new(example(name));
    command
        .env("ALM_MODE", "inline")
        .env("ALM_ON_MALFORMED", "refuse")
        .env("ALM_LISTEN", "127.0.0.1:0")
        .env("ALM_AUTH", "signature")
        .env("ALM_SIGNING_SECRET", SECRET)
        .env("ALM_MAX_BODY_BYTES", "20000")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("the receiver starts");
    let stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
    let (tx, rx) = std::sync::mpsc::channel();
    let errors = Arc::new(Mutex::new(Vec::new()));
    let error_sink = Arc::clone(&errors);
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            error_sink.lock().unwrap().push(line.clone());
            if let Some(rest) = line.strip_prefix("listening on http://") {
                let _ = tx.send(rest.trim_end_matches("/webhooks").to_owned());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the receiver says where it listens");
    let lines = Arc::new(Mutex::new(Vec::new()));
    let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let sink = Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            let value: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
            sink.lock().unwrap().push(value);
        }
    });
    Running {
        child,
        addr: addr.parse().expect("an address"),
        lines,
        stderr: errors,
    }
}

/// One HTTP/1.1 request to `/webhooks`; returns (status, body).
pub fn request(
    addr: SocketAddr,
    method: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, String) {
    request_to(addr, method, "/webhooks", headers, body)
}

/// One HTTP/1.1 request to `path`; returns (status, body).
pub fn request_to(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-length: {}\r\nconnection: close\r\ncontent-type: application/json\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let _ = stream.write_all(body);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

pub fn signed_post(addr: SocketAddr, body: &[u8]) -> (u16, String) {
    let signature = SignatureAuth::new(SECRET).sign(body);
    request(addr, "POST", &[("x-alm-signature", signature)], body)
}

pub fn wait_for_lines(r: &Running, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let lines = r.lines.lock().unwrap().clone();
        if lines.len() >= count || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn decisions(lines: &[Value]) -> Vec<(String, String)> {
    lines
        .iter()
        .map(|l| {
            (
                l["eventId"].as_str().unwrap_or("-").to_owned(),
                l["decision"].as_str().unwrap_or("?").to_owned(),
            )
        })
        .collect()
}

/// The value of the first sample of metric `name` whose labels include
/// every one of `labels` (`key="value"`), in a Prometheus text page.
pub fn prometheus_sample(page: &str, name: &str, labels: &[&str]) -> Option<f64> {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let rest = series.strip_prefix(name)?;
            let wanted = rest.is_empty() || rest.starts_with('{');
            (wanted && labels.iter().all(|l| rest.contains(l)))
                .then(|| value.parse().ok())
                .flatten()
        })
}
