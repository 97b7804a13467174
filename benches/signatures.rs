#![allow(missing_docs)]
//! Standard Webhooks `v1a` (ed25519) verification at 16 KiB, next to `v1`;
//! and signature detection on a 32 KiB capture whose scheme is found only
//! after many combinations. Targets: `v1a` verify ≤ 60 µs; detect ≥ 24
//! combinations in ≤ 100 ms.

mod common;

use alm_webhooks::Secret;
use alm_webhooks::auth::StandardWebhooksAuth;
use alm_webhooks::detect::{CapturedRequest, detect};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
use hmac::{Hmac, Mac};
use http::HeaderMap;
use time::OffsetDateTime;

const SECRET_KEY: &str = "whsk_AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";
const PUBLIC_KEY: &str = "whpk_ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ=";
const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const TIMESTAMP: i64 = 1_725_524_713;

/// The first `bytes` bytes of an envelope (authentication does not parse).
fn body_of(bytes: usize) -> Vec<u8> {
    let mut count = 1;
    while common::body(0, count).len() < bytes {
        count += 1;
    }
    let mut body = common::body(0, count);
    body.truncate(bytes);
    body
}

fn standard(c: &mut Criterion) {
    let body = body_of(16 * 1024);
    assert_eq!(body.len(), 16 * 1024);
    let now = OffsetDateTime::from_unix_timestamp(TIMESTAMP).unwrap();
    let mut group = c.benchmark_group("standard_verify_16KiB");
    group.throughput(Throughput::Bytes(body.len() as u64));
    for (name, signer, verifier) in [
        ("v1a_ed25519", SECRET_KEY, PUBLIC_KEY),
        ("v1_hmac_sha256", WHSEC, WHSEC),
    ] {
        let signer = StandardWebhooksAuth::new(signer).unwrap();
        let auth = StandardWebhooksAuth::new(verifier).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            "webhook-id",
            "msg_2XKxYKf5gXH3Wq1Hd3ub3vJc".parse().unwrap(),
        );
        headers.insert("webhook-timestamp", TIMESTAMP.to_string().parse().unwrap());
        let signature = signer.sign("msg_2XKxYKf5gXH3Wq1Hd3ub3vJc", TIMESTAMP, &body);
        headers.insert("webhook-signature", signature.parse().unwrap());
        assert!(auth.verify_at(&headers, &body, now).is_ok());
        group.bench_function(name, |b| {
            b.iter(|| auth.verify_at(black_box(&headers), black_box(&body), now))
        });
    }
    group.finish();
    // The fixed cost of a v1a check (the curve arithmetic), without a body.
    let signer = StandardWebhooksAuth::new(SECRET_KEY).unwrap();
    let auth = StandardWebhooksAuth::new(PUBLIC_KEY).unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("webhook-id", "msg_1".parse().unwrap());
    headers.insert("webhook-timestamp", TIMESTAMP.to_string().parse().unwrap());
    let signature = signer.sign("msg_1", TIMESTAMP, b"");
    headers.insert("webhook-signature", signature.parse().unwrap());
    assert!(auth.verify_at(&headers, b"", now).is_ok());
    c.bench_function("standard_verify_empty/v1a_ed25519", |b| {
        b.iter(|| auth.verify_at(black_box(&headers), b"", now))
    });
}

/// A 32 KiB capture signed HMAC-SHA512 over `{id}.{timestamp}.{body}` with
/// the base64-decoded secret: found after the body, every `{t}.{body}` and
/// most keys, among decoy headers.
fn capture_32k() -> CapturedRequest {
    let body = body_of(32 * 1024);
    let key: Vec<u8> = (0u8..48).collect();
    let mut mac = Hmac::<sha2::Sha512>::new_from_slice(&key).unwrap();
    mac.update(format!("req_91c2.{TIMESTAMP}.").as_bytes());
    mac.update(&body);
    let signature = STANDARD.encode(mac.finalize().into_bytes());
    let mut raw = format!(
        "POST /webhooks HTTP/1.1\r\nhost: example.com\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nuser-agent: Adobe-Learning-Manager\r\nx-alm-account: 1234\r\n\
         x-alm-delivery: dlv_77\r\nx-alm-request-id: req_91c2\r\nx-alm-sent: {}\r\n\
         x-alm-timestamp: {TIMESTAMP}\r\nx-alm-body-sha256: {}\r\nx-alm-signature: {signature}\r\n\r\n",
        body.len(),
        TIMESTAMP - 2,
        "ab".repeat(32),
    )
    .into_bytes();
    raw.extend_from_slice(&body);
    CapturedRequest::parse(&raw).unwrap()
}

fn detection(c: &mut Criterion) {
    let capture = capture_32k();
    let secret = Secret::from(STANDARD.encode((0u8..48).collect::<Vec<u8>>()));
    let found = detect(&secret, std::slice::from_ref(&capture)).unwrap();
    assert_eq!(
        found.scheme.signed.to_string(),
        "{x-alm-request-id}.{x-alm-timestamp}.{body}"
    );
    assert!(
        found.combinations >= 24,
        "{} combinations",
        found.combinations
    );
    eprintln!(
        "detect: {} combinations on a {}-byte body",
        found.combinations,
        capture.body.len()
    );
    let mut group = c.benchmark_group("detect_32KiB");
    group.sample_size(10);
    group.bench_function("found_after_all_combinations", |b| {
        b.iter(|| detect(black_box(&secret), std::slice::from_ref(&capture)).unwrap())
    });
    let wrong = Secret::from("not-the-secret");
    group.bench_function("no_match", |b| {
        b.iter(|| detect(black_box(&wrong), std::slice::from_ref(&capture)).unwrap_err())
    });
    group.finish();
}

criterion_group!(benches, standard, detection);
criterion_main!(benches);
