//! Publish and history over real sockets, and every bad input's ErrorInfo.

mod common;

use common::{Server, SseStream, client, envelope, expect_error, get_json, history, publish};
use serde_json::{Value, json};

const CONFIG: &str = "[channels]\nmax_message_bytes = 1024\n";

async fn post(
    server: &Server,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> reqwest::Response {
    let mut req = client().post(server.url(path)).body(body.to_vec());
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn publish_answers_201_with_channel_and_ids() {
    let server = Server::start(CONFIG);
    let resp = post(
        &server,
        "/channels/orders/messages",
        Some("application/json"),
        br#"[{"data":1},{"data":2,"name":"n"}]"#,
    )
    .await;
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["channel"], "orders");
    let ids = body["messageIds"].as_array().unwrap();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
}

#[tokio::test]
async fn a_non_json_body_is_one_string_message() {
    let server = Server::start(CONFIG);
    let mut stream = SseStream::open(&server.url("/sse?channels=raw")).await;
    let resp = post(
        &server,
        "/channels/raw/messages",
        Some("text/plain"),
        b"{not json}\nsecond line",
    )
    .await;
    assert_eq!(resp.status(), 201);
    // No content type at all: still raw text.
    assert_eq!(
        post(&server, "/channels/raw/messages", None, b"plain")
            .await
            .status(),
        201
    );
    // Bytes that are not UTF-8 arrive base64-encoded, saying so.
    assert_eq!(
        post(
            &server,
            "/channels/raw/messages",
            Some("application/octet-stream"),
            b"\xff\x00\x01"
        )
        .await
        .status(),
        201
    );
    let events = stream.events(3).await;
    assert_eq!(envelope(&events[0])["data"], "{not json}\nsecond line");
    assert_eq!(envelope(&events[1])["data"], "plain");
    let binary = envelope(&events[2]);
    assert_eq!(binary["data"], "/wAB");
    assert_eq!(binary["encoding"], "base64");
}

#[tokio::test]
async fn a_publisher_id_makes_publishing_idempotent() {
    let server = Server::start(CONFIG);
    let mut stream = SseStream::open(&server.url("/sse?channels=idem")).await;
    let first = publish(&server, "idem", json!({"id": "order-42", "data": "once"})).await;
    let again = publish(
        &server,
        "idem",
        json!([{"id": "order-42", "data": "twice"}, {"data": "next"}]),
    )
    .await;
    assert_eq!(first, ["order-42"]);
    assert_eq!(again[0], "order-42");
    let events = stream.events(2).await;
    assert_eq!(envelope(&events[0])["data"], "once");
    assert_eq!(envelope(&events[0])["id"], "order-42");
    assert_eq!(envelope(&events[1])["data"], "next");
    assert_eq!(history(&server, "idem").await.len(), 2);
}

#[tokio::test]
async fn history_pages_by_limit_direction_and_time() {
    let server = Server::start(CONFIG);
    for i in 0..5 {
        publish(&server, "hist", json!({"data": i})).await;
    }
    let get = |q: String| {
        let server = &server;
        async move { get_json::<Vec<Value>>(server, &format!("/channels/hist/messages{q}")).await }
    };
    let data = |page: Vec<Value>| page.iter().map(|m| m["data"].clone()).collect::<Vec<_>>();
    assert_eq!(
        data(get(String::new()).await),
        [4, 3, 2, 1, 0].map(|i| json!(i))
    );
    assert_eq!(data(get("?limit=2".into()).await), [json!(4), json!(3)]);
    assert_eq!(
        data(get("?direction=forwards&limit=2".into()).await),
        [json!(0), json!(1)]
    );
    let all = get("?direction=forwards".into()).await;
    let t = all[2]["timestamp"].as_u64().unwrap();
    let since = get(format!("?direction=forwards&start={t}")).await;
    assert!(since.iter().all(|m| m["timestamp"].as_u64().unwrap() >= t));
    assert!(since.iter().any(|m| m["data"] == 2));
    let until = get(format!("?end={}", t - 1)).await;
    assert!(until.iter().all(|m| m["timestamp"].as_u64().unwrap() < t));
    // A channel nobody used has an empty history.
    assert!(history(&server, "never").await.is_empty());
    // History entries are the same Message objects subscribers get.
    assert_eq!(all[0]["channel"], "hist");
    assert!(all[0]["id"].is_string());
}

#[tokio::test]
async fn bad_publish_input_gets_its_error_info() {
    let server = Server::start(CONFIG);
    let json = Some("application/json");
    // (path, content type, body, status, code)
    type Case<'a> = (&'a str, Option<&'a str>, Vec<u8>, u16, u64);
    let cases: Vec<Case> = vec![
        (
            "/channels/c/messages",
            json,
            b"{\"data\": 1".to_vec(),
            400,
            40000,
        ),
        ("/channels/c/messages", json, b"[]".to_vec(), 400, 40000),
        ("/channels/c/messages", json, b"42".to_vec(), 400, 40000),
        (
            "/channels/c/messages",
            json,
            b"{\"name\": \"no data\"}".to_vec(),
            400,
            40000,
        ),
        (
            "/channels/c/messages",
            json,
            b"{\"data\": 1, \"colour\": 2}".to_vec(),
            400,
            40000,
        ),
        (
            "/channels/c/messages",
            json,
            b"{\"data\": 1, \"id\": \"\"}".to_vec(),
            400,
            40000,
        ),
        (
            "/channels/c/messages",
            json,
            b"[{\"data\": 1}, 7]".to_vec(),
            400,
            40000,
        ),
        (
            "/channels/c/messages",
            Some("text/plain"),
            vec![b'x'; 1025],
            413,
            41300,
        ),
        (
            "/channels/c/messages",
            json,
            format!("{{\"data\": \"{}\"}}", "y".repeat(2000)).into_bytes(),
            413,
            41300,
        ),
        (
            "/channels/%5Bmeta%5Dx/messages",
            json,
            b"{\"data\": 1}".to_vec(),
            400,
            40000,
        ),
        (
            "/channels/%01/messages",
            json,
            b"{\"data\": 1}".to_vec(),
            400,
            40000,
        ),
        (
            "/channels/c/messages?key=nocolon",
            json,
            b"{\"data\": 1}".to_vec(),
            401,
            40101,
        ),
    ];
    for (path, ct, body, status, code) in cases {
        let resp = post(&server, path, ct, &body).await;
        let info = expect_error(resp, status, code).await;
        eprintln!("{path}: {info}");
    }
    // Nothing of the refused requests was published.
    assert!(history(&server, "c").await.is_empty());
    // A batch with one bad message publishes none of it.
    let resp = post(
        &server,
        "/channels/c/messages",
        json,
        br#"[{"data": 1}, {"nodata": 1}]"#,
    )
    .await;
    expect_error(resp, 400, 40000).await;
    assert!(history(&server, "c").await.is_empty());
    // The message names the offending field.
    let resp = post(
        &server,
        "/channels/c/messages",
        json,
        br#"{"data": 1, "colour": 2}"#,
    )
    .await;
    let body = expect_error(resp, 400, 40000).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("colour"),
        "{body}"
    );
}

