//! Detection end to end: deliveries signed in 14 schemes are captured by a
//! real receiver (`ALM_AUTH=none`, `ALM_CAPTURE_DIR`), `detect_signature`
//! finds each scheme, and a receiver started with the reported `env`
//! accepts a fresh delivery signed the same way and refuses a forged one.
//! The signing here is the test's own (the `hmac`, `sha1`, `sha2` and
//! `ed25519-dalek` crates), not the crate's.
#![cfg(all(feature = "axum", feature = "actix", feature = "env"))]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ed25519_dalek::SigningKey;
use serde_json::Value;
use sha2::Digest;
use support::process::{example, request, start};
use support::signing::{Signer, encode, hex};

/// How the time headers are written.
#[derive(Clone, Copy)]
enum Time {
    Seconds,
    Millis,
    Rfc3339,
}

struct Case {
    /// What the admin holds and gives detect (and the receiver).
    secret: String,
    signer: Signer,
    header: &'static str,
    algorithm: &'static str,
    encoding: &'static str,
    prefix: &'static str,
    signed: &'static str,
    key: &'static str,
    time: Time,
    /// Give detect and the receiver the secret as ALM's JSON file.
    from_file: bool,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn unique() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}-{nanos}", std::process::id())
}

fn time_text(form: Time, secs: u64) -> String {
    match form {
        Time::Seconds => secs.to_string(),
        Time::Millis => (secs * 1000 + 417).to_string(),
        Time::Rfc3339 => time::OffsetDateTime::from_unix_timestamp(secs as i64)
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap(),
    }
}

