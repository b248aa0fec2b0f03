//! Runs the SSE parser against the byte-level vectors derived from the web-platform-tests
//! EventSource suite, under every way a network could cut the body into reads.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use streamgate::wire::sse_parser::{SseEvent, SseFrame, SseParser};

/// The vendored file holds exactly this many vectors; checking the count catches a truncated
/// or partially parsed file that would otherwise pass by testing less.
const VECTOR_COUNT: usize = 20;

#[derive(Debug, Deserialize)]
struct Vector {
    name: String,
    wpt: String,
    body: String,
    expected: Vec<Expected>,
    /// The reconnection time the stream leaves in effect. The vectors state it once per
    /// stream, not per event, because WPT observes it only through the reconnect delay.
    retry: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct Expected {
    #[serde(rename = "type")]
    event: String,
    data: String,
    #[serde(rename = "lastEventId")]
    last_event_id: String,
    /// Per-event retry, should a vector ever state one.
    retry: Option<u64>,
}

fn vectors_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sse-vectors/vectors.json")
}

fn load_vectors() -> Vec<Vector> {
    let path = vectors_path();
    let text = fs::read_to_string(&path).unwrap_or_else(|err| {
        panic!(
            "SSE vectors are required but could not be read from {}: {err}",
            path.display()
        )
    });
    serde_json::from_str(&text)
        .unwrap_or_else(|err| panic!("{} is not a valid vector file: {err}", path.display()))
}

fn parse_chunks<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<SseEvent> {
    let mut parser = SseParser::new();
    let mut events = Vec::new();
    for chunk in chunks {
        events.extend(parser.feed_events(chunk));
    }
    events
}

fn parse_frames(chunks: &[&[u8]]) -> Vec<SseFrame> {
    let mut parser = SseParser::new();
    let mut frames = Vec::new();
    for chunk in chunks {
        parser.feed(chunk, &mut frames);
    }
    frames
}

/// Compares one run's events with the vector, naming the vector and the way the body was cut
/// so a failure can be reproduced directly.
fn check(vector: &Vector, how: &str, events: &[SseEvent]) {
    let context = format!("vector {:?} ({}), {how}", vector.name, vector.wpt);
    let got: Vec<(&str, &str, &str)> = events
        .iter()
        .map(|e| (e.event.as_str(), e.data.as_str(), e.id.as_str()))
        .collect();
    let want: Vec<(&str, &str, &str)> = vector
        .expected
        .iter()
        .map(|e| (e.event.as_str(), e.data.as_str(), e.last_event_id.as_str()))
        .collect();
    assert_eq!(got, want, "{context}: events (type, data, lastEventId)");

    let stated_per_event = vector.expected.iter().any(|e| e.retry.is_some());
    if stated_per_event {
        let got: Vec<Option<u64>> = events.iter().map(|e| e.retry).collect();
        let want: Vec<Option<u64>> = vector.expected.iter().map(|e| e.retry).collect();
        assert_eq!(got, want, "{context}: per-event retry");
    }
    // The value in effect after the stream is the last one any event carried.
    let in_effect = events.iter().rev().find_map(|e| e.retry);
    assert_eq!(in_effect, vector.retry, "{context}: retry in effect");
}

#[test]
fn wpt_vectors_whole_split_and_bytewise() {
    let vectors = load_vectors();
    assert_eq!(
        vectors.len(),
        VECTOR_COUNT,
        "expected {VECTOR_COUNT} vectors in {}",
        vectors_path().display()
    );

    let mut ran = 0;
    for vector in &vectors {
        let body = vector.body.as_bytes();

        check(vector, "whole body", &parse_chunks([body]));

        for k in 0..=body.len() {
            let (head, tail) = body.split_at(k);
            check(
                vector,
                &format!("split at byte {k} of {}", body.len()),
                &parse_chunks([head, tail]),
            );
        }

        check(vector, "byte by byte", &parse_chunks(body.chunks(1)));
        ran += 1;
    }
    assert_eq!(ran, VECTOR_COUNT, "not every vector was run");
}

