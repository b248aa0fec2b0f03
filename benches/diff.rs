//! Diff time per pair of successive documents, ours against the `json-patch` crate's
//! positional diff, on each benchmark series (see `series/mod.rs`). Each side diffs its own
//! representation, made before timing: ours the gateway's documents (and writes the patch's
//! text, as the poller does), the crate `serde_json` values. Patch sizes are printed by
//! `cargo run --release --example patch_sizes`.

mod series;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use streamgate::wire::document::Document;

const TICKS: usize = 50;

fn diff_series(c: &mut Criterion) {
    for series in series::all(TICKS) {
        let pairs = series.docs.len() - 1;
        let documents: Vec<Document> = series.docs.iter().map(Document::from_value).collect();
        let mut group = c.benchmark_group(series.name);
        group.throughput(Throughput::Elements(pairs as u64));
        group.bench_function(BenchmarkId::new("ours", pairs), |b| {
            b.iter(|| {
                for pair in documents.windows(2) {
                    black_box(streamgate::patch::delta(&pair[0], &pair[1]));
                }
            })
        });
        group.bench_function(BenchmarkId::new("json_patch", pairs), |b| {
            b.iter(|| {
                for pair in series.docs.windows(2) {
                    black_box(json_patch::diff(&pair[0], &pair[1]));
                }
            })
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = diff_series
}
criterion_main!(benches);
