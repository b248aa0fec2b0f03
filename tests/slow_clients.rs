//! Slow clients: a paused reader of a delta stream gets the freshest state, not a backlog;
//! a pub/sub stream skips or disconnects by config. Never an unbounded buffer.

mod common;

use common::upstream::Upstream;
use common::{Server, SseStream, publish};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_delta_reader_gets_a_fresh_snapshot_not_a_backlog() {
    const CHANGES: usize = 120;
    // Every change rewrites a 64 KiB field: the backlog is far more than socket buffers hold.
    let doc = |n: usize| json!({"n": n, "blob": format!("{n}-{}", "x".repeat(64 * 1024)), "keep": [1, 2, 3]});
    let upstream = Upstream::start(doc(0)).await;
    let server = Server::start(
        "[channels]\nsubscriber_queue = 5\n[poll]\nallowed_targets = [\"http://127.0.0.1:*/*\"]\n\
         interval_ms = 20\nmin_interval_ms = 10\n",
    );
    let url = server.url(&format!("/{}?pollInterval=20", upstream.url("/big")));
    let mut paused = SseStream::open(&url).await;
    let first = paused.next_event().await.unwrap();
    assert_eq!(first.event, "data");
    // A reader that keeps up, so we know when the upstream's changes have gone out.
    let mut live = SseStream::open(&url).await;
    for n in 1..=CHANGES {
        upstream.set(doc(n));
        loop {
            let e = live.next_event().await.unwrap();
            let v: Value = serde_json::from_str(&e.data).unwrap();
            let done = match e.event.as_str() {
                "data" => v["n"] == n,
                _ => v.to_string().contains(&format!("\"{n}-")),
            };
            if done {
                break;
            }
        }
    }
    // The paused reader now reads everything: far fewer events than changes, a fresh `data`
    // among them, and it ends on the upstream's document.
    let mut document: Value = serde_json::from_str(&first.data).unwrap();
    let (mut events, mut snapshots) = (0, 0);
    while document != doc(CHANGES) {
        let e = paused
            .next_event()
            .await
            .expect("the paused reader catches up");
        events += 1;
        let data: Value = serde_json::from_str(&e.data).unwrap();
        match e.event.as_str() {
            "data" => {
                snapshots += 1;
                document = data;
            }
            "patch" => {
                let patch = streamgate::patch::parse(&data).unwrap();
                json_patch::patch(&mut document, &patch).unwrap();
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(snapshots >= 1, "no fresh snapshot after the pause");
    // Socket buffers (several MiB on loopback) still hold what was written before the
    // pause took effect; everything the gateway held back was conflated.
    assert!(
        events < CHANGES - 20,
        "{events} events for {CHANGES} changes: the stale patches were not dropped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_pubsub_reader_is_disconnected_when_configured() {
    let server = Server::start("[channels]\nsubscriber_queue = 10\noverflow = \"disconnect\"\n");
    let mut paused = SseStream::open(&server.url("/sse?channels=fast")).await;
    let payload = "y".repeat(32 * 1024);
    let mut reader = SseStream::open(&server.url("/sse?channels=fast")).await;
    for i in 0..300 {
        publish(&server, "fast", json!({"data": format!("{i}:{payload}")})).await;
        reader.events(1).await;
    }
    // Everything up to the end of the stream: the error is the last event.
    let mut last = None;
    while let Some(e) = paused.next_event().await {
        last = Some(e);
    }
    let last = last.expect("the paused reader got events");
    assert_eq!(last.event, "error", "{last:?}");
    let info: Value = serde_json::from_str(&last.data).unwrap();
    assert_eq!(info["code"], 40920, "{info}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_paused_readers_cost_bounded_memory() {
    const READERS: usize = 1000;
    const MESSAGES: usize = 400;
    let server = Server::start("[channels]\nhistory_size = 100\n[stream]\nkeepalive_ms = 60000\n");
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut paused = Vec::with_capacity(READERS);
    for _ in 0..READERS {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        // A small window, so what the server cannot send stays in the server.
        socket.set_recv_buffer_size(4096).unwrap();
        let mut stream = socket.connect(addr.parse().unwrap()).await.unwrap();
        use tokio::io::AsyncWriteExt;
        stream
            .write_all(
                format!("GET /sse?channels=heavy HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes(),
            )
            .await
            .unwrap();
        paused.push(stream);
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let before = server.rss_kib();
    // 400 × 16 KiB = 6.4 MiB published; buffered for each paused reader it would be 6 GiB.
    let payload = "z".repeat(16 * 1024);
    let mut reader = SseStream::open(&server.url("/sse?channels=heavy")).await;
    for i in 0..MESSAGES {
        publish(&server, "heavy", json!({"data": format!("{i}:{payload}")})).await;
        reader.events(1).await;
    }
    let growth_mib = server.rss_kib().saturating_sub(before) / 1024;
    eprintln!("{READERS} paused readers: server RSS grew by {growth_mib} MiB");
    // Per paused reader: one write chunk (64 KiB and an event) plus what the HTTP layer
    // buffers before it stops asking for more (up to ~400 KiB), whatever is published;
    // buffering the 6.4 MiB for each would be 6 GiB.
    let bound = READERS * 512 / 1024;
    assert!(
        growth_mib < bound as u64,
        "server grew by {growth_mib} MiB (bound {bound})"
    );
    drop(paused);
}
