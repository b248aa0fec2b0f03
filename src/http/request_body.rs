//! Reading a routed endpoint's request body before its handler runs: refused at once when
//! its head announces more than the endpoint takes, read within `[limits] read_timeout_ms`,
//! and counted, while held, against `[limits] max_body_buffer_bytes`.
//!
//! Why a budget over all bodies: each body is bounded, but clients that send most of a body
//! and hold back the rest would otherwise make the gateway hold one per connection.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use http_body::Body as _;
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{ApiError, PRESENCE_PATH, PUBLISH_PATH};
use crate::config::Config;
use crate::metrics::Limit;
use crate::wire::envelope::{ErrorInfo, codes};

/// What bounds the bodies read.
#[derive(Clone)]
pub struct BodyLimits {
    /// `[limits] max_body_bytes`.
    max_body: usize,
    /// `[channels] max_message_bytes`, a publish's (and a presence change's) own limit.
    max_publish: usize,
    /// `[limits] read_timeout_ms`.
    timeout: Duration,
    /// `[limits] max_body_buffer_bytes`: a permit per byte of the bodies being read or
    /// handled.
    buffer: Arc<Semaphore>,
    buffer_bytes: usize,
}

impl BodyLimits {
    pub fn new(config: &Config) -> BodyLimits {
        BodyLimits {
            max_body: config.limits.max_body_bytes,
            max_publish: config.channels.max_message_bytes,
            timeout: config.limits.read_timeout(),
            buffer: Arc::new(Semaphore::new(
                config
                    .limits
                    .max_body_buffer_bytes
                    .min(Semaphore::MAX_PERMITS),
            )),
            buffer_bytes: config.limits.max_body_buffer_bytes,
        }
    }

    /// The largest body `request`'s endpoint takes, and the setting to name.
    fn of(&self, request: &Request) -> (usize, &'static str) {
        let publish = request.method() == Method::POST
            && request
                .extensions()
                .get::<MatchedPath>()
                .is_some_and(|path| [PUBLISH_PATH, PRESENCE_PATH].contains(&path.as_str()));
        if publish {
            (self.max_publish, "[channels] max_message_bytes")
        } else {
            (self.max_body, "[limits] max_body_bytes")
        }
    }
}

/// Why a body was not read whole.
enum Unread {
    TooLarge,
    /// `[limits] max_body_buffer_bytes` is taken.
    NoRoom,
    Failed(axum::Error),
}

/// Reads the whole body of `request` (when it has one) and passes it on to the endpoint.
pub async fn read_whole(
    State(limits): State<BodyLimits>,
    request: Request,
    next: Next,
) -> Response {
    if request.body().is_end_stream() {
        return next.run(request).await;
    }
    let (max, setting) = limits.of(&request);
    let (parts, mut body) = request.into_parts();
    // Announced too large: refused before a byte of it is read.
    let announced = body.size_hint().lower() > max as u64;
    let read = tokio::time::timeout(limits.timeout, async {
        if announced {
            return Err(Unread::TooLarge);
        }
        let mut whole = BytesMut::new();
        let mut held: Option<OwnedSemaphorePermit> = None;
        while let Some(frame) = body.frame().await {
            let Ok(data) = frame.map_err(Unread::Failed)?.into_data() else {
                continue;
            };
            if whole.len() + data.len() > max {
                return Err(Unread::TooLarge);
            }
            let bytes = u32::try_from(data.len()).unwrap_or(u32::MAX);
            let more = Arc::clone(&limits.buffer)
                .try_acquire_many_owned(bytes)
                .map_err(|_| Unread::NoRoom)?;
            match held.as_mut() {
                Some(held) => held.merge(more),
                None => held = Some(more),
            }
            whole.extend_from_slice(&data);
        }
        Ok((whole.freeze(), held))
    })
    .await;
    let refused = match read {
        Ok(Ok((whole, held))) => {
            let response = next
                .run(Request::from_parts(parts, Body::from(whole)))
                .await;
            // The handler is done with the body only now.
            drop(held);
            return response;
        }
        Ok(Err(Unread::TooLarge)) => {
            Limit::BodySize.refused();
            ErrorInfo::new(
                codes::TOO_LARGE,
                format!(
                    "the request body is larger than {max} bytes, the most this endpoint \
                     accepts ({setting}); send a smaller one"
                ),
            )
        }
        Ok(Err(Unread::NoRoom)) => {
            Limit::BodyBuffer.refused();
            let mut response = ApiError(ErrorInfo::new(
                codes::UNAVAILABLE,
                format!(
                    "the gateway holds {} bytes of request bodies being read, the most it \
                     holds ([limits] max_body_buffer_bytes); try again shortly",
                    limits.buffer_bytes
                ),
            ))
            .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return response;
        }
        Ok(Err(Unread::Failed(e))) => {
            ErrorInfo::bad_request(format!("the request body could not be read: {e}"))
        }
        Err(_) => {
            Limit::BodyTimeout.refused();
            let seconds = limits.timeout.as_secs_f64();
            ErrorInfo::new(
                codes::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive whole within {seconds} s of its head \
                     ([limits] read_timeout_ms); send the body right after the head"
                ),
            )
        }
    };
    ApiError(refused).into_response()
}
