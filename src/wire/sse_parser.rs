//! Incremental parser for `text/event-stream` bodies, following the WHATWG HTML
//! "Interpreting an event stream" algorithm.
//!
//! The gateway relays upstream SSE servers, so it has to see exactly the events a browser's
//! `EventSource` would see for the same bytes: if it did not, a client connected to the
//! upstream directly and one connected through the gateway would disagree. Network reads cut
//! the stream at arbitrary byte offsets, so between calls the parser keeps nothing but the
//! unfinished line and the event being built, and it decodes UTF-8 only once a line is
//! complete (a character split across two reads must come out whole).

use std::borrow::Cow;
use std::mem;

/// The UTF-8 encoding of U+FEFF. The spec decodes the stream with "UTF-8 decode", which drops
/// one BOM at the very start and keeps any other U+FEFF as content.
const BOM: &[u8; 3] = b"\xEF\xBB\xBF";

/// Capacity an idle buffer may keep. A connection can live for days; one oversized line or
/// event id must not pin its allocation for all that time, while ordinary traffic should
/// still reuse its buffers instead of reallocating on every line.
const RETAINED_CAPACITY: usize = 64 * 1024;

/// One dispatched event, as a browser's EventSource would see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The event type: the `event:` field, or "message" when absent/empty.
    pub event: String,
    pub data: String,
    /// The last event ID buffer at dispatch time (persists across events, as in WHATWG).
    pub id: String,
    /// A valid `retry:` value seen since the previous dispatch (all ASCII digits), if any.
    ///
    /// A browser applies `retry:` the moment it reads the line; the event carries it too,
    /// and `SseParser::pending_retry` tells one read before any event is dispatched. A
    /// blank line that dispatches nothing (no `data:` yet) keeps the value for the next
    /// event rather than dropping it. Values too large for `u64` saturate, since the spec accepts
    /// any run of digits and "wait practically forever" is the closest faithful reading.
    pub retry: Option<u64>,
}

/// What the parser yields: events, and comment lines (a line starting with ':'), which a
/// gateway needs to see keepalives. Comments carry the text after the ':' exactly as it
/// appears, without removing a leading space.
///
/// Comments are reported as soon as their line ends, even in the middle of an event, because
/// their purpose (keepalive, liveness) is about timing, not about the event around them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseFrame {
    Event(SseEvent),
    Comment(String),
}

/// Streaming parser state for one event stream (one HTTP response).
///
/// A fresh parser (`new` or `default`) is at the start of a stream, where a BOM is still
/// allowed; use a new parser for each reconnection.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of a line whose terminator has not arrived yet. Lines that end within the chunk
    /// they started in are interpreted in place and never copied here.
    line: Vec<u8>,
    bom: BomState,
    /// The previous chunk ended in CR, so an LF opening the next chunk completes that same
    /// line ending instead of ending an empty line (which would dispatch an event).
    after_cr: bool,
    event: EventBuffers,
}

/// How far the start of the stream has been checked for a BOM. The BOM itself may be split
/// across chunks, so partial matches must survive between calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BomState {
    /// This many leading bytes of the stream (always fewer than three) match the BOM.
    Matching(usize),
    /// The start of the stream is behind us: any later U+FEFF is content.
    Done,
}

impl Default for BomState {
    fn default() -> Self {
        Self::Matching(0)
    }
}

/// The buffers of the spec's algorithm, kept apart from the line framing so a line held in
/// `SseParser::line` can be interpreted while borrowed.
#[derive(Debug, Default)]
struct EventBuffers {
    data: String,
    event_type: String,
    last_event_id: String,
    retry: Option<u64>,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next chunk of the byte stream (chunks may split anywhere: inside a CRLF,
    /// inside a multi-byte UTF-8 character, inside the BOM). Appends completed frames to
    /// `out`.
    ///
    /// An event is only complete at its blank line, so whatever follows the last blank line
    /// stays buffered; if the stream ends there, that partial event is never reported, just
    /// as a browser discards it.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<SseFrame>) {
        let mut rest = self.skip_bom(chunk);
        if self.after_cr && !rest.is_empty() {
            self.after_cr = false;
            if let Some(tail) = rest.strip_prefix(b"\n") {
                rest = tail;
            }
        }

        while let Some(end) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            let head = &rest[..end];
            let mut tail = &rest[end + 1..];
            if self.line.is_empty() {
                self.event.interpret(head, out);
            } else {
                self.line.extend_from_slice(head);
                self.event.interpret(&self.line, out);
                self.line.clear();
                self.line.shrink_to(RETAINED_CAPACITY);
            }
            if rest[end] == b'\r' {
                match tail.first() {
                    Some(b'\n') => tail = &tail[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            rest = tail;
        }
        self.line.extend_from_slice(rest);
    }

    /// A valid `retry:` value read since the last event was dispatched, if any: a browser
    /// applies it at once, even when no event follows before the stream ends.
    pub fn pending_retry(&self) -> Option<u64> {
        self.event.retry
    }

    /// Convenience: feed and return only the events.
    pub fn feed_events(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut frames = Vec::new();
        self.feed(chunk, &mut frames);
        frames
            .into_iter()
            .filter_map(|frame| match frame {
                SseFrame::Event(event) => Some(event),
                SseFrame::Comment(_) => None,
            })
            .collect()
    }

    /// Consumes the part of a leading BOM that `chunk` holds and returns the remainder.
    fn skip_bom<'a>(&mut self, mut chunk: &'a [u8]) -> &'a [u8] {
        while let BomState::Matching(matched) = self.bom {
            let Some((&byte, rest)) = chunk.split_first() else {
                break;
            };
            if BOM.get(matched) == Some(&byte) {
                chunk = rest;
                self.bom = if matched + 1 == BOM.len() {
                    BomState::Done
                } else {
                    BomState::Matching(matched + 1)
                };
            } else {
                // Not a BOM after all: the bytes held back belong to the first line. None of
                // them is CR or LF, so they can go straight into the line buffer.
                self.line.extend_from_slice(&BOM[..matched]);
                self.bom = BomState::Done;
            }
        }
        chunk
    }
}

