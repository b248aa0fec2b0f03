//! Mercure's active subscriptions (`[mercure] subscriptions = true`), built on presence: a
//! subscriber is a member of one presence set per selector it reads (the set of channel
//! `[mercure]\n{selector}`, with its token's `mercure.payload` as data) while its stream is
//! open. Each change of a set is published as a private update on
//! `/.well-known/mercure/subscriptions/{selector}/{subscriber}`, and
//! `GET /.well-known/mercure/subscriptions[/{selector}[/{subscriber}]]` lists the sets. On a
//! shared bus the sets are the cluster's (see `hub::shared_presence`): every node lists every
//! subscriber, and a dead node's subscribers end, announced by the node that noticed.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde_json::{Value, json};

use super::keys::unauthorized;
use super::selector::{Selector, any_matches};
use super::{
    CHANNEL, DISCOVERY, Update, dispatch, hub, may_know, newest_known, subscriber_token,
    topic_channel,
};
use crate::http::query::Query;
use crate::http::streams::unavailable;
use crate::http::{ApiError, AppState};
use crate::hub::Hub;
use crate::hub::entered::Entering;
use crate::hub::presence::Announce;
use crate::wire::envelope::{ErrorInfo, PresenceAction, PresenceMessage, codes};

/// Where subscriptions are listed, and the prefix of subscription updates' topics.
pub const PATH: &str = "/.well-known/mercure/subscriptions";

/// What stays as it is when a selector or a subscriber is put in a path: RFC 3986's
/// unreserved characters (so `:`, `/`, `{` and `}` are escaped, as the protocol asks).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The JSON-LD context of Mercure's documents.
const CONTEXT: &str = "https://mercure.rocks/";

/// Publishes each change of the subscribers' presence sets as a subscription update, from
/// now on (whichever node's subscriber it is about, on a shared bus: the node that saw it).
pub fn announce(hub: &Arc<Hub>) {
    let publishing = Arc::downgrade(hub);
    let announce: Announce = Arc::new(move |change| {
        let hub = publishing.upgrade();
        Box::pin(async move {
            let (Some(hub), Some(document)) = (hub, subscription(&change)) else {
                return Ok(());
            };
            let update = Update {
                id: format!("urn:uuid:{}", uuid::Uuid::new_v4()),
                topics: vec![document["id"].as_str().unwrap_or_default().to_owned()],
                data: with_context(document).to_string(),
                private: true,
                kind: None,
                retry: None,
            };
            dispatch(&hub, update).await.map(drop)
        })
    });
    hub.announce_presence(&crate::hub::mercure_topic(""), announce);
}

/// What a subscriber reading `selectors` enters: each selector's set, as a new subscriber
/// with its token's `payload`.
pub fn entering(selectors: &[&str], payload: Value) -> Entering {
    Entering {
        client_id: format!("urn:uuid:{}", uuid::Uuid::new_v4()),
        data: payload,
        channels: selectors.iter().map(|s| topic_channel(s)).collect(),
        // A subscriber's selectors are fixed.
        admits: Arc::new(|_| false),
    }
}

/// The subscription a presence change of a `[mercure]` set is about, as the protocol's
/// JSON-LD document (without `@context`); `None` for another set's change.
fn subscription(change: &PresenceMessage) -> Option<Value> {
    let selector = change.channel.strip_prefix(CHANNEL)?.strip_prefix('\n')?;
    let subscriber = &change.client_id;
    let id = format!(
        "{PATH}/{}/{}",
        utf8_percent_encode(selector, SEGMENT),
        utf8_percent_encode(subscriber, SEGMENT)
    );
    let mut document = json!({
        "id": id,
        "type": "Subscription",
        "topic": selector,
        "subscriber": subscriber,
        "active": change.action != PresenceAction::Leave,
    });
    if !change.data.is_null() {
        document["payload"] = change.data.clone();
    }
    Some(document)
}

