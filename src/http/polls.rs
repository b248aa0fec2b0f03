//! Polled JSON APIs as delta streams (Streamdata.io / AMPLIFY Streams form):
//! `GET /{target-url}` and `GET /apis/{api}/{path}`.

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
use crate::sources::topic::{ApiRef, Topic, merge_query};
use crate::wire::WireFormat;
use crate::wire::envelope::{ErrorInfo, codes};

/// `GET /http://...` or `GET /https://...`: an ad-hoc target, checked against the policy.
pub async fn adhoc(state: &AppState, uri: &Uri, headers: &HeaderMap) -> Result<Response, ApiError> {
    let query = Query::parse(uri.query());
    let url = adhoc_target(state, &uri.path()[1..], &query)?;
    let interval = state.config.poll.interval_ms;
    let principal = authorize(state, url.as_str(), &query, headers)?;
    let start = resume_start(&query, headers)?;
    let spec = stream(state, url, &query, Vec::new(), interval, start)?;
    open(state, spec, &principal).await
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
    Segments((name, path)): Segments<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let query = Query::parse(uri.query());
    let principal = authorize(&state, &format!("api:{name}"), &query, &headers)?;
    let query_kept = kept_query(&query);
    let api = ApiRef {
        name,
        path,
        query: query_kept,
    };
    let spec = api_stream(&state, api, &query, resume_start(&query, &headers)?)?;
    open(&state, spec, &principal).await
}

/// The stream of a configured API's `path`, asked for with `query` (the API's query and
/// headers injected), named by its gateway path; authorize first.
pub(super) fn api_stream(
    state: &AppState,
    api: ApiRef,
    query: &Query,
    start: Start,
) -> Result<StreamSpec, ErrorInfo> {
    let config = state.catalog.config();
    let found = config
        .apis
        .iter()
        .find(|a| a.name == api.name)
        .ok_or_else(|| ErrorInfo::new(codes::NOT_FOUND, format!("no API named {:?}", api.name)))?;
    let mut url = found.base_url.clone();
    url.path_segments_mut()
        .map_err(|_| ErrorInfo::bad_request("the API's base URL cannot take a path"))?
        .pop_if_empty()
        .extend(api.path.split('/'));
    let injected: Vec<(String, String)> = found.query.clone().into_iter().collect();
    merge_query(&mut url, query.upstream_pairs(), &injected);
    let headers = header_list(&found.headers);
    let interval = found.interval_ms.unwrap_or(state.config.poll.interval_ms);
    let mut spec = stream(state, url, query, headers, interval, start)?;
    let topic = spec.topic.take().expect("a polled stream has a topic");
    let topic = topic.of_api(api, state.hub.secret());
    spec.name = topic.stream.to_string();
    spec.channel.clone_from(&topic.channel);
    spec.topic = Some(topic);
    Ok(spec)
}

/// A stream read back from a journal, whole: a configured API's made again from the
/// catalog (see `StreamSpec::pending`); any other as it is.
pub(super) fn resolve(state: &AppState, spec: StreamSpec) -> Result<StreamSpec, ErrorInfo> {
    let Some(api) = spec.pending.clone() else {
        return Ok(spec);
    };
    let query = Query::parse(Some(&api.query));
    api_stream(state, api, &query, spec.start)
}

/// What a journal keeps of a request's query for a configured API's stream: the target's
/// own parameters and the stream's (never a credential).
pub(super) fn kept_query(query: &Query) -> String {
    let mut kept = form_urlencoded::Serializer::new(String::new());
    for (name, value) in query.pairs() {
        if ApiRef::STREAM_PARAMETERS.contains(&name.as_str()) {
            kept.append_pair(name, value);
        }
    }
    for (name, value) in query.upstream_pairs() {
        kept.append_pair(&name, &value);
    }
    kept.finish()
}

async fn open(
    state: &AppState,
    spec: StreamSpec,
    principal: &Principal,
) -> Result<Response, ApiError> {
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

/// The stream of a polled URL, with the topic its poller needs (ensure the poller after
/// subscribing); authorize first. The stream's name is the target URL, as sent to the
/// target.
pub(super) fn stream(
    state: &AppState,
    url: Url,
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
    let topic = Topic::new(url, forwarded, select, Duration::from_millis(interval_ms));
    Ok(StreamSpec {
        name: topic.stream.to_string(),
        channel: topic.channel.clone(),
        kind: ChannelKind::State,
        start,
        snapshots_only,
        topic: Some(topic),
        pending: None,
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
