//! `GET /asyncapi.json` and `/asyncapi.yaml`: an AsyncAPI 3.0.0 document of what this
//! gateway serves (pub/sub channels, polled APIs, relays), made from the live config.
//!
//! Upstream credentials never appear: API and relay `headers`, API `query` values, and the
//! userinfo and query of upstream URLs are left out (only scheme, host, port and path show).

mod components;

use components::components;

use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, HOST};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde_json::{Map, Value, json};

use super::AppState;
use crate::config::{ApiConfig, Config, RelayConfig, RelayMode, asyncapi_import};
use crate::names::GATEWAY_PARAMETERS;
use crate::wire::envelope::{ErrorInfo, codes};
use crate::wire::yaml::to_yaml;

pub async fn json(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let config = state.catalog.config();
    let doc = document(&config, &host(&headers, &uri, &config));
    match serde_json::to_string_pretty(&doc) {
        Ok(text) => respond("application/json", text),
        Err(e) => super::ApiError::from(ErrorInfo::new(
            codes::INTERNAL,
            format!("cannot encode the AsyncAPI document: {e}"),
        ))
        .into_response(),
    }
}

pub async fn yaml(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let config = state.catalog.config();
    let doc = document(&config, &host(&headers, &uri, &config));
    respond("application/yaml", to_yaml(&doc))
}

fn respond(content_type: &'static str, body: String) -> Response {
    // The document follows the live config: caches must revalidate.
    (
        [(CONTENT_TYPE, content_type), (CACHE_CONTROL, "no-cache")],
        body,
    )
        .into_response()
}

/// The host clients used (`Host`, or the HTTP/2 authority), else the configured listen
/// address. Anything but a plain `host[:port]` is ignored: it is client input.
fn host(headers: &HeaderMap, uri: &Uri, config: &Config) -> String {
    let plain = |h: &&str| {
        !h.is_empty()
            && h.len() <= 255
            && h.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-_:[]".contains(c))
    };
    headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .filter(plain)
        .or_else(|| uri.authority().map(|a| a.as_str()).filter(plain))
        .map(str::to_owned)
        .unwrap_or_else(|| config.server.listen.to_string())
}

const HTTP_BINDING: &str = "0.3.0";

/// The whole document for `config`, served at `host`.
pub fn document(config: &Config, host: &str) -> Value {
    let mut doc = Doc::default();
    doc.pubsub();
    for api in &config.apis {
        doc.api(api, config);
    }
    if !config.poll.allowed_targets.is_empty() {
        doc.adhoc(config);
    }
    for relay in &config.relays {
        doc.relay(relay);
    }
    let security: Vec<Value> = ["apiKey", "basic", "bearer", "accessToken", "sdToken"]
        .iter()
        .map(|s| json!({ "$ref": format!("#/components/securitySchemes/{s}") }))
        .collect();
    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "streamgate",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "A streaming API gateway. Pub/sub channels (Ably-compatible SSE and \
                NDJSON), polled JSON APIs turned into delta streams (a `data` snapshot, then \
                RFC 6902 `patch` events, as in Streamdata.io), and relays of upstream SSE \
                servers. Streams are Server-Sent Events (`text/event-stream`); every event has \
                an `id` to resume from with `Last-Event-ID`.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "gateway": {
                "host": host,
                "protocol": if config.server.tls_files().is_some() { "https" } else { "http" },
                "title": "This gateway",
                "description": "Streams are answered as `text/event-stream` (or \
                    `application/x-ndjson` from `/event-stream` without \
                    `Accept: text/event-stream`). Any one of the security schemes is accepted.",
                "security": security,
            }
        },
        "channels": doc.channels,
        "operations": doc.operations,
        "components": components(),
    })
}

#[derive(Default)]
struct Doc {
    channels: Map<String, Value>,
    operations: Map<String, Value>,
}

impl Doc {
    /// Adds a channel under an id made from `base` (the characters AsyncAPI allows in
    /// keys, made unique); returns the id.
    fn channel(&mut self, base: &str, channel: Value) -> String {
        let id = unique_id(&self.channels, base);
        self.channels.insert(id.clone(), channel);
        id
    }

