//! Shared relays against a real upstream SSE server: one upstream connection
//! for every subscriber, upstream resume with `Last-Event-ID`, client resume from gateway
//! history, and the WPT parsing vectors relayed intact.

mod common;

use std::time::Duration;

use common::sse_upstream::{SseUpstream, wpt_vectors};
use common::upstream::Upstream;
use common::{Server, SseStream, client, eventually, expect_error, next_relayed};
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::Value;

/// A gateway with one shared relay named `market` in front of `upstream`.
/// The relay `market` of `upstream`, with the default linger and backoff.
fn relay(upstream: &SseUpstream) -> String {
    format!(
        "[[relay]]\nname = \"market\"\nlisten_path = \"/market\"\nupstream = \"{}\"\n",
        upstream.url("/")
    )
}

fn gateway(upstream: &SseUpstream, extra: &str) -> Server {
    Server::start(&format!(
        "{}linger_ms = 200\nmax_backoff_ms = 300\n{extra}",
        relay(upstream)
    ))
}

#[tokio::test]
async fn two_hundred_subscribers_share_one_upstream_connection() {
    let upstream = SseUpstream::start().await;
    let server = gateway(&upstream, "forward_query = [\"symbol\"]");
    let url = server.url("/market/quotes?symbol=ACME");
    let mut streams = Vec::new();
    for _ in 0..200 {
        streams.push(SseStream::open(&url).await);
    }
    eventually("the upstream connection", || upstream.open_streams() == 1).await;
    for i in 0..3 {
        upstream.send("quote", &format!("{{\"n\":{i}}}\nsecond line"));
    }
    for stream in &mut streams {
        for i in 0..3 {
            let event = next_relayed(stream).await;
            assert_eq!(event.event, "quote");
            assert_eq!(event.data, format!("{{\"n\":{i}}}\nsecond line"));
        }
    }
    let requests = upstream.requests();
    assert_eq!(
        requests.len(),
        1,
        "one upstream request for 200 subscribers"
    );
    assert_eq!(requests[0].path, "/quotes");
    assert_eq!(requests[0].query.as_deref(), Some("symbol=ACME"));
    assert_eq!(requests[0].headers["accept"], "text/event-stream");
    // The last subscriber leaves: the upstream connection closes after the linger.
    drop(streams);
    eventually("the upstream connection closed", || {
        upstream.open_streams() == 0
    })
    .await;
}

