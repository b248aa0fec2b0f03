//! The Mercure hub (`[mercure]`, `/.well-known/mercure`): publishing with a form POST and a
//! JWT, subscribing with topic selectors, private updates, and resuming by update id, over
//! real sockets.

mod common;

use std::time::Duration;

use common::mercure::*;
use common::{Server, SseStream, client, expect_error};
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_reach_the_subscribers_whose_selectors_match() {
    let server = hub(true);
    let book = "https://example.com/books/1";
    let mut exact = subscribe(&server, &[book]).await;
    let mut template = subscribe(&server, &["https://example.com/books/{id}"]).await;
    let mut all = subscribe(&server, &["*"]).await;
    let mut several = subscribe(&server, &["urn:other", book]).await;
    let mut other = subscribe(&server, &["https://example.com/authors/1"]).await;

    let fields = [
        ("topic", book),
        ("data", "line one\nline two"),
        ("id", "urn:example:1"),
        ("type", "book-changed"),
        ("retry", "1500"),
    ];
    assert_eq!(publish(&server, &fields).await, "urn:example:1");
    for stream in [&mut exact, &mut template, &mut all, &mut several] {
        let event = stream.next_event().await.unwrap();
        assert_eq!(event.id, "urn:example:1");
        assert_eq!(event.event, "book-changed");
        assert_eq!(event.data, "line one\nline two");
        assert_eq!(event.retry, Some(1500));
    }
    // Not matched: nothing, until an update it matches (an alternate topic here).
    let fields = [
        ("topic", "urn:canonical"),
        ("topic", "https://example.com/authors/1"),
        ("data", "author"),
    ];
    let id = publish(&server, &fields).await;
    assert!(id.starts_with("urn:uuid:"), "{id}");
    let event = other.next_event().await.unwrap();
    assert_eq!(
        (event.id.as_str(), event.data.as_str()),
        (id.as_str(), "author")
    );
    assert_eq!(event.event, "message", "no type: a plain message event");
    all.next_event().await.unwrap();
    exact.expect_quiet(Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_needs_a_token_whose_selectors_allow_every_topic() {
    let server = hub(true);
    let topic = [("topic", "https://example.com/books/1"), ("data", "x")];
    expect_error(post(&server, None, &topic).await, 401, 40101).await;
    let forged = token(json!({"publish": ["*"]}), "another key");
    expect_error(post(&server, Some(&forged), &topic).await, 401, 40101).await;
    let books = token(json!({"publish": ["https://example.com/books/{id}"]}), KEY);
    assert_eq!(post(&server, Some(&books), &topic).await.status(), 200);
    let both = [
        ("topic", "https://example.com/books/1"),
        ("topic", "https://example.com/authors/1"),
    ];
    expect_error(post(&server, Some(&books), &both).await, 403, 40300).await;
    // The form is checked too.
    let publisher = publisher();
    for fields in [
        vec![("data", "no topic")],
        vec![("topic", "t"), ("id", "#fragment")],
        vec![("topic", "t"), ("id", "a\u{7}b")],
        vec![("topic", "t"), ("retry", "soon")],
        vec![("topic", "t"); 101],
        vec![("topic", &*"t".repeat(2049))],
    ] {
        expect_error(post(&server, Some(&publisher), &fields).await, 400, 40000).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_updates_reach_only_subscribers_allowed_to_see_them() {
    let server = hub(true);
    let book = "https://example.com/books/1";
    let mut anonymous = subscribe(&server, &[book]).await;
    let allowed = token(
        json!({"subscribe": ["https://example.com/books/{id}"]}),
        KEY,
    );
    let url = subscribe_url(&server, &[book]);
    let mut signed = SseStream::open_with(&url, bearer_headers(&allowed)).await;
    let query_url = format!("{url}&authorization={allowed}");
    let mut by_query = SseStream::open(&query_url).await;
    let cache = &by_query.response.headers()["cache-control"];
    assert_eq!(cache, "private, no-cache", "the token is in the URL");
    let other = token(json!({"subscribe": ["urn:nothing"]}), KEY);
    let mut not_allowed = SseStream::open_with(&url, bearer_headers(&other)).await;

    let secret = publish(
        &server,
        &[("topic", book), ("data", "secret"), ("private", "on")],
    )
    .await;
    for stream in [&mut signed, &mut by_query] {
        assert_eq!(stream.next_event().await.unwrap().id, secret);
    }
    let public = publish(&server, &[("topic", book), ("data", "public")]).await;
    for stream in [&mut anonymous, &mut not_allowed, &mut signed, &mut by_query] {
        let event = stream.next_event().await.unwrap();
        assert_eq!(
            (event.id.as_str(), event.data.as_str()),
            (public.as_str(), "public")
        );
    }
    // Naming a private update it may not know of tells a subscriber nothing of it: as for
    // an id never published, its stream starts from the oldest update it may see.
    let mut headers = HeaderMap::new();
    headers.insert("last-event-id", HeaderValue::from_str(&secret).unwrap());
    let mut probe = SseStream::open_with(&url, headers).await;
    assert_eq!(probe.response.headers()["last-event-id"], "earliest");
    assert_eq!(probe.next_event().await.unwrap().id, public);
    let fresh = SseStream::open(&url).await;
    assert_eq!(fresh.response.headers()["last-event-id"], public.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribing_needs_a_selector_and_a_valid_token_unless_anonymous() {
    let open = hub(true);
    let none = client().get(open.url("/.well-known/mercure")).send().await;
    expect_error(none.unwrap(), 400, 40000).await;
    let forged = token(json!({"subscribe": ["*"]}), "another key");
    let url = subscribe_url(&open, &["*"]);
    let refused = client().get(&url).bearer_auth(&forged).send().await;
    expect_error(refused.unwrap(), 401, 40101).await;

    let closed = hub(false);
    let url = subscribe_url(&closed, &["*"]);
    let refused = client().get(&url).send().await;
    expect_error(refused.unwrap(), 401, 40101).await;
    let allowed = token(json!({"subscribe": ["*"]}), KEY);
    let mut stream = SseStream::open_with(&url, bearer_headers(&allowed)).await;
    let id = publish(&closed, &[("topic", "urn:a"), ("data", "x")]).await;
    assert_eq!(stream.next_event().await.unwrap().id, id);

    // Without [mercure], there is no hub; the landing page says which.
    let off = Server::start("");
    let response = client().get(subscribe_url(&off, &["*"])).send().await;
    expect_error(response.unwrap(), 404, 40400).await;
    let page = common::get_text(&open, "/").await;
    assert!(page.contains("/.well-known/mercure"), "{page}");
    assert!(
        !common::get_text(&off, "/")
            .await
            .contains("<h2>Mercure hub")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_resumes_after_the_update_it_names() {
    let server = hub(true);
    let mut ids = Vec::new();
    for n in 1..=3 {
        let data = format!("u{n}");
        let topic = if n == 2 { "urn:elsewhere" } else { "urn:a" };
        ids.push(publish(&server, &[("topic", topic), ("data", &data)]).await);
    }
    let url = subscribe_url(&server, &["urn:a"]);
    let mut headers = HeaderMap::new();
    headers.insert("last-event-id", HeaderValue::from_str(&ids[0]).unwrap());
    let mut resumed = SseStream::open_with(&url, headers).await;
    // The response names where the stream starts: the id asked for when it is known, the
    // newest update without one, `earliest` for an id history does not hold.
    assert_eq!(resumed.response.headers()["last-event-id"], ids[0].as_str());
    assert_eq!(resumed.next_event().await.unwrap().data, "u3");
    let fresh = SseStream::open(&url).await;
    assert_eq!(fresh.response.headers()["last-event-id"], ids[2].as_str());
    let unknown = SseStream::open(&format!("{url}&lastEventID=urn:nothing")).await;
    assert_eq!(unknown.response.headers()["last-event-id"], "earliest");
    let mut by_query = SseStream::open(&format!("{url}&lastEventID={}", ids[1])).await;
    assert_eq!(by_query.next_event().await.unwrap().data, "u3");
    let mut earliest = SseStream::open(&format!("{url}&lastEventID=earliest")).await;
    assert_eq!(data_of(earliest.events(2).await), ["u1", "u3"]);
    // Read from every update (a template), the same.
    let url = subscribe_url(&server, &["urn:{x}"]);
    let mut template = SseStream::open(&format!("{url}&lastEventID={}", ids[0])).await;
    assert_eq!(data_of(template.events(2).await), ["u2", "u3"]);
}

fn data_of(events: Vec<streamgate::wire::sse_parser::SseEvent>) -> Vec<String> {
    events.into_iter().map(|e| e.data).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_on_two_topics_of_a_subscriber_reaches_it_once() {
    let server = hub(true);
    let mut both = subscribe(&server, &["urn:a", "urn:b"]).await;
    let two = [("topic", "urn:a"), ("topic", "urn:b"), ("data", "1")];
    let first = publish(&server, &two).await;
    let second = publish(&server, &[("topic", "urn:b"), ("data", "2")]).await;
    let ids: Vec<String> = both.events(2).await.into_iter().map(|e| e.id).collect();
    assert_eq!(ids, [first, second]);
    both.expect_quiet(Duration::from_millis(300)).await;
    // And once again on a resume from before it.
    let url = subscribe_url(&server, &["urn:a", "urn:b"]);
    let mut again = SseStream::open(&format!("{url}&lastEventID=earliest")).await;
    assert_eq!(data_of(again.events(2).await), ["1", "2"]);
    again.expect_quiet(Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cookie_publishes_only_from_allowed_origins_and_a_token_ends_at_its_expiry() {
    let server = Server::start(&format!(
        "[mercure]\npublisher_jwt_key = {KEY:?}\npublish_origins = [\"https://app.example.com\"]\n"
    ));
    let cookie = format!("mercureAuthorization={}", publisher());
    let body = "topic=urn%3Aa&data=x";
    let send = |origin: &'static str| {
        client()
            .post(server.url("/.well-known/mercure"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", cookie.clone())
            .header("origin", origin)
            .body(body)
            .send()
    };
    assert_eq!(send("https://app.example.com").await.unwrap().status(), 200);
    expect_error(send("https://evil.example.com").await.unwrap(), 403, 40300).await;

    // A subscriber's token that expires in a second ends its stream then.
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    let claims = json!({"mercure": {"subscribe": ["*"]}, "exp": exp});
    let key = jsonwebtoken::EncodingKey::from_secret(KEY.as_bytes());
    let expiring = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap();
    let url = subscribe_url(&server, &["*"]);
    let mut stream = SseStream::open_with(&url, bearer_headers(&expiring)).await;
    let event = stream.next_event().await.unwrap();
    assert_eq!(event.event, "error");
    let error: Value = serde_json::from_str(&event.data).unwrap();
    assert_eq!(error["code"], 40142);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symfony_publishes_as_it_does_to_any_mercure_hub() {
    let server = hub(false);
    let topic = "https://example.com/books/1";
    let allowed = token(json!({"subscribe": [topic]}), KEY);
    let url = subscribe_url(&server, &["https://example.com/books/{id}"]);
    let mut stream = SseStream::open_with(&url, bearer_headers(&allowed)).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/php/publish.php");
    let hub_url = server.url("/.well-known/mercure");
    let data = "first line\nsecond line";
    let output = std::process::Command::new("php")
        .args([script, &hub_url, &publisher(), topic, data])
        .output()
        .expect("php (./test.sh installs php-cli and php-symfony-mercure)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let id = String::from_utf8(output.stdout).unwrap();
    assert!(id.starts_with("urn:uuid:"), "{id}");
    let event = stream.next_event().await.unwrap();
    assert_eq!(event.id, id);
    assert_eq!(event.event, "greeting");
    assert_eq!(event.retry, Some(2500));
    assert_eq!(event.data, data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_may_be_es256_signed_and_checked_with_a_public_key_file() {
    let pair = rcgen::KeyPair::generate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let public = dir.path().join("mercure.pem");
    std::fs::write(&public, pair.public_key_pem()).unwrap();
    let server = Server::start(&format!(
        "[mercure]\npublisher_jwt_key_file = {public:?}\nanonymous = false\n"
    ));
    let es256 = |claim: Value| {
        let key = jsonwebtoken::EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap();
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        jsonwebtoken::encode(&header, &json!({ "mercure": claim }), &key).unwrap()
    };
    // Subscribers' tokens are checked with the publishers' key when none of their own is set.
    let url = subscribe_url(&server, &["urn:a"]);
    let subscriber = es256(json!({"subscribe": ["*"]}));
    let mut stream = SseStream::open_with(&url, bearer_headers(&subscriber)).await;
    let publisher = es256(json!({"publish": ["*"]}));
    let sent = post(
        &server,
        Some(&publisher),
        &[("topic", "urn:a"), ("data", "x")],
    )
    .await;
    assert_eq!(sent.status(), 200);
    let id = sent.text().await.unwrap();
    assert_eq!(stream.next_event().await.unwrap().id, id);
    // An HS256 token, whatever its secret, is not one.
    let hs256 = token(json!({"publish": ["*"]}), "");
    expect_error(
        post(&server, Some(&hs256), &[("topic", "urn:a")]).await,
        401,
        40101,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_a_subscriber_may_not_see_neither_hold_back_nor_reorder_the_others() {
    let server = Server::start(&format!(
        "[mercure]\npublisher_jwt_key = {KEY:?}\nanonymous = true\n[channels]\nhistory_size = 1000\n"
    ));
    // More updates than one read takes that a template subscriber does not match, and that
    // an anonymous subscriber of the topic may not see (private), then one each may see.
    for _ in 0..300 {
        publish(
            &server,
            &[("topic", "https://example.com/b/1"), ("data", "b")],
        )
        .await;
        let private = [("topic", "urn:a"), ("data", "secret"), ("private", "on")];
        publish(&server, &private).await;
    }
    publish(
        &server,
        &[("topic", "https://example.com/a/1"), ("data", "a")],
    )
    .await;
    publish(&server, &[("topic", "urn:a"), ("data", "public a")]).await;
    publish(&server, &[("topic", "urn:b"), ("data", "public b")]).await;

    // Sent at once, with nothing published after.
    let url = subscribe_url(&server, &["https://example.com/a/{x}"]);
    let mut template = SseStream::open(&format!("{url}&lastEventID=earliest")).await;
    assert_eq!(template.next_event().await.unwrap().data, "a");
    // In publish order across the subscriber's topics.
    let url = subscribe_url(&server, &["urn:a", "urn:b"]);
    let mut exact = SseStream::open(&format!("{url}&lastEventID=earliest")).await;
    assert_eq!(data_of(exact.events(2).await), ["public a", "public b"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_subscriber_gets_a_comment_every_heartbeat() {
    let server = Server::start(&format!(
        "[mercure]\npublisher_jwt_key = {KEY:?}\nanonymous = true\nheartbeat_ms = 200\nsubscriptions = false\n\
         [stream]\nkeepalive_ms = 60000\n"
    ));
    let mut stream = subscribe(&server, &["urn:a"]).await;
    let frame = stream.next_frame_within(Duration::from_secs(2)).await;
    assert!(
        matches!(
            frame,
            Some(streamgate::wire::sse_parser::SseFrame::Comment(_))
        ),
        "{frame:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_is_discovered_from_its_answers_and_the_landing_page() {
    let server = hub(true);
    let discovery = "</.well-known/mercure>; rel=\"mercure\"";
    let page = client().get(server.url("/")).send().await.unwrap();
    assert_eq!(page.headers()["link"], discovery);
    let published = post(
        &server,
        Some(&publisher()),
        &[("topic", "urn:t"), ("data", "x")],
    )
    .await;
    assert_eq!(published.headers()["link"], discovery);
    let subscribed = client()
        .get(subscribe_url(&server, &["urn:t"]))
        .send()
        .await
        .unwrap();
    assert_eq!(subscribed.headers()["link"], discovery);
    // Without a hub, the page names none.
    let plain = Server::start("");
    let page = client().get(plain.url("/")).send().await.unwrap();
    assert!(page.headers().get("link").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_has_at_most_as_many_selectors_as_a_connection_has_streams() {
    let server = Server::start(&format!(
        "{}[limits]\nmax_streams_per_connection = 3\n",
        hub_config(true)
    ));
    let templates = ["urn:a:{x}", "urn:b:{x}", "urn:c:{x}", "urn:d:{x}"];
    let response = client()
        .get(subscribe_url(&server, &templates))
        .send()
        .await
        .unwrap();
    let error = expect_error(response, 400, 40000).await;
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("4 selectors"), "{message}");
    let response = client()
        .get(subscribe_url(&server, &templates[..3]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}
