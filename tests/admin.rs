//! The admin API: CRUD of APIs, relays and keys that takes effect at once and
//! survives a restart, live stats, its OpenAPI document, and who may use it.

mod common;

use common::sse_upstream::SseUpstream;
use common::upstream::Upstream;
use common::{Server, SseStream, client, eventually, expect_error, get_json};
use reqwest::StatusCode;
use serde_json::{Value, json};

const ADMIN: &str = "key=root:root-secret";

const KEYS: &str = r#"
[[key]]
name = "root"
secret = "root-secret"
capabilities = { "*" = ["*"] }

[[key]]
name = "reader"
secret = "reader-secret"
capabilities = { "*" = ["subscribe", "poll"] }
"#;

/// The keys, and a target policy that lets the admin API point at the tests' loopback
/// upstreams.
fn config() -> String {
    format!("{KEYS}\n[poll]\nallowed_targets = [\"http://127.0.0.1:*/*\"]\n")
}

async fn admin(
    server: &Server,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = client().request(method, server.url(&format!("{path}?{ADMIN}")));
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn apis_change_at_once_and_survive_a_restart() {
    let upstream = Upstream::start(json!({"price": 1})).await;
    let server = Server::start(&config());
    let api = json!({
        "name": "prices",
        "base_url": upstream.url("/v1"),
        "headers": {"authorization": "Bearer upstream-token-1"},
        "query": {"apikey": "q-secret-1"},
    });
    let resp = admin(
        &server,
        reqwest::Method::POST,
        "/admin/apis",
        Some(api.clone()),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let shown: Value = resp.json().await.unwrap();
    assert_eq!(shown["headers"]["authorization"], "<redacted>");
    assert_eq!(shown["query"]["apikey"], "<redacted>");
    // In effect at once: the API streams, with the injected header and query.
    let url = server.url("/apis/prices/doc?key=reader:reader-secret");
    let mut stream = SseStream::open(&url).await;
    assert_eq!(
        stream.next_event().await.expect("the document").event,
        "data"
    );
    let (headers, query) = upstream.last_request("/v1/doc");
    assert_eq!(headers["authorization"], "Bearer upstream-token-1");
    assert_eq!(query.as_deref(), Some("apikey=q-secret-1"));
    drop(stream);
    // The same name again is a conflict; a bad entry is explained.
    let again = admin(&server, reqwest::Method::POST, "/admin/apis", Some(api)).await;
    expect_error(again, 409, 40930).await;
    let bad = json!({"name": "broken", "base_url": "ftp://x/"});
    let resp = admin(&server, reqwest::Method::POST, "/admin/apis", Some(bad)).await;
    let body = expect_error(resp, 400, 40000).await;
    assert!(body.to_string().contains("http or https"), "{body}");
    // Read, edit with the redacted secrets sent back, write: the secrets are kept.
    let mut entry: Value = admin(&server, reqwest::Method::GET, "/admin/apis/prices", None)
        .await
        .json()
        .await
        .unwrap();
    entry["interval_ms"] = json!(1500);
    let resp = admin(
        &server,
        reqwest::Method::PUT,
        "/admin/apis/prices",
        Some(entry),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    // The store beside the config file holds the real values.
    let store = std::fs::read_to_string(server.dir().join("streamgate.admin.toml")).unwrap();
    assert!(
        store.contains("upstream-token-1") && store.contains("interval_ms = 1500"),
        "{store}"
    );

    let server = server.restart();
    let list: Value = admin(&server, reqwest::Method::GET, "/admin/apis", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["name"], "prices");
    assert_eq!(list[0]["interval_ms"], 1500);
    let url = server.url("/apis/prices/doc?key=reader:reader-secret");
    let mut stream = SseStream::open(&url).await;
    assert_eq!(
        stream.next_event().await.expect("the document").event,
        "data"
    );
    assert_eq!(
        upstream.last_request("/v1/doc").0["authorization"],
        "Bearer upstream-token-1",
        "the stored secret survived the restart"
    );
    drop(stream);
    let resp = admin(&server, reqwest::Method::DELETE, "/admin/apis/prices", None).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let gone = client().get(&url).send().await.unwrap();
    expect_error(gone, 404, 40400).await;
    let resp = admin(&server, reqwest::Method::DELETE, "/admin/apis/prices", None).await;
    expect_error(resp, 404, 40400).await;
}

#[tokio::test]
async fn keys_and_relays_change_at_once() {
    let sse = SseUpstream::start().await;
    let server = Server::start(&config());
    let sub = |key: &str| server.url(&format!("/sse?channels=room&key={key}"));
    expect_error(
        client().get(sub("new:new-secret")).send().await.unwrap(),
        401,
        40101,
    )
    .await;
    let key =
        json!({"name": "new", "secret": "new-secret", "capabilities": {"room": ["subscribe"]}});
    let resp = admin(&server, reqwest::Method::PUT, "/admin/keys/new", Some(key)).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let shown: Value = resp.json().await.unwrap();
    assert_eq!(shown["secret"], "<redacted>");
    assert_eq!(
        client()
            .get(sub("new:new-secret"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // A new key without its secret cannot be made from the placeholder.
    let ghost = json!({"name": "ghost", "secret": "<redacted>", "capabilities": {}});
    let resp = admin(&server, reqwest::Method::POST, "/admin/keys", Some(ghost)).await;
    expect_error(resp, 400, 40000).await;
    let resp = admin(&server, reqwest::Method::DELETE, "/admin/keys/new", None).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    expect_error(
        client().get(sub("new:new-secret")).send().await.unwrap(),
        401,
        40101,
    )
    .await;

    let relay = json!({"name": "live", "listen_path": "/live", "upstream": sse.url("/")});
    let resp = admin(&server, reqwest::Method::POST, "/admin/relays", Some(relay)).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let mut stream = SseStream::open(&server.url("/live/feed?key=reader:reader-secret")).await;
    eventually("the relay connected", || sse.open_streams() == 1).await;
    sse.send("tick", "1");
    assert_eq!(stream.next_event().await.expect("a tick").data, "1");
    // A stored secret does not follow an entry to another upstream.
    let secret = json!({"name": "live", "listen_path": "/live", "upstream": sse.url("/"),
        "headers": {"authorization": "Bearer relay-secret"}});
    let resp = admin(
        &server,
        reqwest::Method::PUT,
        "/admin/relays/live",
        Some(secret),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    // New subscribers get a connection made with the new headers; the old one runs on.
    let mut second = SseStream::open(&server.url("/live/feed?key=reader:reader-secret")).await;
    eventually("a second upstream connection", || sse.open_streams() == 2).await;
    let last = sse.requests().last().unwrap().headers.clone();
    assert_eq!(last["authorization"], "Bearer relay-secret");
    sse.send("tick", "2");
    assert_eq!(second.next_event().await.expect("a tick").data, "2");
    let moved = json!({"name": "live", "listen_path": "/live", "upstream": "http://127.0.0.2:9/",
        "headers": {"authorization": "<redacted>"}});
    let resp = admin(
        &server,
        reqwest::Method::PUT,
        "/admin/relays/live",
        Some(moved),
    )
    .await;
    expect_error(resp, 400, 40000).await;
    // A relay that would hide the gateway's own endpoints is refused.
    let bad = json!({"name": "bad", "listen_path": "/channels", "upstream": sse.url("/")});
    let resp = admin(&server, reqwest::Method::POST, "/admin/relays", Some(bad)).await;
    expect_error(resp, 400, 40000).await;

    let stats: Value = admin(&server, reqwest::Method::GET, "/admin/stats", None)
        .await
        .json()
        .await
        .unwrap();
    let relays = stats["topics"]["relays"].as_array().unwrap();
    // The connection made before the headers changed, and the one made after.
    assert_eq!(relays.len(), 2, "{stats}");
    let mut events: Vec<u64> = relays
        .iter()
        .map(|r| r["events"].as_u64().unwrap())
        .collect();
    events.sort();
    assert_eq!(events, [1, 2], "{stats}");
    for relay in relays {
        assert_eq!(relay["stream"], "live/feed");
        assert_eq!(relay["connected"], true);
        assert_eq!(relay["subscribers"], 1);
    }
    assert!(
        stats["connections"]["open"].as_u64().unwrap() >= 1,
        "{stats}"
    );
    assert!(
        stats["channels"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"].as_str().unwrap().starts_with("[relay]live")),
        "{stats}"
    );
}

#[tokio::test]
async fn only_the_admin_capability_may_use_it_and_its_document_is_public() {
    let server = Server::start(&config());
    let http = client();
    let no_key = http.get(server.url("/admin/apis")).send().await.unwrap();
    expect_error(no_key, 401, 40101).await;
    let reader = http
        .get(server.url("/admin/keys?key=reader:reader-secret"))
        .send()
        .await
        .unwrap();
    expect_error(reader, 401, 40160).await;
    let keys: Value = admin(&server, reqwest::Method::GET, "/admin/keys", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(keys.as_array().unwrap().len(), 2);
    assert!(!keys.to_string().contains("root-secret"), "{keys}");
    let unknown = admin(&server, reqwest::Method::GET, "/admin/widgets", None).await;
    expect_error(unknown, 404, 40400).await;

    let doc: Value = get_json(&server, "/admin/openapi.json").await;
    assert_eq!(doc["openapi"], "3.1.0");
    // Every documented operation exists: answered (with some status) but never 405.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item
            .as_object()
            .unwrap()
            .keys()
            .filter(|m| *m != "parameters")
        {
            let concrete = path.replace("{kind}", "apis").replace("{name}", "x");
            let method: reqwest::Method = method.to_uppercase().parse().unwrap();
            let resp = admin(&server, method.clone(), &concrete, Some(json!({}))).await;
            assert_ne!(
                resp.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {concrete}"
            );
            let body = resp.text().await.unwrap();
            assert!(
                !body.contains("no such endpoint"),
                "{method} {concrete}: {body}"
            );
        }
    }
}

#[tokio::test]
async fn a_resumed_connection_is_checked_against_the_keys_as_they_are_now() {
    let server = Server::start(&config());
    let key =
        |caps: Value| json!({"name": "mover", "secret": "mover-secret", "capabilities": caps});
    let resp = admin(
        &server,
        reqwest::Method::PUT,
        "/admin/keys/mover",
        Some(key(json!({"a": ["subscribe"], "b": ["subscribe"]}))),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let url = server.url("/sse?dynamic=true&channels=a,b&key=mover:mover-secret");
    let mut stream = SseStream::open(&url).await;
    assert_eq!(stream.next_event().await.unwrap().event, "connected");
    let resp = client()
        .post(server.url(&format!("/channels/b/messages?{ADMIN}")))
        .json(&json!({"data": "first"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let seen = stream.next_event().await.unwrap();
    drop(stream);
    let resume = || {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("last-event-id", seen.id.parse().unwrap());
        client()
            .get(server.url("/sse?dynamic=true&key=mover:mover-secret"))
            .headers(headers)
            .send()
    };
    // The same keys: the connection resumes.
    let resumed = resume().await.unwrap();
    assert_eq!(resumed.status(), StatusCode::OK);
    drop(resumed);
    // The key loses channel b: the connection that carried it does not come back with it.
    let resp = admin(
        &server,
        reqwest::Method::PUT,
        "/admin/keys/mover",
        Some(key(json!({"a": ["subscribe"]}))),
    )
    .await;
    assert!(resp.status().is_success(), "{:?}", resp.status());
    let body = expect_error(resume().await.unwrap(), 401, 40160).await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("\"b\""), "{message}");
}

#[tokio::test]
async fn a_resumed_poll_is_checked_as_it_was_asked_for() {
    let upstream = Upstream::start(json!({"v": 0})).await;
    let server = Server::start(&config());
    // The capability names the query in the client's order; the topic keeps it sorted.
    let pattern = format!("{}?z=1*", upstream.url("/doc"));
    let key = json!({"name": "poller", "secret": "poller-secret",
        "capabilities": {"a": ["subscribe"], pattern: ["poll"]}});
    let resp = admin(
        &server,
        reqwest::Method::PUT,
        "/admin/keys/poller",
        Some(key),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let credential = "key=poller:poller-secret";
    let mut stream =
        SseStream::open(&server.url(&format!("/sse?dynamic=true&channels=a&{credential}"))).await;
    let connected = stream.next_event().await.unwrap();
    let id: Value = serde_json::from_str(&connected.data).unwrap();
    let id = id["connectionId"].as_str().unwrap().to_owned();
    let resp = client()
        .post(server.url(&format!("/connections/{id}/subscriptions?{credential}")))
        .json(&json!({"poll": format!("{}?z=1&a=2", upstream.url("/doc"))}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let data = stream.next_event().await.unwrap();
    assert_eq!(data.event, "data");
    drop(stream);
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("last-event-id", data.id.parse().unwrap());
    let resumed = client()
        .get(server.url(&format!("/sse?dynamic=true&{credential}")))
        .headers(headers)
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_relay_upstream_query_is_redacted_and_kept_when_sent_back() {
    let sse = SseUpstream::start().await;
    let server = Server::start(&config());
    let upstream = format!("{}?token=q-secret&x=1", sse.url("/up"));
    let relay = json!({"name": "q", "listen_path": "/q", "upstream": upstream});
    let resp = admin(&server, reqwest::Method::POST, "/admin/relays", Some(relay)).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let shown: Value = resp.json().await.unwrap();
    let listed = admin(&server, reqwest::Method::GET, "/admin/relays", None)
        .await
        .text()
        .await
        .unwrap();
    for text in [shown.to_string(), listed] {
        assert!(!text.contains("q-secret"), "{text}");
        assert!(text.contains("token=%3Credacted%3E"), "{text}");
    }
    // Read, edit something else, write back: the stored secret stays.
    let mut edited = shown.clone();
    edited["idle_timeout_ms"] = json!(60000);
    let resp = admin(
        &server,
        reqwest::Method::PUT,
        "/admin/relays/q",
        Some(edited),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let _stream = SseStream::open(&server.url("/q/feed?key=reader:reader-secret")).await;
    eventually("the relay connected", || sse.open_streams() == 1).await;
    let seen = sse.requests().last().unwrap().query.clone().unwrap();
    assert!(seen.contains("token=q-secret"), "{seen}");
    // Pointed elsewhere, the placeholder stands for nothing.
    let mut moved = shown;
    moved["upstream"] = json!(
        moved["upstream"]
            .as_str()
            .unwrap()
            .replace("127.0.0.1", "127.0.0.2")
    );
    let resp = admin(
        &server,
        reqwest::Method::PUT,
        "/admin/relays/q",
        Some(moved),
    )
    .await;
    expect_error(resp, 400, 40000).await;
}

#[tokio::test]
async fn the_admin_api_is_off_until_a_credential_may_use_it() {
    let upstream = Upstream::start(json!({"inside": true})).await;
    let keyless = Server::start_logged("");
    let api = json!({"name": "inside", "base_url": upstream.url("/")});
    let resp = client()
        .post(keyless.url("/admin/apis"))
        .json(&api)
        .send()
        .await
        .unwrap();
    let body = expect_error(resp, 403, 40300).await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("[[key]]"), "{message}");
    let resp = client()
        .get(keyless.url("/apis/inside/doc"))
        .send()
        .await
        .unwrap();
    expect_error(resp, 404, 40400).await;
    assert_eq!(upstream.requests(), 0);
    eventually("a start-up line says there are no keys", || {
        keyless.logs().contains("every request is allowed")
    })
    .await;
    // Keys, but none with the admin capability: still off.
    let readers = Server::start(&KEYS.replace(r#""*" = ["*"]"#, r#""*" = ["subscribe"]"#));
    let resp = client()
        .get(readers.url(&format!("/admin/keys?{ADMIN}")))
        .send()
        .await
        .unwrap();
    expect_error(resp, 403, 40300).await;
    // Nor can a change turn it off by removing the last key that may use it.
    let server = Server::start(&config());
    let resp = admin(&server, reqwest::Method::DELETE, "/admin/keys/root", None).await;
    let body = expect_error(resp, 400, 40000).await;
    assert!(body.to_string().contains("admin"), "{body}");
}

#[tokio::test]
async fn what_it_adds_is_held_to_the_config_files_target_policy() {
    let upstream = Upstream::start(json!({"inside": true})).await;
    let port = upstream.addr.port();
    let server = Server::start(&format!(
        "{KEYS}\n[poll]\nallowed_targets = [\"http://*:{port}/*\"]\n\
         [[api]]\nname = \"own\"\nbase_url = \"{}\"\n",
        upstream.url("/v1")
    ));
    // A private address no pattern names, as an API or as a relay.
    let api = json!({"name": "inside", "base_url": format!("http://127.0.0.2:{port}/")});
    let resp = admin(&server, reqwest::Method::POST, "/admin/apis", Some(api)).await;
    let body = expect_error(resp, 400, 40000).await;
    assert!(body.to_string().contains("allowed_targets"), "{body}");
    let relay = json!({"name": "meta", "listen_path": "/meta",
        "upstream": format!("http://169.254.169.254:{port}/latest")});
    let resp = admin(&server, reqwest::Method::POST, "/admin/relays", Some(relay)).await;
    expect_error(resp, 400, 40000).await;
    // A name the pattern allows is taken, but its private addresses are refused when
    // resolved, as for an ad-hoc target: adding it does not make the host trusted.
    let local = json!({"name": "local", "base_url": format!("http://localhost:{port}/")});
    let resp = admin(&server, reqwest::Method::POST, "/admin/apis", Some(local)).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let mut stream = SseStream::open(&server.url(&format!("/apis/local/doc?{ADMIN}"))).await;
    let event = stream.next_event().await.expect("an event");
    assert_eq!(event.event, "error", "{event:?}");
    let error: Value = serde_json::from_str(&event.data).unwrap();
    assert_eq!(error["status"], 2005, "{error}");
    assert_eq!(upstream.requests(), 0, "the private address was reached");
    // Where the config file's own API points is allowed.
    let copy = json!({"name": "copy", "base_url": upstream.url("/v1")});
    let resp = admin(&server, reqwest::Method::POST, "/admin/apis", Some(copy)).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let mut stream = SseStream::open(&server.url(&format!("/apis/copy/doc?{ADMIN}"))).await;
    assert_eq!(stream.next_event().await.expect("an event").event, "data");
}
