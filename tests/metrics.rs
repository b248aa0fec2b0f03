//! `/metrics` over a real socket: the process figures and build info are there and
//! plausible, and every series the gateway exports is documented in docs/METRICS.md.

mod common;

use std::time::Duration;

use common::sse_upstream::SseUpstream;
use common::upstream::{Behaviour, Upstream};
use common::{Server, SseStream, client, metric, metrics_text, next_relayed};
use serde_json::json;

#[tokio::test]
async fn every_series_is_documented_and_the_process_figures_are_real() {
    let server = Server::start("");
    let text = metrics_text(&server).await;
    let documented =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/METRICS.md")).unwrap();
    // A histogram's series are documented under its name.
    let histograms: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" histogram"))
        .collect();
    let names: std::collections::BTreeSet<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap())
        .map(|name| {
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .filter(|family| histograms.contains(family));
            family.unwrap_or(name)
        })
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

/// The value of the sample `series` (name and labels as written), if it is there.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{series} ")))
        .map(|v| v.parse().unwrap())
}

#[tokio::test]
async fn deliveries_count_their_latency_and_bytes_and_requests_count_by_route() {
    let server = Server::start("");
    let before = metrics_text(&server).await;
    let count = "streamgate_delivery_latency_seconds_count";
    assert_eq!(sample(&before, count), Some(0.0), "{before}");
    let mut stream = SseStream::open(&server.url("/sse?channels=room&rewind=5")).await;
    common::publish(&server, "room", json!({"data": "hello"})).await;
    stream.next_event().await.unwrap();
    let text = metrics_text(&server).await;
    assert_eq!(sample(&text, count), Some(1.0), "{text}");
    // On loopback, well under a second; the buckets are cumulative.
    let within = "streamgate_delivery_latency_seconds_bucket{le=\"1\"}";
    assert_eq!(sample(&text, within), Some(1.0), "{text}");
    assert!(metric(&server, "streamgate_bytes_written_total").await > 100.0);

    // A message published before the stream opened and replayed to it has no latency.
    common::publish(&server, "old", json!({"data": "before"})).await;
    let mut replay = SseStream::open(&server.url("/sse?channels=old&rewind=5")).await;
    replay.next_event().await.unwrap();
    let text = metrics_text(&server).await;
    assert_eq!(sample(&text, count), Some(1.0), "{text}");

    client()
        .get(server.url("/no/such/path"))
        .send()
        .await
        .unwrap();
    let text = metrics_text(&server).await;
    for series in [
        "streamgate_http_requests_total{route=\"/channels/{channel}/messages\",status=\"201\"}",
        "streamgate_http_requests_total{route=\"/sse\",status=\"200\"}",
        "streamgate_http_requests_total{route=\"unmatched\",status=\"404\"}",
    ] {
        assert!(
            sample(&text, series).is_some_and(|n| n >= 1.0),
            "{series} in {text}"
        );
    }
    assert!(!text.contains("room"), "no channel name in a label: {text}");
}

#[tokio::test]
async fn polls_are_counted_by_api_and_result_and_relays_by_relay() {
    // Large enough next to its change for a patch to be worth sending.
    let document = |price| json!({"price": price, "about": "x".repeat(200)});
    let api = Upstream::start(document(1)).await;
    let adhoc = Upstream::start(json!({"n": 1})).await;
    let feed = SseUpstream::start().await;
    let server = Server::start(&format!(
        "[poll]\nallowed_targets = [\"http://127.0.0.1:*/*\"]\ninterval_ms = 100\n\
         min_interval_ms = 50\nmax_backoff_ms = 200\n\
         [[api]]\nname = \"quotes\"\nbase_url = \"{}\"\n\
         [[relay]]\nname = \"market\"\nlisten_path = \"/market\"\nupstream = \"{}\"\n",
        api.url("/v1"),
        feed.url("/")
    ));
    let mut quotes = SseStream::open(&server.url("/apis/quotes/prices")).await;
    let first = quotes.next_event().await.unwrap();
    assert_eq!(first.event, "data", "{first:?}");
    api.set(document(2));
    let patch = quotes.next_event().await.unwrap();
    assert_eq!(patch.event, "patch", "{patch:?}");
    let mut other = SseStream::open(&server.url(&format!("/{}", adhoc.url("/n")))).await;
    other.next_event().await.unwrap();
    let text = metrics_text(&server).await;
    let ok = "streamgate_poll_requests_total{api=\"quotes\",result=\"ok\"}";
    assert!(sample(&text, ok).is_some_and(|n| n >= 2.0), "{text}");
    let adhoc_ok = "streamgate_poll_requests_total{api=\"*\",result=\"ok\"}";
    assert!(sample(&text, adhoc_ok).is_some_and(|n| n >= 1.0), "{text}");
    let bytes = "streamgate_poll_bytes_in_total{api=\"quotes\"}";
    assert!(
        sample(&text, bytes).is_some_and(|n| n >= 2.0 * 200.0),
        "{text}"
    );
    let patched = "streamgate_poll_patch_bytes_out_total{api=\"quotes\"}";
    assert!(sample(&text, patched).is_some_and(|n| n > 10.0), "{text}");
    let polls = "streamgate_poll_duration_seconds_count{api=\"quotes\"}";
    assert!(sample(&text, polls).is_some_and(|n| n >= 2.0), "{text}");
    let route = "streamgate_http_requests_total{route=\"/apis/{api}/{*path}\",status=\"200\"}";
    assert_eq!(sample(&text, route), Some(1.0), "{text}");
    assert!(!text.contains("127.0.0.1"), "no URL in a label: {text}");

    // A failing API is counted by the status it answered.
    api.behave(Behaviour::Status(503));
    let failed = "streamgate_poll_failures_total{api=\"quotes\",reason=\"503\"}";
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while sample(&metrics_text(&server).await, failed).is_none() {
        assert!(std::time::Instant::now() < deadline, "no {failed}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut market = SseStream::open(&server.url("/market/ticks")).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    feed.send("tick", "1");
    feed.send("tick", "2");
    next_relayed(&mut market).await;
    next_relayed(&mut market).await;
    let text = metrics_text(&server).await;
    let events = "streamgate_relay_events_total{relay=\"market\"}";
    assert_eq!(sample(&text, events), Some(2.0), "{text}");
    let connections = "streamgate_relay_connections_total{relay=\"market\"}";
    assert_eq!(sample(&text, connections), Some(1.0), "{text}");
    let route = "streamgate_http_requests_total{route=\"/market\",status=\"200\"}";
    assert_eq!(sample(&text, route), Some(1.0), "{text}");
    let adhoc_route = "streamgate_http_requests_total{route=\"/{target-url}\",status=\"200\"}";
    assert_eq!(sample(&text, adhoc_route), Some(1.0), "{text}");
}
