//! A Mercure hub under test, and what its publishers and subscribers do.

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde_json::{Value, json};

use super::{Server, SseStream, client};

/// The hub's publisher key (HS256), which checks subscribers' tokens too.
pub const KEY: &str = "!ChangeThisMercureHubJWTSecretKey!";

pub fn hub(anonymous: bool) -> Server {
    Server::start(&hub_config(anonymous))
}

/// The `[mercure]` section of a hub with `KEY`.
pub fn hub_config(anonymous: bool) -> String {
    format!("[mercure]\npublisher_jwt_key = {KEY:?}\nanonymous = {anonymous}\n")
}

/// An HS256 token with `claim` as its `mercure` claim.
pub fn token(claim: Value, key: &str) -> String {
    let claims = json!({ "mercure": claim });
    let key = jsonwebtoken::EncodingKey::from_secret(key.as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap()
}

pub fn publisher() -> String {
    token(json!({"publish": ["*"]}), KEY)
}

/// Publishes the form `fields` with `bearer`; the response.
pub async fn post(
    server: &Server,
    bearer: Option<&str>,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let mut request = client()
        .post(server.url("/.well-known/mercure"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    request.send().await.unwrap()
}

/// Publishes and returns the update's id.
pub async fn publish(server: &Server, fields: &[(&str, &str)]) -> String {
    let response = post(server, Some(&publisher()), fields).await;
    assert_eq!(response.status(), 200);
    let kind = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(kind.starts_with("text/plain"), "{kind}");
    response.text().await.unwrap()
}

pub fn subscribe_url(server: &Server, selectors: &[&str]) -> String {
    let query: Vec<String> = selectors
        .iter()
        .map(|s| format!("topic={}", urlencode(s)))
        .collect();
    server.url(&format!("/.well-known/mercure?{}", query.join("&")))
}

pub fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

pub async fn subscribe(server: &Server, selectors: &[&str]) -> SseStream {
    SseStream::open(&subscribe_url(server, selectors)).await
}

pub fn bearer_headers(token: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let value = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
    headers.insert(AUTHORIZATION, value);
    headers
}

/// Every subscription's URL, and so every subscription update's topic.
pub const EVERY_SUBSCRIPTION: &str = "/.well-known/mercure/subscriptions{/topic,subscriber}";

pub fn hub_with_subscriptions() -> Server {
    Server::start(&format!("{}subscriptions = true\n", hub_config(true)))
}

/// A path segment as the protocol puts a topic or a subscriber in a subscription's URL.
pub fn segment(text: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(text, KEEP).to_string()
}

/// `GET` of a subscriptions URL with `bearer`: the status and the document.
pub async fn list(server: &Server, path: &str, bearer: Option<&str>) -> (u16, Value) {
    let mut request = client().get(server.url(path));
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    if status == 200 {
        let kind = &response.headers()["content-type"];
        assert_eq!(kind, "application/ld+json");
        assert!(response.headers().contains_key("link"));
    }
    (status, response.json().await.unwrap())
}

/// The next subscription update a stream gets: its event id and its document.
pub async fn next_subscription(stream: &mut SseStream) -> (String, Value) {
    let event = stream.next_event().await.unwrap();
    (event.id, serde_json::from_str(&event.data).unwrap())
}

/// The subscriptions of a collection, as (topic, subscriber, active), sorted.
pub fn summary(collection: &Value) -> Vec<(String, String, bool)> {
    let listed = collection["subscriptions"].as_array().unwrap();
    let mut summary: Vec<_> = listed
        .iter()
        .map(|s| {
            let field = |name: &str| s[name].as_str().unwrap().to_owned();
            (field("topic"), field("subscriber"), s["active"] == true)
        })
        .collect();
    summary.sort();
    summary
}
