//! Passthrough relays: a 1:1 streaming proxy that flushes every event at once,
//! passes status and headers back, and closes the upstream when the client leaves.

mod common;

use std::time::Duration;

use common::sse_upstream::{SseUpstream, wpt_vectors};
use common::{Server, SseStream, client, eventually, expect_error};
use reqwest::header::{HeaderMap, HeaderValue};

fn gateway(upstream: &SseUpstream) -> Server {
    Server::start(&format!(
        "[[relay]]\nname = \"live\"\nlisten_path = \"/live\"\nupstream = \"{}\"\n\
         mode = \"passthrough\"\nforward_headers = [\"x-tenant\"]\n\
         headers = {{ authorization = \"Bearer upstream-secret\" }}",
        upstream.url("/up")
    ))
}

#[tokio::test]
async fn each_event_reaches_the_client_before_the_upstream_writes_again() {
    let upstream = SseUpstream::start().await;
    let server = gateway(&upstream);
    let mut headers = HeaderMap::new();
    headers.insert("x-tenant", HeaderValue::from_static("t1"));
    headers.insert("x-private", HeaderValue::from_static("no"));
    let mut stream = SseStream::open_with(&server.url("/live/feed?x=1"), headers).await;
    assert_eq!(
        stream.response.headers()["content-type"],
        "text/event-stream"
    );
    eventually("the upstream request", || upstream.open_streams() == 1).await;
    for n in 1..=20 {
        let id = upstream.send("tick", &n.to_string());
        // The upstream writes nothing more until the client has this event: a proxy that
        // buffered would time out here.
        let event = tokio::time::timeout(Duration::from_secs(2), stream.next_event())
            .await
            .unwrap_or_else(|_| panic!("event {n} was held back"))
            .expect("the stream is open");
        assert_eq!(
            (event.event.as_str(), event.data.as_str(), event.id.as_str()),
            ("tick", n.to_string().as_str(), id.to_string().as_str()),
            "the upstream's event, id included, as it was written"
        );
    }
    let seen = &upstream.requests()[0];
    assert_eq!(seen.path, "/up/feed");
    assert_eq!(seen.query.as_deref(), Some("x=1"));
    assert_eq!(seen.headers["x-tenant"], "t1");
    assert_eq!(seen.headers["authorization"], "Bearer upstream-secret");
    assert!(seen.headers.get("x-private").is_none());
}

#[tokio::test]
async fn a_client_that_leaves_closes_the_upstream_request() {
    let upstream = SseUpstream::start().await;
    let server = gateway(&upstream);
    let mut stream = SseStream::open(&server.url("/live/feed")).await;
    eventually("the upstream request", || upstream.open_streams() == 1).await;
    upstream.send("tick", "1");
    stream.next_event().await.expect("an event");
    drop(stream);
    eventually("the upstream request closed", || {
        upstream.open_streams() == 0
    })
    .await;
    // Each client has its own upstream request.
    let a = SseStream::open(&server.url("/live/feed")).await;
    let b = SseStream::open(&server.url("/live/feed")).await;
    eventually("two upstream requests", || upstream.open_streams() == 2).await;
    drop((a, b));
    eventually("both closed", || upstream.open_streams() == 0).await;
}

#[tokio::test]
async fn last_event_id_goes_upstream_and_the_upstream_resumes() {
    let upstream = SseUpstream::start().await;
    let server = gateway(&upstream);
    for n in 1..=5 {
        upstream.send("tick", &n.to_string());
    }
    let mut headers = HeaderMap::new();
    headers.insert("last-event-id", HeaderValue::from_static("3"));
    let mut stream = SseStream::open_with(&server.url("/live/feed"), headers).await;
    let resumed: Vec<_> = stream.events(2).await.into_iter().map(|e| e.data).collect();
    assert_eq!(resumed, ["4", "5"]);
}

#[tokio::test]
async fn wpt_vectors_pass_through_byte_for_byte() {
    let upstream = SseUpstream::start().await;
    let server = gateway(&upstream);
    for (i, vector) in wpt_vectors().into_iter().enumerate() {
        let (name, body) = (&vector.name, &vector.body);
        upstream.script(&format!("/up/v{i}"), body.as_bytes());
        let response = client()
            .get(server.url(&format!("/live/v{i}")))
            .send()
            .await
            .unwrap();
        let bytes = response.bytes().await.unwrap();
        assert_eq!(&bytes[..], body.as_bytes(), "vector {name}");
        let mut parser = streamgate::wire::sse_parser::SseParser::new();
        let got: Vec<_> = parser
            .feed_events(&bytes)
            .into_iter()
            .map(|e| (e.event, e.data, e.id))
            .collect();
        let expected: Vec<_> = vector
            .expected
            .iter()
            .map(|e| (e.event.clone(), e.data.clone(), e.last_event_id.clone()))
            .collect();
        assert_eq!(got, expected, "vector {name}");
    }
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_503() {
    let upstream = SseUpstream::start().await;
    upstream.stop();
    let server = gateway(&upstream);
    let resp = client().get(server.url("/live/feed")).send().await.unwrap();
    let body = expect_error(resp, 503, 50300).await;
    assert!(!body.to_string().contains("upstream-secret"), "{body}");
}

#[tokio::test]
async fn shutdown_ends_passthrough_streams_instead_of_waiting_for_them() {
    let upstream = SseUpstream::start().await;
    let server = gateway(&upstream);
    let mut stream = SseStream::open(&server.url("/live/feed")).await;
    eventually("the upstream request", || upstream.open_streams() == 1).await;
    let started = std::time::Instant::now();
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
    // The shutdown grace period is 5 s: an open passthrough stream must not use it up.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert!(stream.next_frame().await.is_none(), "the stream ended");
}

#[tokio::test]
async fn the_query_goes_upstream_less_the_gateways_own_parameters() {
    let upstream = SseUpstream::start().await;
    let server = gateway(&upstream);
    let path = "/live/feed?x=1&lastEvent=7&rewind=2&heartbeats=true&enveloped=false&y=2";
    let _stream = SseStream::open(&server.url(path)).await;
    eventually("the upstream request", || upstream.open_streams() == 1).await;
    assert_eq!(upstream.requests()[0].query.as_deref(), Some("x=1&y=2"));
}