#[test]
fn comments_are_reported_verbatim_and_in_order() {
    let frames = parse_frames(&[b":keepalive\n: spaced \r\ndata:a\n:", b"mid\n\n:\n"]);
    assert_eq!(
        frames,
        vec![
            SseFrame::Comment("keepalive".into()),
            SseFrame::Comment(" spaced ".into()),
            SseFrame::Comment("mid".into()),
            SseFrame::Event(SseEvent {
                event: "message".into(),
                data: "a".into(),
                id: String::new(),
                retry: None,
            }),
            SseFrame::Comment(String::new()),
        ]
    );
}

#[test]
fn cr_at_chunk_end_then_lf_is_one_line_ending() {
    // An empty chunk between the CR and the LF must not forget the pending CR.
    let frames = parse_frames(&[b"data:a\r", b"", b"\ndata:b\r", b"\r\n"]);
    let [SseFrame::Event(event)] = &frames[..] else {
        panic!("expected exactly one event, got {frames:?}");
    };
    assert_eq!(event.data, "a\nb");
}

#[test]
fn invalid_utf8_is_replaced_like_a_browser() {
    let events = parse_chunks([&b"data:\xFF\xE2\x80\ndata:\xE2"[..], b"\x80\xA6\n\n"]);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].data, "\u{FFFD}\u{FFFD}\n\u{2026}");
}

#[test]
fn broken_bom_is_line_content() {
    // Two bytes of a BOM followed by text: the stray bytes turn the field name into garbage.
    assert!(parse_chunks([&b"\xEF\xBB"[..], b"data:1\n\ndata:2\n\n"]).len() == 1);
    assert!(parse_chunks([&b"\xEF\xBB\xBF"[..], b"data:1\n\n"]).len() == 1);
}

#[test]
fn retry_and_id_survive_until_an_event_carries_them() {
    let events = parse_chunks([&b"retry:5000\nid:7\n\ndata:a\n\ndata:b\n\n"[..]]);
    let summary: Vec<(&str, &str, Option<u64>)> = events
        .iter()
        .map(|e| (e.data.as_str(), e.id.as_str(), e.retry))
        .collect();
    assert_eq!(summary, [("a", "7", Some(5000)), ("b", "7", None)]);
}

/// A small deterministic generator, so a failing input can be replayed from its seed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn random_bytes_in_random_chunks_never_panic() {
    // Bias towards the bytes the parser reacts to so the fuzzing reaches every branch.
    const INTERESTING: &[u8] = b"\r\n: \xEF\xBB\xBF\x00\xFF\xE2\x80dataeventidretry0123";
    for seed in 1..=200u64 {
        let mut rng = XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let body: Vec<u8> = (0..2048)
            .map(|_| {
                let r = rng.next();
                if r.is_multiple_of(3) {
                    r as u8
                } else {
                    INTERESTING[(r >> 8) as usize % INTERESTING.len()]
                }
            })
            .collect();
        let mut parser = SseParser::new();
        let mut frames = Vec::new();
        let mut rest = &body[..];
        while !rest.is_empty() {
            let take = (rng.next() % 17) as usize;
            let (chunk, tail) = rest.split_at(take.min(rest.len()));
            parser.feed(chunk, &mut frames);
            rest = tail;
        }
        // Chunking must not change the result.
        let whole = parse_frames(&[&body]);
        assert_eq!(frames, whole, "seed {seed}");
    }
}

#[test]
fn huge_line_without_newline_in_many_chunks_never_panics() {
    let mut parser = SseParser::new();
    let mut frames = Vec::new();
    let chunk = [b'x'; 4096];
    parser.feed(b"data:", &mut frames);
    for _ in 0..2048 {
        parser.feed(&chunk, &mut frames);
    }
    assert!(
        frames.is_empty(),
        "nothing may be dispatched before the line ends"
    );
    parser.feed(b"\n\n", &mut frames);
    let [SseFrame::Event(event)] = &frames[..] else {
        panic!("expected one event after the line ended");
    };
    assert_eq!(event.data.len(), 4096 * 2048);
}
