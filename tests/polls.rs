//! Polled JSON APIs as delta streams, against a real upstream HTTP server.

mod common;

use std::time::Duration;

use common::upstream::{Behaviour, Upstream};
use common::{Server, SseStream, expect_error};
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};
use streamgate::wire::sse_parser::SseEvent;

/// A gateway that may poll loopback upstreams quickly.
fn gateway(extra: &str) -> Server {
    Server::start(&format!(
        "[poll]\nallowed_targets = [\"http://127.0.0.1:*/*\"]\ninterval_ms = 100\n\
         min_interval_ms = 50\nlinger_ms = 300\ntimeout_ms = 2000\nmax_backoff_ms = 400\n{extra}"
    ))
}

fn poll_url(server: &Server, upstream: &Upstream, path: &str) -> String {
    server.url(&format!("/{}", upstream.url(path)))
}

/// A subscriber's view of the document: a `data` event replaces it, a `patch` event is
/// applied with the `json-patch` crate (independent of the gateway's diff).
struct Follower {
    stream: SseStream,
    document: Option<Value>,
    last_id: String,
    kinds: Vec<String>,
}

impl Follower {
    async fn open(url: &str) -> Follower {
        Self::open_with(url, HeaderMap::new()).await
    }

    async fn open_with(url: &str, headers: HeaderMap) -> Follower {
        let stream = SseStream::open_with(url, headers).await;
        assert_eq!(
            stream.response.headers()["content-type"],
            "text/event-stream; charset=utf-8"
        );
        Follower {
            stream,
            document: None,
            last_id: String::new(),
            kinds: Vec::new(),
        }
    }

    /// Applies the next event; returns it.
    async fn step(&mut self) -> SseEvent {
        let event = self.stream.next_event().await.expect("an event");
        assert!(!event.id.is_empty(), "every event has an id: {event:?}");
        self.last_id = event.id.clone();
        self.kinds.push(event.event.clone());
        let data: Value = serde_json::from_str(&event.data).unwrap();
        match event.event.as_str() {
            "data" => self.document = Some(data),
            "patch" => {
                // Parsed by the gateway's reader (which keeps big numbers), applied by the
                // `json-patch` crate: independent of the diff that made it.
                let patch = streamgate::patch::parse(&data).unwrap();
                let doc = self.document.as_mut().expect("a patch after a data event");
                json_patch::patch(doc, &patch).expect("the patch applies");
            }
            "error" => {}
            other => panic!("unexpected event {other}"),
        }
        event
    }

    /// Follows events until the document equals `expected`.
    async fn until(&mut self, expected: &Value) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.document.as_ref() != Some(expected) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "document never became {expected}; it is {:?}",
                self.document
            );
            self.step().await;
        }
    }

    /// The next event must be an error; returns its data.
    async fn error(&mut self) -> Value {
        let event = self.step().await;
        assert_eq!(event.event, "error", "{event:?}");
        serde_json::from_str(&event.data).unwrap()
    }
}

fn quotes(n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| json!({"symbol": format!("S{i:04}"), "price": 100 + i, "volume": i * 7}))
            .collect(),
    )
}

#[tokio::test]
async fn every_change_shape_reaches_subscribers_exactly() {
    let upstream = Upstream::start(json!({"items": quotes(50), "meta": {"v": 1}})).await;
    let server = gateway("");
    let url = poll_url(&server, &upstream, "/quotes");
    let mut first = Follower::open(&url).await;
    let mut second = Follower::open(&url).await;
    first.until(&upstream.document()).await;
    second.until(&upstream.document()).await;
    assert_eq!(first.kinds[0], "data");

    let mut doc = upstream.document();
    type Step = Box<dyn Fn(&mut Value)>;
    let steps: Vec<Step> = vec![
        // A field changes inside a list item.
        Box::new(|d| d["items"][3]["price"] = json!(999)),
        // An item is inserted at the head.
        Box::new(|d| {
            d["items"]
                .as_array_mut()
                .unwrap()
                .insert(0, json!({"symbol": "NEW", "price": 1}))
        }),
        // The tail is dropped.
        Box::new(|d| {
            d["items"].as_array_mut().unwrap().pop();
        }),
        // The list is re-sorted.
        Box::new(|d| d["items"].as_array_mut().unwrap().reverse()),
        // Keys come and go, types change, numbers stay digit-exact.
        Box::new(|d| {
            d["meta"] = json!({"v": "two", "big": serde_json::from_str::<Value>("123456789012345678901234567").unwrap()});
            d["added"] = json!([1, [2, {"a~b/c": null}]]);
        }),
        Box::new(|d| {
            d.as_object_mut().unwrap().remove("added");
            d["meta"]["dec"] = serde_json::from_str("0.100000000000000000000001").unwrap();
        }),
        // Everything at once is a snapshot, not a huge patch.
        Box::new(|d| *d = json!({"replaced": true})),
    ];
    for step in steps {
        step(&mut doc);
        upstream.set(doc.clone());
        first.until(&doc).await;
        second.until(&doc).await;
    }
    assert!(
        first.kinds.iter().filter(|k| *k == "patch").count() >= 5,
        "{:?}",
        first.kinds
    );
    // The last change replaced the whole document: a data event, not a patch.
    assert_eq!(first.kinds.last().unwrap(), "data");
    // The big numbers came through digit-exact in raw text too.
    assert!(first.document.is_some());
}

