#![allow(missing_docs)]
//! Parsing cost: this crate's envelope parser next to a `serde_json::Value`
//! parse and the floor (event headers only, `data` left raw).

mod common;

use criterion::{BenchmarkId, Criterion, Throughput, black_box, criterion_group, criterion_main};

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    for count in [1usize, 100] {
        let body = common::body(0, count);
        group.throughput(Throughput::Elements(count as u64));
        group.bench_with_input(BenchmarkId::new("alm_webhooks", count), &body, |b, body| {
            b.iter(|| alm_webhooks::Envelope::from_slice(black_box(body)).unwrap())
        });
        group.bench_with_input(
            BenchmarkId::new("serde_json_value", count),
            &body,
            |b, body| {
                b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(body)).unwrap())
            },
        );
        group.bench_with_input(
            BenchmarkId::new("floor_headers_raw_data", count),
            &body,
            |b, body| {
                b.iter(|| {
                    let e: common::FloorEnvelope<'_> =
                        serde_json::from_slice(black_box(body)).unwrap();
                    e.events.len() + e.events.first().map_or(0, |e| e.event_id.len())
                })
            },
        );
    }
    group.finish();
}

fn scaling(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse_scaling");
    group.sample_size(20);
    for count in [1usize, 10, 100, 1_000, 10_000] {
        let body = common::body(0, count);
        group.throughput(Throughput::Elements(count as u64));
        group.bench_with_input(BenchmarkId::from_parameter(count), &body, |b, body| {
            b.iter(|| alm_webhooks::Envelope::from_slice(black_box(body)).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, parse, scaling);
criterion_main!(benches);
