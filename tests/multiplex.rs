//! Many streams over one connection: server-kept resume ids, dynamic add and remove, and
//! pub/sub channels mixed with polled delta streams.

mod common;

use std::time::Duration;

use common::upstream::Upstream;
use common::{Server, SseStream, add, client, dynamic, envelope, expect_error, get_json, publish};
use serde_json::{Value, json};
use streamgate::wire::sse_parser::SseEvent;

/// Channel name and payload of each message event.
fn messages(events: &[SseEvent]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| {
            let m = envelope(e);
            (
                m["channel"].as_str().unwrap().into(),
                m["data"].as_str().unwrap().into(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_streams_resume_exactly_after_a_disconnect() {
    const STREAMS: usize = 2000;
    let server = Server::start(
        "[limits]\nmax_streams_per_connection = 2000\n[stream]\nkeepalive_ms = 60000\n\
         [channels]\nhistory_size = 10\n",
    );
    let names: Vec<String> = (0..STREAMS).map(|i| format!("s{i}")).collect();
    let url = server.url(&format!("/sse?channels={}", names.join(",")));
    let mut stream = SseStream::open(&url).await;
    for name in &names {
        publish(&server, name, json!({"data": format!("{name}-0")})).await;
    }
    let first = stream.events(STREAMS).await;
    let got = messages(&first);
    let expected: Vec<(String, String)> = names
        .iter()
        .map(|n| (n.clone(), format!("{n}-0")))
        .collect();
    assert_eq!(got, expected, "every stream delivered, in publish order");
    // The resume id stays short whatever the number of streams.
    assert!(first.iter().all(|e| e.id.len() < 40), "{}", first[0].id);

    // Disconnect halfway through a second round, then resume from the last id seen.
    for name in &names {
        publish(&server, name, json!({"data": format!("{name}-1")})).await;
    }
    let seen = stream.events(STREAMS / 2).await;
    let last = seen.last().unwrap().id.clone();
    drop(stream);
    for name in &names {
        publish(&server, name, json!({"data": format!("{name}-2")})).await;
    }
    let headers = common::last_event_id(&last);
    let mut resumed = SseStream::open_with(&url, headers).await;
    let rest = messages(&resumed.events(STREAMS / 2 + STREAMS).await);
    let mut expected: Vec<(String, String)> = names[STREAMS / 2..]
        .iter()
        .map(|n| (n.clone(), format!("{n}-1")))
        .collect();
    expected.extend(names.iter().map(|n| (n.clone(), format!("{n}-2"))));
    assert_eq!(rest, expected, "nothing lost, nothing repeated");
    resumed.expect_quiet(Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_are_added_and_removed_while_events_flow() {
    let server = Server::start("[stream]\nkeepalive_ms = 60000\n");
    let (mut stream, id) = dynamic(&server, "").await;
    for channel in ["a", "b"] {
        let resp = add(&server, &id, json!({"channel": channel})).await;
        assert_eq!(resp.status(), 201);
    }
    // Events flow on a and b while b is removed and c added.
    for i in 0..50 {
        publish(&server, "a", json!({"data": format!("a-{i}")})).await;
        if i < 20 {
            publish(&server, "b", json!({"data": format!("b-{i}")})).await;
        }
        if i == 20 {
            let resp = client()
                .delete(server.url(&format!("/connections/{id}/subscriptions/b")))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 204);
            publish(&server, "b", json!({"data": "b-after-removal"})).await;
            assert_eq!(
                add(&server, &id, json!({"channel": "c"})).await.status(),
                201
            );
        }
        if i > 20 {
            publish(&server, "c", json!({"data": format!("c-{i}")})).await;
        }
    }
    let got = messages(&stream.events(50 + 20 + 29).await);
    let of = |ch: &str| -> Vec<String> {
        got.iter()
            .filter(|(c, _)| c == ch)
            .map(|(_, d)| d.clone())
            .collect()
    };
    assert_eq!(
        of("a"),
        (0..50).map(|i| format!("a-{i}")).collect::<Vec<_>>()
    );
    assert_eq!(
        of("b"),
        (0..20).map(|i| format!("b-{i}")).collect::<Vec<_>>()
    );
    assert_eq!(
        of("c"),
        (21..50).map(|i| format!("c-{i}")).collect::<Vec<_>>()
    );
    stream.expect_quiet(Duration::from_millis(300)).await;

    let listed: Value = get_json(&server, &format!("/connections/{id}")).await;
    let names: Vec<&str> = listed["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stream"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "c"]);
}

#[tokio::test]
async fn only_the_connections_credentials_may_change_it() {
    let server = Server::start("");
    let (_stream, id) = dynamic(&server, "&key=app%3As3cret").await;
    let url = server.url(&format!("/connections/{id}/subscriptions"));
    let other = client()
        .post(format!("{url}?key=other%3Asecret"))
        .json(&json!({"channel": "x"}))
        .send()
        .await
        .unwrap();
    expect_error(other, 401, 40160).await;
    let anonymous = client()
        .post(&url)
        .json(&json!({"channel": "x"}))
        .send()
        .await
        .unwrap();
    expect_error(anonymous, 401, 40160).await;
    let own = client()
        .post(format!("{url}?key=app%3As3cret"))
        .json(&json!({"channel": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 201);
    // Bad requests.
    for body in [
        json!({}),
        json!({"channel": "x", "poll": "http://a/"}),
        json!({"chanel": "x"}),
    ] {
        let resp = client()
            .post(format!("{url}?key=app%3As3cret"))
            .json(&body)
            .send()
            .await
            .unwrap();
        expect_error(resp, 400, 40000).await;
    }
    let twice = client()
        .post(format!("{url}?key=app%3As3cret"))
        .json(&json!({"channel": "x"}))
        .send()
        .await
        .unwrap();
    expect_error(twice, 400, 40000).await;
    let missing = client()
        .delete(server.url(&format!(
            "/connections/{id}/subscriptions/nope?key=app%3As3cret"
        )))
        .send()
        .await
        .unwrap();
    expect_error(missing, 404, 40400).await;
    let unknown = client()
        .get(server.url("/connections/nosuchid"))
        .send()
        .await
        .unwrap();
    expect_error(unknown, 404, 40400).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_and_delta_streams_share_a_connection_and_resume_together() {
    let items: Vec<u32> = (0..100).collect();
    let upstream = Upstream::start(json!({"v": 0, "items": items})).await;
    let server = Server::start(
        "[stream]\nkeepalive_ms = 60000\n[poll]\nallowed_targets = [\"http://127.0.0.1:*/*\"]\n\
         interval_ms = 50\nmin_interval_ms = 50\n",
    );
    let (mut stream, id) = dynamic(&server, "&channels=news").await;
    let target = upstream.url("/doc");
    let resp = add(&server, &id, json!({"poll": target})).await;
    assert_eq!(resp.status(), 201);
    let added: Value = resp.json().await.unwrap();
    let poll_name = added["stream"].as_str().unwrap().to_owned();
    // The poll's first event names its stream.
    let data = stream.next_event().await.unwrap();
    assert_eq!(data.event, "data");
    let body: Value = serde_json::from_str(&data.data).unwrap();
    assert_eq!(body["channel"], poll_name.as_str());
    assert_eq!(body["data"]["v"], 0);
    publish(&server, "news", json!({"data": "n1"})).await;
    let n1 = stream.next_event().await.unwrap();
    assert_eq!(envelope(&n1)["data"], "n1");
    drop(stream);

    // While away: a message and a document change.
    publish(&server, "news", json!({"data": "n2"})).await;
    upstream.set(json!({"v": 1, "items": items}));
    tokio::time::sleep(Duration::from_millis(400)).await;

    // Resume with the last id: same connection, same streams, exactly what was missed.
    let mut resumed = common::resume_dynamic(&server, &n1.id, &id).await;
    let by_kind = common::events_by_kind(&mut resumed, 2).await;
    assert_eq!(by_kind["message"]["data"], "n2");
    // A document change while away: resumed after the poll's position, so a patch.
    assert_eq!(by_kind["patch"]["channel"], poll_name.as_str());
    assert_eq!(
        by_kind["patch"]["data"],
        json!([{"op": "replace", "path": "/v", "value": 1}])
    );
}

/// The ErrorInfo of an `event: error`.
fn error_info(event: &SseEvent) -> Value {
    assert_eq!(event.event, "error", "{event:?}");
    serde_json::from_str(&event.data).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_that_come_back_after_a_restart_are_told_their_streams_are_gone() {
    let server = Server::start("[stream]\nkeepalive_ms = 60000\n");
    let (mut stream, id) = dynamic(&server, "").await;
    assert_eq!(
        add(&server, &id, json!({"channel": "news"})).await.status(),
        201
    );
    publish(&server, "news", json!({"data": "n1"})).await;
    let dynamic_id = stream.next_event().await.unwrap().id;
    drop(stream);
    // A connection with more streams than fit in an id also has a server-kept one.
    let names: Vec<String> = (0..17).map(|i| format!("s{i}")).collect();
    let many_url = server.url(&format!("/sse?channels={}", names.join(",")));
    let mut many = SseStream::open(&many_url).await;
    publish(&server, "s0", json!({"data": "s0"})).await;
    let many_id = many.next_event().await.unwrap().id;
    drop(many);

    let base = server.base.clone();
    let server = server.restart();
    assert_eq!(server.base, base, "clients come back to the same address");

    // EventSource's reconnect: told first, then given its new connection id.
    let url = server.url("/sse?dynamic=true");
    let mut resumed = SseStream::open_with(&url, common::last_event_id(&dynamic_id)).await;
    let told = error_info(&resumed.next_event().await.unwrap());
    assert_eq!(told["code"], 40410, "{told}");
    assert_eq!(told["statusCode"], 404, "{told}");
    let connected = resumed.next_event().await.unwrap();
    assert_eq!(connected.event, "connected");
    let data: Value = serde_json::from_str(&connected.data).unwrap();
    let new_id = data["connectionId"].as_str().unwrap();
    assert_ne!(new_id, id);
    // Subscribing again on the new connection works.
    assert_eq!(
        add(&server, new_id, json!({"channel": "news"}))
            .await
            .status(),
        201
    );
    publish(&server, "news", json!({"data": "n2"})).await;
    assert_eq!(envelope(&resumed.next_event().await.unwrap())["data"], "n2");

    // The many-stream connection is told too, then gets a gap notice on each channel.
    let mut resumed = SseStream::open_with(&many_url, common::last_event_id(&many_id)).await;
    let told = error_info(&resumed.next_event().await.unwrap());
    assert_eq!(told["code"], 40410, "{told}");
    for event in resumed.events(names.len()).await {
        assert_eq!(error_info(&event)["code"], 40900);
    }

    // Without channels or dynamic=true there is nothing to carry: an error, not an empty
    // stream that never ends.
    let resp = client()
        .get(server.url("/sse"))
        .headers(common::last_event_id(&dynamic_id))
        .send()
        .await
        .unwrap();
    expect_error(resp, 404, 40410).await;
    // lastEvent says the same, before the stream.
    let resp = client()
        .get(server.url(&format!("/sse?dynamic=true&lastEvent={dynamic_id}")))
        .send()
        .await
        .unwrap();
    expect_error(resp, 404, 40410).await;
}

/// A polled API added to a live connection takes its parameters in the body, as a polled
/// stream takes them in its URL: the part selected, the interval, the mode, the headers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_added_with_parameters_in_the_body_uses_them() {
    let upstream = Upstream::start(json!({"v": 0, "items": [1, 2, 3], "meta": {"x": 1}})).await;
    let server = Server::start(
        "[stream]\nkeepalive_ms = 60000\n[poll]\nallowed_targets = [\"http://127.0.0.1:*/*\"]\n\
         interval_ms = 10000\nmin_interval_ms = 50\n",
    );
    let (mut stream, id) = dynamic(&server, "").await;
    let target = upstream.url("/doc");
    let body = json!({
        "poll": target,
        "select": "/items",
        "pollInterval": 50,
        "mode": "snapshot",
        "headers": {"X-Test": "yes"},
    });
    assert_eq!(add(&server, &id, body).await.status(), 201);
    let first = stream.next_event().await.unwrap();
    assert_eq!(first.event, "data");
    let data =
        |event: &SseEvent| serde_json::from_str::<Value>(&event.data).unwrap()["data"].clone();
    assert_eq!(data(&first), json!([1, 2, 3]));
    let (headers, _) = upstream.last_request("/doc");
    assert_eq!(headers["x-test"], "yes");
    // Polled every 50 ms, not every 10 s; whole parts, not patches.
    upstream.set(json!({"v": 1, "items": [1, 2, 3, 4], "meta": {"x": 1}}));
    let next = tokio::time::timeout(Duration::from_secs(3), stream.next_event())
        .await
        .expect("the next poll comes at the body's interval")
        .unwrap();
    assert_eq!(next.event, "data");
    assert_eq!(data(&next), json!([1, 2, 3, 4]));

    for body in [
        json!({"poll": format!("{target}?select=/items"), "select": "/meta"}),
        json!({"channel": "x", "select": "/meta"}),
        json!({"poll": target, "mode": "sometimes"}),
        json!({"poll": target, "headers": {"Host": "elsewhere"}}),
        json!({"poll": target, "pollInterval": "fast"}),
    ] {
        expect_error(add(&server, &id, body).await, 400, 40000).await;
    }
}

/// A configured API joins a dynamic connection by its gateway path (as `GET /apis/...`
/// takes it): the stream is named by that path, and a kept journal holds none of the API's
/// secrets; after a restart the connection resumes it, made again from the config.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_api_joins_a_dynamic_connection_by_its_gateway_path() {
    let upstream = Upstream::start(json!({"v": 0, "items": [1, 2, 3]})).await;
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(&format!(
        "[bus]\ndata_dir = {:?}\n[stream]\nkeepalive_ms = 60000\n\
         [poll]\ninterval_ms = 50\nmin_interval_ms = 50\n\
         [[api]]\nname = \"quotes\"\nbase_url = \"{}\"\n\
         query = {{ apikey = \"q-s3cret\" }}\nheaders = {{ authorization = \"Bearer h-s3cret\" }}\n",
        data.path(),
        upstream.url("/v1")
    ));
    let (mut stream, id) = dynamic(&server, "").await;
    let resp = add(
        &server,
        &id,
        json!({"poll": "/apis/quotes/prices?region=eu", "pollInterval": 50}),
    )
    .await;
    assert_eq!(resp.status(), 201);
    let added: Value = resp.json().await.unwrap();
    assert_eq!(added["stream"], "/apis/quotes/prices?region=eu");
    let first = stream.next_event().await.unwrap();
    assert_eq!(first.event, "data");
    let body: Value = serde_json::from_str(&first.data).unwrap();
    assert_eq!(body["channel"], "/apis/quotes/prices?region=eu");
    assert_eq!(body["data"]["v"], 0);
    // The target was asked with the API's secrets injected.
    let (headers, query) = upstream.last_request("/v1/prices");
    assert_eq!(headers["authorization"], "Bearer h-s3cret");
    let query = query.unwrap();
    assert!(
        query.contains("apikey=q-s3cret") && query.contains("region=eu"),
        "{query}"
    );
    drop(stream);

    // Kept on disk without the API's secrets.
    let kept = read_all(data.path());
    assert!(
        !kept
            .windows(8)
            .any(|w| w == b"q-s3cret" || w == b"h-s3cret"),
        "a secret on disk"
    );

    // A restart: the connection resumes, its API stream made again from the config.
    let server = server.restart();
    upstream.set(json!({"v": 1, "items": [1, 2, 3]}));
    let mut resumed = common::resume_dynamic(&server, &first.id, &id).await;
    let next = resumed.next_event().await.unwrap();
    let body: Value = serde_json::from_str(&next.data).unwrap();
    assert_eq!(body["channel"], "/apis/quotes/prices?region=eu", "{next:?}");
    assert_ne!(next.event, "error", "{next:?}");

    // An API that does not exist, or a credential that may not poll it, is refused.
    let resp = add(&server, &id, json!({"poll": "/apis/nope/x"})).await;
    expect_error(resp, 404, 40400).await;
}

/// Every byte of the files under `dir`.
fn read_all(dir: &std::path::Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all.extend(read_all(&path));
        } else {
            all.extend(std::fs::read(&path).unwrap());
        }
    }
    all
}
