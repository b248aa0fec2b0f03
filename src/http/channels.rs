//! `POST /channels/{channel}/messages` (publish) and `GET` (history).

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;

use super::query::Query;
use super::{ApiError, AppState, Segments, streams};
use crate::auth::{Operation, Principal};
use crate::hub::Append;
use crate::names::validate_name;
use crate::sources::publish::{check_batch, parse_body};
use crate::wire::envelope::ErrorInfo;

/// The channel a `/channels/{channel}/...` request names (a valid name), the query, and the
/// principal its credential is, once allowed `operation` on the channel.
pub(super) fn authorized(
    state: &AppState,
    Segments(channel): Segments<String>,
    query: Option<&str>,
    headers: &HeaderMap,
    operation: Operation,
) -> Result<(String, Query, Principal), ApiError> {
    validate_name(&channel)?;
    let query = Query::parse(query);
    let credential = query.credential(headers)?;
    let principal = state.auth.authorize(&credential, operation, &channel)?;
    Ok((channel, query, principal))
}

/// Counts `count` messages of `principal` against `[limits] publish_rate_per_key`: the
/// refusal to answer when they are over it. Not an ApiError: a refusal to come back later
/// carries a Retry-After header. The client's address (`peer`, there when served by
/// `server`) is what an anonymous publisher is counted by.
pub(super) fn over_rate(
    state: &AppState,
    principal: &Principal,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    count: usize,
) -> Option<Response> {
    let address = peer.map(|Extension(ConnectInfo(addr))| addr.ip());
    let allowed = state
        .publish_rate
        .check(principal.name.as_deref(), address, count);
    allowed.err().map(IntoResponse::into_response)
}

pub async fn publish(
    State(state): State<AppState>,
    path: Segments<String>,
    RawQuery(query): RawQuery,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    // Read whole, within `[channels] max_message_bytes`, by `limits`.
    body: Bytes,
) -> Result<Response, ApiError> {
    let (channel, _, principal) =
        authorized(&state, path, query.as_deref(), &headers, Operation::Publish)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let messages = parse_body(content_type, &body)?;
    check_batch(&messages, &state.hub)?;
    if let Some(refused) = over_rate(&state, &principal, peer, messages.len()) {
        return Ok(refused);
    }
    // With `[bus] data_dir`, answered once the messages are on disk.
    let ids = state
        .hub
        .append(&channel, Append::Messages(messages), None)
        .await
        .map_err(streams::unavailable)?;
    let ids = ids.ids;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "channel": channel, "messageIds": ids })),
    )
        .into_response())
}

/// Ably's history query: `limit` (1–1000, default 100), `direction` (`backwards` default),
/// `start` / `end` (inclusive, ms since the epoch).
pub async fn history(
    State(state): State<AppState>,
    path: Segments<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let (channel, query, _) =
        authorized(&state, path, query.as_deref(), &headers, Operation::History)?;
    let limit: usize = query.number("limit")?.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ErrorInfo::bad_request("limit must be between 1 and 1000").into());
    }
    let backwards = match query.get("direction") {
        None | Some("backwards") => true,
        Some("forwards") => false,
        Some(other) => {
            return Err(ErrorInfo::bad_request(format!(
                "direction must be forwards or backwards, not {other:?}"
            ))
            .into());
        }
    };
    let start: u64 = query.number("start")?.unwrap_or(0);
    let end: u64 = query.number("end")?.unwrap_or(u64::MAX);
    if start > end {
        return Err(ErrorInfo::bad_request("start is after end").into());
    }
    state
        .hub
        .prepare(&[&channel])
        .await
        .map_err(streams::unavailable)?;
    let mut events = state
        .hub
        .get(&channel)
        .map(|c| c.retained(state.hub.limits(), crate::clock::now_ms()))
        .unwrap_or_default();
    events.retain(|e| (start..=end).contains(&e.timestamp));
    if backwards {
        events.reverse();
    }
    let page: Vec<_> = events
        .iter()
        .filter_map(|e| e.message())
        .take(limit)
        .collect();
    // Serialized as they are (not through a `Value`, which would respell numbers).
    let body = serde_json::to_vec(&page).expect("messages serialize");
    Ok(([(header::CONTENT_TYPE, "application/json")], body))
}
