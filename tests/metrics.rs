//! `/metrics` over a real socket: the process figures and build info are there and
//! plausible, and every series the gateway exports is documented in docs/METRICS.md.

mod common;

use common::{Server, metric, metrics_text};

#[tokio::test]
async fn every_series_is_documented_and_the_process_figures_are_real() {
    let server = Server::start("");
    let text = metrics_text(&server).await;
    let documented =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/METRICS.md")).unwrap();
    let names: std::collections::BTreeSet<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap())
        .collect();
    assert!(names.len() >= 12, "{names:?}");
    for name in &names {
        assert!(
            documented.contains(&format!("`{name}`")),
            "{name} is not in docs/METRICS.md"
        );
    }
    let version = format!(
        "streamgate_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    assert!(text.contains(&version), "{text}");
    let rss = metric(&server, "streamgate_process_resident_memory_bytes").await;
    assert!(rss > 1e6 && rss < 1e10, "{rss}");
    let files = metric(&server, "streamgate_process_open_files").await;
    assert!((3.0..10_000.0).contains(&files), "{files}");
    assert!(metric(&server, "streamgate_process_cpu_seconds").await >= 0.0);
}
