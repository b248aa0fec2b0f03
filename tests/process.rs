//! The process: health endpoints, metrics, config checking, graceful shutdown.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Server, SseStream, client, history, metric, publish};
use serde_json::json;
use streamgate::wire::sse_parser::SseFrame;

#[tokio::test]
async fn health_readiness_and_metrics() {
    let server = Server::start("");
    for path in ["/healthz", "/readyz"] {
        let resp = client().get(server.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
    }
    let mut stream = SseStream::open(&server.url("/sse?channels=m1,m2")).await;
    publish(&server, "m1", json!([{"data": 1}, {"data": 2}])).await;
    stream.events(2).await;
    assert_eq!(
        metric(&server, "streamgate_messages_published_total").await,
        2.0
    );
    assert_eq!(
        metric(&server, "streamgate_messages_delivered_total").await,
        2.0
    );
    assert_eq!(metric(&server, "streamgate_connections").await, 1.0);
    assert_eq!(metric(&server, "streamgate_channels").await, 2.0);
    assert_eq!(metric(&server, "streamgate_queue_drops_total").await, 0.0);
}

#[tokio::test]
async fn sigterm_tells_streams_to_retry_and_exits_zero() {
    let server = Server::start("[stream]\nretry_ms = 2500\n");
    let mut stream = client()
        .get(server.url("/sse?channels=bye"))
        .send()
        .await
        .unwrap();
    publish(&server, "bye", json!({"data": "before"})).await;
    let waiter = tokio::task::spawn_blocking(move || server.terminate());
    // Everything up to the end of the stream: the event, then the retry hint, then EOF.
    let mut seen = Vec::new();
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
        .await
        .expect("stream ends after SIGTERM")
        .unwrap()
    {
        seen.extend_from_slice(&chunk);
    }
    let text = String::from_utf8(seen).unwrap();
    assert!(text.contains("data: {\"id\""), "{text}");
    assert!(text.ends_with("retry: 2500\n\n"), "{text}");
    let status = waiter.await.unwrap();
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn check_config_accepts_good_and_names_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "[server]\nlisten = \"127.0.0.1:9999\"\n[channels]\nhistory_size = 10\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_streamgate"))
        .args(["check-config"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[channels]\nhistory_size = 10\nhistory_sise = 3\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_streamgate"))
        .args(["check-config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 3") && err.contains("history_sise"),
        "{err}"
    );

    // An environment override is checked too, and named.
    let out = Command::new(env!("CARGO_BIN_EXE_streamgate"))
        .args(["check-config"])
        .arg(&good)
        .env("STREAMGATE_STREAM__KEEPALIVE_MS", "-5")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("STREAMGATE_STREAM__KEEPALIVE_MS"), "{err}");

    // serve refuses a bad config the same way instead of starting.
    let out = Command::new(env!("CARGO_BIN_EXE_streamgate"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("history_sise"));

    // Capabilities are auth's to read, yet both refuse a bad one, named, before serving.
    let caps = dir.path().join("caps.toml");
    std::fs::write(&caps, "[auth]\nanonymous = { \"*\" = [\"subscrbe\"] }\n").unwrap();
    for args in [
        &["check-config"][..],
        &["serve", "--listen", "127.0.0.1:0", "--config"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_streamgate"))
            .args(args)
            .arg(&caps)
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(out.stdout.is_empty(), "{out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("caps.toml: [auth] anonymous") && err.contains("subscrbe"),
            "{err}"
        );
    }
}

#[test]
fn state_history_bytes_is_checked_in_the_file_and_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let check = |text: &str, env: &[(&str, &str)]| {
        let path = dir.path().join("streamgate.toml");
        std::fs::write(&path, text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_streamgate"))
            .arg("check-config")
            .arg(&path)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8(out.stderr).unwrap())
    };
    let (ok, err) = check("[channels]\nstate_history_bytes = 20000\n", &[]);
    assert!(ok, "{err}");
    let (ok, err) = check("[channels]\nstate_history_bytes = 0\n", &[]);
    assert!(!ok);
    assert!(
        err.contains("state_history_bytes") && err.contains("at least 1"),
        "{err}"
    );
    let (ok, err) = check("", &[("STREAMGATE_CHANNELS__STATE_HISTORY_BYTES", "4MiB")]);
    assert!(!ok);
    assert!(
        err.contains("STREAMGATE_CHANNELS__STATE_HISTORY_BYTES"),
        "{err}"
    );
    let (ok, err) = check("", &[("STREAMGATE_CHANNELS__STATE_HISTORY_BYTES", "65536")]);
    assert!(ok, "{err}");
}

#[tokio::test]
async fn env_overrides_apply_when_serving() {
    let server = Server::start_with(
        "[channels]\nhistory_size = 100\n",
        &[],
        &[("STREAMGATE_CHANNELS__HISTORY_SIZE", "3")],
    );
    for i in 0..5 {
        publish(&server, "env", json!({"data": i})).await;
    }
    assert_eq!(history(&server, "env").await.len(), 3);
}

#[tokio::test]
async fn the_demo_serves_a_delta_stream_a_channel_and_a_relay() {
    let server = Server::start_with("", &["--demo"], &[]);
    let mut quotes = SseStream::open(&server.url("/apis/demo/quotes")).await;
    let first = quotes.next_event().await.expect("the document");
    assert_eq!(first.event, "data");
    let document: serde_json::Value = serde_json::from_str(&first.data).unwrap();
    assert_eq!(document["quotes"].as_array().map(Vec::len), Some(8));
    let mut channel = SseStream::open(&server.url("/sse?channels=demo-quotes")).await;
    assert_eq!(channel.next_event().await.expect("a tick").event, "message");
    let mut relayed = SseStream::open(&server.url("/relays/demo/ticks")).await;
    let tick = relayed.next_event().await.expect("a relayed tick");
    assert_eq!(tick.event, "tick");
    let document: serde_json::Value = serde_json::from_str(&tick.data).unwrap();
    assert_eq!(document["quotes"].as_array().map(Vec::len), Some(8));
}

#[tokio::test]
async fn the_readmes_ad_hoc_demo_stream_shows_patches() {
    // As the README runs it: the ad-hoc form alone, at the default interval (5 s).
    let server = Server::start_with("", &["--demo"], &[]);
    let url = server.url(&format!("/{}", server.url("/demo/quotes")));
    let mut quotes = SseStream::open(&url).await;
    assert_eq!(quotes.next_event().await.unwrap().event, "data");
    let next = quotes.next_frame_within(Duration::from_secs(12)).await;
    let Some(SseFrame::Event(event)) = next else {
        panic!("no event within two intervals: {next:?}");
    };
    assert_eq!(event.event, "patch", "{event:?}");
}
