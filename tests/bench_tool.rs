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