#[tokio::test]
async fn bad_stream_and_history_input_gets_its_error_info() {
    let server = Server::start(CONFIG);
    let cases: &[(&str, u16, u64)] = &[
        ("/sse", 400, 40000),
        ("/sse?channels=", 400, 40000),
        ("/sse?channel=", 400, 40000),
        ("/event-stream", 400, 40000),
        ("/sse?channels=a,,b", 400, 40000),
        ("/sse?channels=a&rewind=abc", 400, 40000),
        ("/sse?channels=a&rewind=5x", 400, 40000),
        ("/sse?channels=a&rewind=-1", 400, 40000),
        ("/sse?channels=%5Bmeta%5Dlog", 400, 40000),
        ("/sse?channels=%5B%3Ffoo%3D1%5Dx", 400, 40000),
        ("/sse?channels=%5B%3Frewind%3D1x", 400, 40000),
        ("/sse?channels=%5B%3Frewind%3Dz%5Dx", 400, 40000),
        ("/sse?channels=a&separator=", 400, 40000),
        ("/sse?channels=a&enveloped=maybe", 400, 40000),
        ("/sse?channels=a&heartbeats=1", 400, 40000),
        ("/sse?channels=a&lastEvent=garbage", 400, 40000),
        ("/sse?channels=a,b&lastEvent=abc123-1", 400, 40000),
        ("/sse?channels=a&key=nocolon", 401, 40101),
        ("/channels/a/messages?limit=0", 400, 40000),
        ("/channels/a/messages?limit=1001", 400, 40000),
        ("/channels/a/messages?limit=ten", 400, 40000),
        ("/channels/a/messages?direction=sideways", 400, 40000),
        ("/channels/a/messages?start=5&end=4", 400, 40000),
        ("/no/such/endpoint", 404, 40400),
    ];
    for (path, status, code) in cases {
        let resp = client().get(server.url(path)).send().await.unwrap();
        eprintln!("{path}");
        expect_error(resp, *status, *code).await;
    }
    let long = "n".repeat(300);
    let resp = client()
        .get(server.url(&format!("/sse?channels={long}")))
        .send()
        .await
        .unwrap();
    expect_error(resp, 400, 40000).await;
    let resp = client()
        .delete(server.url("/sse?channels=a"))
        .send()
        .await
        .unwrap();
    expect_error(resp, 405, 40500).await;
}