/// A delivery signed as `case` says (or with another key when `forged`),
/// with decoy headers that look like ids, times and MACs.
fn delivery(case: &Case, n: usize, forged: bool) -> (Vec<(&'static str, String)>, Vec<u8>) {
    let tag = unique();
    let body = format!(
        r#"{{"accountId":1234,"events":[{{"eventId":"{n}-{tag}","eventName":"COURSE_ENROLLMENT","timestamp":1725524713,"data":{{"userId":7,"loId":"course:1","loInstanceId":"course:1_1","loType":"course","enrollmentSource":"SELF_ENROLL","dateEnrolled":1725524713}}}}]}}"#
    )
    .into_bytes();
    let secs = now();
    let mut headers: Vec<(&'static str, String)> = vec![
        ("user-agent", "Adobe-Learning-Manager/1.0".into()),
        // A second before `webhook-timestamp`, so that the two differ.
        ("x-alm-timestamp", time_text(case.time, secs - 1)),
        ("x-alm-request-id", format!("req_{tag}")),
        ("webhook-id", format!("msg_{tag}")),
        ("webhook-timestamp", secs.to_string()),
        // Looks like a SHA-256 MAC, but is not one of ours.
        ("x-alm-body-sha256", hex(&sha2::Sha256::digest(&body))),
    ];
    let mut message = case.signed.to_owned();
    for (name, value) in &headers {
        message = message.replace(&format!("{{{name}}}"), value);
    }
    let message = message.replace("{body}", std::str::from_utf8(&body).unwrap());
    assert!(
        !message.contains('{') || message.contains("accountId"),
        "{message}"
    );
    let signature = if forged {
        let other = match &case.signer {
            Signer::Ed25519(_) => Signer::Ed25519(SigningKey::from_bytes(&[99; 32])),
            _ => Signer::Sha256(b"forger".to_vec()),
        };
        other.sign(message.as_bytes())
    } else {
        case.signer.sign(message.as_bytes())
    };
    let mut value = format!("{}{}", case.prefix, encode(&signature, case.encoding));
    if case.header == "webhook-signature" {
        // A Standard Webhooks list with an unknown version before ours.
        value = format!("v2,{} {value}", STANDARD.encode([7u8; 32]));
    }
    if case.header == "x-stripe-like" {
        value = format!("t={secs},{value}");
    }
    headers.push((case.header, value));
    (headers, body)
}

fn cases() -> Vec<Case> {
    let ed = SigningKey::from_bytes(&[5; 32]);
    let ed_public = ed.verifying_key().to_bytes();
    let random_key: Vec<u8> = (0u8..32)
        .map(|i| i.wrapping_mul(37).wrapping_add(11))
        .collect();
    let case = |secret: String, signer, header, algorithm, encoding, prefix, signed, key| Case {
        secret,
        signer,
        header,
        algorithm,
        encoding,
        prefix,
        signed,
        key,
        time: Time::Seconds,
        from_file: false,
    };
    let mut cases = vec![
        case(
            "alm-secret-1".into(),
            Signer::Sha256(b"alm-secret-1".to_vec()),
            "x-alm-signature",
            "hmac-sha256",
            "hex",
            "",
            "{body}",
            "as-given",
        ),
        case(
            "alm-secret-2".into(),
            Signer::Sha256(b"alm-secret-2".to_vec()),
            "x-alm-signature",
            "hmac-sha256",
            "base64",
            "sha256=",
            "{body}",
            "as-given",
        ),
        case(
            "old-sender".into(),
            Signer::Sha1(b"old-sender".to_vec()),
            "x-adobe-signature",
            "hmac-sha1",
            "hex",
            "sha1=",
            "{body}",
            "as-given",
        ),
        case(
            STANDARD.encode(&random_key),
            Signer::Sha512(random_key.clone()),
            "x-signature",
            "hmac-sha512",
            "base64",
            "",
            "{body}",
            "base64",
        ),
        case(
            hex(&random_key),
            Signer::Sha256(random_key.clone()),
            "x-alm-signature",
            "hmac-sha256",
            "hex-upper",
            "",
            "{x-alm-timestamp}.{body}",
            "hex",
        ),
        case(
            "ts-secret".into(),
            Signer::Sha256(b"ts-secret".to_vec()),
            "signature",
            "hmac-sha256",
            "base64url-nopad",
            "",
            "{x-alm-timestamp}.{body}",
            "as-given",
        ),
        case(
            format!("whsec_{}", STANDARD.encode(&random_key)),
            Signer::Sha256(random_key.clone()),
            "webhook-signature",
            "hmac-sha256",
            "base64",
            "v1,",
            "{webhook-id}.{webhook-timestamp}.{body}",
            "whsec",
        ),
        case(
            format!("whpk_{}", STANDARD.encode(ed_public)),
            Signer::Ed25519(ed.clone()),
            "webhook-signature",
            "ed25519",
            "base64",
            "v1a,",
            "{webhook-id}.{webhook-timestamp}.{body}",
            "whpk",
        ),
        case(
            STANDARD.encode(ed_public),
            Signer::Ed25519(ed.clone()),
            "x-alm-signature",
            "ed25519",
            "hex",
            "",
            "{body}",
            "base64",
        ),
        case(
            "hub-secret".into(),
            Signer::Sha256(b"hub-secret".to_vec()),
            "x-hub-signature-256",
            "hmac-sha256",
            "hex",
            "sha256=",
            "{body}",
            "as-given",
        ),
        case(
            URL_SAFE_NO_PAD.encode(&random_key),
            Signer::Sha512(random_key.clone()),
            "x-alm-signature",
            "hmac-sha512",
            "hex",
            "v1=",
            "{x-alm-request-id}.{x-alm-timestamp}.{body}",
            "base64",
        ),
        case(
            "rfc-secret".into(),
            Signer::Sha1(b"rfc-secret".to_vec()),
            "x-sig",
            "hmac-sha1",
            "base64",
            "",
            "{x-alm-timestamp}.{body}",
            "as-given",
        ),
        case(
            "stripe-ish".into(),
            Signer::Sha256(b"stripe-ish".to_vec()),
            "x-stripe-like",
            "hmac-sha256",
            "hex",
            "v1=",
            "{webhook-timestamp}.{body}",
            "as-given",
        ),
        case(
            "file-secret".into(),
            Signer::Sha256(b"file-secret".to_vec()),
            "x-alm-signature",
            "hmac-sha256",
            "base64url",
            "",
            "{body}",
            "as-given",
        ),
    ];
    cases[5].time = Time::Millis;
    cases[10].time = Time::Rfc3339;
    cases[11].time = Time::Rfc3339;
    cases[1].from_file = true;
    cases[6].from_file = true;
    cases[13].from_file = true;
    cases
}

/// Runs `detect_signature`; a `--secret VALUE` pair is passed as
/// `ALM_SIGNING_SECRET`, never on the command line.
fn run_detect(args: &[&str]) -> Output {
    let mut command = Command::new(example("detect_signature"));
    command.env_remove("ALM_SIGNING_SECRET");
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if *arg == "--secret" {
            command.env("ALM_SIGNING_SECRET", args.next().expect("a value"));
        } else {
            command.arg(arg);
        }
    }
    command.output().expect("detect_signature runs")
}

#[test]
fn the_secret_is_never_taken_from_the_command_line() {
    let out = Command::new(example("detect_signature"))
        .args(["--secret", "s3cret-on-argv", "--capture", "nowhere.http"])
        .output()
        .expect("detect_signature runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ALM_SIGNING_SECRET"), "{stderr}");
    assert!(!stderr.contains("s3cret-on-argv"), "{stderr}");
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("alm-detect-{what}-{}", unique()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "http"))
        .collect();
    files.sort();
    files
}

