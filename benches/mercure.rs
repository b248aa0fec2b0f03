//! What one Mercure update costs in matching: subscribers with `*` or a URI template read
//! every update and match it against their selectors (exact topics are indexed by their
//! channels and cost nothing here). Thousands of template subscribers, one update: each on
//! a template of its own (most rejected by their literal start), or all on the one template
//! the update matches (every check runs the regex).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use streamgate::http::mercure::selector::{Selector, any_matches};

fn templates(c: &mut Criterion) {
    let topics = vec!["https://example.com/users/4242/books/17".to_owned()];
    let mut group = c.benchmark_group("mercure_one_update");
    for subscribers in [1_000usize, 10_000] {
        // Each subscriber's template: most do not match the update, one does.
        let selectors: Vec<Vec<Selector>> = (0..subscribers)
            .map(|i| {
                vec![Selector::new(&format!(
                    "https://example.com/users/{i}/books/{{id}}"
                ))]
            })
            .collect();
        // Every subscriber on the one template the update matches: the worst case.
        let same: Vec<Vec<Selector>> = (0..subscribers)
            .map(|_| vec![Selector::new("https://example.com/users/{user}/books/{id}")])
            .collect();
        group.throughput(Throughput::Elements(subscribers as u64));
        for (name, subscribed) in [
            ("one_matching_template", &same),
            ("template_subscribers", &selectors),
        ] {
            group.bench_with_input(BenchmarkId::new(name, subscribers), subscribed, |b, all| {
                b.iter(|| {
                    let topics = black_box(&topics).iter().map(String::as_str);
                    all.iter()
                        .filter(|s| any_matches(s, topics.clone()))
                        .count()
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, templates);
criterion_main!(benches);