#[tokio::test]
async fn fifty_subscribers_cause_one_upstream_request_per_interval() {
    let upstream = Upstream::start(json!({"n": 0})).await;
    let server = gateway("");
    let url = format!(
        "{}?pollInterval=200",
        poll_url(&server, &upstream, "/shared")
    );
    let mut followers = Vec::new();
    for _ in 0..50 {
        let mut f = Follower::open(&url).await;
        f.until(&json!({"n": 0})).await;
        followers.push(f);
    }
    let before = upstream.requests();
    let started = tokio::time::Instant::now();
    for n in 1..=5 {
        upstream.set(json!({"n": n}));
        for f in &mut followers {
            f.until(&json!({"n": n})).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    let elapsed = started.elapsed().as_millis() as u64;
    let requests = upstream.requests() - before;
    let most = elapsed / 200 + 2;
    assert!(
        requests <= most,
        "{requests} upstream requests in {elapsed} ms for 50 subscribers (at most {most})"
    );
    assert!(requests >= 3, "{requests}");

    // Polling stops after the last subscriber leaves (linger 300 ms).
    drop(followers);
    tokio::time::sleep(Duration::from_millis(900)).await;
    let stopped_at = upstream.requests();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        upstream.requests(),
        stopped_at,
        "polling went on with no subscriber"
    );
}

#[tokio::test]
async fn polls_start_one_interval_apart_however_long_the_target_takes() {
    let upstream = Upstream::start(json!({"n": 0})).await;
    let server = gateway("");
    let url = format!(
        "{}?pollInterval=300",
        poll_url(&server, &upstream, "/paced")
    );
    let mut followers = Vec::new();
    for _ in 0..50 {
        let mut f = Follower::open(&url).await;
        f.until(&json!({"n": 0})).await;
        followers.push(f);
    }
    // Each answer takes half the interval: polls still start one interval apart.
    upstream.behave(Behaviour::Slow(Duration::from_millis(150)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (before, started) = (upstream.requests(), tokio::time::Instant::now());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let requests = upstream.requests() - before;
    let intervals = started.elapsed().as_millis() as u64 / 300;
    assert!(
        requests.abs_diff(intervals) <= 1,
        "{requests} upstream requests in {intervals} intervals of 300 ms"
    );

    // An answer longer than the interval: the slot due meanwhile is skipped, and counted.
    let series = "streamgate_poll_skipped_slots_total{api=\"*\"}";
    let skipped_before = common::metric(&server, series).await;
    upstream.behave(Behaviour::Slow(Duration::from_millis(450)));
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let skipped = common::metric(&server, series).await;
    assert!(
        skipped - skipped_before >= 2.0,
        "{skipped_before} then {skipped} skipped slots"
    );
}

/// Waits until the upstream has seen no request for a while: the topic's poller stopped.
async fn until_polling_stops(upstream: &Upstream) {
    let mut seen = upstream.requests();
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if upstream.requests() == seen {
            return;
        }
        seen = upstream.requests();
    }
    panic!("polling never stopped");
}

#[tokio::test]
async fn a_subscriber_after_the_poller_stopped_starts_from_a_fresh_poll() {
    let upstream = Upstream::start(json!({"v": 1, "items": [1]})).await;
    let server = gateway("");
    let url = poll_url(&server, &upstream, "/stale");
    let mut f = Follower::open(&url).await;
    f.until(&json!({"v": 1, "items": [1]})).await;
    drop(f);
    until_polling_stops(&upstream).await;
    upstream.set(json!({"v": 2, "items": [1]}));
    let mut again = Follower::open(&url).await;
    let first = again.step().await;
    assert_eq!(first.event, "data", "{first:?}");
    assert_eq!(
        again.document,
        Some(json!({"v": 2, "items": [1]})),
        "the first document is the target's current one"
    );

    // A selected part nobody watched for the linger time starts afresh the same way, while
    // the topic's poller goes on for the whole document.
    let part_url = format!("{url}?select=/items");
    let mut part = Follower::open(&part_url).await;
    part.until(&json!([1])).await;
    drop(part);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    upstream.set(json!({"v": 2, "items": [1, 2]}));
    again.until(&json!({"v": 2, "items": [1, 2]})).await;
    let mut part = Follower::open(&part_url).await;
    let first = part.step().await;
    assert_eq!(first.event, "data", "{first:?}");
    assert_eq!(part.document, Some(json!([1, 2])));
}

#[tokio::test]
async fn a_part_asked_for_during_an_outage_is_told_the_failure() {
    let upstream = Upstream::start(json!({"items": [1]})).await;
    let server = gateway("");
    let url = poll_url(&server, &upstream, "/outage");
    let mut whole = Follower::open(&url).await;
    whole.until(&json!({"items": [1]})).await;
    upstream.behave(Behaviour::Status(503));
    assert_eq!(whole.error().await["status"], 503);
    // The topic's poller runs on (backing off); a part asked for now has no document and
    // must not wait silently for the target to recover.
    let mut part = Follower::open(&format!("{url}?select=/items")).await;
    let error = part.error().await;
    assert_eq!(error["status"], 503, "{error}");
    upstream.behave(Behaviour::Serve);
    part.until(&json!([1])).await;
    // The whole document's subscriber was told once.
    let errors = whole.kinds.iter().filter(|k| *k == "error").count();
    assert_eq!(errors, 1, "{:?}", whole.kinds);
}

#[tokio::test]
async fn unchanged_documents_are_revalidated_with_etags() {
    let mut doc = json!({"same": true, "items": quotes(20)});
    let upstream = Upstream::start(doc.clone()).await;
    let server = gateway("");
    let mut f = Follower::open(&poll_url(&server, &upstream, "/etag")).await;
    f.until(&doc).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        upstream.not_modified() >= 2,
        "the gateway never sent If-None-Match"
    );
    // Nothing was sent while the upstream said 304.
    f.stream.expect_quiet(Duration::from_millis(100)).await;
    doc["same"] = json!(false);
    upstream.set(doc.clone());
    f.until(&doc).await;
    assert_eq!(f.kinds, ["data", "patch"]);
}

#[tokio::test]
async fn failures_are_error_events_and_the_stream_recovers() {
    let upstream = Upstream::start(json!({"ok": 1, "list": quotes(20)})).await;
    let server = gateway("");
    let mut f = Follower::open(&poll_url(&server, &upstream, "/flaky")).await;
    f.until(&upstream.document()).await;

    let cases = [
        (Behaviour::Status(503), 503),
        (Behaviour::NotJson, 2003),
        (Behaviour::Slow(Duration::from_secs(3)), 2002),
    ];
    for (told, (behaviour, status)) in cases.into_iter().enumerate() {
        upstream.behave(behaviour.clone());
        let error = f.error().await;
        assert_eq!(error["status"], status, "{behaviour:?}: {error}");
        for key in ["cause", "message", "sessionId"] {
            assert!(
                error[key].as_str().is_some_and(|s| !s.is_empty()),
                "{key}: {error}"
            );
        }
        assert!(error["timestamp"].as_u64().unwrap() > 1_600_000_000_000);
        upstream.behave(Behaviour::Serve);
        upstream.set(json!({"ok": status, "list": quotes(20)}));
        f.until(&upstream.document()).await;
        // Recovery resumes with a patch from the last good document, not a new snapshot.
        assert_eq!(f.kinds.last().unwrap(), "patch", "{:?}", f.kinds);
        let errors = f.kinds.iter().filter(|k| *k == "error").count();
        assert_eq!(errors, told + 1, "a failure is told once: {:?}", f.kinds);
    }
}

#[tokio::test]
async fn oversized_and_unreachable_targets_are_error_events() {
    let upstream = Upstream::start(json!({"blob": "x".repeat(5000)})).await;
    let server = gateway("max_body_bytes = 1000\n");
    let mut f = Follower::open(&poll_url(&server, &upstream, "/big")).await;
    assert_eq!(f.error().await["status"], 2004);

    // Nothing listens on this port.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let mut f = Follower::open(&server.url(&format!("/http://127.0.0.1:{port}/gone"))).await;
    assert_eq!(f.error().await["status"], 2000);
}

#[tokio::test]
async fn last_event_id_resumes_with_the_missed_patches() {
    let doc = |n: u64| json!({"n": n, "keep": quotes(20)});
    let upstream = Upstream::start(doc(0)).await;
    let server = gateway("");
    let url = poll_url(&server, &upstream, "/resume");
    // A second subscriber keeps the topic alive while the first is away.
    let mut keeper = Follower::open(&url).await;
    let mut f = Follower::open(&url).await;
    f.until(&upstream.document()).await;
    upstream.set(doc(1));
    f.until(&upstream.document()).await;
    let id = f.last_id.clone();
    let seen = f.document.clone().unwrap();
    drop(f);
    for n in 2..=3 {
        upstream.set(doc(n));
        keeper.until(&upstream.document()).await;
    }
    let mut headers = HeaderMap::new();
    headers.insert("last-event-id", HeaderValue::from_str(&id).unwrap());
    let mut resumed = Follower::open_with(&url, headers).await;
    resumed.document = Some(seen.clone());
    resumed.until(&upstream.document()).await;
    assert_eq!(resumed.kinds, ["patch", "patch"], "missed patches only");

    // The same resume through `lastEvent`, as on /sse; never sent to the target.
    let mut by_query = Follower::open(&format!("{url}?lastEvent={id}")).await;
    by_query.document = Some(seen);
    by_query.until(&upstream.document()).await;
    assert_eq!(by_query.kinds, ["patch", "patch"], "missed patches only");
    assert_eq!(upstream.last_request("/resume").1, None);
    let resp = reqwest::get(format!("{url}?lastEvent=nope")).await.unwrap();
    expect_error(resp, 400, 40000).await;

    // An id that is not ours gets a fresh snapshot.
    let mut headers = HeaderMap::new();
    headers.insert("last-event-id", HeaderValue::from_static("nope"));
    let mut fresh = Follower::open_with(&url, headers).await;
    fresh.until(&upstream.document()).await;
    assert_eq!(fresh.kinds, ["data"]);
}

#[tokio::test]
async fn history_is_bounded_in_bytes_and_an_early_resume_gets_a_fresh_document() {
    // About 5 KB; each change rewrites a fifth of the prices, a patch of about 1 KB.
    let doc = |n: usize| {
        let mut items = quotes(100);
        for (i, item) in items.as_array_mut().unwrap().iter_mut().enumerate() {
            if i % 5 == n % 5 {
                item["price"] = json!(n * 1000 + i);
            }
        }
        json!({"n": n, "items": items})
    };
    let upstream = Upstream::start(doc(0)).await;
    let server = gateway("[channels]\nstate_history_bytes = 20000\n");
    let url = poll_url(&server, &upstream, "/bounded");
    let mut keeper = Follower::open(&url).await;
    keeper.until(&upstream.document()).await;
    let early = (keeper.last_id.clone(), keeper.document.clone().unwrap());
    let mut recent = early.clone();
    let mut patch_bytes = 0;
    for n in 1..=40 {
        upstream.set(doc(n));
        while keeper.document.as_ref() != Some(&upstream.document()) {
            let event = keeper.step().await;
            assert_eq!(event.event, "patch", "a live subscriber gets every patch");
            patch_bytes += event.data.len();
        }
        if n == 37 {
            recent = (keeper.last_id.clone(), keeper.document.clone().unwrap());
        }
    }
    assert!(
        patch_bytes > 30_000,
        "the patches exceed the bound: {patch_bytes}"
    );

    let resume = |(id, seen): (String, Value)| {
        let url = url.clone();
        async move {
            let mut headers = HeaderMap::new();
            headers.insert("last-event-id", HeaderValue::from_str(&id).unwrap());
            let mut resumed = Follower::open_with(&url, headers).await;
            resumed.document = Some(seen);
            resumed
        }
    };
    // The patches after the early id have left history: the document, afresh.
    let mut resumed = resume(early).await;
    resumed.until(&upstream.document()).await;
    assert_eq!(resumed.kinds, ["data"], "a fresh document, not the patches");
    // The patches after a recent id are still there: exactly those.
    let mut resumed = resume(recent).await;
    resumed.until(&upstream.document()).await;
    assert_eq!(
        resumed.kinds,
        ["patch", "patch", "patch"],
        "missed patches only"
    );
}

#[tokio::test]
async fn snapshot_mode_sends_whole_documents() {
    let upstream = Upstream::start(json!({"items": quotes(20)})).await;
    let server = gateway("");
    let mut f = Follower::open(&format!(
        "{}?mode=snapshot",
        poll_url(&server, &upstream, "/snap")
    ))
    .await;
    f.until(&upstream.document()).await;
    let mut doc = upstream.document();
    doc["items"][0]["price"] = json!(1);
    upstream.set(doc.clone());
    f.until(&doc).await;
    assert!(f.kinds.iter().all(|k| k == "data"), "{:?}", f.kinds);
}

#[tokio::test]
async fn headers_are_forwarded_and_injected_secrets_stay_hidden() {
    let upstream = Upstream::start(json!({"v": 1})).await;
    let server = gateway(&format!(
        "[[api]]\nname = \"secretive\"\nbase_url = \"{}/v1\"\ninterval_ms = 100\n\
         headers = {{ Authorization = \"Bearer s3cr3t-header\" }}\n\
         query = {{ apikey = \"s3cr3t-query\" }}\n",
        upstream.url("")
    ));
    // Ad hoc: X-Sd-Header is forwarded, consumed parameters are not.
    let mut f = Follower::open(&format!(
        "{}?a=1&X-Sd-Header=X-Trace%3A%20abc&pollInterval=100&mode=patch&X-Sd-Token=k%3As",
        poll_url(&server, &upstream, "/plain")
    ))
    .await;
    f.until(&json!({"v": 1})).await;
    let (headers, query) = upstream.last_request("/plain");
    assert_eq!(headers["x-trace"], "abc");
    assert_eq!(query.as_deref(), Some("a=1"));

    // Configured API: injected header and query reach the upstream...
    let url = server.url("/apis/secretive/items?page=2");
    let mut api = Follower::open(&url).await;
    api.until(&json!({"v": 1})).await;
    let (headers, query) = upstream.last_request("/v1/items");
    assert_eq!(headers["authorization"], "Bearer s3cr3t-header");
    let query = query.unwrap();
    assert!(
        query.contains("apikey=s3cr3t-query") && query.contains("page=2"),
        "{query}"
    );
    // ...and never reach clients, not even in errors.
    upstream.behave(Behaviour::Status(500));
    let error = api.error().await;
    let mut seen = error.to_string();
    upstream.behave(Behaviour::Slow(Duration::from_secs(3)));
    seen.push_str(&api.error().await.to_string());
    let headers = format!("{:?}", api.stream.response.headers());
    for secret in ["s3cr3t-header", "s3cr3t-query"] {
        assert!(
            !seen.contains(secret) && !headers.contains(secret),
            "{secret} leaked: {seen}"
        );
    }
    let metrics = common::metrics_text(&server).await;
    assert!(!metrics.contains("s3cr3t"), "secret in metrics");
}

#[tokio::test]
async fn targets_outside_the_policy_are_refused() {
    let upstream = Upstream::start(json!({"private": true})).await;
    let port = upstream.addr.port();
    let client = common::client();

    // No pattern at all: refused before the stream opens.
    let strict = Server::start("");
    let resp = client
        .get(strict.url(&format!("/http://127.0.0.1:{port}/x")))
        .send()
        .await
        .unwrap();
    expect_error(resp, 403, 40300).await;

    // A wildcard host does not let a literal loopback address through...
    let wildcard = Server::start(&format!(
        "[poll]\nallowed_targets = [\"http://*:{port}/*\"]\ninterval_ms = 100\nmin_interval_ms = 50\n"
    ));
    let resp = client
        .get(wildcard.url(&format!("/http://127.0.0.1:{port}/x")))
        .send()
        .await
        .unwrap();
    expect_error(resp, 403, 40300).await;
    // ...nor a name that resolves to one (checked after DNS).
    let mut f = Follower::open(&wildcard.url(&format!("/http://localhost:{port}/x"))).await;
    let error = f.error().await;
    assert_eq!(error["status"], 2005, "{error}");

    // A redirect from an allowed target to a private address is refused too.
    let inner = Upstream::start_on("127.0.0.2:0", json!({"secret": 1})).await;
    upstream.behave(Behaviour::Redirect(inner.url("/admin")));
    let server = gateway("");
    let mut f = Follower::open(&poll_url(&server, &upstream, "/redirect")).await;
    let error = f.error().await;
    assert_eq!(error["status"], 2005, "{error}");
    assert_eq!(inner.requests(), 0, "the private target was reached");

    // Bad parameters are request errors.
    for bad in [
        "?pollInterval=soon",
        "?mode=fast",
        "?select=items",
        "?X-Sd-Header=nocolon",
    ] {
        let resp = client
            .get(format!("{}{bad}", poll_url(&server, &upstream, "/x")))
            .send()
            .await
            .unwrap();
        expect_error(resp, 400, 40000).await;
    }
    let resp = client.get(server.url("/apis/none/x")).send().await.unwrap();
    expect_error(resp, 404, 40400).await;
}

#[tokio::test]
async fn selected_parts_share_one_poller_and_stay_exact() {
    let mut doc = json!({"items": quotes(30), "meta": {"page": 1, "tags": ["a", "b"]}});
    let upstream = Upstream::start(doc.clone()).await;
    let server = gateway("");
    let base = poll_url(&server, &upstream, "/parts");
    let url = |q: &str| format!("{base}?pollInterval=200{q}");
    let mut whole = Follower::open(&url("")).await;
    let mut items = Follower::open(&url("&select=/items")).await;
    let mut tags = Follower::open(&url("&select=/meta/tags")).await;
    let select = |d: &Value, p: &str| d.pointer(p).cloned().unwrap();
    whole.until(&doc).await;
    items.until(&select(&doc, "/items")).await;
    tags.until(&select(&doc, "/meta/tags")).await;
    let before = upstream.requests();
    let started = tokio::time::Instant::now();
    for n in 0..4 {
        doc["items"][n]["price"] = json!(1000 + n);
        doc["meta"]["tags"]
            .as_array_mut()
            .unwrap()
            .insert(0, json!(format!("t{n}")));
        upstream.set(doc.clone());
        whole.until(&doc).await;
        // Each part, patched on its own, equals the part of the whole document.
        items.until(&select(&doc, "/items")).await;
        tags.until(&select(&doc, "/meta/tags")).await;
    }
    let elapsed = started.elapsed().as_millis() as u64;
    let requests = upstream.requests() - before;
    assert!(
        requests <= elapsed / 200 + 2,
        "{requests} upstream requests in {elapsed} ms for three parts of one topic"
    );
    assert!(
        items.kinds.iter().any(|k| k == "patch"),
        "{:?}",
        items.kinds
    );
}

#[tokio::test]
async fn select_pointers_are_checked_and_a_missing_part_is_told() {
    let mut doc = json!({"items": [1, 2], "a~b": {"c/d": "escaped"}});
    let upstream = Upstream::start(doc.clone()).await;
    let server = gateway("");
    let base = format!(
        "{}?pollInterval=100",
        poll_url(&server, &upstream, "/select")
    );
    let client = reqwest::Client::new();
    // A malformed pointer (`~` not followed by 0 or 1) is a request error, not a stream.
    for bad in ["/a~2", "/a~", "/items~/0", "items"] {
        let resp = client
            .get(format!("{base}&select={}", urlencode(bad)))
            .send()
            .await
            .unwrap();
        expect_error(resp, 400, 40000).await;
    }
    // Escapes are read as RFC 6901 says.
    let mut escaped = Follower::open(&format!("{base}&select=/a~0b/c~1d")).await;
    escaped.until(&json!("escaped")).await;

    // A part that is not there yet: an error event saying so (never `data: null`), once,
    // then the part as `data` as soon as it exists.
    let mut missing = Follower::open(&format!("{base}&select=/later")).await;
    let error = missing.error().await;
    assert_eq!(error["status"], 2008, "{error}");
    assert_eq!(error["cause"], "select", "{error}");
    doc["items"] = json!([1, 2, 3]);
    upstream.set(doc.clone());
    tokio::time::sleep(Duration::from_millis(400)).await;
    doc["later"] = json!({"here": true});
    upstream.set(doc.clone());
    let event = missing.step().await;
    assert_eq!(
        event.event, "data",
        "told once, then data: {:?}",
        missing.kinds
    );
    assert_eq!(missing.document, Some(json!({"here": true})));

    // A part that goes away is told again, and comes back as `data`.
    doc.as_object_mut().unwrap().remove("later");
    upstream.set(doc.clone());
    assert_eq!(missing.error().await["status"], 2008);
    doc["later"] = json!([]);
    upstream.set(doc.clone());
    assert_eq!(missing.step().await.event, "data");
    assert_eq!(missing.document, Some(json!([])));
}

fn urlencode(text: &str) -> String {
    text.bytes().map(|b| format!("%{b:02X}")).collect()
}

#[tokio::test]
async fn gateway_parameters_never_reach_the_target() {
    let upstream = Upstream::start(json!({"v": 1})).await;
    let server = gateway("");
    let mut f = Follower::open(&format!(
        "{}?a=1&lastEvent=0old-1&rewind=2&heartbeats=false&enveloped=false&b=2",
        poll_url(&server, &upstream, "/plain")
    ))
    .await;
    f.until(&json!({"v": 1})).await;
    let (_, query) = upstream.last_request("/plain");
    assert_eq!(query.as_deref(), Some("a=1&b=2"));
}

#[tokio::test]
async fn x_sd_header_cannot_route_or_frame_the_request_nor_replace_injected_headers() {
    let upstream = Upstream::start(json!({"v": 1})).await;
    let server = gateway(&format!(
        "[[api]]\nname = \"secretive\"\nbase_url = \"{}/v1\"\n\
         headers = {{ Authorization = \"Bearer s3cr3t-header\" }}\n",
        upstream.url("")
    ));
    let client = common::client();
    let with_header = |base: &str, header: &str| {
        reqwest::Url::parse_with_params(base, [("X-Sd-Header", header)]).unwrap()
    };
    let adhoc = poll_url(&server, &upstream, "/x");
    let api = server.url("/apis/secretive/x");
    for (header, name) in [
        ("Host: internal.example", "host"),
        ("content-length: 0", "content-length"),
        ("Transfer-Encoding: chunked", "transfer-encoding"),
        ("Connection: close", "connection"),
        ("Upgrade: h2c", "upgrade"),
        ("TE: trailers", "te"),
        ("Trailer: x", "trailer"),
        ("Keep-Alive: timeout=5", "keep-alive"),
        ("Proxy-Authorization: Basic eDp5", "proxy-authorization"),
        ("Proxy-Anything: 1", "proxy-anything"),
    ] {
        for base in [&adhoc, &api] {
            let resp = client.get(with_header(base, header)).send().await.unwrap();
            let body = expect_error(resp, 400, 40000).await;
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.contains(name), "{header} on {base}: {message}");
        }
    }
    // The API's own secret header cannot be replaced by the client's.
    let resp = client
        .get(with_header(&api, "Authorization: Bearer mine"))
        .send()
        .await
        .unwrap();
    let body = expect_error(resp, 400, 40000).await;
    assert!(body.to_string().contains("authorization"), "{body}");

    // The same rule on a stream added to a dynamic connection.
    let mut stream = SseStream::open(&server.url("/sse?dynamic=true")).await;
    let connected: Value = serde_json::from_str(&stream.next_event().await.unwrap().data).unwrap();
    let id = connected["connectionId"].as_str().unwrap();
    let poll = with_header(&upstream.url("/x"), "Host: internal.example");
    let resp = client
        .post(server.url(&format!("/connections/{id}/subscriptions")))
        .json(&json!({ "poll": poll.as_str() }))
        .send()
        .await
        .unwrap();
    let body = expect_error(resp, 400, 40000).await;
    assert!(body.to_string().contains("host"), "{body}");
    assert_eq!(
        upstream.requests(),
        0,
        "a refused header reached the upstream"
    );
}