#[tokio::test]
async fn a_publisher_cannot_give_an_id_the_gateway_gives() {
    let server = Server::start(CONFIG);
    let assigned = publish(&server, "forge", json!({"data": "assigned"})).await;
    let (epoch, n) = assigned[0]
        .split_once(':')
        .expect("a gateway id is {epoch}:{n}");
    let forged = format!("{epoch}:{}", n.parse::<u64>().unwrap() + 1);
    let body = json!({"id": forged, "data": "forged"}).to_string();
    let resp = post(
        &server,
        "/channels/forge/messages",
        Some("application/json"),
        body.as_bytes(),
    )
    .await;
    let refused = expect_error(resp, 400, 40000).await;
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("{epoch}:")),
        "{refused}"
    );
    // The id the forger aimed at goes to the next message without one, and only to it.
    let next = publish(&server, "forge", json!({"data": "next"})).await;
    assert_eq!(next[0], forged);
    let ids: Vec<Value> = history(&server, "forge")
        .await
        .iter()
        .map(|m| m["id"].clone())
        .collect();
    assert_eq!(ids, [json!(forged), json!(assigned[0])]);
    // Other ids with a colon remain the publisher's own (Ably's libraries make such ids).
    let own = publish(&server, "forge", json!({"id": "aGVsbG8:0", "data": "own"})).await;
    assert_eq!(own, ["aGVsbG8:0"]);
}

#[tokio::test]
async fn a_batch_larger_than_history_is_refused() {
    let server = Server::start("[channels]\nhistory_size = 3\n");
    let mut stream = SseStream::open(&server.url("/sse?channels=big")).await;
    let batch: Vec<Value> = (0..4).map(|i| json!({"data": i})).collect();
    let body = json!(batch).to_string();
    let resp = post(
        &server,
        "/channels/big/messages",
        Some("application/json"),
        body.as_bytes(),
    )
    .await;
    let refused = expect_error(resp, 400, 40000).await;
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("history_size = 3"),
        "{refused}"
    );
    assert!(history(&server, "big").await.is_empty());
    // A batch that fits reaches the live subscriber whole, without a gap notice.
    publish(
        &server,
        "big",
        json!([{"data": 0}, {"data": 1}, {"data": 2}]),
    )
    .await;
    let data: Vec<Value> = stream
        .events(3)
        .await
        .iter()
        .map(|e| envelope(e)["data"].clone())
        .collect();
    assert_eq!(data, [json!(0), json!(1), json!(2)]);
}

#[tokio::test]
async fn names_that_are_not_utf8_are_refused_everywhere() {
    let server = Server::start(CONFIG);
    for query in [
        "channels=a%FF",
        "channel=a%FE",
        "channels=ok,b%FF",
        "channels=%5B%3Frewind%3D1%5Da%FF",
        "channels=a,b&separator=%FF",
        "dynamic=true&channels=a%FF",
    ] {
        let resp = client()
            .get(server.url(&format!("/sse?{query}")))
            .send()
            .await
            .unwrap();
        let info = expect_error(resp, 400, 40000).await;
        eprintln!("{query}: {info}");
    }
    let path = "/channels/a%FF/messages";
    let resp = post(&server, path, Some("application/json"), b"{\"data\": 1}").await;
    expect_error(resp, 400, 40000).await;
    let resp = client().get(server.url(path)).send().await.unwrap();
    expect_error(resp, 400, 40000).await;

    // A dynamic connection's paths and subscription body.
    let mut stream = SseStream::open(&server.url("/sse?dynamic=true")).await;
    let connected = stream.next_event().await.unwrap();
    let data: Value = serde_json::from_str(&connected.data).unwrap();
    let id = data["connectionId"].as_str().unwrap();
    let resp = client()
        .delete(server.url(&format!("/connections/{id}/subscriptions/a%FF")))
        .send()
        .await
        .unwrap();
    expect_error(resp, 400, 40000).await;
    // Every path with names in it answers an ErrorInfo, not plain text.
    for path in ["/connections/a%FF", "/apis/a%FF/x", "/admin/apis/a%FF"] {
        let resp = client().get(server.url(path)).send().await.unwrap();
        expect_error(resp, 400, 40000).await;
    }
    let subscriptions = format!("/connections/{id}/subscriptions");
    let json = Some("application/json");
    for body in [
        &b"{\"channel\": \"a\xff\"}"[..],
        br#"{"channel": "a\udcff"}"#,
    ] {
        let resp = post(&server, &subscriptions, json, body).await;
        expect_error(resp, 400, 40000).await;
    }
    // U+FFFD itself, sent as its UTF-8 bytes, is a name like any other.
    let resp = post(
        &server,
        "/channels/a%EF%BF%BD/messages",
        json,
        b"{\"data\": 1}",
    )
    .await;
    assert_eq!(resp.status(), 201);
}