/// `document` with the context first, as a document of its own.
fn with_context(document: Value) -> Value {
    let mut with = json!({ "@context": CONTEXT });
    if let (Some(with), Value::Object(fields)) = (with.as_object_mut(), document) {
        with.extend(fields);
    }
    with
}

/// `GET /.well-known/mercure/subscriptions[/{selector}[/{subscriber}]]`: the subscriptions
/// (on a shared bus, every node's), all, of one selector, or one (404 when it is not
/// active). The token's `mercure.subscribe` selectors must match the URL's path, as they
/// would the topic of the subscription updates it describes.
pub async fn subscriptions(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let keys = hub(&state)?;
    let config = &keys.config;
    if !config.subscriptions {
        return Err(ErrorInfo::new(
            codes::NOT_FOUND,
            "subscriptions are not served: set [mercure] subscriptions = true",
        )
        .into());
    }
    let query = Query::parse(query.as_deref());
    let token = subscriber_token(&headers, &query, config).ok_or_else(|| {
        unauthorized(
            "listing subscriptions needs a JWT: Authorization: Bearer, ?authorization=, or \
             the cookie",
        )
    })?;
    let (claim, _) = keys.subscriber.verify(&token)?;
    let authorized: Vec<Selector> = claim.subscribe.iter().map(|s| Selector::new(s)).collect();
    let path = uri.path();
    if !any_matches(&authorized, std::iter::once(path)) {
        return Err(ErrorInfo::new(
            codes::FORBIDDEN,
            format!("the token's mercure.subscribe selectors do not match {path}"),
        )
        .into());
    }
    let asked = path.strip_prefix(PATH).unwrap_or_default();
    let segments: Vec<String> = asked
        .split('/')
        .skip(1)
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let last_event_id = newest_known(&state, &|data| may_know(&authorized, data))
        .unwrap_or_else(|| "earliest".to_owned());
    let document = match segments.as_slice() {
        [] => {
            let prefix = crate::hub::mercure_topic("");
            let channels = state.hub.present_channels(&prefix).await;
            let mut all = Vec::new();
            for channel in channels.map_err(unavailable)? {
                all.extend(listed(&state.hub, &channel).await?);
            }
            collection(path, all, last_event_id)
        }
        [selector] => {
            let listed = listed(&state.hub, &topic_channel(selector)).await?;
            collection(path, listed, last_event_id)
        }
        [selector, subscriber] => {
            let listed = listed(&state.hub, &topic_channel(selector)).await?;
            let mut one = listed
                .into_iter()
                .find(|s| s["subscriber"] == subscriber.as_str())
                .ok_or_else(|| {
                    ErrorInfo::new(
                        codes::NOT_FOUND,
                        format!("{subscriber} has no active subscription to {selector}"),
                    )
                })?;
            one["lastEventID"] = Value::from(last_event_id);
            with_context(one)
        }
        _ => {
            return Err(ErrorInfo::new(
                codes::NOT_FOUND,
                format!("{path} is not a subscription: {PATH}[/{{selector}}[/{{subscriber}}]]"),
            )
            .into());
        }
    };
    let mut response = document.to_string().into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/ld+json"),
    );
    headers.insert(header::LINK, DISCOVERY);
    // Who subscribes changes from one moment to the next.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, must-revalidate"),
    );
    Ok(response)
}

/// The active subscriptions of the presence set of `channel`.
async fn listed(hub: &Hub, channel: &str) -> Result<Vec<Value>, ApiError> {
    let members = hub.members(channel).await.map_err(unavailable)?;
    Ok(members.iter().filter_map(subscription).collect())
}

/// A collection of subscriptions.
fn collection(path: &str, subscriptions: Vec<Value>, last_event_id: String) -> Value {
    json!({
        "@context": CONTEXT,
        "id": path,
        "type": "Subscriptions",
        "lastEventID": last_event_id,
        "subscriptions": subscriptions,
    })
}