    /// Adds an operation on channel `id`, carrying the channel's messages named `messages`.
    fn operation(
        &mut self,
        op_id: String,
        action: &str,
        id: &str,
        messages: &[&str],
        mut extra: Value,
    ) {
        let mut op = json!({
            "action": action,
            "channel": { "$ref": format!("#/channels/{id}") },
            "messages": messages
                .iter()
                .map(|m| json!({ "$ref": format!("#/channels/{id}/messages/{m}") }))
                .collect::<Vec<_>>(),
        });
        if let (Some(op), Some(extra)) = (op.as_object_mut(), extra.as_object_mut()) {
            op.append(extra);
        }
        self.operations.insert(op_id, op);
    }

    /// Channels: publish and subscribe on named channels.
    fn pubsub(&mut self) {
        let id = self.channel(
            "channels",
            json!({
                "address": "{channel}",
                "title": "Pub/sub channels",
                "description": "A named channel with ordered history. Publish with \
                    `POST /channels/{channel}/messages`; subscribe with \
                    `GET /sse?channels={channel}` (always SSE) or \
                    `GET /event-stream?channels={channel}` (SSE when `Accept` has \
                    `text/event-stream`, else NDJSON envelopes `{\"event\",\"data\",\"id\"}`); \
                    read history with `GET /channels/{channel}/messages`. One connection may \
                    carry many channels; each event names its channel.",
                "parameters": {
                    "channel": {
                        "description": "The channel name (URL-encoded in paths and queries)."
                    }
                },
                "messages": {
                    "message": { "$ref": "#/components/messages/ablyMessage" },
                    "presence": { "$ref": "#/components/messages/presence" },
                    "error": { "$ref": "#/components/messages/ablyError" },
                    "publish": { "$ref": "#/components/messages/publish" },
                    "presenceChange": { "$ref": "#/components/messages/presenceChange" },
                },
            }),
        );
        self.operation(
            "subscribe".into(),
            "receive",
            &id,
            &["message", "presence", "error"],
            json!({
                "title": "Subscribe",
                "summary": "GET /sse?channels={channel} or GET /event-stream?channels={channel}",
                "description": "Each published message arrives as `event: message` with an \
                    `id:` (the resume position). `lastEvent` or the `Last-Event-ID` header \
                    resumes exactly after that event while it is in history; otherwise an \
                    `error` event (code 40900) says so before the stream goes on live. \
                    Keepalive is an SSE comment, or `event: heartbeat` with `heartbeats=true`.",
                "bindings": {
                    "http": {
                        "method": "GET",
                        "query": {
                            "type": "object",
                            "properties": {
                                "channels": str_prop("Comma-separated, URL-encoded channel names (alias `channel`)."),
                                "channel": str_prop("Alias of `channels`."),
                                "separator": str_prop("Separator of `channels` instead of `,`."),
                                "v": str_prop("Protocol version; accepted, 1.2 assumed."),
                                "lastEvent": str_prop("Resume after this event id (or send `Last-Event-ID`)."),
                                "rewind": {
                                    "type": "integer",
                                    "minimum": 0,
                                    "description": "Send the last N messages first (ignored when resuming).",
                                },
                                "enveloped": {
                                    "type": "boolean",
                                    "default": true,
                                    "description": "`data:` is the Message object (true) or its bare `data` (false).",
                                },
                                "heartbeats": {
                                    "type": "boolean",
                                    "default": false,
                                    "description": "Send `event: heartbeat` instead of keepalive comments.",
                                },
                                "presence": {
                                    "type": "boolean",
                                    "default": false,
                                    "description": "Also each channel's presence changes, as `event: presence`.",
                                },
                                "dynamic": {
                                    "type": "boolean",
                                    "default": false,
                                    "description": "Start with `event: connected` ({\"connectionId\"}); add and \
                                        remove streams with `POST /connections/{id}/subscriptions` and \
                                        `DELETE /connections/{id}/subscriptions/{channel}`.",
                                },
                            },
                        },
                        "bindingVersion": HTTP_BINDING,
                    }
                },
            }),
        );
        self.operation(
            "publish".into(),
            "send",
            &id,
            &["publish"],
            json!({
                "title": "Publish",
                "summary": "POST /channels/{channel}/messages",
                "description": "Answers 201 `{\"channel\", \"messageIds\"}`. A message `id` \
                    given by the publisher makes the publish idempotent within the history \
                    window.",
                "bindings": { "http": { "method": "POST", "bindingVersion": HTTP_BINDING } },
            }),
        );
        self.operation(
            "presence".into(),
            "send",
            &id,
            &["presenceChange"],
            json!({
                "title": "Enter, update or leave presence",
                "summary": "POST /channels/{channel}/presence",
                "description": "For the credential's clientId (a token's `clientId` claim) with                     the `presence` capability. Answers 201 with the PresenceMessage the change                     made, or 200 when it changed nothing. `GET /channels/{channel}/presence`                     lists the members now (action `present`).",
                "bindings": { "http": { "method": "POST", "bindingVersion": HTTP_BINDING } },
            }),
        );
    }

