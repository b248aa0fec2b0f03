//! Fan-out at scale and isolation of slow subscribers, over real sockets.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::{Server, SseStream, envelope, publish};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_subscribers_all_receive_every_message_in_order() {
    const SUBSCRIBERS: usize = 500;
    const MESSAGES: usize = 100;
    let server = Server::start("[stream]\nkeepalive_ms = 60000\n");
    let mut streams = Vec::with_capacity(SUBSCRIBERS);
    for _ in 0..SUBSCRIBERS {
        streams.push(SseStream::open(&server.url("/sse?channels=fan&enveloped=false")).await);
    }
    let readers: Vec<_> = streams
        .into_iter()
        .map(|mut stream| {
            tokio::spawn(async move {
                let events = stream.events(MESSAGES).await;
                events.iter().map(|e| e.data.clone()).collect::<Vec<_>>()
            })
        })
        .collect();
    for i in 0..MESSAGES {
        publish(&server, "fan", json!({"data": format!("m{i}")})).await;
    }
    let expected: Vec<String> = (0..MESSAGES).map(|i| format!("m{i}")).collect();
    for reader in readers {
        assert_eq!(reader.await.unwrap(), expected);
    }
}

/// A client that sends a request and then never reads.
fn stalled_subscriber(server: &Server, path: &str) -> std::net::TcpStream {
    let addr = server.base.trim_start_matches("http://");
    let mut socket = std::net::TcpStream::connect(addr).unwrap();
    write!(socket, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    socket
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_never_reads_costs_its_queue_and_slows_nobody() {
    const HISTORY: usize = 200;
    const BURST: usize = 100;
    const MESSAGES: usize = 4000;
    let payload = "x".repeat(16 * 1024);
    let server = Server::start(&format!(
        "[channels]\nhistory_size = {HISTORY}\nsubscriber_queue = 64\n[stream]\nkeepalive_ms = 60000\n"
    ));
    let mut stalled = stalled_subscriber(&server, "/sse?channels=slow");
    let mut reader = SseStream::open(&server.url("/sse?channels=slow")).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_before = server.rss_kib();

    // 4000 × 16 KiB = 64 MiB published; the stalled client would need all of it buffered.
    let mut received = 0;
    for burst in 0..MESSAGES / BURST {
        for i in 0..BURST {
            let n = burst * BURST + i;
            publish(&server, "slow", json!({"data": format!("{n}:{payload}")})).await;
        }
        // The reading subscriber gets every message in order, keeping pace with publishing.
        for event in reader.events(BURST).await {
            let data = envelope(&event)["data"].as_str().unwrap().to_owned();
            let n: usize = data.split(':').next().unwrap().parse().unwrap();
            assert_eq!(n, received, "reader out of order or lost a message");
            received += 1;
        }
    }
    assert_eq!(received, MESSAGES);
    let growth_kib = server.rss_kib().saturating_sub(rss_before);
    eprintln!("server RSS grew by {growth_kib} KiB");
    // History (200 events, message plus encoded copy ≈ 6.5 MiB), one queue batch and socket
    // buffers are the bound; 64 MiB would show if the stalled client were buffered.
    assert!(
        growth_kib < 24 * 1024,
        "server grew by {growth_kib} KiB for a client that never reads"
    );

    // When the stalled client finally reads, it is told what it missed: it fell further
    // behind than its queue (64), so the oldest were skipped with a notice.
    stalled
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut seen = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let gap = b"event: error\ndata: {\"message\":\"skipped ";
    while !seen.windows(gap.len()).any(|w| w == gap) {
        let n = stalled.read(&mut chunk).expect("stalled client reads");
        assert!(n > 0, "stream closed before the overflow notice");
        seen.extend_from_slice(&chunk[..n]);
        // Keep only the tail: the notice can span two reads.
        if seen.len() > 1 << 20 {
            seen.drain(..seen.len() - 4096);
        }
    }
    let drops = common::metric(&server, "streamgate_queue_drops_total").await;
    assert!(drops > 0.0, "no queue drops counted");
}
