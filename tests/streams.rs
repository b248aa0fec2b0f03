//! `/sse` and `/event-stream` over real sockets: delivery, rewind, resume, gaps, formats.

mod common;

use std::time::Duration;

use common::{Server, SseStream, client, envelope, expect_error, publish};
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};
use streamgate::wire::sse_parser::SseFrame;

const SMALL: &str = "[stream]\nkeepalive_ms = 60000\n";

#[tokio::test]
async fn publish_then_subscribe_one_channel() {
    let server = Server::start(SMALL);
    let mut stream = SseStream::open(&server.url("/sse?channels=news")).await;
    let headers = stream.response.headers();
    assert_eq!(headers["content-type"], "text/event-stream; charset=utf-8");
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(headers["x-accel-buffering"], "no");

    let ids = publish(
        &server,
        "news",
        json!({"name": "greeting", "data": {"n": 1}}),
    )
    .await;
    publish(&server, "news", json!([{"data": "two"}, {"data": [3]}])).await;

    let events = stream.events(3).await;
    let first = envelope(&events[0]);
    assert_eq!(first["id"], ids[0].as_str());
    assert_eq!(first["name"], "greeting");
    assert_eq!(first["channel"], "news");
    assert_eq!(first["data"], json!({"n": 1}));
    assert_eq!(first["encoding"], Value::Null);
    assert!(first["timestamp"].as_u64().unwrap() > 1_600_000_000_000);
    assert_eq!(envelope(&events[1])["data"], "two");
    assert_eq!(envelope(&events[2])["data"], json!([3]));
    // Every event carries a resume id, and ids differ.
    assert!(events.iter().all(|e| !e.id.is_empty()));
    assert_ne!(events[0].id, events[1].id);
}

