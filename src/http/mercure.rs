//! The Mercure hub at `/.well-known/mercure`: publish with a form POST, subscribe with
//! EventSource and topic selectors, authorize with JWTs carrying the `mercure` claim.
//!
//! An update is a message of one channel, `[mercure]` (a name clients cannot subscribe to
//! by themselves): history, resume, limits, metrics and the bus work for it as for every
//! other channel, in one order for all topics. A subscriber's outlet reads that channel and
//! keeps the updates its selectors match (and, for private ones, its token allows); the
//! Mercure wire format puts the update's own id, type and retry in each event.

mod selector;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Value, json};

use self::selector::{Selector, any_matches};
use super::streams::{respond, unavailable};
use super::{ApiError, AppState};
use crate::config::mercure::MercureConfig;
use crate::hub::{Event, NewMessage};
use crate::outlet::{Filter, Start, StreamSpec};
use crate::wire::WireFormat;
use crate::wire::envelope::{ErrorInfo, codes};

/// The channel every update goes to.
pub const CHANNEL: &str = "[mercure]";

/// `POST /.well-known/mercure`: publishes an update; answers its id.
pub async fn publish(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let config = mercure(&state)?;
    let token = match bearer(&headers) {
        Some(token) => token,
        None => {
            let token = cookie(&headers, &config.cookie_name).ok_or_else(|| {
                unauthorized("publishing needs a JWT: Authorization: Bearer, or the cookie")
            })?;
            // A browser sends the cookie to any page's request: only pages of the allowed
            // origins may publish with it.
            let origin = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok());
            if !origin.is_some_and(|o| config.publish_origins.iter().any(|p| p == o)) {
                return Err(ErrorInfo::new(
                    codes::FORBIDDEN,
                    "publishing with the cookie needs an Origin listed in [mercure] \
                     publish_origins",
                )
                .into());
            }
            token
        }
    };
    let (claim, _) = verify(&config.publisher_jwt_key, &token)?;
    let update = Update::read(&body)?;
    let allowed: Vec<Selector> = claim.publish.iter().map(|s| Selector::new(s)).collect();
    if !update
        .topics
        .iter()
        .all(|topic| allowed.iter().any(|s| s.matches(topic)))
    {
        return Err(ErrorInfo::new(
            codes::FORBIDDEN,
            "the token's mercure.publish selectors do not match every topic of the update",
        )
        .into());
    }
    let id = update.id.clone();
    let message = NewMessage {
        id: None,
        name: None,
        encoding: None,
        data: update.into_json(),
    };
    state
        .hub
        .publish(CHANNEL, vec![message])
        .await
        .map_err(unavailable)?;
    let mut response = id.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(response)
}

/// `GET /.well-known/mercure?topic=...`: the updates the selectors match, as they come,
/// after the update `Last-Event-ID` (or `lastEventID`) names if it is still in history.
pub async fn subscribe(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let config = mercure(&state)?;
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    let param = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let selectors: Vec<Selector> = pairs
        .iter()
        .filter(|(k, _)| k == "topic" || k == "match")
        .map(|(_, v)| Selector::new(v))
        .collect();
    if selectors.is_empty() {
        return Err(ErrorInfo::bad_request(
            "subscribing needs at least one topic selector: ?topic=...",
        )
        .into());
    }
    let token = bearer(&headers)
        .or_else(|| param("authorization"))
        .or_else(|| cookie(&headers, &config.cookie_name));
    let (claim, expires_at_ms) = match token {
        Some(token) => verify(config.subscriber_key(), &token)?,
        None if config.anonymous => (Claim::default(), None),
        None => {
            return Err(unauthorized(
                "subscribing needs a JWT ([mercure] anonymous is off): Authorization: \
                 Bearer, ?authorization=, or the cookie",
            )
            .into());
        }
    };
    let authorized: Vec<Selector> = claim.subscribe.iter().map(|s| Selector::new(s)).collect();
    let last = headers
        .get("last-event-id")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .or_else(|| param("lastEventID"));
    let start = match last.as_deref() {
        None => Start::Live,
        Some("earliest") => Start::Rewind(u64::MAX),
        Some(id) => position_of(&state, id).map_or(Start::Live, Start::After),
    };
    let filter = Filter(Arc::new(move |event: &Event| {
        let Some(message) = event.message() else {
            return false;
        };
        let topics = topics(&message.data);
        let private = message.data["private"].as_bool().unwrap_or(false);
        any_matches(&selectors, &topics) && (!private || any_matches(&authorized, &topics))
    }));
    let spec = StreamSpec::log(CHANNEL.to_owned(), start);
    let format = WireFormat::Mercure;
    respond(
        &state,
        &[spec],
        format,
        false,
        None,
        expires_at_ms,
        Some(filter),
    )
    .await
}