impl EventBuffers {
    /// Applies one complete line (without its terminator).
    ///
    /// The line is split on bytes rather than on decoded text: ':' and ' ' are ASCII, which
    /// never occurs inside a multi-byte UTF-8 sequence and always ends an invalid one, so
    /// splitting first and decoding each part gives the same text as decoding first.
    fn interpret(&mut self, line: &[u8], out: &mut Vec<SseFrame>) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if let Some(comment) = line.strip_prefix(b":") {
            out.push(SseFrame::Comment(decode(comment).into_owned()));
            return;
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match name {
            b"data" => {
                self.data.push_str(&decode(value));
                self.data.push('\n');
            }
            b"event" => assign(&mut self.event_type, value),
            // An id containing NUL cannot be sent back in a `Last-Event-ID` header, so the
            // spec ignores it rather than truncating it.
            b"id" if !value.contains(&0) => assign(&mut self.last_event_id, value),
            b"retry" => {
                if let Some(millis) = parse_retry(value) {
                    self.retry = Some(millis);
                }
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseFrame>) {
        if self.data.is_empty() {
            // A block without `data:` is no event at all, but its `event:` must not leak
            // into the next block.
            assign(&mut self.event_type, b"");
            return;
        }
        if self.data.ends_with('\n') {
            self.data.pop();
        }
        let event = if self.event_type.is_empty() {
            String::from("message")
        } else {
            mem::take(&mut self.event_type)
        };
        out.push(SseFrame::Event(SseEvent {
            event,
            // Taken, not cloned: the data buffer is usually the largest one, and handing it
            // over leaves nothing behind once the event is out.
            data: mem::take(&mut self.data),
            id: self.last_event_id.clone(),
            retry: self.retry.take(),
        }));
    }
}

/// Decodes like a browser: invalid sequences become U+FFFD instead of failing the stream.
/// Borrows when the bytes are valid, which is the common case.
fn decode(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// Replaces `dst` with the decoded `bytes`, reusing its allocation unless an earlier value
/// made it oversized.
fn assign(dst: &mut String, bytes: &[u8]) {
    dst.clear();
    dst.shrink_to(RETAINED_CAPACITY);
    dst.push_str(&decode(bytes));
}

/// The spec accepts `retry:` only when the value is one or more ASCII digits; anything else
/// (a sign, a unit, whitespace, an empty value) leaves the reconnection time unchanged.
fn parse_retry(value: &[u8]) -> Option<u64> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(value.iter().fold(0u64, |acc, &digit| {
        acc.saturating_mul(10)
            .saturating_add(u64::from(digit - b'0'))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_line_does_not_pin_its_buffer() {
        let mut parser = SseParser::new();
        let mut out = Vec::new();
        parser.feed(b":", &mut out);
        for _ in 0..64 {
            parser.feed(&[b'x'; 16 * 1024], &mut out);
        }
        assert!(parser.line.capacity() >= 1024 * 1024);
        parser.feed(b"\n", &mut out);
        assert!(parser.line.capacity() <= RETAINED_CAPACITY);
        assert!(matches!(&out[..], [SseFrame::Comment(c)] if c.len() == 1024 * 1024));
    }

    #[test]
    fn oversized_id_does_not_pin_its_buffer() {
        let mut parser = SseParser::new();
        let mut body = b"id:".to_vec();
        body.resize(1024 * 1024, b'7');
        body.extend_from_slice(b"\nid:1\n");
        parser.feed_events(&body);
        assert_eq!(parser.event.last_event_id, "1");
        assert!(parser.event.last_event_id.capacity() <= RETAINED_CAPACITY);
    }

    #[test]
    fn retry_saturates_instead_of_overflowing() {
        assert_eq!(parse_retry(b"99999999999999999999999"), Some(u64::MAX));
        assert_eq!(parse_retry(b"0"), Some(0));
        assert_eq!(parse_retry(b""), None);
        assert_eq!(parse_retry(b"+1"), None);
        assert_eq!(parse_retry(b"1 "), None);
    }
}
