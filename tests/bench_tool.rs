//! `streamgate bench` end to end: the load tool run as a process against a real gateway,
//! its JSON report checked against what the gateway itself counted.

mod common;

use std::process::Command;

use common::{Server, metric};
use serde_json::Value;

/// Runs `streamgate bench` with `args`, returns its JSON report.
fn bench(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_streamgate"))
        .arg("bench")
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn over_several_processes_and_source_addresses_every_delivery_is_counted() {
    let server = Server::start("");
    let pid = server.pid().to_string();
    let subscribe = server.url("/sse?channels=load");
    let publish = server.url("/channels/load/messages");
    let report = bench(&[
        "--subscribe-url",
        &subscribe,
        "--publish-url",
        &publish,
        "--subscribers",
        "60",
        "--subscribers-per-process",
        "25",
        "--source-addrs",
        "2",
        "--messages",
        "30",
        "--rate",
        "300",
        "--pid",
        &pid,
    ]);
    assert_eq!(report["processes"], 3, "{report}");
    assert_eq!(report["connected"], 60, "{report}");
    assert_eq!(report["published"], 30, "{report}");
    assert_eq!(report["deliveries_expected"], 1800, "{report}");
    assert_eq!(report["deliveries_received"], 1800, "{report}");
    assert_eq!(report["lost"], 0, "{report}");
    assert_eq!(report["duplicates"], 0, "{report}");
    assert_eq!(report["latency_us"]["samples"], 1800, "{report}");
    let p50 = report["latency_us"]["p50"].as_u64().unwrap();
    let max = report["latency_us"]["max"].as_u64().unwrap();
    assert!(0 < p50 && p50 <= max, "{report}");
    assert!(report["server"]["rss_connected_kib"].as_u64().unwrap() > 0);
    // The gateway's own count agrees: 30 messages published, 1,800 delivered.
    assert_eq!(
        metric(&server, "streamgate_messages_published_total").await,
        30.0
    );
    assert_eq!(
        metric(&server, "streamgate_messages_delivered_total").await,
        1800.0
    );
}

#[tokio::test]
async fn subscribe_and_publish_shapes_are_parameters() {
    // NDJSON subscribers, a batch publish body with headers of its own: the marker is found
    // in any framing.
    let server = Server::start("");
    let subscribe = server.url("/event-stream?channels=shape&enveloped=false");
    let publish = server.url("/channels/shape/messages");
    let report = bench(&[
        "--subscribe-url",
        &subscribe,
        "--subscribe-header",
        "Accept: application/x-ndjson",
        "--publish-url",
        &publish,
        "--publish-body",
        r#"[{"name":"tick","data":"{payload}"}]"#,
        "--publish-header",
        "Content-Type: application/json",
        "--publish-header",
        "X-Extra: 1",
        "--subscribers",
        "10",
        "--messages",
        "15",
        "--rate",
        "0",
    ]);
    assert_eq!(report["deliveries_received"], 150, "{report}");
    assert_eq!(report["lost"], 0, "{report}");
}

#[tokio::test]
async fn subscribers_are_spread_round_robin_over_every_subscribe_url() {
    // Two independent gateways stand for two nodes. Only the first is published to, so the
    // deliveries it counts tell how many subscribers it holds. Ten subscribers over four
    // processes holding 3, 3, 2 and 2: processes rotating by their own index instead of the
    // global one would put six on the first gateway.
    let a = Server::start("");
    let b = Server::start("");
    let subscribe_a = a.url("/sse?channels=spread");
    let subscribe_b = b.url("/sse?channels=spread");
    let report = bench(&[
        "--subscribe-url",
        &subscribe_a,
        "--subscribe-url",
        &subscribe_b,
        "--publish-url",
        &a.url("/channels/spread/messages"),
        "--subscribers",
        "10",
        "--subscribers-per-process",
        "3",
        "--messages",
        "4",
        "--rate",
        "0",
    ]);
    assert_eq!(report["processes"], 4, "{report}");
    assert_eq!(report["subscribe_url"], subscribe_a.as_str(), "{report}");
    assert_eq!(
        report["subscribe_urls"],
        serde_json::json!([subscribe_a, subscribe_b]),
        "{report}"
    );
    assert_eq!(report["connected"], 10, "{report}");
    assert_eq!(report["connect_failed"], 0, "{report}");
    assert_eq!(report["published"], 4, "{report}");
    // Five subscribers got all four messages, the five on the other gateway none.
    assert_eq!(report["deliveries_received"], 20, "{report}");
    assert_eq!(report["subscribers_short"], 5, "{report}");
    assert_eq!(report["fewest_received"], 0, "{report}");
    assert_eq!(
        metric(&a, "streamgate_messages_delivered_total").await,
        20.0
    );
    assert_eq!(metric(&b, "streamgate_messages_delivered_total").await, 0.0);
}

#[test]
fn a_target_off_loopback_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_streamgate"))
        .args([
            "bench",
            "--subscribe-url",
            "http://192.0.2.1/sse",
            "--publish-url",
            "http://192.0.2.1/pub",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("loopback"), "{stderr}");
}

/// The config a gateway needs for `bench poll` at a 300 ms poll interval.
const POLL_CONFIG: &str = r#"
[poll]
allowed_targets = ["http://127.0.0.1:*/*"]
min_interval_ms = 300
"#;

#[tokio::test]
async fn poll_scenario_reads_every_fetched_version_at_one_request_per_interval() {
    let server = Server::start(POLL_CONFIG);
    let pid = server.pid().to_string();
    let report = bench(&[
        "poll",
        "--gateway",
        &server.base,
        "--topics",
        "3",
        "--subscribers",
        "6",
        "--doc-bytes",
        "4000",
        "--interval-ms",
        "300",
        "--poll-interval-ms",
        "300",
        "--duration-s",
        "3",
        "--gateway-pid",
        &pid,
    ]);
    assert_eq!(report["connected"], 6, "{report}");
    assert_eq!(report["dropped"], 0, "{report}");
    assert_eq!(report["missed_versions"], 0, "{report}");
    // About ten versions per topic in 3 s, read by each of its two subscribers.
    let seen = report["versions_seen"].as_u64().unwrap();
    assert!(seen >= 6 * 6, "{report}");
    let per_interval = report["requests_per_topic_per_interval"].as_f64().unwrap();
    assert!((0.7..=1.3).contains(&per_interval), "{report}");
    for latency in ["latency_us", "after_fetch_us"] {
        let l = &report[latency];
        let (p50, p99, max) = (l["p50"].as_u64(), l["p99"].as_u64(), l["max"].as_u64());
        assert!(l["samples"].as_u64().unwrap() >= seen, "{report}");
        assert!(p50 <= p99 && p99 <= max, "{report}");
    }
    assert!(report["events_per_sec"].as_f64().unwrap() > 0.0, "{report}");
    assert!(
        report["gateway_process"]["cpu_percent"].is_number(),
        "{report}"
    );
    assert!(report["gateway_process"]["rss_end_kib"].as_u64().unwrap() > 0);
    // Counted in clock ticks: a run this small may take less than one.
    assert!(
        report["bench_cpu_percent"]
            .as_f64()
            .is_some_and(|p| p >= 0.0),
        "{report}"
    );
}

#[test]
fn poll_scenario_on_a_gateway_that_refuses_the_target_prints_the_config_it_needs() {
    let server = Server::start("");
    let out = Command::new(env!("CARGO_BIN_EXE_streamgate"))
        .args(["bench", "poll", "--gateway", &server.base, "--topics", "1"])
        .args(["--subscribers", "2", "--duration-s", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("403"), "{stderr}");
    assert!(
        stderr.contains(r#"allowed_targets = ["http://127.0.0.1:*/*"]"#),
        "{stderr}"
    );
}
