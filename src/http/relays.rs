//! Upstream SSE servers under their listen paths: `shared` relays subscribe the
//! client to the topic's channel; `passthrough` relays proxy the request 1:1.

use axum::extract::Request;
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use reqwest::header::{HeaderName, HeaderValue};

use super::passthrough;
use super::polls::resume_start;
use super::query::Query;
use super::stream_params::parse_rewind;
use super::streams::{Delivery, respond};
use super::{ApiError, AppState};
use crate::auth::Operation;
use crate::config::{RelayConfig, RelayMode, header_list};
use crate::hub::ChannelKind;
use crate::outlet::{Start, StreamSpec};
use crate::sources::relay::RelayTopic;
use crate::sources::topic::merge_query;
use crate::wire::WireFormat;
use crate::wire::envelope::{ErrorInfo, codes};

/// The relay whose listen path holds `path` (the longest one, if they nest), with the rest
/// of the path after it.
pub fn find<'a>(relays: &'a [RelayConfig], path: &str) -> Option<(&'a RelayConfig, String)> {
    relays
        .iter()
        .filter_map(|relay| {
            let listen = relay.path();
            relay.rest(&listen, path)?;
            Some((relay, listen))
        })
        .max_by_key(|(_, listen)| listen.len())
}

/// Serves a request under `relay`'s listen path.
pub async fn serve(
    state: &AppState,
    relay: &RelayConfig,
    listen: &str,
    request: Request,
) -> Result<Response, ApiError> {
    let path = request.uri().path();
    let rest = relay
        .rest(listen, path)
        .expect("found under the listen path");
    check_rest(rest)?;
    let route = relay.route(listen, rest).ok_or_else(|| {
        ErrorInfo::new(
            codes::NOT_FOUND,
            format!("relay {:?} has no topic {rest:?}", relay.name),
        )
    })?;
    let query = Query::parse(request.uri().query());
    let credential = query.credential(request.headers())?;
    let resource = format!("relay:{}/{}", relay.name, route.topic);
    let principal = state
        .auth
        .authorize(&credential, Operation::Subscribe, &resource)?;
    let upstream = upstream_url(relay, route.upstream.clone(), &query)?;
    // The relay's own upstream is allowed; this catches a path that left its base anyway.
    if !upstream
        .path()
        .starts_with(relay.upstream.path().trim_end_matches('/'))
    {
        return Err(ErrorInfo::bad_request("the path leaves the relay's upstream").into());
    }
    state
        .upstream
        .policy()
        .check(&upstream)
        .map_err(ErrorInfo::from)?;
    let injected = header_list(&relay.headers);
    let forwarded = forwarded_headers(relay, request.headers());
    match relay.mode {
        RelayMode::Passthrough => {
            let expires = principal.expires_at_ms;
            let headers = (injected, forwarded);
            passthrough::proxy(state, relay, upstream, headers, expires, request).await
        }
        RelayMode::Shared if request.method() != Method::GET => Err(ErrorInfo::new(
            codes::METHOD_NOT_ALLOWED,
            "a shared relay is subscribed to with GET",
        )
        .into()),
        RelayMode::Shared => {
            let topic = RelayTopic::new(
                relay,
                &route.topic,
                upstream,
                injected,
                forwarded,
                state.hub.secret(),
            );
            let expires = principal.expires_at_ms;
            shared(state, topic, &query, request.headers(), expires).await
        }
    }
}

/// Subscribes the client to the topic's channel and makes sure the topic is relayed. The
/// stream takes the parameters of `/sse` that fit one stream: `lastEvent`, `rewind`,
/// `enveloped` (default false: events as the upstream wrote them) and `heartbeats`.
async fn shared(
    state: &AppState,
    topic: RelayTopic,
    query: &Query,
    headers: &HeaderMap,
    expires_at_ms: Option<u64>,
) -> Result<Response, ApiError> {
    let format = WireFormat::new(true, query.flag("enveloped", false)?);
    let heartbeats = query.flag("heartbeats", false)?;
    let spec = StreamSpec {
        name: topic.stream.to_string(),
        channel: topic.channel.clone(),
        kind: ChannelKind::Log,
        start: start(query, headers)?,
        snapshots_only: false,
        topic: None,
        pending: None,
    };
    // The outlet subscribes before the relay is ensured, so a stopping relay sees it.
    let delivery = Delivery::new(format, heartbeats, expires_at_ms);
    let response = respond(state, &[spec], None, delivery).await?;
    state.relays.ensure(&topic);
    Ok(response)
}

/// Where a subscriber starts: resumed as on polls (`lastEvent`, `Last-Event-ID`), else with
/// `rewind`, else live. Resuming wins over rewinding, as on `/sse`.
fn start(query: &Query, headers: &HeaderMap) -> Result<Start, ErrorInfo> {
    match (resume_start(query, headers)?, query.get("rewind")) {
        (Start::Live, Some(rewind)) => parse_rewind(rewind),
        (start, _) => Ok(start),
    }
}

/// Refuses a topic path that could climb out of the relay's upstream path or its topics:
/// a `.` or `..` segment (the URL parser resolves them, `%2e` spelled too) or an encoded
/// slash or backslash, which upstreams may decode into a separator.
fn check_rest(rest: &str) -> Result<(), ErrorInfo> {
    let lower = rest.to_ascii_lowercase();
    let dots = lower.split('/').any(|segment| {
        let segment = segment.replace("%2e", ".");
        segment == "." || segment == ".."
    });
    if dots || lower.contains("%2f") || lower.contains("%5c") || lower.contains('\\') {
        return Err(ErrorInfo::bad_request(
            "a relay path may not hold . or .. segments or encoded slashes",
        ));
    }
    Ok(())
}

/// The upstream URL with the client's query (less the gateway's own parameters) added; a
/// parameter the relay's `upstream` URL sets stays the relay's (see `merge_query`). A shared
/// relay takes only the parameters of its `forward_query`: each value makes a topic, with
/// an upstream connection of its own.
fn upstream_url(
    relay: &RelayConfig,
    mut url: reqwest::Url,
    query: &Query,
) -> Result<reqwest::Url, ErrorInfo> {
    let pairs = query.upstream_pairs();
    if relay.mode == RelayMode::Shared
        && let Some((name, _)) = pairs.iter().find(|(k, _)| !relay.forward_query.contains(k))
    {
        let allowed = match relay.forward_query.is_empty() {
            true => "takes no query parameter".to_owned(),
            false => format!("takes only {}", relay.forward_query.join(", ")),
        };
        return Err(ErrorInfo::bad_request(format!(
            "relay {:?} {allowed} (its forward_query); leave out the query parameter {name:?}",
            relay.name
        )));
    }
    merge_query(&mut url, pairs, &[]);
    Ok(url)
}

/// The client's headers named in the relay's `forward_headers`.
fn forwarded_headers(relay: &RelayConfig, headers: &HeaderMap) -> Vec<(HeaderName, HeaderValue)> {
    relay
        .forward_headers
        .iter()
        .filter_map(|name| HeaderName::from_bytes(name.as_bytes()).ok())
        .flat_map(|name| {
            headers
                .get_all(&name)
                .iter()
                .map(move |value| (name.clone(), value.clone()))
                .collect::<Vec<_>>()
        })
        .collect()
}