#[test]
fn captured_deliveries_reveal_fourteen_schemes_that_receivers_then_verify() {
    let cases = cases();
    let scratch = TempDir::new("scratch");
    let captures = TempDir::new("captures");
    let capture_dir = captures.0.to_str().unwrap().to_owned();

    // 1. A receiver without authentication captures one delivery per case.
    let capturing = start(
        "axum_receiver",
        &[("ALM_AUTH", "none"), ("ALM_CAPTURE_DIR", &capture_dir)],
    );
    let mut capture_of = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let (headers, body) = delivery(case, i, false);
        assert_eq!(
            request(capturing.addr, "POST", &headers, &body).0,
            202,
            "case {i}"
        );
        let all = files(&captures.0);
        assert_eq!(all.len(), i + 1, "one capture per delivery");
        let newest = all.into_iter().find(|f| !capture_of.contains(f)).unwrap();
        // The capture holds the body byte for byte and the headers.
        let raw = std::fs::read(&newest).unwrap();
        assert!(raw.starts_with(b"POST /webhooks HTTP/1.1\r\n"), "case {i}");
        assert!(raw.ends_with(&body), "case {i}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&newest).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "only the owner reads a capture");
        }
        capture_of.push(newest);
    }
    drop(capturing);

    for (i, case) in cases.iter().enumerate() {
        // 2. Detect, from the secret or from ALM's secret file.
        let secret_file = scratch.0.join(format!("secret-{i}.json"));
        std::fs::write(
            &secret_file,
            serde_json::json!({"name": "CRM sync", "signingSecret": case.secret}).to_string(),
        )
        .unwrap();
        let capture = capture_of[i].to_str().unwrap();
        let secret_path = secret_file.to_str().unwrap();
        let out = if case.from_file {
            run_detect(&["--secret-file", secret_path, "--capture", capture])
        } else {
            run_detect(&["--secret", &case.secret, "--capture", capture])
        };
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "case {i}: {stderr}");
        assert!(
            !stdout.contains(&case.secret) && !stderr.contains(&case.secret),
            "case {i}"
        );
        let found: Value = serde_json::from_str(&stdout).unwrap();
        let got = [
            &found["header"],
            &found["algorithm"],
            &found["encoding"],
            &found["prefix"],
            &found["signed"],
            &found["key"],
        ]
        .map(|v| v.as_str().unwrap_or("?").to_owned());
        // A URL-safe base64 text without `-` or `_` is standard base64 too:
        // what detect can tell depends on the signature's characters.
        let captured = std::fs::read(&capture_of[i]).unwrap();
        let captured = alm_webhooks::detect::CapturedRequest::parse(&captured).unwrap();
        let value = captured.headers[case.header].to_str().unwrap();
        let encoding = match case.encoding.strip_prefix("base64url") {
            Some(padding) if !value.contains(['-', '_']) => format!("base64{padding}"),
            _ => case.encoding.to_owned(),
        };
        let want = [
            case.header,
            case.algorithm,
            &encoding,
            case.prefix,
            case.signed,
            case.key,
        ]
        .map(str::to_owned);
        assert_eq!(got, want, "case {i}");

        // 3. A receiver started with the reported env (and the secret as
        // the admin holds it) takes a fresh delivery and refuses forgeries.
        let env_object = found["env"].as_object().unwrap();
        assert_eq!(env_object["ALM_AUTH"], "signature");
        assert_eq!(
            env_object.contains_key("ALM_SECRET_FILE"),
            case.from_file,
            "case {i}"
        );
        let mut env: Vec<(&str, &str)> = env_object
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str().unwrap()))
            .collect();
        if !case.from_file {
            env.push(("ALM_SIGNING_SECRET", &case.secret));
        } else {
            env.push(("ALM_SIGNING_SECRET", ""));
        }
        let name = if i % 2 == 0 {
            "axum_receiver"
        } else {
            "actix_receiver"
        };
        let receiver = start(name, &env);
        let (headers, body) = delivery(case, 100 + i, false);
        assert_eq!(
            request(receiver.addr, "POST", &headers, &body).0,
            202,
            "case {i} {name}"
        );
        let (forged, body) = delivery(case, 200 + i, true);
        assert_eq!(
            request(receiver.addr, "POST", &forged, &body).0,
            401,
            "case {i} {name}"
        );
        let mut tampered = body.clone();
        tampered[0] = b' ';
        let (headers, _) = delivery(case, 300 + i, false);
        assert_eq!(
            request(receiver.addr, "POST", &headers, &tampered).0,
            401,
            "case {i}"
        );
    }
}

