//! Secrets never leak: key secrets, presented credentials, tokens and the headers and query
//! injected upstream appear in no response (bodies or headers, the admin API's included)
//! and in no log line, even at the most verbose log level.

mod common;

use common::sse_upstream::SseUpstream;
use common::upstream::Upstream;
use common::{Server, SseStream, client, eventually, get_json};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

const PLANTED: [&str; 6] = [
    "planted-key-secret-7f3a",
    "planted-api-header-91bc",
    "planted-api-query-55e1",
    "planted-relay-header-c2d4",
    "planted-wrong-secret-0d9e",
    "planted-token-claim-3b8f",
];

#[tokio::test]
async fn planted_secrets_appear_in_no_response_and_no_log() {
    let api = Upstream::start(json!({"n": 1})).await;
    let sse = SseUpstream::start().await;
    // Every request is in the access log too.
    let server = Server::start_logged(&format!(
        r#"
[log]
access = true

[[key]]
name = "app"
secret = "{key}"
capabilities = {{ "*" = ["*"] }}

[[api]]
name = "prices"
base_url = "{api}"
headers = {{ authorization = "Bearer {api_header}" }}
query = {{ apikey = "{api_query}" }}

[[relay]]
name = "market"
listen_path = "/market"
upstream = "{relay}"
headers = {{ authorization = "Bearer {relay_header}" }}

[[relay]]
name = "direct"
listen_path = "/direct"
upstream = "{relay}"
mode = "passthrough"
headers = {{ authorization = "Bearer {relay_header}" }}
"#,
        key = PLANTED[0],
        api = api.url("/"),
        api_header = PLANTED[1],
        api_query = PLANTED[2],
        relay = sse.url("/"),
        relay_header = PLANTED[3],
    ));
    let key = format!("key=app:{}", PLANTED[0]);
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("app".into());
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let token = jsonwebtoken::encode(
        &header,
        &json!({"exp": exp, "capability": {"*": ["*"]}, "note": PLANTED[5]}),
        &EncodingKey::from_secret(PLANTED[0].as_bytes()),
    )
    .unwrap();
    let mut seen = Vec::new();
    let http = client();
    // Streams that work: a polled API, a shared relay, a channel with a token.
    let mut poll = SseStream::open(&server.url(&format!("/apis/prices/doc?{key}"))).await;
    let first = poll.next_event().await.expect("the document");
    seen.push(format!("{first:?}"));
    let mut relayed = SseStream::open(&server.url(&format!("/market/feed?{key}"))).await;
    eventually("the relay connected", || sse.open_streams() == 1).await;
    sse.send("tick", "1");
    seen.push(format!("{:?}", relayed.next_event().await));
    let mut channel =
        SseStream::open(&server.url(&format!("/sse?channels=c1&accessToken={token}"))).await;
    let publish = http
        .post(server.url(&format!("/channels/c1/messages?{key}")))
        .json(&json!({"data": "hello"}))
        .send()
        .await
        .unwrap();
    seen.push(format!("{:?}", publish.headers()));
    seen.push(publish.text().await.unwrap());
    seen.push(format!("{:?}", channel.next_event().await));
    // Requests that fail, and every document the gateway serves.
    let wrong = format!("key=app:{}", PLANTED[4]);
    for path in [
        format!("/sse?channels=c1&{wrong}"),
        format!("/apis/prices/doc?{wrong}"),
        format!("/market/feed?{wrong}"),
        format!("/direct/feed?{wrong}"),
        format!("/channels/c1/messages?{wrong}"),
        format!("/sse?channels=c1&accessToken={token}x"),
        format!("/channels/c1/messages?{key}"),
        format!("/admin/apis?{key}"),
        format!("/admin/apis/prices?{key}"),
        format!("/admin/relays?{key}"),
        format!("/admin/keys?{key}"),
        format!("/admin/keys/app?{key}"),
        format!("/admin/stats?{key}"),
        format!("/admin/apis?{wrong}"),
        "/admin/openapi.json".to_owned(),
        "/asyncapi.json".to_owned(),
        "/asyncapi.yaml".to_owned(),
        "/metrics".to_owned(),
        "/nowhere".to_owned(),
    ] {
        let resp = http.get(server.url(&path)).send().await.unwrap();
        seen.push(format!("{:?}", resp.headers()));
        seen.push(resp.text().await.unwrap());
    }
    // An admin round trip: read an entry with its secrets redacted, write it back.
    let entry: serde_json::Value = get_json(&server, &format!("/admin/apis/prices?{key}")).await;
    let put = http
        .put(server.url(&format!("/admin/apis/prices?{key}")))
        .json(&entry)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    seen.push(put.text().await.unwrap());
    let direct = http
        .get(server.url(&format!("/direct/feed?{key}")))
        .send()
        .await
        .unwrap();
    seen.push(format!("{:?}", direct.headers()));
    drop((poll, relayed, channel, direct));
    // The upstreams did get what was injected: the planted values are really in use.
    let (headers, query) = api.last_request("/doc");
    assert!(
        headers["authorization"]
            .to_str()
            .unwrap()
            .contains(PLANTED[1])
    );
    assert!(query.unwrap().contains(PLANTED[2]));
    assert!(sse.requests().iter().all(|r| {
        r.headers["authorization"]
            .to_str()
            .unwrap()
            .contains(PLANTED[3])
    }));
    let responses = seen.join("\n");
    let logs = server.logs();
    assert!(logs.lines().count() > 10, "the server logged: {logs}");
    for secret in PLANTED {
        assert!(
            !responses.contains(secret),
            "{secret} in a response:\n{responses}"
        );
        assert!(!logs.contains(secret), "{secret} in the logs:\n{logs}");
    }
    assert!(
        !responses.contains(&token) && !logs.contains(&token),
        "the token leaked"
    );
}
