//! Limits and CORS (docs/LIMITS.md) against the real binary: each limit exceeded
//! once, with its status, code and metric, and the server serving normally afterwards.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use common::{Server, SseStream, client, envelope, expect_error, publish};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

/// Streams notice a client that went away on their next write: keep that prompt.
const QUICK: &str = "[stream]\nkeepalive_ms = 100\n";

/// A client whose connections come from `127.0.0.{last}`.
fn client_from(last: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// One `streamgate_limit_refusals_total` sample, read through `via`.
async fn refusals(via: &reqwest::Client, server: &Server, limit: &str) -> f64 {
    let name = format!("streamgate_limit_refusals_total{{limit=\"{limit}\"}}");
    common::metric_via(via, server, &name).await
}

async fn publish_via(via: &reqwest::Client, server: &Server, channel: &str, data: Value) -> u16 {
    via.post(server.url(&format!("/channels/{channel}/messages")))
        .json(&json!({ "data": data }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Waits for the next message event and returns its data.
async fn next_data(stream: &mut SseStream) -> Value {
    loop {
        let event = stream.next_event().await.expect("stream still open");
        if event.event == "message" {
            return envelope(&event)["data"].clone();
        }
    }
}

#[tokio::test]
async fn over_max_connections_a_connection_gets_a_503_and_the_open_ones_keep_working() {
    let server = Server::start(&format!("{QUICK}[limits]\nmax_connections = 2\n"));
    let mut stream = SseStream::open(&server.url("/sse?channels=c")).await;
    let keeper = client();
    assert_eq!(
        keeper
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // Both connections are taken: a third is answered, not reset.
    let resp = client().get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.headers()["retry-after"], "1");
    let body = expect_error(resp, 503, 50301).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_connections"),
        "{body}"
    );

    // What was accepted before goes on.
    assert_eq!(publish_via(&keeper, &server, "c", json!(1)).await, 201);
    assert_eq!(next_data(&mut stream).await, json!(1));
    assert_eq!(refusals(&keeper, &server, "connections").await, 1.0);

    // A closed connection frees its place.
    drop(stream);
    drop(keeper);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let resp = client().get(server.url("/healthz")).send().await.unwrap();
        if resp.status() == 200 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no place freed up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn over_max_connections_per_ip_only_that_address_is_refused() {
    let server = Server::start(&format!("{QUICK}[limits]\nmax_connections_per_ip = 1\n"));
    let mut stream = SseStream::open(&server.url("/sse?channels=c")).await;

    let resp = client().get(server.url("/healthz")).send().await.unwrap();
    let body = expect_error(resp, 503, 50301).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_connections_per_ip"),
        "{body}"
    );

    // Another address is served, and the stream from the first keeps receiving.
    let other = client_from(2);
    assert_eq!(publish_via(&other, &server, "c", json!("hi")).await, 201);
    assert_eq!(next_data(&mut stream).await, json!("hi"));
    assert_eq!(refusals(&other, &server, "connections_per_ip").await, 1.0);
    assert_eq!(refusals(&other, &server, "connections").await, 0.0);
}

#[tokio::test]
async fn publishing_faster_than_the_key_rate_is_a_429_with_retry_after() {
    let server = Server::start(
        "[limits]\npublish_rate_per_key = 1\npublish_burst = 2\n\
         [[key]]\nname = \"a\"\nsecret = \"s\"\ncapabilities = { \"*\" = [\"*\"] }\n\
         [[key]]\nname = \"b\"\nsecret = \"s\"\ncapabilities = { \"*\" = [\"*\"] }\n",
    );
    let mut stream = SseStream::open(&server.url("/sse?channels=r&key=a:s")).await;
    let send = |key: &'static str, body: Value| {
        client()
            .post(server.url("/channels/r/messages"))
            .basic_auth(key, Some("s"))
            .json(&body)
            .send()
    };
    for n in 0..2 {
        assert_eq!(send("a", json!({ "data": n })).await.unwrap().status(), 201);
    }
    let resp = send("a", json!({ "data": 2 })).await.unwrap();
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    let body = expect_error(resp, 429, 42910).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("publish_rate_per_key"),
        "{body}"
    );

    // Another key has its own allowance; nothing accepted was lost.
    assert_eq!(
        send("b", json!({ "data": "b" })).await.unwrap().status(),
        201
    );
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(next_data(&mut stream).await);
    }
    assert_eq!(got, [json!(0), json!(1), json!("b")]);

    // A batch larger than the burst can never pass: a plain 400 that says so.
    let batch = json!([{ "data": 1 }, { "data": 2 }, { "data": 3 }]);
    let body = expect_error(send("b", batch).await.unwrap(), 400, 40000).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("publish_burst"),
        "{body}"
    );

    let metrics_client = client();
    assert_eq!(
        refusals(&metrics_client, &server, "publish_rate").await,
        2.0
    );
    // The refill: a second later key a publishes again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(send("a", json!({ "data": 3 })).await.unwrap().status(), 201);
}

