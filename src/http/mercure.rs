//! The Mercure hub at `/.well-known/mercure`: publish with a form POST, subscribe with
//! EventSource and topic selectors, authorize with JWTs carrying the `mercure` claim.
//!
//! An update is a message of one channel, `[mercure]` (a name clients cannot subscribe to
//! by themselves), in one order for all topics (on Redis, for all nodes), so history,
//! resume, limits, metrics and the bus work for updates as for every other channel. Each
//! node copies every update into a channel per topic of it (see `topics`): a subscriber
//! whose selectors are all exact topics reads those topics' channels, so an update wakes
//! only the subscribers of its topics (the hub's channel map is the index); one with `*` or
//! a URI template reads `[mercure]` and keeps the updates its selectors match. Either keeps
//! only the private updates its token allows, and an update that reached it through two of
//! its topics once. The Mercure wire format puts the update's own id, type and retry in
//! each event.

mod keys;
pub mod selector;
mod subscriptions;
pub mod topics;

pub use keys::MercureKeys;
pub use subscriptions::{PATH as SUBSCRIPTIONS, announce as announce_subscriptions, subscriptions};

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use self::keys::{Claim, unauthorized};
use self::selector::{Selector, any_matches};
use super::query::Query;
use super::streams::{Delivery, respond, unavailable};
use super::{ApiError, AppState};
use crate::config::mercure::MercureConfig;
use crate::hub::{Append, Event, Hub, NewMessage};
use crate::outlet::{Filter, Start, StreamSpec};
use crate::wire::WireFormat;
use crate::wire::envelope::{ErrorInfo, codes};

/// The channel every update goes to.
pub const CHANNEL: &str = crate::hub::MERCURE;

/// Topics one update may have: each is a channel the update is copied to.
const MAX_TOPICS: usize = 100;
/// The longest topic: it names a channel.
const MAX_TOPIC_BYTES: usize = 2048;

/// The channel of the updates of `topic`.
fn topic_channel(topic: &str) -> String {
    crate::hub::mercure_topic(topic)
}

/// `POST /.well-known/mercure`: publishes an update; answers its id.
pub async fn publish(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let hub = hub(&state)?;
    let config = &hub.config;
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
    let (claim, _) = hub.publisher.verify(&token)?;
    let update = Update::read(&body)?;
    let allowed: Vec<Selector> = claim.publish.iter().map(|s| Selector::new(s)).collect();
    if !update
        .topics
        .iter()
        .all(|topic| any_matches(&allowed, std::iter::once(topic.as_str())))
    {
        return Err(ErrorInfo::new(
            codes::FORBIDDEN,
            "the token's mercure.publish selectors do not match every topic of the update",
        )
        .into());
    }
    let id = dispatch(&state.hub, update).await.map_err(unavailable)?;
    let mut response = id.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::LINK, DISCOVERY);
    Ok(response)
}

/// Publishes `update`: a message of `[mercure]` (each node copies it to its topics'
/// channels). Answers its id.
async fn dispatch(hub: &Arc<Hub>, update: Update) -> Result<String, String> {
    let id = update.id.clone();
    let message = Append::Messages(vec![as_message(update.into_json())]);
    hub.append(CHANNEL, message, None).await?;
    Ok(id)
}

/// The message an update (or a topic's copy of it) is kept as: its data alone.
fn as_message(data: Value) -> NewMessage {
    NewMessage {
        id: None,
        name: None,
        encoding: None,
        data,
    }
}

/// Where the hub is, as Mercure's discovery says it (RFC 8288, relative to the response's
/// own URL): on the hub's own answers and the landing page.
pub const DISCOVERY: HeaderValue =
    HeaderValue::from_static("</.well-known/mercure>; rel=\"mercure\"");