#[tokio::test]
async fn one_connection_carries_several_channels() {
    let server = Server::start(SMALL);
    let mut stream = SseStream::open(&server.url("/sse?channels=a,b,c")).await;
    publish(&server, "b", json!({"data": "to b"})).await;
    publish(&server, "a", json!({"data": "to a"})).await;
    publish(&server, "other", json!({"data": "not subscribed"})).await;
    publish(&server, "c", json!({"data": "to c"})).await;
    let got: Vec<(String, String)> = stream
        .events(3)
        .await
        .iter()
        .map(envelope)
        .map(|m| {
            (
                m["channel"].as_str().unwrap().into(),
                m["data"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [("b", "to b"), ("a", "to a"), ("c", "to c")].map(|(c, d)| (c.to_string(), d.to_string()))
    );
    stream.expect_quiet(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn separator_splits_the_channel_list() {
    let server = Server::start(SMALL);
    let mut stream = SseStream::open(&server.url("/sse?channels=x%2Cy%7Cz&separator=%7C")).await;
    publish(&server, "z", json!({"data": 1})).await;
    publish(&server, "x%2Cy", json!({"data": 2})).await;
    let got: Vec<Value> = stream.events(2).await.iter().map(envelope).collect();
    assert_eq!(got[0]["channel"], "z");
    assert_eq!(got[1]["channel"], "x,y");
}

#[tokio::test]
async fn rewind_sends_the_last_messages_first() {
    let server = Server::start(SMALL);
    for i in 0..5 {
        publish(&server, "r", json!({"data": i})).await;
        publish(&server, "q", json!({"data": i})).await;
    }
    let data = |events: Vec<streamgate::wire::sse_parser::SseEvent>| -> Vec<Value> {
        events.iter().map(|e| envelope(e)["data"].clone()).collect()
    };

    let mut stream = SseStream::open(&server.url("/sse?channels=r&rewind=3")).await;
    assert_eq!(data(stream.events(3).await), [json!(2), json!(3), json!(4)]);
    publish(&server, "r", json!({"data": "live"})).await;
    assert_eq!(data(stream.events(1).await), [json!("live")]);

    // A per-channel qualifier overrides the request's rewind.
    let mut stream =
        SseStream::open(&server.url("/sse?channels=%5B%3Frewind%3D1%5Dq,r&rewind=2")).await;
    let got: Vec<(Value, Value)> = stream
        .events(3)
        .await
        .iter()
        .map(envelope)
        .map(|m| (m["channel"].clone(), m["data"].clone()))
        .collect();
    assert!(got.contains(&(json!("q"), json!(4))), "{got:?}");
    assert!(got.contains(&(json!("r"), json!(4))), "{got:?}");
    assert!(got.contains(&(json!("r"), json!("live"))), "{got:?}");
    stream.expect_quiet(Duration::from_millis(300)).await;

    // An age: everything here is younger than a minute.
    let mut stream = SseStream::open(&server.url("/sse?channels=q&rewind=1m")).await;
    assert_eq!(data(stream.events(5).await).len(), 5);
    stream.expect_quiet(Duration::from_millis(300)).await;
}

/// Publishes `n` messages alternating over `channels`, data = "{channel}-{i}".
async fn publish_round_robin(server: &Server, channels: &[&str], from: usize, n: usize) {
    for i in from..from + n {
        let ch = channels[i % channels.len()];
        publish(server, ch, json!({"data": format!("{ch}-{i}")})).await;
    }
}

fn payloads(events: &[streamgate::wire::sse_parser::SseEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| envelope(e)["data"].as_str().unwrap().to_owned())
        .collect()
}

fn expected(channels: &[&str], range: std::ops::Range<usize>) -> Vec<String> {
    range
        .map(|i| format!("{}-{i}", channels[i % channels.len()]))
        .collect()
}

#[tokio::test]
async fn resume_by_last_event_loses_and_repeats_nothing_across_channels() {
    let server = Server::start(SMALL);
    let channels = ["a", "b", "c"];
    let url = server.url("/sse?channels=c,a,b");
    let mut stream = SseStream::open(&url).await;
    publish_round_robin(&server, &channels, 0, 10).await;
    let seen = stream.events(4).await;
    assert_eq!(payloads(&seen), expected(&channels, 0..4));
    let last = seen.last().unwrap().id.clone();
    drop(stream);
    publish_round_robin(&server, &channels, 10, 8).await;

    // By query parameter.
    let mut resumed = SseStream::open(&format!("{url}&lastEvent={last}&rewind=100")).await;
    let rest = resumed.events(14).await;
    assert_eq!(payloads(&rest), expected(&channels, 4..18));
    resumed.expect_quiet(Duration::from_millis(300)).await;

    // By header, from a point in the middle, as a browser reconnects.
    let mut headers = HeaderMap::new();
    headers.insert("last-event-id", HeaderValue::from_str(&rest[6].id).unwrap());
    let mut resumed = SseStream::open_with(&url, headers).await;
    assert_eq!(
        payloads(&resumed.events(7).await),
        expected(&channels, 11..18)
    );
    resumed.expect_quiet(Duration::from_millis(300)).await;

    // The header wins over the query parameter: a browser reconnecting by itself sends the
    // last id it got, newer than the one its page put in the URL.
    let mut headers = HeaderMap::new();
    headers.insert(
        "last-event-id",
        HeaderValue::from_str(&rest[12].id).unwrap(),
    );
    let mut resumed =
        SseStream::open_with(&format!("{url}&lastEvent={}", rest[0].id), headers).await;
    assert_eq!(
        payloads(&resumed.events(1).await),
        expected(&channels, 17..18)
    );
    resumed.expect_quiet(Duration::from_millis(300)).await;

    // Unless the header is not one of the gateway's ids.
    let mut headers = HeaderMap::new();
    headers.insert("last-event-id", HeaderValue::from_static("not-ours"));
    let mut resumed =
        SseStream::open_with(&format!("{url}&lastEvent={}", rest[12].id), headers).await;
    assert_eq!(
        payloads(&resumed.events(1).await),
        expected(&channels, 17..18)
    );
    resumed.expect_quiet(Duration::from_millis(300)).await;
}

/// Reads the next event and asserts it is a 40900 history-gap error.
async fn expect_gap(stream: &mut SseStream) {
    let event = stream.next_event().await.expect("an event");
    assert_eq!(event.event, "error", "{event:?}");
    let info: Value = serde_json::from_str(&event.data).unwrap();
    assert_eq!(info["code"], 40900, "{info}");
    assert_eq!(info["statusCode"], 409, "{info}");
    assert!(info["message"].as_str().unwrap().contains("gap"), "{info}");
}

#[tokio::test]
async fn a_position_that_left_history_gets_a_gap_notice() {
    let server = Server::start("[channels]\nhistory_size = 5\n");
    let url = server.url("/sse?channels=g");
    let mut stream = SseStream::open(&url).await;
    publish(&server, "g", json!({"data": 0})).await;
    let id = stream.events(1).await[0].id.clone();
    drop(stream);
    for i in 1..=20 {
        publish(&server, "g", json!({"data": i})).await;
    }
    let mut resumed = SseStream::open(&format!("{url}&lastEvent={id}")).await;
    expect_gap(&mut resumed).await;
    let retained: Vec<Value> = resumed
        .events(5)
        .await
        .iter()
        .map(|e| envelope(e)["data"].clone())
        .collect();
    assert_eq!(retained, (16..=20).map(|i| json!(i)).collect::<Vec<_>>());
    publish(&server, "g", json!({"data": "live"})).await;
    assert_eq!(envelope(&resumed.events(1).await[0])["data"], "live");

    // A position of another epoch (an incarnation of the channel whose history is gone)
    // cannot be placed, even at an offset this one has: gap, then what is retained.
    let (epoch, offset) = id.split_once('-').unwrap();
    let other = if epoch == "zz" { "zy" } else { "zz" };
    let foreign = format!("{other}-{offset}");
    let mut resumed = SseStream::open(&format!("{url}&lastEvent={foreign}")).await;
    expect_gap(&mut resumed).await;
    assert_eq!(resumed.events(5).await.len(), 5);
}

#[tokio::test]
async fn an_unreadable_last_event_id_header_is_a_gap_not_an_error() {
    let server = Server::start(SMALL);
    publish(&server, "h", json!({"data": "kept"})).await;
    // Browsers send a non-ASCII id back as raw UTF-8; other bytes can arrive too.
    for raw in [&b"\xff\xfe\x80"[..], "caf\u{e9}-1".as_bytes(), b"not-an-id"] {
        let mut headers = HeaderMap::new();
        headers.insert("last-event-id", HeaderValue::from_bytes(raw).unwrap());
        let mut stream = SseStream::open_with(&server.url("/sse?channels=h"), headers).await;
        expect_gap(&mut stream).await;
        assert_eq!(envelope(&stream.events(1).await[0])["data"], "kept");
    }
}

#[tokio::test]
async fn enveloped_false_sends_the_payload_itself() {
    let server = Server::start(SMALL);
    let mut stream = SseStream::open(&server.url("/sse?channels=p&enveloped=false")).await;
    publish(&server, "p", json!({"data": "line one\nline two\r\nthree"})).await;
    let resp = common::client()
        .post(server.url("/channels/p/messages"))
        .header("content-type", "application/json")
        .body(r#"{"data": {"big": 123456789012345678901234567890, "dec": 0.100000000000000000000001}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let events = stream.events(2).await;
    assert_eq!(events[0].event, "message");
    assert_eq!(events[0].data, "line one\nline two\nthree");
    // Numbers pass through digit-exact.
    assert_eq!(
        events[1].data,
        r#"{"big":123456789012345678901234567890,"dec":0.100000000000000000000001}"#
    );
}

#[tokio::test]
async fn keepalive_comments_and_heartbeat_events() {
    let server = Server::start("[stream]\nkeepalive_ms = 150\n");
    let mut stream = SseStream::open(&server.url("/sse?channels=k")).await;
    match stream.next_frame_within(Duration::from_secs(3)).await {
        Some(SseFrame::Comment(text)) => assert_eq!(text, "keepalive"),
        other => panic!("expected a keepalive comment, got {other:?}"),
    }
    let mut stream = SseStream::open(&server.url("/sse?channels=k&heartbeats=true")).await;
    match stream.next_frame_within(Duration::from_secs(3)).await {
        Some(SseFrame::Event(e)) => assert_eq!(e.event, "heartbeat"),
        other => panic!("expected a heartbeat event, got {other:?}"),
    }

    // NDJSON: an empty line, or a heartbeat object.
    let mut resp = common::client()
        .get(server.url("/event-stream?channels=k"))
        .send()
        .await
        .unwrap();
    assert_eq!(&resp.chunk().await.unwrap().unwrap()[..], b"\n");
    let mut resp = common::client()
        .get(server.url("/event-stream?channels=k&heartbeats=true"))
        .send()
        .await
        .unwrap();
    let line: Value = serde_json::from_slice(&resp.chunk().await.unwrap().unwrap()).unwrap();
    assert_eq!(line["event"], "heartbeat");
}

#[tokio::test]
async fn event_stream_negotiates_ndjson_or_sse() {
    let server = Server::start(SMALL);
    let client = common::client();
    let mut ndjson = client
        .get(server.url("/event-stream?channels=n"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(ndjson.headers()["content-type"], "application/x-ndjson");
    let mut sse = SseStream::open_with(&server.url("/event-stream?channels=n"), {
        let mut h = HeaderMap::new();
        h.insert(
            "accept",
            HeaderValue::from_static("text/html, text/event-stream"),
        );
        h
    })
    .await;
    assert_eq!(
        sse.response.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
    // /sse is SSE whatever the client accepts.
    let sse_always = client
        .get(server.url("/sse?channels=n"))
        .header("accept", "application/x-ndjson")
        .send()
        .await
        .unwrap();
    assert_eq!(
        sse_always.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );

    let ids = publish(&server, "n", json!({"name": "x", "data": {"v": [1, 2]}})).await;
    let sse_event = &sse.events(1).await[0];
    let mut text = String::new();
    while !text.ends_with('\n') {
        text.push_str(std::str::from_utf8(&ndjson.chunk().await.unwrap().unwrap()).unwrap());
    }
    let line: Value = serde_json::from_str(text.trim_end()).unwrap();
    assert_eq!(line["event"], "message");
    assert_eq!(line["id"], sse_event.id.as_str());
    assert_eq!(line["data"]["id"], ids[0].as_str());
    assert_eq!(line["data"]["data"], json!({"v": [1, 2]}));
    assert_eq!(line["data"], envelope(sse_event));

    // Non-enveloped NDJSON carries the payload as JSON.
    let mut raw = client
        .get(server.url("/event-stream?channels=n&enveloped=false&rewind=1"))
        .send()
        .await
        .unwrap();
    let line: Value = serde_json::from_slice(&raw.chunk().await.unwrap().unwrap()).unwrap();
    assert_eq!(line["data"], json!({"v": [1, 2]}));
}

#[tokio::test]
async fn ndjson_resumes_like_sse() {
    let server = Server::start(SMALL);
    let client = common::client();
    for i in 0..4 {
        publish(&server, "nd", json!({"data": i})).await;
    }
    let mut resp = client
        .get(server.url("/event-stream?channels=nd&rewind=4&enveloped=false"))
        .send()
        .await
        .unwrap();
    let mut text = String::new();
    while text.lines().count() < 4 {
        text.push_str(std::str::from_utf8(&resp.chunk().await.unwrap().unwrap()).unwrap());
    }
    let second: Value = serde_json::from_str(text.lines().nth(1).unwrap()).unwrap();
    let id = second["id"].as_str().unwrap();
    let mut resumed = client
        .get(server.url(&format!(
            "/event-stream?channels=nd&enveloped=false&lastEvent={id}"
        )))
        .send()
        .await
        .unwrap();
    let mut text = String::new();
    while text.lines().count() < 2 {
        text.push_str(std::str::from_utf8(&resumed.chunk().await.unwrap().unwrap()).unwrap());
    }
    let data: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["data"].clone())
        .collect();
    assert_eq!(data, [json!(2), json!(3)]);
}

#[tokio::test]
async fn too_many_streams_on_one_connection_is_a_clear_error() {
    let server = Server::start("[limits]\nmax_streams_per_connection = 3\n");
    let resp = common::client()
        .get(server.url("/sse?channels=a,b,c,d"))
        .send()
        .await
        .unwrap();
    let body = common::expect_error(resp, 400, 40000).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_streams_per_connection"),
        "{body}"
    );
    // At the limit is fine.
    SseStream::open(&server.url("/sse?channels=a,b,c")).await;
}

#[tokio::test]
async fn a_message_id_given_as_lastevent_is_told_for_what_it_is() {
    let server = Server::start("");
    let ids = publish(&server, "ids", json!({"data": 1})).await;
    let resp = client()
        .get(server.url(&format!("/sse?channels=ids&lastEvent={}", ids[0])))
        .send()
        .await
        .unwrap();
    let body = expect_error(resp, 400, 40000).await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("looks like a message id"), "{message}");
    assert!(message.contains("SSE `id:` line"), "{message}");
    // Anything else is not called a message id.
    let resp = client()
        .get(server.url("/sse?channels=ids&lastEvent=nonsense"))
        .send()
        .await
        .unwrap();
    let body = expect_error(resp, 400, 40000).await;
    assert!(
        !body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("message id")
    );
}
