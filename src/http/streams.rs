//! `GET /sse` and `GET /event-stream`: the streaming outlets.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::query::Query;
use super::stream_params::{self, StreamParams};
use super::{ApiError, AppState};
use crate::auth::{Operation, Principal};
use crate::hub::cursor;
use crate::hub::entered::{Entered, Entering};
use crate::outlet::{Filter, Link, Outlet, OutletOptions, Start, StreamSpec};
use crate::wire::WireFormat;
use crate::wire::envelope::{ErrorInfo, codes};

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
        state.config.limits.max_streams_per_connection,
    )?;
    let principal = state.auth.principal(&params.credential)?;
    for (channel, _) in &params.channels {
        principal.check(Operation::Subscribe, stream_params::subject(channel))?;
    }
    tracing::debug!(
        channels = params.channels.len(),
        sse,
        enveloped = params.enveloped,
        "stream opened"
    );
    let mut streams: Vec<StreamSpec> = params
        .channels
        .into_iter()
        .map(|(channel, start)| StreamSpec::log(channel, start))
        .collect();
    let format = WireFormat::new(sse, params.enveloped);
    let link = if params.dynamic || params.token.is_some() || streams.len() > INLINE_STREAMS {
        Some(
            link(
                &state,
                params.token,
                params.token_from_query,
                &principal,
                params.dynamic,
                &mut streams,
            )
            .await?,
        )
    } else {
        None
    };
    // Restored polled streams need their pollers again, once the outlet has subscribed.
    let topics: Vec<_> = link
        .iter()
        .flat_map(|l| &l.restored)
        .filter_map(|(_, spec)| spec.topic.clone())
        .collect();
    let expires = principal.expires_at_ms;
    let mut delivery = Delivery::new(format, params.heartbeats, expires);
    // A resumed connection's streams too: its old stream left them as it closed.
    let restored = link.iter().flat_map(|l| &l.restored).map(|(_, spec)| spec);
    let linked = link.is_some();
    delivery.enter = entering(&state, &principal, streams.iter().chain(restored), linked);
    let response = respond(&state, &streams, link, delivery).await?;
    for topic in &topics {
        state.pollers.ensure(topic);
    }
    Ok(response)
}

/// The subscriber to enter on the channels of `streams` that `[channels]
/// presence_on_subscribe` names, if its credential has a client id and may enter them; on
/// a server-kept connection (`linked`), on the channels added to it later too.
fn entering<'a>(
    state: &AppState,
    principal: &Principal,
    streams: impl Iterator<Item = &'a StreamSpec>,
    linked: bool,
) -> Option<Entering> {
    let client_id = principal.client_id.clone()?;
    let patterns = state.config.channels.presence_on_subscribe.clone();
    let allowed = principal.clone();
    let admits = move |channel: &str| {
        // Pub/sub channels only: the gateway's own (presence, polls, relays) start with `[`.
        !channel.starts_with('[')
            && patterns.iter().any(|p| crate::glob::matches(p, channel))
            && allowed.check(Operation::Presence, channel).is_ok()
    };
    let channels: Vec<String> = streams
        .map(|s| s.channel.to_string())
        .filter(|c| admits(c))
        .collect();
    let later = linked && !state.config.channels.presence_on_subscribe.is_empty();
    (!channels.is_empty() || later).then(|| Entering {
        client_id,
        data: serde_json::Value::Null,
        channels,
        admits: Arc::new(admits),
    })
}

/// Connections with more streams than this, or dynamic ones, get server-kept cursors: an id
/// holding every position would grow with the streams.
const INLINE_STREAMS: usize = 16;

/// Registers a connection with a server-kept cursor. Resuming with a token restores the
/// streams its connection had at that event (and requested streams it lacked are added).
async fn link(
    state: &AppState,
    token: Option<cursor::Token>,
    token_from_query: bool,
    principal: &Principal,
    announce: bool,
    streams: &mut Vec<StreamSpec>,
) -> Result<Link, ErrorInfo> {
    let registry = &state.connections;
    let capacity = state.config.stream.journal_entries;
    // Nodes sharing a bus resume each other's connections: a token names its node's
    // epoch, which only a lone node checks.
    let journal = match &token {
        Some(t) if t.epoch == state.hub.epoch() || state.hub.is_shared() => registry
            .resumable(&t.connection, &principal.binding, capacity)
            .await
            .map_err(|e| ErrorInfo::new(codes::UNAVAILABLE, e))?,
        _ => None,
    };
    let mut restored = Vec::new();
    let mut resume = None;
    let mut notice = None;
    match (token, journal) {
        (Some(token), Some(journal)) => {
            let mut journal = journal.lock().unwrap();
            // A resumed connection's streams are checked like new ones (the keys and the
            // target policy may have changed since it was opened, by an admin or a restart),
            // before anything changes: a refused resume leaves the connection as it was.
            let at = journal
                .at(token.entry)
                .unwrap_or_else(|| journal.earliest());
            for r in &at {
                // A configured API's stream is made again from the catalog: it may be gone.
                let made;
                let spec = match &r.spec.pending {
                    Some(_) => {
                        made = super::polls::resolve(state, r.spec.clone())?;
                        &made
                    }
                    None => &r.spec,
                };
                match &spec.topic {
                    Some(topic) => {
                        principal.check(Operation::Poll, &topic.requested)?;
                        state
                            .upstream
                            .policy()
                            .check(&topic.url)
                            .map_err(ErrorInfo::from)?;
                    }
                    None => principal
                        .check(Operation::Subscribe, stream_params::subject(&spec.channel))?,
                }
            }
            let (resumed, lost) = journal.restart(token.entry);
            for (index, r) in resumed {
                let start = match (lost, r.position) {
                    (true, _) => Start::Unknown,
                    (false, Some(p)) => Start::After(p),
                    (false, None) => Start::Live,
                };
                streams.retain(|s| s.name != r.spec.name);
                let spec = super::polls::resolve(state, StreamSpec { start, ..r.spec })?;
                restored.push((index, spec));
            }
            resume = Some(token.connection);
        }
        (Some(_), None) if token_from_query => return Err(unknown_connection("lastEvent")),
        // Nothing to resume and nothing asked for: not an empty stream that never ends.
        (Some(_), None) if streams.is_empty() && !announce => {
            return Err(unknown_connection("Last-Event-ID"));
        }
        // A browser's reconnect with an id we cannot place: it is told in-band that the
        // connection's streams are gone (before a dynamic connection's new id), and every
        // stream it asks for again gets a gap notice.
        (Some(_), None) => {
            notice = Some(unknown_connection("Last-Event-ID"));
            for spec in streams.iter_mut() {
                spec.start = Start::Unknown;
            }
        }
        (None, _) => {}
    }
    if let Some(connection) = &resume {
        // Accepted here: other nodes stop keeping the connection (see `Connections::claim`).
        registry
            .claim(connection)
            .await
            .map_err(|e| ErrorInfo::new(codes::UNAVAILABLE, e))?;
    }
    let registration = registry.register(principal.binding.clone(), capacity, resume.as_deref());
    Ok(Link {
        registry: Arc::clone(registry),
        registration,
        announce,
        notice,
        restored,
    })
}

