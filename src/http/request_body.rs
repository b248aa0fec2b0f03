//! Reading a routed endpoint's request body before its handler runs: refused at once when
//! its head announces more than the endpoint takes, read within `[limits] read_timeout_ms`,
//! and held in one buffer of its own.
//!
//! Why a buffer of its own: the HTTP layer hands a body over in pieces that share its read
//! buffers, so a body sent in many small pieces (a chunk at a time, say) would keep one of
//! those buffers alive per piece until the handler is done with it.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use http_body::Body as _;
use http_body_util::BodyExt;

use super::{ApiError, PUBLISH_PATH};
use crate::config::Config;
use crate::metrics::Limit;
use crate::wire::envelope::{ErrorInfo, codes};

/// What bounds the bodies read.
#[derive(Clone)]
pub struct BodyLimits {
    /// `[limits] max_body_bytes`.
    max_body: usize,
    /// `[channels] max_message_bytes`, a publish's own limit.
    max_publish: usize,
    /// `[limits] read_timeout_ms`.
    timeout: Duration,
}

impl BodyLimits {
    pub fn new(config: &Config) -> BodyLimits {
        BodyLimits {
            max_body: config.limits.max_body_bytes,
            max_publish: config.channels.max_message_bytes,
            timeout: config.limits.read_timeout(),
        }
    }

    /// The largest body `request`'s endpoint takes, and the setting to name.
    fn of(&self, request: &Request) -> (usize, &'static str) {
        let publish = request.method() == Method::POST
            && request
                .extensions()
                .get::<MatchedPath>()
                .is_some_and(|path| path.as_str() == PUBLISH_PATH);
        if publish {
            (self.max_publish, "[channels] max_message_bytes")
        } else {
            (self.max_body, "[limits] max_body_bytes")
        }
    }
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
    let too_large = || {
        Limit::BodySize.refused();
        ApiError(ErrorInfo::new(
            codes::TOO_LARGE,
            format!(
                "the request body is larger than {max} bytes, the most this endpoint accepts \
                 ({setting}); send a smaller one"
            ),
        ))
        .into_response()
    };
    // Announced too large: refused before a byte of it is read.
    if body.size_hint().lower() > max as u64 {
        return too_large();
    }
    let mut whole = BytesMut::new();
    let read = tokio::time::timeout(limits.timeout, async {
        while let Some(frame) = body.frame().await {
            let Ok(data) = frame?.into_data() else {
                continue;
            };
            if whole.len() + data.len() > max {
                return Ok(false);
            }
            whole.extend_from_slice(&data);
        }
        Ok::<_, axum::Error>(true)
    })
    .await;
    match read {
        Ok(Ok(true)) => {}
        Ok(Ok(false)) => return too_large(),
        Ok(Err(e)) => {
            return ApiError(ErrorInfo::bad_request(format!(
                "the request body could not be read: {e}"
            )))
            .into_response();
        }
        Err(_) => {
            Limit::BodyTimeout.refused();
            let seconds = limits.timeout.as_secs_f64();
            return ApiError(ErrorInfo::new(
                codes::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive whole within {seconds} s of its head \
                     ([limits] read_timeout_ms); send the body right after the head"
                ),
            ))
            .into_response();
        }
    }
    next.run(Request::from_parts(parts, Body::from(whole.freeze())))
        .await
}