#[tokio::test]
async fn anonymous_publishers_are_limited_by_address() {
    let server = Server::start("[limits]\npublish_rate_per_key = 1\n");
    let here = client_from(1);
    assert_eq!(publish_via(&here, &server, "x", json!(1)).await, 201);
    assert_eq!(publish_via(&here, &server, "x", json!(2)).await, 429);
    assert_eq!(
        publish_via(&client_from(2), &server, "x", json!(3)).await,
        201
    );
    assert_eq!(
        refusals(&client_from(3), &server, "publish_rate").await,
        1.0
    );
}

#[tokio::test]
async fn a_request_head_over_max_header_bytes_is_a_431() {
    let server = Server::start(&format!("{QUICK}[limits]\nmax_header_bytes = 1024\n"));
    let mut stream = SseStream::open(&server.url("/sse?channels=h")).await;
    let resp = client()
        .get(server.url("/healthz"))
        .header("x-filler", "f".repeat(2000))
        .send()
        .await
        .unwrap();
    let body = expect_error(resp, 431, 43100).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_header_bytes"),
        "{body}"
    );
    publish(&server, "h", json!({ "data": "after" })).await;
    assert_eq!(next_data(&mut stream).await, json!("after"));
    assert_eq!(refusals(&client(), &server, "header_size").await, 1.0);
}

#[tokio::test]
async fn a_body_over_max_body_bytes_is_a_json_413_and_publish_keeps_its_own_limit() {
    let server = Server::start(&format!(
        "{QUICK}[limits]\nmax_body_bytes = 100\n[channels]\nmax_message_bytes = 300\n"
    ));
    let mut stream = SseStream::open(&server.url("/sse?dynamic=true")).await;
    let connected = stream.next_event().await.unwrap();
    assert_eq!(connected.event, "connected");
    let id = serde_json::from_str::<Value>(&connected.data).unwrap()["connectionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let add = |body: String| {
        client()
            .post(server.url(&format!("/connections/{id}/subscriptions")))
            .header("content-type", "application/json")
            .body(body)
    };

    let big = json!({ "channel": "b".repeat(150) }).to_string();
    let body = expect_error(add(big.clone()).send().await.unwrap(), 413, 41300).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_body_bytes"),
        "{body}"
    );
    // Without a Content-Length the body is cut at the limit all the same.
    let chunks = futures_util::stream::iter([Ok::<_, std::io::Error>(big)]);
    let resp = add(String::new())
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    expect_error(resp, 413, 41300).await;

    // A small body is fine, and the connection is intact.
    let resp = add(json!({ "channel": "b" }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    // A publish may be larger than max_body_bytes, up to max_message_bytes.
    let text = "p".repeat(200);
    publish(&server, "b", json!({ "data": text })).await;
    assert_eq!(next_data(&mut stream).await, json!(text));
    let resp = client()
        .post(server.url("/channels/b/messages"))
        .json(&json!({ "data": "p".repeat(400) }))
        .send()
        .await
        .unwrap();
    expect_error(resp, 413, 41300).await;
    assert_eq!(refusals(&client(), &server, "body_size").await, 3.0);
}

/// The status and ErrorInfo of the answer read from `read`, or None when none came
/// `within`.
async fn answer_within(
    read: &mut (impl tokio::io::AsyncRead + Unpin),
    within: Duration,
) -> Option<(u16, Value)> {
    use tokio::io::AsyncReadExt;
    let deadline = tokio::time::Instant::now() + within;
    let mut answer = Vec::new();
    let split = loop {
        if let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&answer[..end]).to_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if answer.len() >= end + 4 + length {
                break end;
            }
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout_at(deadline, read.read(&mut chunk))
            .await
            .ok()?
            .unwrap();
        assert!(
            n > 0,
            "closed without an answer: {:?}",
            String::from_utf8_lossy(&answer)
        );
        answer.extend_from_slice(&chunk[..n]);
    };
    let status = String::from_utf8_lossy(&answer[9..12]).parse().unwrap();
    let body = serde_json::from_slice(&answer[split + 4..]).unwrap();
    Some((status, body))
}