/// The bus could not be reached: 503, to be tried again.
pub(super) fn unavailable(message: String) -> ApiError {
    ApiError(ErrorInfo::new(codes::UNAVAILABLE, message))
}

/// A server-kept resume id (from `source`) whose connection this process does not know.
fn unknown_connection(source: &str) -> ErrorInfo {
    ErrorInfo::new(
        codes::UNKNOWN_CONNECTION,
        format!(
            "{source} names a connection this server no longer knows (it restarted, or the \
             connection expired); its streams are gone: subscribe to them again"
        ),
    )
}

/// How a stream's events are written: what `respond` needs besides the streams.
pub(super) struct Delivery {
    pub format: WireFormat,
    /// `heartbeats=true`: `heartbeat` events instead of keepalive comments.
    pub heartbeats: bool,
    /// When the credential's token expires (milliseconds since the Unix epoch): the stream
    /// ends then with error 40142.
    pub expires_at_ms: Option<u64>,
    /// Events to pass over (a Mercure subscriber's selectors).
    pub filter: Option<Filter>,
    /// The keepalive interval, instead of `[stream] keepalive_ms`.
    pub keepalive_ms: Option<u64>,
    /// The subscriber to enter on channels' presence while the stream is open (see
    /// `[channels] presence_on_subscribe`, and Mercure's subscriptions).
    pub enter: Option<Entering>,
}

impl Delivery {
    pub fn new(format: WireFormat, heartbeats: bool, expires_at_ms: Option<u64>) -> Delivery {
        Delivery {
            format,
            heartbeats,
            expires_at_ms,
            filter: None,
            keepalive_ms: None,
            enter: None,
        }
    }
}

/// Opens an outlet on `streams` (and the streams `link` restores) and answers with its
/// stream, SSE or NDJSON by `format`. Channels a shared bus holds are made ready on this
/// node first: 503 when the bus cannot be reached.
pub(super) async fn respond(
    state: &AppState,
    streams: &[StreamSpec],
    link: Option<Link>,
    delivery: Delivery,
) -> Result<Response, ApiError> {
    let Delivery {
        format,
        heartbeats,
        expires_at_ms,
        filter,
        keepalive_ms,
        enter,
    } = delivery;
    let restored = link.iter().flat_map(|l| &l.restored).map(|(_, spec)| spec);
    let names: Vec<&str> = streams
        .iter()
        .chain(restored)
        .map(|s| &*s.channel)
        .collect();
    state.hub.prepare(&names).await.map_err(unavailable)?;
    let config = &state.config;
    let options = OutletOptions {
        format,
        filter,
        heartbeats,
        keepalive: Duration::from_millis(keepalive_ms.unwrap_or(config.stream.keepalive_ms)),
        batch: config.channels.subscriber_queue.min(WRITE_BATCH),
        write_window: Duration::from_millis(config.stream.write_window_ms),
        queue: config.channels.subscriber_queue as u64,
        overflow: config.channels.overflow,
        retry_ms: config.stream.retry_ms,
        max_streams: config.limits.max_streams_per_connection,
        expires_at_ms,
    };
    let registered = link.as_ref().map(|l| {
        let registration = &l.registration;
        (
            Arc::clone(&l.registry),
            registration.id.clone(),
            registration.generation,
        )
    });
    let outlet = Outlet::open(
        Arc::clone(&state.hub),
        streams,
        options,
        state.shutdown.clone(),
        link,
    );
    // Entered once subscribed (a stream asking for presence hears its own), and left when
    // the stream is dropped with the outlet.
    let entered = match enter {
        Some(entering) => {
            let entered = Entered::enter(&state.hub, entering).await;
            let entered = entered.map_err(unavailable)?;
            // Channels added to the connection later enter as they come.
            if let Some((registry, id, generation)) = registered {
                registry.set_presence(&id, generation, entered.presence());
            }
            Some(entered)
        }
        None => None,
    };
    let stream = futures_util::stream::unfold((outlet, entered), |(mut outlet, entered)| async {
        let chunk = outlet.next_chunk().await?;
        Some((Ok::<_, Infallible>(chunk), (outlet, entered)))
    });
    let body = Body::from_stream(stream);
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
    Ok(response)
}