    /// A configured `[[api]]`, polled at `/apis/{name}/{path}`.
    fn api(&mut self, api: &ApiConfig, config: &Config) {
        let interval = api.interval_ms.unwrap_or(config.poll.interval_ms);
        self.polled(
            &format!("api.{}", api.name),
            &format!("GET /apis/{}/{{path}}", api.name),
            json!({
                "address": format!("/apis/{}/{{path}}", literal(&api.name)),
                "title": format!("API {}", api.name),
                "description": format!(
                    "Polls `{}` followed by `{{path}}` every {interval} ms (`pollInterval` is \
                     clamped to {}..{} ms) and streams the JSON document: `data` first (and \
                     after a gap), then RFC 6902 `patch` events. All subscribers of a topic \
                     share one poller.",
                    public_url(&api.base_url),
                    config.poll.min_interval_ms,
                    config.poll.max_interval_ms,
                ),
                "parameters": {
                    "path": { "description": "The path (and query) after the API's base URL." }
                },
            }),
        );
    }

    /// Ad-hoc polling of `GET /{target-url}`, when targets are allowed.
    fn adhoc(&mut self, config: &Config) {
        let allowed: Vec<String> = config
            .poll
            .allowed_targets
            .iter()
            .map(|p| format!("`{}`", without_query(p)))
            .collect();
        self.polled(
            "poll",
            "GET /{target-url}",
            json!({
                "address": "/{targetUrl}",
                "title": "Polled URLs",
                "description": format!(
                    "Polls the JSON API at the URL in the path and streams its document: \
                     `data` first (and after a gap), then RFC 6902 `patch` events. All \
                     subscribers of a topic (method, URL with sorted query, forwarded headers) \
                     share one poller. Allowed targets: {}.",
                    allowed.join(", ")
                ),
                "parameters": {
                    "targetUrl": {
                        "description": "The target URL, starting with `http://` or `https://`, \
                            e.g. `https://api.example.com/quotes`."
                    }
                },
            }),
        );
    }

    /// A delta-stream channel (`channel` without its messages) and its receive operation.
    fn polled(&mut self, base: &str, endpoint: &str, mut channel: Value) {
        channel["messages"] = poll_messages();
        let id = self.channel(base, channel);
        self.operation(
            format!("receive.{id}"),
            "receive",
            &id,
            &["data", "patch", "error"],
            poll_operation(endpoint),
        );
    }

