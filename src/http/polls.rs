//! Polled JSON APIs as delta streams (Streamdata.io / AMPLIFY Streams form):
//! `GET /{target-url}` and `GET /apis/{api}/{path}`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use json_patch::jsonptr::Pointer;
use reqwest::Url;
use reqwest::header::{self, HeaderName, HeaderValue};

use super::passthrough::HOP_BY_HOP;
use super::query::Query;
use super::stream_params::resume_cursor;
use super::streams::{Delivery, respond};
use super::{ApiError, AppState, Segments};
use crate::auth::{Operation, Principal};
use crate::config::header_list;
use crate::hub::ChannelKind;
use crate::outlet::{Start, StreamSpec};
use crate::sources::topic::{Topic, merge_query};
use crate::wire::WireFormat;
use crate::wire::envelope::{ErrorInfo, codes};

/// `GET /http://...` or `GET /https://...`: an ad-hoc target, checked against the policy.
pub async fn adhoc(state: &AppState, uri: &Uri, headers: &HeaderMap) -> Result<Response, ApiError> {
    let query = Query::parse(uri.query());
    let url = adhoc_target(state, &uri.path()[1..], &query)?;
    let interval = state.config.poll.interval_ms;
    let resource = url.to_string();
    open(state, url, &resource, &query, headers, Vec::new(), interval).await
}

/// The URL an ad-hoc target names, with the request's forwarded parameters, checked against
/// the target policy.
pub(super) fn adhoc_target(state: &AppState, raw: &str, query: &Query) -> Result<Url, ErrorInfo> {
    // Some clients and proxies merge the `//` of an embedded URL into one slash.
    let target = match raw.split_once(":/") {
        Some((scheme, rest)) if !rest.starts_with('/') => format!("{scheme}://{rest}"),
        _ => raw.to_owned(),
    };
    let mut url: Url = target
        .parse()
        .map_err(|e| ErrorInfo::bad_request(format!("the target URL is not valid: {e}")))?;
    merge_query(&mut url, query.upstream_pairs(), &[]);
    state
        .upstream
        .policy()
        .check(&url)
        .map_err(ErrorInfo::from)?;
    Ok(url)
}

/// `GET /apis/{api}/{path}`: a configured API, with its headers and query injected.
pub async fn named(
    State(state): State<AppState>,
    Segments((api, path)): Segments<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let config = state.catalog.config();
    let api = config
        .apis
        .iter()
        .find(|a| a.name == api)
        .ok_or_else(|| ErrorInfo::new(codes::NOT_FOUND, format!("no API named {api:?}")))?;
    let mut url = api.base_url.clone();
    url.path_segments_mut()
        .map_err(|_| ErrorInfo::bad_request("the API's base URL cannot take a path"))?
        .pop_if_empty()
        .extend(path.split('/'));
    let query = Query::parse(uri.query());
    let injected: Vec<(String, String)> = api.query.clone().into_iter().collect();
    merge_query(&mut url, query.upstream_pairs(), &injected);
    let injected_headers = header_list(&api.headers);
    let interval = api.interval_ms.unwrap_or(state.config.poll.interval_ms);
    let resource = format!("api:{}", api.name);
    open(
        &state,
        url,
        &resource,
        &query,
        &headers,
        injected_headers,
        interval,
    )
    .await
}

async fn open(
    state: &AppState,
    url: Url,
    resource: &str,
    query: &Query,
    headers: &HeaderMap,
    injected: Vec<(HeaderName, HeaderValue)>,
    default_interval_ms: u64,
) -> Result<Response, ApiError> {
    let principal = authorize(state, resource, query, headers)?;
    let spec = stream(
        state,
        url,
        resource.strip_prefix("api:"),
        query,
        injected,
        default_interval_ms,
        resume_start(query, headers)?,
    )?;
    let topic = spec.topic.clone().expect("a polled stream has a topic");
    // The outlet subscribes before the poller is ensured, so a stopping poller sees it.
    let expires = principal.expires_at_ms;
    let delivery = Delivery::new(WireFormat::SseRaw, false, expires);
    let response = respond(state, &[spec], None, delivery).await?;
    state.pollers.ensure(&topic);
    Ok(response)
}

/// Checks that the request's credential may poll `resource` (a URL, or `api:{name}`).
pub(super) fn authorize(
    state: &AppState,
    resource: &str,
    query: &Query,
    headers: &HeaderMap,
) -> Result<Principal, ErrorInfo> {
    let credential = query.credential(headers)?;
    state.auth.authorize(&credential, Operation::Poll, resource)
}

