//! `GET /sse` and `GET /event-stream`: the streaming outlets.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::query::Query;
use super::stream_params::StreamParams;
use super::{ApiError, AppState};
use crate::auth::Operation;
use crate::outlet::{Outlet, OutletOptions, StreamSpec};
use crate::wire::WireFormat;

/// Events taken from the hub for one write at most: bounds the memory one write holds.
const WRITE_BATCH: usize = 256;

/// Always Server-Sent Events.
pub async fn sse(
    state: State<AppState>,
    query: RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    open(state, query, headers, true).await
}

/// SSE when the client accepts `text/event-stream`, else NDJSON envelopes.
pub async fn event_stream(
    state: State<AppState>,
    query: RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let wants_sse = headers
        .get_all(header::ACCEPT)
        .iter()
        .any(|v| v.as_bytes().windows(17).any(|w| w == b"text/event-stream"));
    open(state, query, headers, wants_sse).await
}

async fn open(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    sse: bool,
) -> Result<Response, ApiError> {
    let query = Query::parse(query.as_deref());
    let params = StreamParams::parse(
        &query,
        &headers,
        state.hub.epoch(),
        state.config.stream.max_streams_per_connection,
    )?;
    for (channel, _) in &params.channels {
        state
            .auth
            .authorize(&params.credential, Operation::Subscribe, channel)?;
    }
    tracing::debug!(
        channels = params.channels.len(),
        sse,
        enveloped = params.enveloped,
        "stream opened"
    );
    let streams: Vec<StreamSpec> = params
        .channels
        .into_iter()
        .map(|(channel, start)| StreamSpec::log(channel, start))
        .collect();
    let format = WireFormat::new(sse, params.enveloped);
    Ok(respond(&state, &streams, format, params.heartbeats))
}

/// Opens an outlet on `streams` and answers with its stream, SSE or NDJSON by `format`.
pub(super) fn respond(
    state: &AppState,
    streams: &[StreamSpec],
    format: WireFormat,
    heartbeats: bool,
) -> Response {
    let config = &state.config;
    let options = OutletOptions {
        format,
        heartbeats,
        keepalive: Duration::from_millis(config.stream.keepalive_ms),
        batch: config.channels.subscriber_queue.min(WRITE_BATCH),
        queue: config.channels.subscriber_queue as u64,
        overflow: config.channels.overflow,
        retry_ms: config.stream.retry_ms,
    };
    let outlet = Outlet::open(
        Arc::clone(&state.hub),
        streams,
        options,
        state.shutdown.clone(),
    );
    let body = Body::from_stream(futures_util::stream::unfold(outlet, |mut outlet| async {
        let chunk = outlet.next_chunk().await?;
        Some((Ok::<_, Infallible>(chunk), outlet))
    }));
    let content_type = if format.is_sse() {
        "text/event-stream; charset=utf-8"
    } else {
        "application/x-ndjson"
    };
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // nginx and similar proxies buffer responses unless told not to.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}