#[tokio::test]
async fn upstream_death_is_resumed_with_last_event_id_without_gap_or_duplicate() {
    let upstream = SseUpstream::start().await;
    let server = gateway(&upstream, "");
    let url = server.url("/market/ticks");
    let mut early = SseStream::open(&url).await;
    eventually("the upstream connection", || upstream.open_streams() == 1).await;
    for n in 1..=3 {
        upstream.send("tick", &n.to_string());
    }
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(next_relayed(&mut early).await.data);
    }
    upstream.stop();
    // Subscribers are told in-band; their streams stay open.
    let error = early.next_event().await.expect("an error event");
    assert_eq!(error.event, "error", "{error:?}");
    let info: Value = serde_json::from_str(&error.data).unwrap();
    assert!(
        info["status"].is_u64() && info["message"].is_string(),
        "{info}"
    );
    assert!(info["retryMs"].is_u64(), "{info}");
    // Events the upstream has while the gateway cannot reach it come with the resume.
    upstream.send("tick", "4");
    upstream.send("tick", "5");
    let upstream = upstream.restart().await;
    for _ in 0..2 {
        seen.push(next_relayed(&mut early).await.data);
    }
    upstream.send("tick", "6");
    seen.push(next_relayed(&mut early).await.data);
    assert_eq!(seen, ["1", "2", "3", "4", "5", "6"]);
    let resumed: Vec<_> = upstream
        .requests()
        .iter()
        .filter_map(|r| r.last_event_id())
        .collect();
    assert_eq!(resumed.first().map(Vec::as_slice), Some(&b"3"[..]));
    early.expect_quiet(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn an_upstream_that_resends_the_resumed_event_causes_no_duplicate() {
    let upstream = SseUpstream::start().await;
    upstream.resume_inclusively();
    let server = gateway(&upstream, "");
    let mut stream = SseStream::open(&server.url("/market/ticks")).await;
    eventually("the upstream connection", || upstream.open_streams() == 1).await;
    upstream.send("tick", "1");
    upstream.send("tick", "2");
    let mut seen = vec![
        next_relayed(&mut stream).await.data,
        next_relayed(&mut stream).await.data,
    ];
    upstream.stop();
    upstream.send("tick", "3");
    let upstream = upstream.restart().await;
    seen.push(next_relayed(&mut stream).await.data);
    assert_eq!(
        seen,
        ["1", "2", "3"],
        "event 2 came again upstream, not to clients"
    );
    let resumed = upstream.requests().last().unwrap().last_event_id();
    assert_eq!(resumed.as_deref(), Some(&b"2"[..]));
}

#[tokio::test]
async fn a_relay_restarted_for_a_returning_client_resumes_the_upstream() {
    let upstream = SseUpstream::start().await;
    let server = gateway(&upstream, "");
    let url = server.url("/market/ticks");
    let mut stream = SseStream::open(&url).await;
    eventually("the upstream connection", || upstream.open_streams() == 1).await;
    upstream.send("tick", "1");
    let first = next_relayed(&mut stream).await;
    drop(stream);
    // Nobody watches: the relay stops after its linger, and the upstream moves on.
    eventually("the relay stopped", || upstream.open_streams() == 0).await;
    upstream.send("tick", "2");
    let mut headers = HeaderMap::new();
    headers.insert("last-event-id", HeaderValue::from_str(&first.id).unwrap());
    let mut back = SseStream::open_with(&url, headers).await;
    assert_eq!(
        next_relayed(&mut back).await.data,
        "2",
        "nothing lost meanwhile"
    );
    let resumed = upstream.requests().last().unwrap().last_event_id();
    assert_eq!(resumed.as_deref(), Some(&b"1"[..]));
}

#[tokio::test]
async fn clients_resume_from_gateway_history() {
    let upstream = SseUpstream::start().await;
    let server = gateway(&upstream, "");
    let url = server.url("/market/ticks");
    let mut watcher = SseStream::open(&url).await;
    let mut leaver = SseStream::open(&url).await;
    eventually("the upstream connection", || upstream.open_streams() == 1).await;
    upstream.send("tick", "1");
    upstream.send("tick", "2");
    next_relayed(&mut leaver).await;
    let second = next_relayed(&mut leaver).await;
    assert_eq!(second.data, "2");
    drop(leaver);
    upstream.send("tick", "3");
    upstream.send("tick", "4");
    for _ in 0..4 {
        next_relayed(&mut watcher).await;
    }
    let mut headers = HeaderMap::new();
    headers.insert("last-event-id", HeaderValue::from_str(&second.id).unwrap());
    let mut back = SseStream::open_with(&url, headers).await;
    let missed: Vec<String> = vec![
        next_relayed(&mut back).await.data,
        next_relayed(&mut back).await.data,
    ];
    assert_eq!(missed, ["3", "4"]);
    back.expect_quiet(Duration::from_millis(300)).await;
    assert_eq!(
        upstream.requests().len(),
        1,
        "the upstream is not asked again"
    );
}

#[tokio::test]
async fn forwarded_headers_make_topics_and_injected_headers_stay_upstream() {
    let upstream = SseUpstream::start().await;
    let server = gateway(
        &upstream,
        "forward_headers = [\"x-tenant\"]\nforward_query = [\"region\"]\n\
         headers = { authorization = \"Bearer upstream-secret\" }",
    );
    let url = server.url("/market/ticks?key=app:secret&region=eu");
    let open = |tenant: &'static str| {
        let url = url.clone();
        async move {
            let mut headers = HeaderMap::new();
            headers.insert("x-tenant", HeaderValue::from_static(tenant));
            headers.insert("x-private", HeaderValue::from_static("not forwarded"));
            SseStream::open_with(&url, headers).await
        }
    };
    let mut a1 = open("a").await;
    let mut a2 = open("a").await;
    let mut b = open("b").await;
    eventually("two upstream connections", || upstream.open_streams() == 2).await;
    upstream.send("tick", "1");
    for stream in [&mut a1, &mut a2, &mut b] {
        assert_eq!(next_relayed(stream).await.data, "1");
    }
    let requests = upstream.requests();
    assert_eq!(requests.len(), 2);
    let mut tenants: Vec<_> = requests
        .iter()
        .map(|r| r.headers["x-tenant"].to_str().unwrap().to_owned())
        .collect();
    tenants.sort();
    assert_eq!(tenants, ["a", "b"]);
    for request in &requests {
        assert_eq!(request.headers["authorization"], "Bearer upstream-secret");
        assert!(request.headers.get("x-private").is_none());
        // The gateway's credential is not passed on; the rest of the query is.
        assert_eq!(request.query.as_deref(), Some("region=eu"));
    }
}