/// `GET /.well-known/mercure?topic=...`: the updates the selectors match, as they come,
/// after the update `Last-Event-ID` (or `lastEventID`) names if it is still in history.
pub async fn subscribe(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let hub = hub(&state)?;
    let config = &hub.config;
    let query = Query::parse(query.as_deref());
    let mut asked: Vec<&str> = query
        .pairs()
        .iter()
        .filter(|(k, _)| k == "topic" || k == "match")
        .map(|(_, v)| v.as_str())
        .collect();
    asked.sort_unstable();
    asked.dedup();
    let selectors: Vec<Selector> = asked.iter().map(|s| Selector::new(s)).collect();
    if selectors.is_empty() {
        return Err(ErrorInfo::bad_request(
            "subscribing needs at least one topic selector: ?topic=...",
        )
        .into());
    }
    let (claim, expires_at_ms) = match subscriber_token(&headers, &query, config) {
        Some(token) => hub.subscriber.verify(&token)?,
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
    // Exact topics only: their channels. Otherwise every update, matched here.
    let mut channels: Vec<String> = selectors
        .iter()
        .map(|s| match s {
            Selector::Exact(topic) => Some(topic_channel(topic)),
            Selector::All | Selector::Template(_) => None,
        })
        .collect::<Option<_>>()
        .unwrap_or_else(|| vec![CHANNEL.to_owned()]);
    channels.sort_unstable();
    channels.dedup();
    // Each selector is a stream's worth of work (a channel to read, or a template to
    // match and, with subscriptions on, a presence set to enter).
    let most = state.config.limits.max_streams_per_connection;
    if asked.len() > most {
        return Err(ErrorInfo::bad_request(format!(
            "{} selectors are more than one subscription may have ([limits] \
             max_streams_per_connection = {most})",
            asked.len()
        ))
        .into());
    }
    let last = headers
        .get("last-event-id")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .or_else(|| query.get("lastEventID").map(str::to_owned));
    // Whether the subscriber may know of an update (public, or its token allows it), and
    // whether it is sent to it (a selector matches one of its topics too).
    let may_know = Arc::new(move |data: &Value| may_know(&authorized, data));
    let knows = Arc::clone(&may_know);
    let sees = move |data: &Value| any_matches(&selectors, topics(data)) && knows(data);
    // Where the stream starts: after the update named, if history holds it and the
    // subscriber may know of it (a private one it may not is as unknown to it as one never
    // published: its existence shows nowhere); from the oldest update kept for `earliest`
    // or an unknown id; live without one. The response's `Last-Event-ID` says which.
    let resumed = match last.as_deref() {
        Some(id) if id != "earliest" => position_of(&state, id, &*may_know),
        _ => None,
    };
    let since = match (last.as_deref(), resumed) {
        (Some(id), Some(_)) => id.to_owned(),
        (None, _) => newest_known(&state, &*may_know).unwrap_or_else(|| "earliest".to_owned()),
        (Some(_), None) => "earliest".to_owned(),
    };
    let streams: Vec<StreamSpec> = channels
        .into_iter()
        .map(|channel| {
            let start = match (last.as_deref(), resumed) {
                (None, _) => Start::Live,
                (Some(_), Some(position)) => resume_after(&state, &channel, position),
                (Some(_), None) => Start::Rewind(u64::MAX),
            };
            StreamSpec::log(channel, start)
        })
        .collect();
    // Copies of updates from before the stream's start are passed over: a topic's copies
    // come a moment after the update (and all of them as a node starts), so one may reach
    // a topic's channel after a subscriber started reading it.
    let floor = match (last.as_deref(), resumed) {
        (None, _) => state.hub.get(CHANNEL).map_or(0, |c| c.head()),
        (Some(_), Some(position)) => position,
        (Some(_), None) => 0,
    };
    let delivered = std::sync::Mutex::new(Recent::default());
    let filter = Filter(Arc::new(move |event: &Event| {
        let Some(message) = event.message() else {
            return false;
        };
        let source = topics::source(event);
        let fresh = |s| s > floor && delivered.lock().unwrap().first(s);
        sees(&message.data) && source.is_none_or(fresh)
    }));
    // With subscriptions on, the subscriber is present on each of its selectors while it
    // reads, and each change is published (see `subscriptions`).
    let enter = config
        .subscriptions
        .then(|| subscriptions::entering(&asked, claim.payload));
    let delivery = Delivery {
        filter: Some(filter),
        keepalive_ms: Some(config.heartbeat_ms),
        enter,
        ..Delivery::new(WireFormat::Mercure, false, expires_at_ms)
    };
    let mut response = respond(&state, &streams, None, delivery).await?;
    let headers = response.headers_mut();
    headers.insert(header::LINK, DISCOVERY);
    if let Ok(since) = HeaderValue::from_str(&since) {
        headers.insert("last-event-id", since);
    }
    if query.get("authorization").is_some() {
        // The token is in the URL: no shared cache may keep the response.
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-cache"),
        );
    }
    Ok(response)
}

