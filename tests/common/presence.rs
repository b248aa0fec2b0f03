//! Presence as clients use it: keys, tokens with a clientId, entering, listing.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::{Server, SseStream, client};

/// Keys of a gateway with presence: `app` may enter `room:*`, `reader` only subscribe.
pub const KEYS: &str = r#"
[[key]]
name = "app"
secret = "app-secret-1"
capabilities = { "room:*" = ["subscribe", "publish", "presence"] }

[[key]]
name = "reader"
secret = "reader-secret-2"
capabilities = { "room:*" = ["subscribe"] }
"#;

/// A token for `client_id` (if any), signed with key `kid`.
pub fn token(kid: &str, secret: &str, client_id: Option<&str>) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    // As much as the signing key allows.
    let mut claims = json!({"exp": exp, "capability": {"*": ["*"]}});
    if let Some(id) = client_id {
        claims["clientId"] = json!(id);
    }
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid.into());
    let key = EncodingKey::from_secret(secret.as_bytes());
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

pub fn app(client_id: &str) -> String {
    token("app", "app-secret-1", Some(client_id))
}

pub async fn post(server: &Server, channel: &str, token: &str, body: Value) -> reqwest::Response {
    client()
        .post(server.url(&format!("/channels/{channel}/presence")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

pub async fn members(server: &Server, channel: &str, token: &str) -> Vec<Value> {
    let response = client()
        .get(server.url(&format!("/channels/{channel}/presence")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// `(action, clientId, data)` of each member or presence message.
pub fn summary(messages: &[Value]) -> Vec<(String, String, Value)> {
    messages
        .iter()
        .map(|m| {
            (
                m["action"].as_str().unwrap().to_owned(),
                m["clientId"].as_str().unwrap().to_owned(),
                m["data"].clone(),
            )
        })
        .collect()
}

/// The next presence change a stream hears, as (action, clientId, data).
pub async fn next_change(stream: &mut SseStream) -> (String, String, Value) {
    let event = stream.next_event().await.expect("a presence event");
    assert_eq!(event.event, "presence", "{event:?}");
    let message: Value = serde_json::from_str(&event.data).unwrap();
    summary(&[message]).remove(0)
}
