//! Slow clients: a paused reader of a delta stream gets the freshest state, not a backlog;
//! a pub/sub stream skips or disconnects by config. Never an unbounded buffer.

mod common;

use common::upstream::Upstream;
use std::time::Duration;

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

/// Opens a connection that sends `request` and then never reads, with a small receive
/// window, so what the server writes soon stays in the server's socket.
async fn never_reading(addr: &str, request: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(addr.parse().unwrap()).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    stream
}

/// Whether the server has closed `stream`: what it holds is read, then the end (or the
/// reset) must come within 5 s.
async fn closed_by_server(stream: &mut tokio::net::TcpStream) -> bool {
    use tokio::io::AsyncReadExt;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk)).await;
        match read {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// Publishes 300 × 32 KiB on the channel `flood`: more than the sockets' buffers on both
/// sides hold.
async fn flood(server: &Server) {
    let payload = "f".repeat(32 * 1024);
    for i in 0..300 {
        publish(server, "flood", json!({ "data": format!("{i}:{payload}") })).await;
    }
}

async fn write_timeouts(server: &Server) -> f64 {
    common::metric(
        server,
        "streamgate_limit_refusals_total{limit=\"write_timeout\"}",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_cut_off_after_the_write_timeout() {
    let server = Server::start("[limits]\nwrite_timeout_ms = 1000\n");
    let addr = server.base.trim_start_matches("http://").to_owned();
    // One stream written by the server's own loop; one served by hyper, which takes a
    // connection at its first request with a body.
    let subscribe = "GET /sse?channels=flood HTTP/1.1\r\nHost: x\r\n\r\n";
    let body = json!({ "data": "first" }).to_string();
    let publish_first = format!(
        "POST /channels/other/messages HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{body}{subscribe}",
        body.len()
    );
    let mut own = never_reading(&addr, subscribe).await;
    let mut handed_over = never_reading(&addr, &publish_first).await;
    flood(&server).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while write_timeouts(&server).await < 2.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "both never-reading clients cut off within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        closed_by_server(&mut own).await,
        "own loop's stream still open"
    );
    assert!(
        closed_by_server(&mut handed_over).await,
        "hyper's stream still open"
    );
    assert_eq!(write_timeouts(&server).await, 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_that_keeps_reading_is_not_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = Server::start("[limits]\nwrite_timeout_ms = 2000\n");
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /sse?channels=flood HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // Reads 64 KiB every 10 ms, slower than the publisher below writes, until the end.
    let reader = tokio::spawn(async move {
        let mut chunk = vec![0u8; 64 * 1024];
        let mut total = 0usize;
        loop {
            match slow.read(&mut chunk).await {
                Ok(0) | Err(_) => return total,
                Ok(n) => total += n,
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    flood(&server).await;
    // Longer than the write timeout, the reader still reading what is left.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!reader.is_finished(), "the slow reader was cut off");
    assert_eq!(write_timeouts(&server).await, 0.0);
    reader.abort();
}