#[tokio::test]
async fn topics_map_paths_and_bad_requests_are_explained() {
    let upstream = SseUpstream::start().await;
    let server = Server::start(&format!(
        "[[relay]]\nname = \"news\"\nlisten_path = \"/news/{{version}}\"\nversion = \"v2\"\n\
         upstream = \"{}\"\ntopics = {{ top = \"/feeds/top\", \"region/*\" = \"/feeds/r/*\" }}\n\
         linger_ms = 200",
        upstream.url("/base")
    ));
    let mut top = SseStream::open(&server.url("/news/v2/top")).await;
    let mut eu = SseStream::open(&server.url("/news/v2/region/eu")).await;
    eventually("two upstream connections", || upstream.open_streams() == 2).await;
    let mut paths: Vec<_> = upstream.requests().into_iter().map(|r| r.path).collect();
    paths.sort();
    assert_eq!(paths, ["/base/feeds/r/eu", "/base/feeds/top"]);
    upstream.send("story", "x");
    assert_eq!(next_relayed(&mut top).await.event, "story");
    assert_eq!(next_relayed(&mut eu).await.event, "story");

    let http = client();
    let resp = http
        .get(server.url("/news/v2/sports"))
        .send()
        .await
        .unwrap();
    let body = expect_error(resp, 404, 40400).await;
    assert!(body.to_string().contains("sports"), "{body}");
    let resp = http.get(server.url("/news/v1/top")).send().await.unwrap();
    expect_error(resp, 404, 40400).await;
    let resp = http.post(server.url("/news/v2/top")).send().await.unwrap();
    expect_error(resp, 405, 40500).await;
}

#[tokio::test]
async fn failing_upstreams_are_error_events_once_per_failure() {
    let upstream = SseUpstream::start().await;
    // Nothing listens on the upstream's port once it stops.
    upstream.stop();
    let json_api = Upstream::start(serde_json::json!({"not": "sse"})).await;
    let server = gateway(
        &upstream,
        &format!(
            "[[relay]]\nname = \"json\"\nlisten_path = \"/json\"\nupstream = \"{}\"\n\
             max_backoff_ms = 300",
            json_api.url("/")
        ),
    );
    for (path, status, cause) in [
        ("/market/ticks", 2000, "connect"),
        ("/json/doc", 2007, "not-sse"),
    ] {
        let mut stream = SseStream::open(&server.url(path)).await;
        let error = stream.next_event().await.expect("an error event");
        assert_eq!(error.event, "error");
        let info: Value = serde_json::from_str(&error.data).unwrap();
        assert_eq!(info["status"], status, "{info}");
        assert_eq!(info["cause"], cause, "{info}");
        // The relay keeps trying, but the same failure is not repeated to subscribers.
        stream.expect_quiet(Duration::from_millis(800)).await;
    }
    assert!(json_api.requests() >= 2, "the relay retries");
}