/// A subscriber's token: from `Authorization: Bearer`, else the `authorization` query
/// parameter, else the cookie.
fn subscriber_token(headers: &HeaderMap, query: &Query, config: &MercureConfig) -> Option<String> {
    bearer(headers)
        .or_else(|| query.get("authorization").map(str::to_owned))
        .or_else(|| cookie(headers, &config.cookie_name))
}

/// Whether a subscriber whose token allows `authorized` may know of the update kept as
/// `data`: it is public, or one of its topics is allowed.
fn may_know(authorized: &[Selector], data: &Value) -> bool {
    let private = data["private"].as_bool().unwrap_or(false);
    !private || any_matches(authorized, topics(data))
}

/// The id of the newest update in history the subscriber may know of.
fn newest_known(state: &AppState, knows: &dyn Fn(&Value) -> bool) -> Option<String> {
    let channel = state.hub.get(CHANNEL)?;
    let events = channel.retained(state.hub.limits(), crate::clock::now_ms());
    let newest = events
        .iter()
        .rev()
        .filter_map(|e| e.message())
        .find(|m| knows(&m.data))?;
    newest.data["id"].as_str().map(str::to_owned)
}

/// The updates a subscriber got last (by position in `[mercure]`), to pass over the
/// second copy of one that reached it through two of its topics (copies come one after the
/// other).
#[derive(Default)]
struct Recent(std::collections::VecDeque<u64>);

impl Recent {
    /// How many are remembered: far more than an update has copies in a row.
    const KEPT: usize = 64;

    /// Whether `source` is new; it is remembered.
    fn first(&mut self, source: u64) -> bool {
        if self.0.contains(&source) {
            return false;
        }
        if self.0.len() == Self::KEPT {
            self.0.pop_front();
        }
        self.0.push_back(source);
        true
    }
}

/// The update's topics as kept in its message.
fn topics(data: &Value) -> impl Iterator<Item = &str> + Clone {
    let topics = data["topics"].as_array().map(Vec::as_slice);
    topics.unwrap_or_default().iter().filter_map(Value::as_str)
}

/// The position in `[mercure]` of the newest update `id` the subscriber may know of that
/// history holds; a resume after it starts there.
fn position_of(state: &AppState, id: &str, knows: &dyn Fn(&Value) -> bool) -> Option<u64> {
    let channel = state.hub.get(CHANNEL)?;
    let events = channel.retained(state.hub.limits(), crate::clock::now_ms());
    let named = events.iter().rev().find(|e| {
        e.message()
            .is_some_and(|m| m.data["id"] == id && knows(&m.data))
    })?;
    Some(named.seq)
}

/// Where channel `channel` (`[mercure]` or a topic's) starts for a resume after the
/// update at `position` of `[mercure]`: after it, or after the last copy of an update up
/// to it.
fn resume_after(state: &AppState, channel: &str, position: u64) -> Start {
    if channel == CHANNEL {
        return Start::After(position);
    }
    let Some(channel) = state.hub.get(channel) else {
        return Start::Live;
    };
    let events = channel.retained(state.hub.limits(), crate::clock::now_ms());
    let copied = |e: &Arc<Event>| topics::source(e).is_some_and(|s| s <= position);
    match events.iter().rposition(copied) {
        Some(last) => Start::After(events[last].seq),
        // Every copy it holds is of a later update: all of them.
        None => Start::After(events.first().map_or(channel.bounds().1, |e| e.seq - 1)),
    }
}

/// The hub's config and keys, or 404 when the hub is off.
fn hub(state: &AppState) -> Result<&MercureKeys, ErrorInfo> {
    state.mercure.as_deref().ok_or_else(|| {
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
        if let Some(long) = update.topics.iter().find(|t| t.len() > MAX_TOPIC_BYTES) {
            return Err(ErrorInfo::bad_request(format!(
                "a topic may be {MAX_TOPIC_BYTES} bytes long at most; one is {}",
                long.len()
            )));
        }
        if update.topics.len() > MAX_TOPICS {
            return Err(ErrorInfo::bad_request(format!(
                "an update may have {MAX_TOPICS} topics at most"
            )));
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
