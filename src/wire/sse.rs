//! Server-Sent Events encoding (WHATWG HTML "server-sent events").

use bytes::{BufMut, Bytes, BytesMut};

/// `event: {name}` plus the text as `data:` lines.
///
/// Every line terminator SSE recognises (CRLF, CR, LF) starts a new `data:` line, so a
/// multi-line payload reaches the client byte-exact (the parser joins lines with LF; a CR or
/// CRLF in a payload therefore arrives as LF, which is all SSE can carry).
pub fn event_body(name: &str, text: &str) -> Bytes {
    let mut buf = BytesMut::with_capacity(text.len() + name.len() + 16);
    buf.put_slice(b"event: ");
    buf.put_slice(name.as_bytes());
    buf.put_u8(b'\n');
    put_data_lines(&mut buf, text);
    buf.put_u8(b'\n');
    buf.freeze()
}

/// A Mercure update: its own `id`, `event` only when it has a type, `retry` when it sets
/// one, and its data as `data:` lines.
pub fn mercure_event(id: &str, kind: Option<&str>, retry: Option<u64>, text: &str) -> Bytes {
    let mut buf = BytesMut::with_capacity(text.len() + id.len() + 32);
    put_id(&mut buf, id);
    if let Some(kind) = kind {
        buf.put_slice(b"event: ");
        buf.put_slice(kind.as_bytes());
        buf.put_u8(b'\n');
    }
    if let Some(retry) = retry {
        buf.put_slice(format!("retry: {retry}\n").as_bytes());
    }
    put_data_lines(&mut buf, text);
    buf.put_u8(b'\n');
    buf.freeze()
}

fn put_data_lines(buf: &mut BytesMut, text: &str) {
    let mut rest = text;
    loop {
        let end = rest.find(['\r', '\n']).unwrap_or(rest.len());
        buf.put_slice(b"data: ");
        buf.put_slice(&rest.as_bytes()[..end]);
        buf.put_u8(b'\n');
        if end == rest.len() {
            return;
        }
        let skip = if rest[end..].starts_with("\r\n") {
            2
        } else {
            1
        };
        rest = &rest[end + skip..];
    }
}

pub fn put_id(buf: &mut BytesMut, id: &str) {
    buf.put_slice(b"id: ");
    buf.put_slice(id.as_bytes());
    buf.put_u8(b'\n');
}

/// A named event whose data is one line of JSON.
pub fn put_event(buf: &mut BytesMut, name: &str, json: &str) {
    buf.put_slice(b"event: ");
    buf.put_slice(name.as_bytes());
    buf.put_slice(b"\ndata: ");
    buf.put_slice(json.as_bytes());
    buf.put_slice(b"\n\n");
}

/// A comment line: ignored by every SSE client, but it keeps proxies and NATs from closing
/// an idle connection.
pub fn put_keepalive(buf: &mut BytesMut) {
    buf.put_slice(b":keepalive\n\n");
}

/// Tells an EventSource how long to wait before it reconnects.
pub fn put_retry(buf: &mut BytesMut, retry_ms: u64) {
    buf.put_slice(format!("retry: {retry_ms}\n\n").as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_terminator_starts_a_data_line() {
        let body = event_body("message", "a\nb\r\nc\rd");
        assert_eq!(
            &body[..],
            b"event: message\ndata: a\ndata: b\ndata: c\ndata: d\n\n"
        );
    }

    #[test]
    fn empty_and_trailing_lines_survive() {
        assert_eq!(
            &event_body("message", "")[..],
            b"event: message\ndata: \n\n"
        );
        assert_eq!(
            &event_body("message", "x\n")[..],
            b"event: message\ndata: x\ndata: \n\n"
        );
    }
}
