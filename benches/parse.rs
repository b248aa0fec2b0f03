//! Reading a polled document: into a `wire::document::Document` (what the poller diffs), into
//! a `Value` through it (`wire::json::parse`, numbers kept as their text), and with
//! `serde_json::from_slice` into the same `Value`, on the twitter corpus
//! (`tests/fixtures/corpus/twitter.json`, 631 KB).

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::Value;

fn parse(c: &mut Criterion) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corpus/twitter.json");
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut group = c.benchmark_group("parse_twitter");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("document", |b| {
        b.iter(|| black_box(streamgate::wire::document::Document::parse(&text).unwrap()))
    });
    group.bench_function("wire_json", |b| {
        b.iter(|| black_box(streamgate::wire::json::parse(&text).unwrap()))
    });
    group.bench_function("serde_json", |b| {
        b.iter(|| black_box(serde_json::from_slice::<Value>(&text).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
