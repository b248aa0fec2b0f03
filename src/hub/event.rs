//! One event in a channel's log, with its wire encodings computed once and shared.

use std::sync::OnceLock;

use bytes::Bytes;

use crate::wire::envelope::Message;
use crate::wire::{WireFormat, ndjson, sse};

/// An event as the hub stores it: a position in its channel plus the message.
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
    pub message: Message,
    encoded: [OnceLock<Bytes>; WireFormat::COUNT],
}

impl Event {
    pub fn new(seq: u64, order: u64, message: Message) -> Self {
        Event {
            seq,
            order,
            message,
            encoded: Default::default(),
        }
    }

    /// The event's bytes in `format`, without the per-connection `id` (see `wire`).
    pub fn encoded(&self, format: WireFormat) -> &Bytes {
        self.encoded[format as usize].get_or_init(|| match format {
            WireFormat::SseEnveloped => sse::message_body(&envelope_json(&self.message)),
            WireFormat::SseRaw => sse::message_body(&raw_text(&self.message)),
            WireFormat::NdjsonEnveloped => Bytes::from(envelope_json(&self.message)),
            WireFormat::NdjsonRaw => ndjson::data_json(&self.message.data),
        })
    }
}

fn envelope_json(message: &Message) -> String {
    serde_json::to_string(message).expect("a Message always serializes")
}

/// The payload of a non-enveloped SSE event: a string as itself, anything else as JSON text.
fn raw_text(message: &Message) -> String {
    match &message.data {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
