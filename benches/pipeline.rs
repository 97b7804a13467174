#![allow(missing_docs)]
//! Per-stage and whole-pipeline costs, each next to its alternative in the
//! same run: a naive receiver (HMAC + `serde_json::Value` + a `HashMap` of
//! seen ids), the floor (HMAC + event headers only, `data` left raw, plus a
//! set of seen ids), and the `standardwebhooks` crate.

mod common;

use common::{SECRET, floor, hmac_hex_ok, naive};

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};

use alm_webhooks::auth::{BasicAuth, SignatureAuth, StandardWebhooksAuth};
use alm_webhooks::store::{DedupKey, MemoryStore};
use alm_webhooks::{AccountId, Authentication, Engine, Envelope, Receiver};

use criterion::{
    BatchSize, BenchmarkId, Criterion, Throughput, black_box, criterion_group, criterion_main,
};
use http::HeaderMap;

const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A body whose ids were never seen, so every event is new work.
fn fresh_body(count: usize) -> Vec<u8> {
    common::body(NEXT.fetch_add(count, Ordering::Relaxed), count)
}

fn signed(body: &[u8]) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "x-alm-signature",
        SignatureAuth::new(SECRET).sign(body).parse().unwrap(),
    );
    h
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

// --- benchmarks ----------------------------------------------------------

fn authentication(c: &mut Criterion) {
    let mut group = c.benchmark_group("auth");
    for count in [1usize, 100] {
        let body = common::body(0, count);
        group.throughput(Throughput::Bytes(body.len() as u64));
        let basic = Authentication::Basic(BasicAuth::new("alm", "password"));
        let mut basic_h = HeaderMap::new();
        basic_h.insert(
            http::header::AUTHORIZATION,
            BasicAuth::header_value("alm", "password"),
        );
        group.bench_with_input(BenchmarkId::new("basic", body.len()), &body, |b, body| {
            b.iter(|| basic.verify(black_box(&basic_h), black_box(body)).unwrap())
        });
        let sig = SignatureAuth::new(SECRET);
        let hmac = Authentication::Signature(sig.clone());
        let hex_h = signed(&body);
        group.bench_with_input(
            BenchmarkId::new("hmac_hex", body.len()),
            &body,
            |b, body| b.iter(|| hmac.verify(black_box(&hex_h), black_box(body)).unwrap()),
        );
        let mut b64_h = HeaderMap::new();
        b64_h.insert("x-alm-signature", sig.sign_base64(&body).parse().unwrap());
        group.bench_with_input(
            BenchmarkId::new("hmac_base64", body.len()),
            &body,
            |b, body| b.iter(|| hmac.verify(black_box(&b64_h), black_box(body)).unwrap()),
        );
        let hex = sig.sign(&body);
        group.bench_with_input(
            BenchmarkId::new("baseline_hmac_hex", body.len()),
            &body,
            |b, body| b.iter(|| assert!(hmac_hex_ok(black_box(body), black_box(&hex)))),
        );
        let ours = StandardWebhooksAuth::new(WHSEC).unwrap();
        let theirs = standardwebhooks::Webhook::new(WHSEC).unwrap();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut std_h = HeaderMap::new();
        std_h.insert("webhook-id", "msg_1".parse().unwrap());
        std_h.insert("webhook-timestamp", now.to_string().parse().unwrap());
        std_h.insert(
            "webhook-signature",
            ours.sign("msg_1", now, &body).parse().unwrap(),
        );
        group.bench_with_input(
            BenchmarkId::new("standard_webhooks", body.len()),
            &body,
            |b, body| b.iter(|| ours.verify(black_box(&std_h), black_box(body)).unwrap()),
        );
        group.bench_with_input(
            BenchmarkId::new("standardwebhooks_crate", body.len()),
            &body,
            |b, body| b.iter(|| theirs.verify(black_box(body), black_box(&std_h)).unwrap()),
        );
    }
    group.finish();
}

