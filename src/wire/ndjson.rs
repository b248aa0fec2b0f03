//! Newline-delimited JSON envelopes: `{"event": ..., "id": ..., "data": ...}` one per line.
//!
//! For clients that cannot parse SSE (plain `fetch` readers, command-line tools).

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::Value;

/// The `data` member of a non-enveloped line: the payload as JSON.
pub fn data_json(data: &Value) -> Bytes {
    Bytes::from(data.to_string())
}

/// A line for an event with an id; `data` is the pre-encoded JSON shared by every subscriber.
pub fn put_event_with_id(buf: &mut BytesMut, name: &str, id: &str, data: &[u8]) {
    // The id is a cursor (`hub::cursor`): ASCII letters, digits, '-' and '.', so it needs no
    // JSON escaping. The name is ours, or a relayed upstream's event type, which may.
    buf.put_slice(b"{\"event\":");
    if name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        buf.put_u8(b'"');
        buf.put_slice(name.as_bytes());
        buf.put_u8(b'"');
    } else {
        let quoted = serde_json::to_string(name).expect("a string serializes");
        buf.put_slice(quoted.as_bytes());
    }
    buf.put_slice(b",\"id\":\"");
    buf.put_slice(id.as_bytes());
    buf.put_slice(b"\",\"data\":");
    buf.put_slice(data);
    buf.put_slice(b"}\n");
}

/// A line for an event with JSON data and no id (errors, heartbeats).
pub fn put_event(buf: &mut BytesMut, name: &str, json: &str) {
    buf.put_slice(b"{\"event\":\"");
    buf.put_slice(name.as_bytes());
    buf.put_slice(b"\",\"data\":");
    buf.put_slice(json.as_bytes());
    buf.put_slice(b"}\n");
}

/// An empty line keeps the connection alive and is skipped by NDJSON readers.
pub fn put_keepalive(buf: &mut BytesMut) {
    buf.put_u8(b'\n');
}
