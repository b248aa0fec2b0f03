//! One event in a channel's log, with its wire encodings computed once and shared.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

use crate::wire::document::Document;
use crate::wire::envelope::{Message, PresenceMessage};
use crate::wire::{WireFormat, ndjson, sse};

/// What an event carries.
#[derive(Debug)]
pub enum Body {
    /// A pub/sub message (Ably's Message object).
    Message(Message),
    /// An event of a state channel (a polled document): sent as itself to a connection that
    /// carries only it (as Streamdata / AMPLIFY Streams do), and as `{"channel", "data"}`
    /// (`channel` naming the stream) to an enveloped, multiplexed connection.
    State(StateKind, StateData, Arc<str>),
    /// An event relayed from an upstream SSE server.
    Relayed(Relayed),
    /// A member of a channel entered, updated its data or left (see `presence`).
    Presence(PresenceMessage),
}

/// An upstream SSE event as the relay received it: sent to a connection that carries only
/// it exactly as the upstream wrote it (type and data), and as `{"channel", "data"}` to an
/// enveloped one, like a state channel's events.
#[derive(Debug)]
pub struct Relayed {
    /// The SSE event type (`message` when the upstream gave none).
    pub event: String,
    pub data: String,
    /// The upstream's id for it, kept to resume the upstream; clients get gateway ids.
    pub upstream_id: Option<String>,
    /// What enveloped connections call the stream.
    pub stream: Arc<str>,
    /// The gateway's own `error` event about the upstream, not an upstream event: it does
    /// not count against `history_size`, so failures never push events out of history.
    pub notice: bool,
}

/// What a state channel's event carries.
#[derive(Debug, Clone)]
pub enum StateData {
    /// JSON text (a patch, an error): history keeps bytes, not a tree of values several
    /// times their size. The text must be valid JSON. Once appended, it is a slice of the
    /// event's SSE encoding (see [`state_body`]): one buffer holds both.
    Text(Bytes),
    /// A whole document, shared with the poller that diffs the next version against it; its
    /// text is what subscribers are sent.
    Document(Arc<Document>),
}

impl StateData {
    /// The event's JSON text.
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            StateData::Text(text) => String::from_utf8_lossy(text),
            StateData::Document(document) => document.text().into(),
        }
    }
}

/// The events of a state channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateKind {
    /// The whole document.
    Data,
    /// An RFC 6902 patch from the previous document.
    Patch,
    /// The upstream failed; the document is unchanged.
    Error,
}

impl StateKind {
    pub fn name(self) -> &'static str {
        match self {
            StateKind::Data => "data",
            StateKind::Patch => "patch",
            StateKind::Error => "error",
        }
    }
}

/// An event as the hub stores it: a position in its channel plus what it carries.
///
/// The encodings are filled lazily by the first outlet that needs each one and then shared
/// by every other subscriber, so fan-out never serializes per subscriber.
#[derive(Debug)]
pub struct Event {
    /// Position in the channel: contiguous within one channel incarnation.
    pub seq: u64,
    /// Hub-wide publish order, so a connection on several channels can interleave their
    /// backlogs as they were published.
    pub order: u64,
    /// Milliseconds since the Unix epoch when the hub appended it (history ages by it).
    pub timestamp: u64,
    /// When this node's hub appended it, on `clock::mono_us`: where its delivery latency
    /// counts from.
    pub appended_us: u64,
    pub body: Body,
    encoded: [OnceLock<Bytes>; WireFormat::COUNT],
}

impl Event {
    pub fn new(seq: u64, order: u64, timestamp: u64, body: Body) -> Self {
        Event {
            seq,
            order,
            timestamp,
            appended_us: crate::clock::mono_us(),
            body,
            encoded: Default::default(),
        }
    }

    /// The SSE event type / NDJSON `event` member.
    pub fn name(&self) -> &str {
        match &self.body {
            Body::Message(_) => "message",
            Body::Presence(_) => "presence",
            Body::State(kind, ..) => kind.name(),
            Body::Relayed(r) => &r.event,
        }
    }

    pub fn message(&self) -> Option<&Message> {
        match &self.body {
            Body::Message(m) => Some(m),
            Body::State(..) | Body::Relayed(_) | Body::Presence(_) => None,
        }
    }

    pub fn relayed(&self) -> Option<&Relayed> {
        match &self.body {
            Body::Relayed(r) => Some(r),
            Body::Message(_) | Body::State(..) | Body::Presence(_) => None,
        }
    }

    /// The event's bytes in `format`, without the per-connection `id` (see `wire`).
    pub fn encoded(&self, format: WireFormat) -> &Bytes {
        self.encoded[format as usize].get_or_init(|| encode(&self.body, format))
    }

    /// Keeps `bytes`, made by [`encode`] from this event's body before it was appended, as
    /// its encoding in `format`.
    pub(super) fn keep_encoding(&self, format: WireFormat, bytes: Bytes) {
        let _ = self.encoded[format as usize].set(bytes);
    }
}