/// The status and ErrorInfo answered on a raw connection that sent `head` and then, while
/// the answer is awaited, `trickle` one byte every 200 ms (so the body never ends in time).
async fn answer_while_trickling(server: &Server, head: &str, trickle: &[u8]) -> (u16, Value) {
    use tokio::io::AsyncWriteExt;
    let addr = server.base.trim_start_matches("http://");
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (mut read, mut write) = stream.into_split();
    write.write_all(head.as_bytes()).await.unwrap();
    let trickle = trickle.to_vec();
    let trickler = tokio::spawn(async move {
        for byte in trickle {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if write.write_all(&[byte]).await.is_err() {
                return;
            }
        }
        // Held open, the body unfinished.
        std::future::pending::<()>().await;
    });
    let answer = answer_within(&mut read, Duration::from_secs(10))
        .await
        .expect("an answer within 10 s");
    trickler.abort();
    answer
}

#[tokio::test]
async fn a_body_announced_over_the_limit_is_refused_before_it_is_sent() {
    let server = Server::start(&format!(
        "{QUICK}[limits]\nmax_body_bytes = 100\n[channels]\nmax_message_bytes = 300\n"
    ));
    for (path, length, setting) in [
        ("/channels/a/messages", 301, "[channels] max_message_bytes"),
        ("/admin/apis", 101, "[limits] max_body_bytes"),
    ] {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n\
             content-length: {length}\r\n\r\n"
        );
        let (status, body) = answer_while_trickling(&server, &head, b"").await;
        assert_eq!(status, 413, "{path}: {body}");
        assert_eq!(body["error"]["code"], 41300, "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(setting), "{message}");
    }
    assert_eq!(refusals(&client(), &server, "body_size").await, 2.0);
}