fn engine_decisions(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("engine");
    for count in [1usize, 100] {
        group.throughput(Throughput::Elements(count as u64));
        let engine = Engine::in_memory();
        group.bench_function(BenchmarkId::new("memory_store_new_events", count), |b| {
            b.iter_batched(
                || Envelope::from_slice(&fresh_body(count)).unwrap(),
                |envelope| {
                    rt.block_on(engine.process(envelope, |_| async { Ok::<(), String>(()) }))
                        .unwrap()
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn pipeline(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("pipeline");
    for count in [1usize, 100] {
        group.throughput(Throughput::Elements(count as u64));
        let receiver = Receiver::new(Authentication::Signature(SignatureAuth::new(SECRET)));
        let engine = Engine::in_memory();
        group.bench_function(BenchmarkId::new("alm_webhooks", count), |b| {
            b.iter_batched(
                || {
                    let body = fresh_body(count);
                    (signed(&body), body)
                },
                |(headers, body)| {
                    let envelope = receiver.receive(&headers, &body).unwrap();
                    rt.block_on(engine.process(envelope, |_| async { Ok::<(), String>(()) }))
                        .unwrap()
                },
                BatchSize::SmallInput,
            )
        });
        let mut seen = HashMap::new();
        group.bench_function(BenchmarkId::new("naive", count), |b| {
            b.iter_batched(
                || {
                    let body = fresh_body(count);
                    (SignatureAuth::new(SECRET).sign(&body), body)
                },
                |(sig, body)| naive(&body, &sig, &mut seen),
                BatchSize::SmallInput,
            )
        });
        let mut seen = HashSet::new();
        group.bench_function(BenchmarkId::new("floor_plus_dedup", count), |b| {
            b.iter_batched(
                || {
                    let body = fresh_body(count);
                    (SignatureAuth::new(SECRET).sign(&body), body)
                },
                |(sig, body)| floor(&body, &sig, &mut seen),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn scaling(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("pipeline_scaling");
    group.sample_size(10);
    let receiver = Receiver::new(Authentication::Signature(SignatureAuth::new(SECRET)));
    let engine = Engine::in_memory();
    for count in [1usize, 10, 100, 1_000, 10_000] {
        group.throughput(Throughput::Elements(count as u64));
        group.bench_function(BenchmarkId::from_parameter(count), |b| {
            b.iter_batched(
                || {
                    let body = fresh_body(count);
                    (signed(&body), body)
                },
                |(headers, body)| {
                    let envelope = receiver.receive(&headers, &body).unwrap();
                    rt.block_on(engine.process(envelope, |_| async { Ok::<(), String>(()) }))
                        .unwrap()
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

/// The memory store's cost per decision with 0, 1 M and 10 M ids remembered.
fn store_size(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("memory_store_by_size");
    group.sample_size(20);
    group.throughput(Throughput::Elements(100));
    for remembered in [0usize, 1_000_000, 10_000_000] {
        if remembered > 0 && std::env::var_os("ALM_BENCH_LARGE").is_none() && remembered > 1_000_000
        {
            eprintln!("skipping 10 M (set ALM_BENCH_LARGE=1; needs ~0.5 GiB and a minute to fill)");
            continue;
        }
        let store = MemoryStore::with_capacity(remembered);
        let until = time::OffsetDateTime::now_utc() + time::Duration::days(8);
        for n in 0..remembered {
            let event_id = format!("prefill-{n}").parse().unwrap();
            store.remember(
                &DedupKey {
                    account_id: AccountId(1234),
                    event_id,
                },
                until,
            );
        }
        let engine = Engine::builder(store).build();
        group.bench_function(BenchmarkId::from_parameter(remembered), |b| {
            b.iter_batched(
                || Envelope::from_slice(&fresh_body(100)).unwrap(),
                |envelope| {
                    rt.block_on(engine.process(envelope, |_| async { Ok::<(), String>(()) }))
                        .unwrap()
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    authentication,
    engine_decisions,
    pipeline,
    scaling,
    store_size
);
criterion_main!(benches);