#[tokio::test]
async fn wpt_vectors_arrive_intact_through_a_shared_relay() {
    let upstream = SseUpstream::start().await;
    let server = gateway(&upstream, "");
    let vectors = wpt_vectors();
    let mut streams = Vec::new();
    for (i, vector) in vectors.iter().enumerate() {
        upstream.script(&format!("/v{i}"), vector.body.as_bytes());
        streams.push(SseStream::open(&server.url(&format!("/market/v{i}"))).await);
    }
    for (vector, stream) in vectors.iter().zip(&mut streams) {
        let name = &vector.name;
        for expected in &vector.expected {
            let got = next_relayed(stream).await;
            assert_eq!(
                (&got.event, &got.data),
                (&expected.event, &expected.data),
                "vector {name}"
            );
        }
        // The upstream ended the stream: subscribers hear of it, nothing else.
        let closed = stream.next_event().await.expect("an error event");
        assert_eq!(closed.event, "error", "vector {name}: {closed:?}");
    }
    // Each topic is resumed upstream with the last id its stream left in effect.
    for (i, vector) in vectors.iter().enumerate() {
        let name = &vector.name;
        let path = format!("/v{i}");
        eventually(&format!("vector {name} reconnected"), || {
            upstream
                .requests()
                .iter()
                .filter(|r| r.path == path)
                .count()
                >= 2
        })
        .await;
        let resume = upstream
            .requests()
            .into_iter()
            .filter(|r| r.path == path)
            .nth(1)
            .unwrap()
            .last_event_id();
        let last = &vector.expected.last().unwrap().last_event_id;
        let want = (!last.is_empty()).then(|| last.as_bytes().to_vec());
        assert_eq!(resume, want, "vector {name}");
    }
}

