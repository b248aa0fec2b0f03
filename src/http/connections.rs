//! Changing a live connection: `POST /connections/{id}/subscriptions` adds a channel or a
//! polled API, `DELETE /connections/{id}/subscriptions/{stream}` removes one, and
//! `GET /connections/{id}` lists them. Only the connection's own credentials may do so.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::oneshot;

use super::query::Query;
use super::{ApiError, AppState, Segments, polls, streams};
use crate::auth::Operation;
use crate::hub::ChannelKind;
use crate::names::validate_name;
use crate::outlet::registry::Control;
use crate::outlet::{Start, StreamSpec};
use crate::wire::envelope::{ErrorInfo, codes};

/// The body of an add: a channel (with an optional rewind) or a polled URL, whose query
/// may carry the poll parameters (`pollInterval`, `mode`, `select`, `X-Sd-Header`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Add {
    channel: Option<String>,
    rewind: Option<u64>,
    poll: Option<String>,
}

pub async fn add(
    State(state): State<AppState>,
    Segments(id): Segments<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let query = Query::parse(query.as_deref());
    let credential = query.credential(&headers)?;
    let (control, _) = state.connections.control(&id, &credential)?;
    let add: Add = serde_json::from_slice(&body).map_err(|e| {
        ErrorInfo::bad_request(format!(
            "the body must be {{\"channel\": name}} or {{\"poll\": url}}: {e}"
        ))
    })?;
    let spec = match (add.channel, add.poll) {
        (Some(channel), None) => {
            validate_name(&channel)?;
            state
                .auth
                .authorize(&credential, Operation::Subscribe, &channel)?;
            let start = add.rewind.map_or(Start::Live, Start::Rewind);
            StreamSpec::log(channel, start)
        }
        (None, Some(poll)) => {
            let url: reqwest::Url = poll
                .parse()
                .map_err(|e| ErrorInfo::bad_request(format!("poll is not a URL: {e}")))?;
            let poll_query = Query::parse(url.query());
            let mut target = url.clone();
            target.set_query(None);
            let target = polls::adhoc_target(&state, target.as_str(), &poll_query)?;
            let interval = state.config.poll.interval_ms;
            // The connection's credential, like a channel added to it.
            state
                .auth
                .authorize(&credential, Operation::Poll, target.as_str())?;
            polls::stream(
                &state,
                target,
                &poll_query,
                Vec::new(),
                interval,
                Start::Live,
            )?
        }
        _ => {
            return Err(
                ErrorInfo::bad_request("give exactly one of \"channel\" and \"poll\"").into(),
            );
        }
    };
    let (name, kind, topic) = (spec.name.clone(), spec.kind, spec.topic.clone());
    state
        .hub
        .prepare(&[&spec.channel])
        .await
        .map_err(streams::unavailable)?;
    ask(&control, |reply| Control::Add(Box::new(spec), reply)).await?;
    // After the outlet subscribed, so a stopping poller sees the subscriber.
    if let Some(topic) = topic {
        state.pollers.ensure(&topic);
    }
    Ok((
        StatusCode::CREATED,
        Json(json!({ "connectionId": id, "stream": name, "kind": kind_name(kind) })),
    ))
}

pub async fn remove(
    State(state): State<AppState>,
    Segments((id, stream)): Segments<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let credential = Query::parse(query.as_deref()).credential(&headers)?;
    let (control, _) = state.connections.control(&id, &credential)?;
    ask(&control, |reply| Control::Remove(stream, reply)).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list(
    State(state): State<AppState>,
    Segments(id): Segments<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let credential = Query::parse(query.as_deref()).credential(&headers)?;
    let (_, journal) = state.connections.control(&id, &credential)?;
    let streams: Vec<_> = journal
        .lock()
        .unwrap()
        .open_streams()
        .into_iter()
        .map(|(_, spec)| json!({ "stream": spec.name, "kind": kind_name(spec.kind) }))
        .collect();
    Ok(Json(json!({ "connectionId": id, "streams": streams })))
}

fn kind_name(kind: ChannelKind) -> &'static str {
    match kind {
        ChannelKind::Log => "channel",
        ChannelKind::State => "poll",
    }
}

/// Sends a change to the connection's outlet and waits for its answer.
async fn ask(
    control: &tokio::sync::mpsc::Sender<Control>,
    message: impl FnOnce(oneshot::Sender<Result<(), ErrorInfo>>) -> Control,
) -> Result<(), ErrorInfo> {
    let gone = || ErrorInfo::new(codes::NOT_FOUND, "the connection has closed");
    let (reply, answer) = oneshot::channel();
    control.send(message(reply)).await.map_err(|_| gone())?;
    answer.await.map_err(|_| gone())?
}