    /// One channel per topic of a `[[relay]]`.
    fn relay(&mut self, relay: &RelayConfig) {
        let listen = relay.path();
        let topics: Vec<(String, String)> = match &relay.topics {
            Some(topics) => topics.iter().map(|(n, p)| (n.clone(), p.clone())).collect(),
            // Without topics every path under the listen path is relayed as is.
            None => vec![("*".into(), "/*".into())],
        };
        for (topic, upstream_path) in topics {
            let (address, parameters) = match topic.strip_suffix('*') {
                Some(_) if relay.topics.is_none() => (
                    format!("{}/{{path}}", literal(&listen)),
                    json!({ "path": { "description": format!(
                        "Any path under `{listen}` (the listen path itself too), relayed to \
                         the same path upstream."
                    ) } }),
                ),
                Some(prefix) => (
                    format!("{}/{}{{path}}", literal(&listen), literal(prefix)),
                    json!({ "path": { "description": format!(
                        "Any path after `{listen}/{prefix}`; it replaces the `*` of the \
                         upstream path."
                    ) } }),
                ),
                None if topic.is_empty() => (literal(&listen), json!({})),
                None => (
                    format!("{}/{}", literal(&listen), literal(&topic)),
                    json!({}),
                ),
            };
            let kept = if relay.strip_listen_path { "" } else { &listen };
            let upstream = format!(
                "{}{}{kept}{}",
                relay.upstream.origin().ascii_serialization(),
                relay.upstream.path().trim_end_matches('/'),
                without_query(&upstream_path).replace('*', "{path}"),
            );
            let forwarded = if relay.forward_headers.is_empty() {
                String::new()
            } else {
                format!(
                    " Request headers passed upstream: {}.",
                    relay.forward_headers.join(", ")
                )
            };
            let (description, messages, names): (String, Value, &[&str]) = match relay.mode {
                RelayMode::Shared => (
                    format!(
                        "Shared relay `{}` of `{upstream}`: one upstream SSE connection per \
                         topic, fanned out to every subscriber, reconnected with \
                         `Last-Event-ID` and honouring `retry:`. Events keep their type and \
                         data and get gateway ids: clients resume from the gateway's history \
                         with `lastEvent` or `Last-Event-ID`. When the upstream fails, an `error` event says \
                         so and the stream stays open.{forwarded}",
                        relay.name
                    ),
                    json!({
                        "event": { "$ref": "#/components/messages/relayEvent" },
                        "error": { "$ref": "#/components/messages/relayError" },
                    }),
                    &["event", "error"],
                ),
                RelayMode::Passthrough => (
                    format!(
                        "Passthrough relay `{}` of `{upstream}`: a 1:1 streaming proxy. Each \
                         request opens its own upstream request (any method); the response \
                         is the upstream's own, flushed event by event, never \
                         buffered.{forwarded}",
                        relay.name
                    ),
                    json!({ "event": { "$ref": "#/components/messages/passthroughEvent" } }),
                    &["event"],
                ),
            };
            let mut channel = json!({
                "address": address,
                "title": format!("Relay {}: {}", relay.name, if topic.is_empty() { "/" } else { &topic }),
                "description": description,
                "messages": messages,
            });
            if parameters.as_object().is_some_and(|p| !p.is_empty()) {
                channel["parameters"] = parameters;
            }
            // What `streamgate import asyncapi` reads back as this relay.
            channel[asyncapi_import::EXTENSION] = public_relay(relay);
            // `news/*` → `relay.market.news`; no topics → `relay.raw`.
            let name = topic.trim_end_matches('*').replace('/', ".");
            let id = self.channel(&format!("relay.{}.{name}", relay.name), channel);
            self.operation(
                format!("receive.{id}"),
                "receive",
                &id,
                names,
                json!({
                    "title": format!("Subscribe to relay {}", relay.name),
                    "bindings": {
                        "http": {
                            "method": "GET",
                            "query": {
                                "type": "object",
                                "description": relay_query(relay),
                                "properties": {},
                                "additionalProperties": true,
                            },
                            "bindingVersion": HTTP_BINDING,
                        }
                    },
                }),
            );
        }
    }
}

/// Which of a client's query parameters a relay passes upstream.
/// The gateway's own query parameters, as a list in prose: they never go upstream.
fn own_parameters() -> String {
    let own: Vec<String> = GATEWAY_PARAMETERS
        .iter()
        .map(|p| format!("`{p}`"))
        .collect();
    own.join(", ")
}

