//! The whole poll step of a delta stream, bytes in to event bytes out: reading the new
//! version of the document, diffing it against the previous one and framing the patch as the
//! SSE event every subscriber gets, then dropping the previous version. On the documents of
//! `streamgate bench poll` (quotes, 20% of the items changed in each version), at about
//! 50 KB and 2 MB, with the allocator the gateway runs with.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use streamgate::bench;
use streamgate::patch::{Delta, delta};
use streamgate::wire::document::Document;
use streamgate::wire::sse;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const VERSIONS: usize = 12;
const CHURN: f64 = 0.2;

fn poll_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("poll_step");
    for bytes in [50_000, 2_000_000] {
        let mut document = bench::Document::new(0, bytes);
        let versions: Vec<_> = (0..VERSIONS)
            .map(|i| document.next(if i == 0 { 0.0 } else { CHURN }).1)
            .collect();
        group.throughput(Throughput::Bytes(versions[1].len() as u64));
        group.bench_function(BenchmarkId::from_parameter(bytes), |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for i in 0..iters as usize {
                    let k = i % (VERSIONS - 1);
                    let previous = Document::parse(&versions[k]).expect("JSON");
                    let start = Instant::now();
                    let next = Document::parse(&versions[k + 1]).expect("JSON");
                    let event = match delta(&previous, &next) {
                        Delta::Patch(text) => sse::event_body("patch", &text),
                        Delta::Snapshot => sse::event_body("data", next.text()),
                    };
                    drop(previous);
                    spent += start.elapsed();
                    black_box((event, next));
                }
                spent
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = poll_step
}
criterion_main!(benches);