#[tokio::test]
async fn a_trickled_body_is_cut_at_the_read_timeout() {
    let server = Server::start(&format!("{QUICK}[limits]\nread_timeout_ms = 1000\n"));
    let mut stream = SseStream::open(&server.url("/sse?channels=t")).await;
    let head = |framing: &str| {
        format!(
            "POST /channels/t/messages HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n\
             {framing}\r\n\r\n"
        )
    };
    // A byte every 200 ms: the body never stops arriving, and never ends in time.
    let body = json!({ "data": "d".repeat(100) }).to_string();
    let length = head(&format!("content-length: {}", body.len()));
    let chunked = head("transfer-encoding: chunked");
    let chunks = body
        .bytes()
        .flat_map(|byte| [b'1', b'\r', b'\n', byte, b'\r', b'\n'])
        .collect::<Vec<u8>>();
    for (head, trickle) in [(length, body.as_bytes()), (chunked, &chunks[..])] {
        let (status, answer) = answer_while_trickling(&server, &head, trickle).await;
        assert_eq!(status, 408, "{answer}");
        assert_eq!(answer["error"]["code"], 40800, "{answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains("read_timeout_ms"), "{message}");
    }
    assert_eq!(refusals(&client(), &server, "body_timeout").await, 2.0);
    // Nothing of either was published; a body sent at once is.
    publish(&server, "t", json!({ "data": "whole" })).await;
    assert_eq!(next_data(&mut stream).await, json!("whole"));
}

#[tokio::test]
async fn bodies_held_unfinished_share_a_bounded_buffer() {
    use tokio::io::AsyncWriteExt;
    let server = Server::start(&format!(
        "{QUICK}[limits]\nmax_body_bytes = 1000\nmax_body_buffer_bytes = 100000\n[channels]\nmax_message_bytes = 65536\n"
    ));
    let addr = server.base.trim_start_matches("http://").to_owned();
    let body = json!({ "data": "b".repeat(59_000) }).to_string();
    let request = format!(
        "POST /channels/held/messages HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{}",
        body.len(),
        &body[..body.len() - 1]
    );
    // Two publishers send all of their body but its last byte, and hold it: the two do not
    // fit in the buffer together.
    let held = (0..2).map(|_| {
        let (addr, request) = (addr.clone(), request.clone());
        tokio::spawn(async move {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            stream.write_all(request.as_bytes()).await.unwrap();
            let answer = answer_within(&mut stream, Duration::from_secs(3)).await;
            (answer, stream)
        })
    });
    let mut answers = Vec::new();
    let mut streams = Vec::new();
    for task in held.collect::<Vec<_>>() {
        let (answer, stream) = task.await.unwrap();
        answers.extend(answer);
        streams.push(stream);
    }
    assert_eq!(answers.len(), 1, "one held body is refused: {answers:?}");
    let (status, info) = &answers[0];
    assert_eq!(*status, 503, "{info}");
    assert_eq!(info["error"]["code"], 50300, "{info}");
    let message = info["error"]["message"].as_str().unwrap();
    assert!(message.contains("max_body_buffer_bytes"), "{message}");
    assert_eq!(refusals(&client(), &server, "body_buffer").await, 1.0);
    // What is left takes a small publish; once the held body's client is gone, a large
    // one fits again.
    publish(&server, "held", json!({ "data": "small" })).await;
    drop(streams);
    let mut status = 0;
    for _ in 0..50 {
        status = client()
            .post(server.url("/channels/held/messages"))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        if status == 201 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 201);
}

#[tokio::test]
async fn too_many_streams_on_a_connection_is_refused_and_counted() {
    let server = Server::start(&format!(
        "{QUICK}[limits]\nmax_streams_per_connection = 2\n"
    ));
    let resp = client()
        .get(server.url("/sse?channels=a,b,c"))
        .send()
        .await
        .unwrap();
    expect_error(resp, 400, 40000).await;

    let mut stream = SseStream::open(&server.url("/sse?dynamic=true&channels=a,b")).await;
    let connected = stream.next_event().await.unwrap();
    let id = serde_json::from_str::<Value>(&connected.data).unwrap()["connectionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let resp = client()
        .post(server.url(&format!("/connections/{id}/subscriptions")))
        .json(&json!({ "channel": "c" }))
        .send()
        .await
        .unwrap();
    let body = expect_error(resp, 400, 40000).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_streams_per_connection"),
        "{body}"
    );
    publish(&server, "b", json!({ "data": "still" })).await;
    assert_eq!(next_data(&mut stream).await, json!("still"));
    assert_eq!(
        refusals(&client(), &server, "streams_per_connection").await,
        2.0
    );
}

const APP: &str = "https://app.example";

async fn preflight(server: &Server, origin: &str) -> reqwest::Response {
    client()
        .request(reqwest::Method::OPTIONS, server.url("/channels/x/messages"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
        .await
        .unwrap()
}

fn cors_headers(headers: &HeaderMap) -> Vec<String> {
    headers
        .keys()
        .map(|k| k.as_str().to_owned())
        .filter(|k| k.starts_with("access-control-"))
        .collect()
}

fn list(headers: &HeaderMap, name: &str) -> String {
    headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap().to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(",")
}

#[tokio::test]
async fn cors_answers_allowed_origins_only() {
    let server = Server::start(&format!(
        "{QUICK}[http]\ncors_origins = [\"{APP}\", \"https://other.example\"]\n"
    ));

    let resp = preflight(&server, APP).await;
    assert!(resp.status().is_success(), "{}", resp.status());
    let h = resp.headers();
    assert_eq!(h["access-control-allow-origin"], APP);
    let methods = list(h, "access-control-allow-methods");
    // PUT: the admin API changes entries with it.
    for method in ["get", "post", "put", "delete", "options"] {
        assert!(methods.contains(method), "{methods}");
    }
    let allowed = list(h, "access-control-allow-headers");
    for name in [
        "authorization",
        "content-type",
        "last-event-id",
        "x-sd-token",
    ] {
        assert!(allowed.contains(name), "{allowed}");
    }
    assert!(h.contains_key("access-control-max-age"));
    assert!(list(h, "vary").contains("origin"));
    // A listed origin may send credentials (a Mercure subscriber's cookie).
    assert_eq!(h["access-control-allow-credentials"], "true");

    let resp = preflight(&server, "https://evil.example").await;
    assert_eq!(cors_headers(resp.headers()), Vec::<String>::new());

    // A streaming response carries the header too, and streams.
    let mut headers = HeaderMap::new();
    headers.insert("origin", APP.parse().unwrap());
    let mut stream = SseStream::open_with(&server.url("/sse?channels=x"), headers).await;
    let h = stream.response.headers();
    assert_eq!(h["access-control-allow-origin"], APP);
    assert!(list(h, "vary").contains("origin"));
    assert!(list(h, "access-control-expose-headers").contains("retry-after"));
    publish(&server, "x", json!({ "data": 1 })).await;
    assert_eq!(next_data(&mut stream).await, json!(1));

    let mut headers = HeaderMap::new();
    headers.insert("origin", "https://evil.example".parse().unwrap());
    let stream = SseStream::open_with(&server.url("/sse?channels=x"), headers).await;
    assert_eq!(
        cors_headers(stream.response.headers()),
        Vec::<String>::new()
    );

    // Errors are readable by an allowed page.
    let resp = client()
        .get(server.url("/nope"))
        .header("origin", APP)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["access-control-allow-origin"], APP);
    expect_error(resp, 404, 40400).await;
}

#[tokio::test]
async fn cors_any_origin_and_none_configured() {
    let any = Server::start("[http]\ncors_origins = [\"*\"]\n");
    let resp = preflight(&any, "https://whoever.example").await;
    assert_eq!(resp.headers()["access-control-allow-origin"], "*");
    // Never with credentials: any page could then act as its visitor.
    assert!(
        !resp
            .headers()
            .contains_key("access-control-allow-credentials")
    );

    let none = Server::start("");
    let resp = client()
        .get(none.url("/healthz"))
        .header("origin", APP)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(cors_headers(resp.headers()), Vec::<String>::new());
}

/// `streamgate check-config` on `text`: its stderr, asserting it failed.
fn config_error(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("streamgate.toml");
    std::fs::write(&path, text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_streamgate"))
        .arg("check-config")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{text:?} was accepted");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn bad_limits_and_origins_are_named() {
    let err = config_error("[limits]\nmax_conections = 5\n");
    assert!(err.contains("max_conections"), "{err}");
    let err = config_error("[limits]\nmax_header_bytes = 10\n");
    assert!(
        err.contains("max_header_bytes") && err.contains("1024"),
        "{err}"
    );
    let err = config_error("[limits]\nmax_connections = 0\n");
    assert!(
        err.contains("max_connections") && err.contains("at least 1"),
        "{err}"
    );
    let err = config_error("[limits]\nmax_body_buffer_bytes = 1000\n");
    assert!(
        err.contains("max_body_buffer_bytes") && err.contains("max_body_bytes"),
        "{err}"
    );
    let err = config_error("[limits]\npublish_burst = 5\n");
    assert!(err.contains("publish_rate_per_key"), "{err}");
    let err = config_error("[http]\ncors_origins = [\"https://App.example/\"]\n");
    assert!(
        err.contains("cors_origins") && err.contains("\"https://app.example\""),
        "{err}"
    );
    let err = config_error("[http]\ncors_origins = [\"app.example\"]\n");
    assert!(err.contains("scheme://host"), "{err}");
}

#[tokio::test]
async fn cors_origins_may_come_from_the_command_line() {
    let server = Server::start_with("", &["--cors", APP], &[]);
    let resp = preflight(&server, APP).await;
    assert_eq!(resp.headers()["access-control-allow-origin"], APP);
    let methods = list(resp.headers(), "access-control-allow-methods");
    assert!(methods.contains("put"), "{methods}");
    // Checked as the config's are: a path is not part of an origin.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_streamgate"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--cors",
            "https://app.example/",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--cors") && stderr.contains("\"https://app.example\""),
        "{stderr}"
    );
}
