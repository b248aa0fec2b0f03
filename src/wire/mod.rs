//! Encodings of events on the wire: SSE and NDJSON, and the JSON envelopes they carry (plus
//! YAML, for documents served as YAML), and the JSON reader that keeps numbers as sent.
//!
//! An event's body (everything but the per-connection resume id) is encoded once per
//! [`WireFormat`] and shared; the outlet only adds the id in front.

pub mod document;
pub mod envelope;
pub mod json;
pub mod ndjson;
pub mod sse;
pub mod sse_parser;
pub mod yaml;

/// The four ways an event can be written to a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireFormat {
    SseEnveloped,
    SseRaw,
    NdjsonEnveloped,
    NdjsonRaw,
    /// Mercure updates: each event carries the update's own id (see `http::mercure`).
    Mercure,
}

impl WireFormat {
    pub const COUNT: usize = 5;

    pub fn new(sse: bool, enveloped: bool) -> Self {
        match (sse, enveloped) {
            (true, true) => WireFormat::SseEnveloped,
            (true, false) => WireFormat::SseRaw,
            (false, true) => WireFormat::NdjsonEnveloped,
            (false, false) => WireFormat::NdjsonRaw,
        }
    }

    pub fn is_sse(self) -> bool {
        matches!(
            self,
            WireFormat::SseEnveloped | WireFormat::SseRaw | WireFormat::Mercure
        )
    }
}