fn relay_query(relay: &RelayConfig) -> String {
    let own = own_parameters();
    match relay.mode {
        RelayMode::Passthrough => {
            format!("Every parameter but the gateway's own ({own}) is passed upstream.")
        }
        RelayMode::Shared if relay.forward_query.is_empty() => {
            format!("The gateway's own parameters only ({own}); any other is refused.")
        }
        RelayMode::Shared => format!(
            "Passed upstream, each value a topic of its own: {}. Besides the gateway's own \
             parameters ({own}), any other is refused.",
            relay.forward_query.join(", ")
        ),
    }
}

pub(super) fn str_prop(description: &str) -> Value {
    json!({ "type": "string", "description": description })
}

fn poll_messages() -> Value {
    json!({
        "data": { "$ref": "#/components/messages/pollData" },
        "patch": { "$ref": "#/components/messages/pollPatch" },
        "error": { "$ref": "#/components/messages/pollError" },
    })
}

fn poll_operation(summary: &str) -> Value {
    json!({
        "title": "Subscribe to a delta stream",
        "summary": summary,
        "description": "Every event has an `id`; `Last-Event-ID` resumes with the missed \
            patches, or a fresh `data`.",
        "bindings": {
            "http": {
                "method": "GET",
                "query": {
                    "type": "object",
                    "description": format!(
                        "The gateway consumes its own parameters ({}); all others go to the target.",
                        own_parameters()
                    ),
                    "properties": {
                        "lastEvent": str_prop("Resume after this event id (or send `Last-Event-ID`)."),
                        "X-Sd-Header": {
                            "type": "array",
                            "items": { "type": "string" },
                            "description": "Repeatable `Name: value`, a header forwarded to the target.",
                        },
                        "pollInterval": {
                            "type": "integer",
                            "minimum": 1,
                            "description": "Polling interval in ms, clamped to the API's bounds.",
                        },
                        "mode": {
                            "type": "string",
                            "enum": ["patch", "snapshot"],
                            "default": "patch",
                            "description": "`snapshot` sends the whole document each time it changes.",
                        },
                        "select": str_prop("A JSON Pointer: stream only that part of the document."),
                    },
                    "additionalProperties": true,
                },
                "bindingVersion": HTTP_BINDING,
            }
        },
    })
}

/// A key AsyncAPI accepts (`^[A-Za-z0-9._-]+$`) made from `base`, unused in `taken`.
fn unique_id(taken: &Map<String, Value>, base: &str) -> String {
    let mut id: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    id = id.trim_end_matches('.').to_owned();
    if id.is_empty() {
        id.push('_');
    }
    let mut candidate = id.clone();
    let mut n = 2;
    while taken.contains_key(&candidate) {
        candidate = format!("{id}-{n}");
        n += 1;
    }
    candidate
}

/// What a URL path may not hold raw (the WHATWG path percent-encode set); braces would
/// also read as address parameters.
const PATH: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// A literal part of a channel address, as clients write it in the URL.
fn literal(text: &str) -> String {
    utf8_percent_encode(text, PATH).to_string()
}

/// A relay's config as its channels carry it: without its headers, its upstream without
/// user, password or query (where credentials go).
fn public_relay(relay: &RelayConfig) -> Value {
    let mut shown = serde_json::to_value(relay).unwrap_or_default();
    if let Some(shown) = shown.as_object_mut() {
        shown.remove("headers");
        shown.insert("upstream".into(), public_url(&relay.upstream).into());
    }
    shown
}

/// A URL without userinfo, query or fragment: they may hold credentials.
fn public_url(url: &reqwest::Url) -> String {
    format!("{}{}", url.origin().ascii_serialization(), url.path())
}

fn without_query(text: &str) -> &str {
    text.split(['?', '#']).next().unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_plain_and_unique() {
        let mut taken = Map::new();
        taken.insert("relay.a.news__".into(), Value::Null);
        assert_eq!(unique_id(&taken, "relay.a.news/*"), "relay.a.news__-2");
        assert_eq!(unique_id(&taken, "api.wéather"), "api.w_ather");
        assert_eq!(unique_id(&taken, "relay.a."), "relay.a");
    }
}
