#![allow(missing_docs)]
//! Per-stage and whole-pipeline costs, each next to its alternative in the
//! same run: a naive receiver (HMAC + `serde_json::Value` + a `HashMap` of
//! seen ids), the typed floor (HMAC + every event typed into the crate's data
//! types + a set of seen ids), the floor (HMAC + event headers only, `data`
//! left raw, plus a set of seen ids), and the `standardwebhooks` crate.
//!
//! Every benchmark that keeps state runs on a fixed-size state (0 or 1 M
//! remembered ids, kept within 1 %: `common::fixed`), so a figure does not
//! depend on how many iterations criterion happens to run.

mod common;

use common::fixed::{EngineOnly, Fixed, Floor, Naive, Ours, Subject, TypedFloor};
use common::{SECRET, hmac_hex_ok};

use alm_webhooks::Authentication;
use alm_webhooks::auth::{BasicAuth, SignatureAuth, StandardWebhooksAuth};

use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, Throughput, black_box, criterion_group, criterion_main,
};
use http::HeaderMap;

const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn signed(body: &[u8]) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "x-alm-signature",
        SignatureAuth::new(SECRET).sign(body).parse().unwrap(),
    );
    h
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

/// Remembered-id sizes every stateful benchmark runs at; 10 M only with
/// `ALM_BENCH_LARGE=1` (about 0.5 GiB and a few seconds to fill, per
/// receiver, every time its state has grown by 1 %).
fn sizes() -> Vec<usize> {
    let mut sizes = vec![0, 1_000_000];
    if std::env::var_os("ALM_BENCH_LARGE").is_some() {
        sizes.push(10_000_000);
    }
    sizes
}

/// Benchmarks `S` on deliveries of `events` new events, its state held at
/// `remembered` ids (see `common::fixed`).
fn bench_fixed<S: Subject>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    remembered: usize,
    events: usize,
) {
    let mut fixed = Fixed::<S>::new(remembered);
    group.throughput(Throughput::Elements(events as u64));
    group.bench_function(BenchmarkId::new(name, events), |b| {
        b.iter_custom(|iters| fixed.measure(iters, events))
    });
}

/// The engine alone (`Engine::process` on a parsed envelope, memory store),
/// by the number of ids the store remembers.
fn engine_decisions(c: &mut Criterion) {
    for remembered in sizes() {
        let mut group = c.benchmark_group(format!("engine_{remembered}_ids"));
        for events in [1usize, 100] {
            bench_fixed::<EngineOnly>(&mut group, "memory_store_new_events", remembered, events);
        }
        group.finish();
    }
}

/// The whole pipeline next to the baselines, each on the same fixed-size
/// state: 0 or 1 M remembered ids (10 M with `ALM_BENCH_LARGE=1`).
fn pipeline(c: &mut Criterion) {
    for remembered in sizes() {
        let mut group = c.benchmark_group(format!("pipeline_{remembered}_ids"));
        for events in [1usize, 100] {
            bench_fixed::<Ours>(&mut group, "alm_webhooks", remembered, events);
            bench_fixed::<Naive>(&mut group, "naive", remembered, events);
            bench_fixed::<TypedFloor>(&mut group, "typed_floor", remembered, events);
            bench_fixed::<Floor>(&mut group, "floor", remembered, events);
        }
        group.finish();
    }
}

/// Time per event by delivery size, each delivery on an empty store.
fn scaling(c: &mut Criterion) {
    let mut group = c.benchmark_group("pipeline_scaling");
    group.sample_size(10);
    for events in [1usize, 10, 100, 1_000, 10_000] {
        bench_fixed::<Ours>(&mut group, "alm_webhooks", 0, events);
    }
    group.finish();
}

criterion_group!(benches, authentication, engine_decisions, pipeline, scaling);
criterion_main!(benches);