/// The stream of a polled URL (for the configured `api`, if any), with the topic its poller
/// needs (ensure the poller after subscribing); authorize first. The stream's name is the
/// target URL, as sent to the target.
pub(super) fn stream(
    state: &AppState,
    url: Url,
    api: Option<&str>,
    query: &Query,
    injected: Vec<(HeaderName, HeaderValue)>,
    default_interval_ms: u64,
    start: Start,
) -> Result<StreamSpec, ErrorInfo> {
    let poll = &state.config.poll;
    let interval_ms = query
        .number::<u64>("pollInterval")?
        .unwrap_or(default_interval_ms)
        .clamp(poll.min_interval_ms, poll.max_interval_ms);
    let snapshots_only = match query.get("mode") {
        None | Some("patch") => false,
        Some("snapshot") => true,
        Some(other) => {
            return Err(ErrorInfo::bad_request(format!(
                "mode must be patch or snapshot, not {other:?}"
            )));
        }
    };
    let select = query.get("select").map(str::to_owned);
    if let Some(Err(e)) = select.as_deref().map(Pointer::parse) {
        return Err(ErrorInfo::bad_request(format!(
            "select must be a JSON Pointer such as /items (`~` only as ~0 or ~1): {e}"
        )));
    }
    let mut forwarded = forwarded_headers(query, &injected)?;
    forwarded.extend(injected);
    let mut topic = Topic::new(url, forwarded, select, Duration::from_millis(interval_ms));
    topic.api = api.map(Arc::from);
    Ok(StreamSpec {
        name: topic.stream.to_string(),
        channel: topic.channel.clone(),
        kind: ChannelKind::State,
        start,
        snapshots_only,
        topic: Some(topic),
    })
}

/// `X-Sd-Header=Name: value` parameters (repeatable), for every polled stream (a request's
/// own, or one added to a dynamic connection). A client may not set a header the gateway
/// injects (the API's secrets must go where the config says), nor one that routes or frames
/// the request: `Host` would send the injected secrets to a virtual host no pattern names.
fn forwarded_headers(
    query: &Query,
    injected: &[(HeaderName, HeaderValue)],
) -> Result<Vec<(HeaderName, HeaderValue)>, ErrorInfo> {
    query
        .pairs()
        .iter()
        .filter(|(k, _)| k == "X-Sd-Header")
        .map(|(_, v)| {
            let (name, value) = v.split_once(':').ok_or_else(|| {
                ErrorInfo::bad_request("X-Sd-Header must be written \"Name: value\"")
            })?;
            let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
                ErrorInfo::bad_request(format!(
                    "X-Sd-Header: {:?} is not a header name",
                    name.trim()
                ))
            })?;
            if injected.iter().any(|(n, _)| *n == name) {
                return Err(ErrorInfo::bad_request(format!(
                    "X-Sd-Header: {name} is set by the gateway for this API; remove it"
                )));
            }
            if is_reserved(&name) {
                return Err(ErrorInfo::bad_request(format!(
                    "X-Sd-Header: {name} cannot be set: Host, Content-Length, hop-by-hop and \
                     Proxy-* headers are the gateway's; remove it"
                )));
            }
            let value = HeaderValue::from_str(value.trim())
                .map_err(|_| ErrorInfo::bad_request("X-Sd-Header: the value is not valid"))?;
            Ok((name, value))
        })
        .collect()
}

/// Headers that route or frame the upstream request.
fn is_reserved(name: &HeaderName) -> bool {
    *name == header::HOST
        || *name == header::CONTENT_LENGTH
        || HOP_BY_HOP.contains(name)
        || name.as_str().starts_with("proxy-")
}

/// Where a reconnecting client of a single-stream endpoint (a poll, a shared relay)
/// resumes: after `lastEvent` or `Last-Event-ID` as `/sse` reads them (`resume_cursor`), an
/// id that is not ours at an unknown position (a gap notice, or a fresh `data` event); live
/// without either. A position of another epoch is placed by the outlet (`start_position`).
pub(super) fn resume_start(query: &Query, headers: &HeaderMap) -> Result<Start, ErrorInfo> {
    Ok(match resume_cursor(query, headers, 1)? {
        None => Start::Live,
        Some(cursor) => cursor.map_or(Start::Unknown, |c| Start::After(c.positions[0])),
    })
}