/// A state event's body and its SSE encoding (what a delta stream sends), sharing one
/// buffer: a one-line JSON text is kept as the slice of its own `data:` line.
pub(super) fn state_body(kind: StateKind, data: StateData, stream: Arc<str>) -> (Body, Bytes) {
    let mut body = Body::State(kind, data, stream);
    let raw = encode(&body, WireFormat::SseRaw);
    if let Body::State(_, StateData::Text(text), _) = &mut body {
        let start = "event: \ndata: ".len() + kind.name().len();
        let line = start..raw.len().saturating_sub(2).max(start);
        if raw.get(line.clone()) == Some(&text[..]) {
            *text = raw.slice(line);
        }
    }
    (body, raw)
}

/// The bytes of `body` in `format`, without the per-connection `id`.
pub(super) fn encode(body: &Body, format: WireFormat) -> Bytes {
    match (body, format) {
        (Body::Message(m), WireFormat::SseEnveloped) => {
            sse::event_body("message", &envelope_json(m))
        }
        (Body::Message(m), WireFormat::SseRaw) => sse::event_body("message", &raw_text(m)),
        (Body::Message(m), WireFormat::NdjsonEnveloped) => Bytes::from(envelope_json(m)),
        (Body::Message(m), WireFormat::NdjsonRaw) => ndjson::data_json(&m.data),
        (Body::State(kind, data, stream), WireFormat::SseEnveloped) => {
            sse::event_body(kind.name(), &state_envelope(stream, data))
        }
        (Body::State(kind, data, _), WireFormat::SseRaw) => {
            sse::event_body(kind.name(), &data.text())
        }
        (Body::State(_, data, stream), WireFormat::NdjsonEnveloped) => {
            Bytes::from(state_envelope(stream, data))
        }
        (Body::State(_, data, _), WireFormat::NdjsonRaw) => Bytes::from(data.text().into_owned()),
        (Body::Relayed(r), WireFormat::SseRaw) => sse::event_body(&r.event, &r.data),
        (Body::Relayed(r), WireFormat::SseEnveloped) => {
            sse::event_body(&r.event, &relayed_envelope(r))
        }
        (Body::Relayed(r), WireFormat::NdjsonEnveloped) => Bytes::from(relayed_envelope(r)),
        (Body::Relayed(r), WireFormat::NdjsonRaw) => {
            ndjson::data_json(&Value::String(r.data.clone()))
        }
        (Body::Message(m), WireFormat::Mercure) => {
            let update = &m.data;
            sse::mercure_event(
                update["id"].as_str().unwrap_or_default(),
                update["type"].as_str(),
                update["retry"].as_u64(),
                update["data"].as_str().unwrap_or_default(),
            )
        }
        // A presence message is its own payload, enveloped or not.
        (Body::Presence(p), WireFormat::SseEnveloped | WireFormat::SseRaw) => {
            sse::event_body("presence", &presence_json(p))
        }
        (Body::Presence(p), WireFormat::NdjsonEnveloped | WireFormat::NdjsonRaw) => {
            Bytes::from(presence_json(p))
        }
        // Only Mercure updates (messages) are sent as Mercure events.
        (Body::State(..) | Body::Relayed(_) | Body::Presence(_), WireFormat::Mercure) => {
            Bytes::new()
        }
    }
}

/// `{"channel", "data"}`: how an enveloped connection carries a stream that is not pub/sub.
/// Serialized straight from the borrowed parts (`json!` would copy `data` through
/// `to_value`, which respells numbers).
#[derive(Serialize)]
struct StreamEnvelope<'a, T: Serialize> {
    channel: &'a str,
    data: &'a T,
}

/// The same envelope around a state event's text, which is JSON already.
fn state_envelope(stream: &str, data: &StateData) -> String {
    let data = data.text();
    let mut envelope = String::with_capacity(data.len() + stream.len() + 24);
    envelope.push_str("{\"channel\":");
    envelope.push_str(&serde_json::to_string(stream).expect("a string always serializes"));
    envelope.push_str(",\"data\":");
    envelope.push_str(&data);
    envelope.push('}');
    envelope
}

fn relayed_envelope(relayed: &Relayed) -> String {
    let envelope = StreamEnvelope {
        channel: &relayed.stream,
        data: &relayed.data,
    };
    serde_json::to_string(&envelope).expect("an envelope always serializes")
}

fn presence_json(message: &PresenceMessage) -> String {
    serde_json::to_string(message).expect("a PresenceMessage always serializes")
}

fn envelope_json(message: &Message) -> String {
    serde_json::to_string(message).expect("a Message always serializes")
}

/// The payload of a non-enveloped SSE event: a string as itself, anything else as JSON text.
fn raw_text(message: &Message) -> String {
    match &message.data {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
