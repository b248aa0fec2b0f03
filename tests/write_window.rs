//! The write window (`[stream] write_window_ms`): on a busy server streams hold writes to
//! gather what follows, and a stream whose socket was idle writes at once.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Server, SseStream, client, metric};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Subscribers enough that the last of them wait in line for each publish.
const SUBSCRIBERS: usize = 600;
const MESSAGES: usize = 300;

/// A subscriber on a raw socket: reads everything, and counts the subscribers that have seen
/// `marker`.
async fn subscriber(server: &Server, marker: &'static str, seen: Arc<AtomicUsize>) {
    let address = server.base.trim_start_matches("http://").to_owned();
    let mut socket = TcpStream::connect(&address).await.unwrap();
    let request = format!("GET /sse?channels=load HTTP/1.1\r\nHost: {address}\r\n\r\n");
    socket.write_all(request.as_bytes()).await.unwrap();
    tokio::spawn(async move {
        let mut tail: Vec<u8> = Vec::new();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            tail.extend_from_slice(&buf[..n]);
            if tail.windows(marker.len()).any(|w| w == marker.as_bytes()) {
                seen.fetch_add(1, Ordering::Relaxed);
                tail.clear();
            }
            let keep = tail.len().saturating_sub(marker.len());
            tail.drain(..keep);
        }
    });
}

async fn until(what: &str, limit: Duration, mut done: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !done().await {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_server_gathers_writes_and_a_lone_message_is_never_held() {
    // Two workers, as on the machines the figures come from: on many cores the load of one
    // test would not make the runtime busy.
    let server = Server::start_with(
        "[stream]\nwrite_window_ms = 500\n",
        &[],
        &[("TOKIO_WORKER_THREADS", "2")],
    );
    let last = Arc::new(AtomicUsize::new(0));
    for _ in 0..SUBSCRIBERS {
        subscriber(&server, "\"last\"", Arc::clone(&last)).await;
    }
    until(
        "subscribers connected",
        Duration::from_secs(30),
        async || metric(&server, "streamgate_connections").await >= SUBSCRIBERS as f64,
    )
    .await;

    // A publish every 2 ms: each wakes every subscriber, the last of them after a wait
    // longer than that.
    let http = client();
    let url = server.url("/channels/load/messages");
    for i in 0..MESSAGES {
        let data = if i + 1 == MESSAGES {
            "last".to_owned()
        } else {
            format!("m{i}")
        };
        let resp = http.post(&url).json(&json!({ "data": data })).send().await;
        assert_eq!(resp.unwrap().status(), 201);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    until(
        "every subscriber got the last message",
        Duration::from_secs(30),
        async || last.load(Ordering::Relaxed) == SUBSCRIBERS,
    )
    .await;
    let delivered = metric(&server, "streamgate_messages_delivered_total").await;
    let writes = metric(&server, "streamgate_stream_writes_total").await;
    let held = metric(&server, "streamgate_stream_writes_held_total").await;
    assert_eq!(delivered, (SUBSCRIBERS * MESSAGES) as f64);
    assert!(
        held > 0.0,
        "no write held: {writes} writes for {delivered} deliveries"
    );
    assert!(
        writes < delivered,
        "{writes} writes for {delivered} deliveries"
    );

    // Idle for longer than the window: one more message goes out at once, in one write per
    // stream, none held.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let mut watcher = SseStream::open(&server.url("/sse?channels=load")).await;
    let writes = metric(&server, "streamgate_stream_writes_total").await;
    let sent = Instant::now();
    let resp = http
        .post(&url)
        .json(&json!({ "data": "lone" }))
        .send()
        .await;
    assert_eq!(resp.unwrap().status(), 201);
    let event = watcher.next_event().await.expect("the lone message");
    let took = sent.elapsed();
    assert!(event.data.contains("lone"), "{}", event.data);
    assert!(
        took < Duration::from_millis(250),
        "the lone message took {took:?}"
    );
    until(
        "every stream wrote the lone message",
        Duration::from_secs(10),
        async || {
            metric(&server, "streamgate_messages_delivered_total").await
                == (SUBSCRIBERS * MESSAGES + SUBSCRIBERS + 1) as f64
        },
    )
    .await;
    assert_eq!(
        metric(&server, "streamgate_stream_writes_total").await,
        writes + (SUBSCRIBERS + 1) as f64
    );
    assert_eq!(
        metric(&server, "streamgate_stream_writes_held_total").await,
        held
    );
}