/// The status line and headers of a GET sent byte for byte as given.
async fn raw_get(addr: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    socket.read_to_end(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn paths_cannot_climb_out_and_queries_cannot_override_the_relay() {
    let upstream = SseUpstream::start().await;
    let server = Server::start(&format!(
        "[[relay]]\nname = \"market\"\nlisten_path = \"/market\"\n\
         upstream = \"{}\"\nlinger_ms = 200\nforward_query = [\"tenant\", \"x\"]\n",
        upstream.url("/feeds/?tenant=acme")
    ));
    // Sent as written: HTTP clients would resolve the dot segments themselves.
    let addr = server.base.trim_start_matches("http://").to_owned();
    for path in [
        "/market/a/../../admin",
        "/market/a/%2e%2e/%2e%2e/admin",
        "/market/a/%2E%2e/x",
        "/market/./x",
        "/market/a%2fb",
        "/market/a%5Cb",
    ] {
        let head = raw_get(&addr, path).await;
        assert!(head.starts_with("HTTP/1.1 400"), "{path}: {head}");
    }
    let mut stream = SseStream::open(&server.url("/market/ticks?tenant=other&x=1")).await;
    eventually("the upstream connection", || upstream.open_streams() == 1).await;
    let seen = upstream.requests();
    assert_eq!(seen.len(), 1, "nothing else reached the upstream");
    assert_eq!(seen[0].path, "/feeds/ticks");
    assert_eq!(seen[0].query.as_deref(), Some("tenant=acme&x=1"));
    upstream.send("tick", "1");
    assert_eq!(next_relayed(&mut stream).await.data, "1");
}

#[tokio::test]
async fn a_relay_stops_after_its_last_subscriber_even_while_the_upstream_is_busy() {
    let upstream = std::sync::Arc::new(SseUpstream::start().await);
    let server = gateway(&upstream, "");
    let mut stream = SseStream::open(&server.url("/market/ticks")).await;
    eventually("the upstream connection", || upstream.open_streams() == 1).await;
    let ticker = {
        let upstream = std::sync::Arc::clone(&upstream);
        tokio::spawn(async move {
            loop {
                upstream.send("tick", "x");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    next_relayed(&mut stream).await;
    drop(stream);
    eventually("the relay stopped", || upstream.open_streams() == 0).await;
    ticker.abort();
}

#[tokio::test]
async fn an_endless_upstream_event_is_cut_at_max_event_bytes() {
    let upstream = SseUpstream::start().await;
    let server = gateway(&upstream, "max_event_bytes = 4096");
    upstream.script("/huge", &vec![b'x'; 64 * 1024]);
    let mut stream = SseStream::open(&server.url("/market/huge")).await;
    let error = stream.next_event().await.expect("an error event");
    assert_eq!(error.event, "error");
    let info: Value = serde_json::from_str(&error.data).unwrap();
    assert_eq!(info["status"], 2004, "{info}");
}

#[tokio::test]
async fn upstream_secrets_stay_out_of_notices() {
    let upstream = SseUpstream::start().await;
    let server = Server::start(&format!(
        "[[relay]]\nname = \"market\"\nlisten_path = \"/market\"\nupstream = \"{}\"\n\
         headers = {{ x-api-key = \"header-s3cret\" }}\nlinger_ms = 200\n",
        upstream.url("/?token=query-s3cret")
    ));
    // An id the gateway cannot place: the stream starts with a gap notice naming the stream.
    let mut headers = HeaderMap::new();
    headers.insert("last-event-id", HeaderValue::from_static("bogus"));
    let mut stream = SseStream::open_with(&server.url("/market/ticks"), headers).await;
    let notice = stream.next_event().await.expect("a gap notice");
    let info: Value = serde_json::from_str(&notice.data).unwrap();
    assert_eq!(info["code"], 40900, "{info}");
    let message = info["message"].as_str().unwrap();
    assert!(message.contains("market/ticks"), "{message}");
    for secret in ["query-s3cret", "header-s3cret", "127.0.0.1"] {
        assert!(!message.contains(secret), "{secret} leaked: {message}");
    }
}

#[tokio::test]
async fn gateway_parameters_resume_and_rewind_without_reaching_the_upstream() {
    let upstream = SseUpstream::start().await;
    let server = gateway(&upstream, "");
    let mut first = SseStream::open(&server.url("/market/ticks")).await;
    eventually("the upstream connection", || upstream.open_streams() == 1).await;
    for n in 1..=3 {
        upstream.send("tick", &n.to_string());
    }
    let one = next_relayed(&mut first).await;
    // All three are in history before the others open.
    next_relayed(&mut first).await;
    next_relayed(&mut first).await;
    let path = format!(
        "/market/ticks?lastEvent={}&heartbeats=true&enveloped=false&rewind=5",
        one.id
    );
    let mut resumed = SseStream::open(&server.url(&path)).await;
    let mut rewound = SseStream::open(&server.url("/market/ticks?rewind=2")).await;
    for stream in [&mut resumed, &mut rewound] {
        let got = [next_relayed(stream).await, next_relayed(stream).await];
        assert_eq!([&*got[0].data, &*got[1].data], ["2", "3"]);
    }
    // Enveloped on request: the stream's name and the upstream's data.
    let mut enveloped = SseStream::open(&server.url("/market/ticks?rewind=1&enveloped=true")).await;
    let envelope: Value = serde_json::from_str(&next_relayed(&mut enveloped).await.data).unwrap();
    assert_eq!(
        envelope,
        serde_json::json!({"channel": "market/ticks", "data": "3"})
    );
    let requests = upstream.requests();
    assert_eq!(requests.len(), 1, "one upstream connection: {requests:?}");
    assert_eq!(requests[0].query, None);

    let http = client();
    for bad in ["lastEvent=nope", "rewind=soon", "heartbeats=yes"] {
        let resp = http
            .get(server.url(&format!("/market/ticks?{bad}")))
            .send()
            .await
            .unwrap();
        expect_error(resp, 400, 40000).await;
    }
}

#[tokio::test]
async fn only_forward_query_parameters_make_shared_topics() {
    let upstream = SseUpstream::start().await;
    let server = gateway(&upstream, "forward_query = [\"symbol\"]");
    let mut acme = SseStream::open(&server.url("/market/quotes?symbol=ACME")).await;
    let _other = SseStream::open(&server.url("/market/quotes?symbol=OTHER")).await;
    eventually("two upstream connections", || upstream.open_streams() == 2).await;
    let http = client();
    for query in ["symbol=ACME&_=1700000000", "cache=no", "SYMBOL=ACME"] {
        let resp = http
            .get(server.url(&format!("/market/quotes?{query}")))
            .send()
            .await
            .unwrap();
        let body = expect_error(resp, 400, 40000).await;
        assert!(body.to_string().contains("forward_query"), "{body}");
    }
    upstream.send("quote", "1");
    assert_eq!(next_relayed(&mut acme).await.data, "1");
    let mut queries: Vec<_> = upstream.requests().into_iter().map(|r| r.query).collect();
    queries.sort();
    assert_eq!(
        queries,
        [
            Some("symbol=ACME".to_owned()),
            Some("symbol=OTHER".to_owned())
        ]
    );

    // Without forward_query, a relay takes no query at all.
    let plain = gateway(&upstream, "");
    let resp = http
        .get(plain.url("/market/quotes?symbol=ACME"))
        .send()
        .await
        .unwrap();
    expect_error(resp, 400, 40000).await;
}

#[tokio::test]
async fn an_upstream_that_closes_at_once_is_backed_off_and_told_once() {
    let upstream = SseUpstream::start().await;
    upstream.script_every_time("/flaky", b"id: 1\nretry: 0\ndata: hi\n\n");
    // The default max_backoff_ms: the upstream's retry: 0 is floored, not obeyed.
    let server = Server::start(&relay(&upstream));
    let mut stream = SseStream::open(&server.url("/market/flaky")).await;
    assert_eq!(next_relayed(&mut stream).await.data, "hi");
    let closed = stream.next_event().await.expect("an error event");
    assert_eq!(closed.event, "error");
    let info: Value = serde_json::from_str(&closed.data).unwrap();
    assert_eq!(info["status"], 2006, "{info}");
    // Each reconnection ends the same way and relays nothing new: nothing more is said,
    // and the upstream is not asked again and again.
    stream.expect_quiet(Duration::from_millis(1500)).await;
    let asked = upstream.requests().len();
    assert!(asked <= 3, "{asked} upstream requests in 1.5 s");
}

#[tokio::test]
async fn a_retry_field_without_an_event_sets_the_reconnection_time() {
    let upstream = SseUpstream::start().await;
    // As a browser reads it: the reconnection time is 4 s from that line on, though no
    // event follows before the stream ends.
    upstream.script_every_time("/lone", b"retry: 4000\n\n");
    let server = Server::start(&relay(&upstream));
    let _stream = SseStream::open(&server.url("/market/lone")).await;
    // Connections at 0 s and 4 s (then 8 s later, backing off); with the default 1 s
    // they would be at 0, 1 and 3 s.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let asked = upstream.requests().len();
    assert_eq!(asked, 1, "{asked} upstream requests in 3.5 s");
}

#[tokio::test]
async fn upstream_failures_do_not_push_events_out_of_history() {
    let upstream = SseUpstream::start().await;
    let server = gateway(&upstream, "[channels]\nhistory_size = 1\n");
    let url = server.url("/market/ticks");
    let mut watcher = SseStream::open(&url).await;
    eventually("the upstream connection", || upstream.open_streams() == 1).await;
    upstream.send("tick", "1");
    let one = next_relayed(&mut watcher).await;
    upstream.send("tick", "2");
    next_relayed(&mut watcher).await;
    upstream.stop();
    let error = watcher.next_event().await.expect("an error event");
    assert_eq!(error.event, "error");
    // Resuming after event 1: event 2 is still in history, no gap notice.
    let mut headers = HeaderMap::new();
    headers.insert("last-event-id", HeaderValue::from_str(&one.id).unwrap());
    let mut back = SseStream::open_with(&url, headers).await;
    let next = back.next_event().await.expect("an event");
    assert_eq!((&*next.event, &*next.data), ("tick", "2"), "{next:?}");
}