/// The update's topics as kept in its message.
fn topics(data: &Value) -> Vec<String> {
    data["topics"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The position of the update with id `id`, if history still holds it.
fn position_of(state: &AppState, id: &str) -> Option<u64> {
    let channel = state.hub.get(CHANNEL)?;
    let events = channel.retained(state.hub.limits(), crate::clock::now_ms());
    events
        .iter()
        .rev()
        .find(|e| e.message().is_some_and(|m| m.data["id"] == id))
        .map(|e| e.seq)
}

/// `[mercure]`, or 404 when the hub is off.
fn mercure(state: &AppState) -> Result<&MercureConfig, ErrorInfo> {
    state.config.mercure.as_ref().ok_or_else(|| {
        ErrorInfo::new(
            codes::NOT_FOUND,
            "the Mercure hub is off: add a [mercure] section to the config",
        )
    })
}

/// An update as a publisher's form gives it.
struct Update {
    id: String,
    topics: Vec<String>,
    data: String,
    private: bool,
    kind: Option<String>,
    retry: Option<u64>,
}

impl Update {
    fn read(body: &[u8]) -> Result<Update, ErrorInfo> {
        let mut update = Update {
            id: String::new(),
            topics: Vec::new(),
            data: String::new(),
            private: false,
            kind: None,
            retry: None,
        };
        for (key, value) in form_urlencoded::parse(body) {
            match &*key {
                "topic" => update.topics.push(value.into_owned()),
                "data" => update.data = value.into_owned(),
                "private" => update.private = true,
                "id" => update.id = value.into_owned(),
                "type" => update.kind = Some(value.into_owned()),
                "retry" => {
                    let retry = value.parse().map_err(|_| {
                        ErrorInfo::bad_request(format!("retry {value:?} is not a whole number"))
                    })?;
                    update.retry = Some(retry);
                }
                _ => {}
            }
        }
        if update.topics.is_empty() {
            return Err(ErrorInfo::bad_request("an update needs a topic"));
        }
        if update.id.starts_with('#') || update.id.chars().any(char::is_control) {
            return Err(ErrorInfo::bad_request(
                "an update's id may not start with # nor hold control characters",
            ));
        }
        if update
            .kind
            .as_deref()
            .is_some_and(|k| k.chars().any(char::is_control))
        {
            return Err(ErrorInfo::bad_request(
                "an update's type may not hold control characters",
            ));
        }
        if update.id.is_empty() {
            update.id = format!("urn:uuid:{}", uuid::Uuid::new_v4());
        }
        Ok(update)
    }

    /// The message data the update is kept as.
    fn into_json(self) -> Value {
        json!({
            "id": self.id,
            "topics": self.topics,
            "data": self.data,
            "private": self.private,
            "type": self.kind,
            "retry": self.retry,
        })
    }
}

/// The `mercure` claim of a token.
#[derive(Debug, Default, Deserialize)]
struct Claim {
    #[serde(default)]
    publish: Vec<String>,
    #[serde(default)]
    subscribe: Vec<String>,
}

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    mercure: Claim,
    exp: Option<u64>,
}

/// Checks an HS256 token signed with `key`: its `mercure` claim, and when it expires
/// (milliseconds since the Unix epoch) if it does. 401 when it does not verify.
fn verify(key: &str, token: &str) -> Result<(Claim, Option<u64>), ErrorInfo> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.required_spec_claims.clear();
    validation.validate_aud = false;
    validation.leeway = 0;
    let decoded = jsonwebtoken::decode::<Claims>(
        token,
        &DecodingKey::from_secret(key.as_bytes()),
        &validation,
    )
    .map_err(|e| unauthorized(format!("the Mercure JWT is not valid: {e}")))?;
    let claims = decoded.claims;
    Ok((claims.mercure, claims.exp.map(|s| s.saturating_mul(1000))))
}

fn unauthorized(message: impl Into<String>) -> ErrorInfo {
    ErrorInfo::new(codes::BAD_CREDENTIALS, message)
}

/// The token of an `Authorization: Bearer` header.
fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ")?.trim();
    Some(token.to_owned())
}

/// The value of cookie `name`.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key == name).then(|| value.to_owned())
        })
}
