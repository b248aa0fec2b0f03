//! `POST /channels/{channel}/presence` (enter, update or leave for the credential's
//! clientId) and `GET` (the members now). Streams carry the changes as `event: presence`
//! when asked (`presence=true`, see `stream_params`).

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{Value, json};

use super::channels::{authorized, over_rate};
use super::{ApiError, AppState, Segments, streams};
use crate::auth::Operation;
use crate::hub::presence::Member;
use crate::wire::envelope::{ErrorInfo, PresenceAction};

/// Answers 201 with the presence message the change made, or 200 when it changed nothing
/// (leaving without being there).
/// A change counts as a message against `[limits] publish_rate_per_key`.
pub async fn change(
    State(state): State<AppState>,
    path: Segments<String>,
    RawQuery(query): RawQuery,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (channel, _, principal) = authorized(
        &state,
        path,
        query.as_deref(),
        &headers,
        Operation::Presence,
    )?;
    let client_id = principal.client_id.clone().ok_or_else(|| {
        ErrorInfo::bad_request(
            "presence is for a client with an identity: use a token with a clientId claim",
        )
    })?;
    let (action, data) = parse(&body)?;
    if let Some(refused) = over_rate(&state, &principal, peer, 1) {
        return Ok(refused);
    }
    // Entered over REST: a member on no connection.
    let member = Member {
        client_id: client_id.clone(),
        connection_id: None,
    };
    let changed = state
        .hub
        .presence(&channel, &member, action, data)
        .await
        .map_err(streams::unavailable)?;
    Ok(match changed {
        Some(message) => (StatusCode::CREATED, Json(message)).into_response(),
        None => {
            let unchanged = json!({"channel": channel, "clientId": client_id, "present": false});
            (StatusCode::OK, Json(unchanged)).into_response()
        }
    })
}

/// The members now, each as a `present` message (subscribers may see who is there); only
/// those of `clientId` and `connectionId` when given, as Ably's presence query has it.
pub async fn members(
    State(state): State<AppState>,
    path: Segments<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (channel, query, _) = authorized(
        &state,
        path,
        query.as_deref(),
        &headers,
        Operation::Subscribe,
    )?;
    let client_id = query.text("clientId")?;
    let connection_id = query.text("connectionId")?;
    let mut members = state
        .hub
        .members(&channel)
        .await
        .map_err(streams::unavailable)?;
    members.retain(|m| {
        client_id.is_none_or(|id| m.client_id == id)
            && connection_id.is_none_or(|id| m.connection_id.as_deref() == Some(id))
    });
    Ok(Json(members).into_response())
}

/// `{"action": "enter" | "update" | "leave", "data"?}`, numbers kept as written.
fn parse(body: &[u8]) -> Result<(PresenceAction, Value), ErrorInfo> {
    let expected = "the body must be a JSON object: {\"action\": \"enter\" | \"update\" | \
                    \"leave\", \"data\": ...}";
    let Ok(Value::Object(mut request)) = crate::wire::json::parse(body) else {
        return Err(ErrorInfo::bad_request(expected));
    };
    let action = match request.get("action").and_then(Value::as_str) {
        Some("enter") => PresenceAction::Enter,
        Some("update") => PresenceAction::Update,
        Some("leave") => PresenceAction::Leave,
        _ => return Err(ErrorInfo::bad_request(expected)),
    };
    Ok((action, request.remove("data").unwrap_or(Value::Null)))
}
