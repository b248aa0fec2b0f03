//! Passthrough relays: a 1:1 streaming reverse proxy to the upstream.
//!
//! Nothing is buffered: each chunk the upstream writes is handed to the client's connection
//! as it arrives, and a client that goes away drops the upstream response, which closes the
//! upstream connection (an unfinished response is never put back in the pool).

use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use futures_util::{Stream, StreamExt};
use reqwest::header::HeaderName;

use super::{ApiError, AppState};
use crate::config::RelayConfig;
use crate::sources::failure::classify;
use crate::wire::envelope::{ErrorInfo, codes};

/// Request headers every passthrough relay forwards, besides its `forward_headers`: what an
/// event stream (and a request body) needs to mean the same upstream.
const ALWAYS_FORWARDED: [HeaderName; 4] = [
    header::ACCEPT,
    header::CACHE_CONTROL,
    header::CONTENT_TYPE,
    HeaderName::from_static("last-event-id"),
];

/// Hop-by-hop headers (RFC 9110 §7.6.1) belong to one connection, not to the message.
pub(super) const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

type Headers = Vec<(HeaderName, HeaderValue)>;

pub async fn proxy(
    state: &AppState,
    relay: &RelayConfig,
    upstream: reqwest::Url,
    (injected, forwarded): (Headers, Headers),
    expires_at_ms: Option<u64>,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let mut headers = HeaderMap::new();
    for name in &ALWAYS_FORWARDED {
        for value in parts.headers.get_all(name) {
            headers.append(name, value.clone());
        }
    }
    for (name, value) in forwarded {
        headers.append(name, value);
    }
    // Injected headers win over anything the client sent under the same name.
    for (name, _) in &injected {
        headers.remove(name);
    }
    for (name, value) in injected {
        headers.append(name, value);
    }
    let mut outgoing = state
        .upstream
        .request(parts.method.clone(), upstream)
        .map_err(ErrorInfo::from)?
        .headers(headers);
    let has_body = parts.headers.contains_key(header::CONTENT_LENGTH)
        || parts.headers.contains_key(header::TRANSFER_ENCODING);
    if has_body {
        outgoing = outgoing.body(reqwest::Body::wrap_stream(body.into_data_stream()));
    }
    let upstream_response = outgoing.send().await.map_err(|e| {
        let failure = classify(e);
        tracing::debug!(
            relay = relay.name,
            cause = failure.cause,
            "passthrough failed"
        );
        ErrorInfo::new(
            codes::UNAVAILABLE,
            format!("relay {:?}: {}", relay.name, failure.message),
        )
    })?;
    let status = upstream_response.status();
    let mut response_headers = upstream_response.headers().clone();
    for name in &HOP_BY_HOP {
        response_headers.remove(name);
    }
    // nginx and similar proxies in front of the gateway buffer responses unless told not to.
    response_headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    // At shutdown the response ends, so the process does not wait on an endless stream;
    // so does it when the credential's token expires.
    let mut shutdown = state.shutdown.clone();
    let stopping = async move {
        let expiry = async {
            match expires_at_ms {
                Some(at) => {
                    let left = at.saturating_sub(crate::clock::now_ms());
                    tokio::time::sleep(Duration::from_millis(left)).await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.wait_for(|stopped| *stopped) => {}
            _ = expiry => {}
        }
    };
    let chunks = upstream_response.bytes_stream().take_until(stopping);
    let body = match relay.idle_timeout_ms {
        Some(ms) => Body::from_stream(idle_limited(chunks, Duration::from_millis(ms))),
        None => Body::from_stream(chunks),
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = response_headers;
    Ok(response)
}

/// Ends the stream (as an error, so the client sees the response cut short rather than
/// complete) when the upstream sends nothing for `idle`.
fn idle_limited<S>(chunks: S, idle: Duration) -> impl Stream<Item = Result<bytes::Bytes, String>>
where
    S: Stream<Item = reqwest::Result<bytes::Bytes>> + Send + 'static,
{
    // The state is the upstream body until an error ends the stream.
    futures_util::stream::unfold(Some(Box::pin(chunks)), move |chunks| async move {
        let mut chunks = chunks?;
        match tokio::time::timeout(idle, chunks.next()).await {
            Ok(Some(Ok(chunk))) => Some((Ok(chunk), Some(chunks))),
            Ok(None) => None,
            Ok(Some(Err(e))) => Some((Err(e.to_string()), None)),
            Err(_) => Some((Err("the upstream was idle too long".to_owned()), None)),
        }
    })
}