/// A capture written by hand, as `nc -l` would keep it.
fn raw_request(headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut raw = b"POST /webhooks HTTP/1.1\r\n".to_vec();
    for (name, value) in headers {
        raw.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    raw.extend_from_slice(b"\r\n");
    raw.extend_from_slice(body);
    raw
}

#[test]
fn no_match_exits_1_and_says_why_per_header_without_the_secret() {
    let case = &cases()[1];
    let dir = TempDir::new("nomatch");
    let (headers, body) = delivery(case, 1, false);
    let file = dir.0.join("one.http");
    std::fs::write(&file, raw_request(&headers, &body)).unwrap();
    let wrong = "not-the-secret-xyz";
    let out = run_detect(&["--secret", wrong, "--capture", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains(wrong), "{stderr}");
    assert!(stderr.contains("x-alm-signature: 1 candidate"), "{stderr}");
    assert!(stderr.contains("user-agent: not a signature"), "{stderr}");
    assert!(
        stderr.contains("Timestamp headers: x-alm-timestamp, webhook-timestamp"),
        "{stderr}"
    );

    // The right secret, but a second capture signed otherwise: no scheme
    // fits both, and the verdict says which capture broke it.
    let other = dir.0.join("two.http");
    let (headers, body) = delivery(&cases()[0], 2, false);
    std::fs::write(&other, raw_request(&headers, &body)).unwrap();
    let out = run_detect(&[
        "--secret",
        &case.secret,
        "--capture",
        dir.0.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("but not capture 2"), "{stderr}");

    // Bad input: exit 2 with the file named.
    std::fs::write(dir.0.join("bad.http"), b"not a request").unwrap();
    let out = run_detect(&[
        "--secret",
        "s",
        "--capture",
        dir.0.join("bad.http").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.http"));
}

/// Sends raw bytes; returns the status.
fn raw_post(addr: std::net::SocketAddr, raw: &[u8]) -> u16 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    stream.write_all(raw).unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[test]
fn captures_of_chunked_bodies_read_back_and_oversized_bodies_are_not_captured() {
    for name in ["axum_receiver", "actix_receiver"] {
        let dir = TempDir::new("chunked");
        let r = start(
            name,
            &[
                ("ALM_AUTH", "none"),
                ("ALM_CAPTURE_DIR", dir.0.to_str().unwrap()),
            ],
        );
        let body = br#"{"accountId":1,"events":[]}"#;
        let mut raw = format!(
            "POST /webhooks?source=alm HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\
             transfer-encoding: chunked\r\nx-alm-signature: 00ff\r\n\r\n",
            r.addr
        )
        .into_bytes();
        for part in body.chunks(10) {
            raw.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
            raw.extend_from_slice(part);
            raw.extend_from_slice(b"\r\n");
        }
        raw.extend_from_slice(b"0\r\n\r\n");
        assert_eq!(raw_post(r.addr, &raw), 202, "{name}");
        let captured = files(&dir.0);
        assert_eq!(captured.len(), 1, "{name}");
        let capture =
            alm_webhooks::detect::CapturedRequest::parse(&std::fs::read(&captured[0]).unwrap())
                .unwrap();
        assert_eq!(capture.body, body, "{name}");
        assert_eq!(capture.target, "/webhooks?source=alm", "{name}");
        assert_eq!(capture.headers["x-alm-signature"], "00ff", "{name}");

        // Over ALM_MAX_BODY_BYTES (20,000 in these tests): 413, no file.
        let big = vec![b' '; 20_001];
        let mut raw = format!(
            "POST /webhooks HTTP/1.1\r\nhost: x\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n",
            big.len()
        )
        .into_bytes();
        raw.extend_from_slice(&big);
        raw.extend_from_slice(b"\r\n0\r\n\r\n");
        assert_eq!(raw_post(r.addr, &raw), 413, "{name}");
        assert_eq!(files(&dir.0).len(), 1, "{name}");
    }
}

#[test]
fn a_capturing_receiver_warns_at_start_what_captures_hold() {
    use std::io::{BufRead, BufReader};
    for name in ["axum_receiver", "actix_receiver"] {
        let dir = TempDir::new("warning");
        let mut child = Command::new(example(name))
            .env("ALM_LISTEN", "127.0.0.1:0")
            .env("ALM_AUTH", "none")
            .env("ALM_CAPTURE_DIR", &dir.0)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let mut seen = Vec::new();
        for line in stderr.lines().map_while(Result::ok) {
            let done = line.starts_with("listening on");
            seen.push(line);
            if done {
                break;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        let warning = seen
            .iter()
            .find(|l| l.contains("ALM_CAPTURE_DIR"))
            .unwrap_or_else(|| panic!("{name}: no capture warning in {seen:?}"));
        assert!(warning.starts_with("warning:"), "{warning}");
        assert!(
            warning.contains("signatures") && warning.contains("learners' data"),
            "{warning}"
        );
    }
}
