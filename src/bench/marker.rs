//! The payload marker: how a subscriber recognises a published message in any server's framing.
//!
//! A payload reads `sgb<run>-<seq>-<settled>-<sent_unix_micros>-` followed by padding. Only
//! letters, digits and `-` appear, so no server needs to escape it in JSON, SSE, NDJSON or a
//! URL, and the receiver can find it by scanning raw body bytes without understanding the
//! framing. `<run>` is eight lowercase hex digits chosen per run, so messages left in a
//! channel's history by an earlier run are never counted.
//!
//! `<settled>` says that every message below it had been answered by the server when this
//! one was sent. Publishes in flight together may be ordered either way by the server; only
//! a message arriving after one whose `settled` exceeds it was truly reordered.

use std::fmt::Write;

/// Eight lowercase hex digits naming one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunId([u8; 8]);

impl RunId {
    pub fn random() -> RunId {
        RunId::parse(&format!("{:08x}", rand::random::<u32>())).expect("eight hex digits")
    }

    pub fn parse(text: &str) -> Option<RunId> {
        let bytes: [u8; 8] = text.as_bytes().try_into().ok()?;
        bytes
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
            .then_some(RunId(bytes))
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("hex digits are ASCII")
    }

    /// `sgb<run>-`: its first byte appears nowhere else in it, which lets the scanner restart
    /// a failed match at the current byte without backtracking.
    fn prefix(&self) -> [u8; 12] {
        let mut prefix = *b"sgb________-";
        prefix[3..11].copy_from_slice(&self.0);
        prefix
    }
}

/// Padding characters: no lowercase `s`, so padding can never start a false marker.
const PADDING: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// What a marker carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub seq: u64,
    /// Every seq below this had been answered when this message was sent.
    pub settled: u64,
    pub sent_us: u64,
}

/// The payload carrying `stamp`, padded to about `size` bytes.
pub fn payload(run: RunId, stamp: Stamp, size: usize) -> String {
    let mut text = String::with_capacity(size.max(64));
    write!(
        text,
        "sgb{}-{}-{}-{}-",
        run.as_str(),
        stamp.seq,
        stamp.settled,
        stamp.sent_us
    )
    .expect("writing to a String");
    let pad = size.saturating_sub(text.len());
    text.extend(PADDING.iter().cycle().take(pad).map(|&b| b as char));
    text
}

/// Numbers in a marker, each followed by `-`.
const FIELDS: usize = 3;
/// More digits than any u64 has: the text is not one of our markers.
const MAX_DIGITS: u8 = 20;

#[derive(Debug, Clone, Copy)]
enum State {
    /// This many bytes of the prefix matched.
    Prefix(usize),
    /// Reading field `field`; earlier fields are in `values`.
    Number {
        field: usize,
        values: [u64; FIELDS],
        digits: u8,
    },
}

/// Finds markers in a byte stream fed in arbitrary pieces; a marker split across two reads is
/// still found, and the scanner holds no buffer.
#[derive(Debug, Clone)]
pub struct Scanner {
    prefix: [u8; 12],
    state: State,
}

impl Scanner {
    pub fn new(run: RunId) -> Scanner {
        Scanner {
            prefix: run.prefix(),
            state: State::Prefix(0),
        }
    }

    /// Scans `bytes`, calling `found` for every complete marker.
    pub fn feed(&mut self, bytes: &[u8], mut found: impl FnMut(Stamp)) {
        let mut i = 0;
        while i < bytes.len() {
            if let State::Prefix(0) = self.state {
                // The common case: skip ahead to the next possible marker start.
                match bytes[i..].iter().position(|&b| b == self.prefix[0]) {
                    Some(at) => i += at,
                    None => return,
                }
            }
            let byte = bytes[i];
            i += 1;
            self.state = match self.state {
                State::Prefix(matched) if byte == self.prefix[matched] => {
                    if matched + 1 == self.prefix.len() {
                        State::Number {
                            field: 0,
                            values: [0; FIELDS],
                            digits: 0,
                        }
                    } else {
                        State::Prefix(matched + 1)
                    }
                }
                State::Number {
                    field,
                    mut values,
                    digits,
                } if byte.is_ascii_digit() && digits < MAX_DIGITS => {
                    values[field] = values[field]
                        .wrapping_mul(10)
                        .wrapping_add(u64::from(byte - b'0'));
                    State::Number {
                        field,
                        values,
                        digits: digits + 1,
                    }
                }
                State::Number {
                    field,
                    values,
                    digits,
                } if byte == b'-' && digits > 0 && field + 1 < FIELDS => State::Number {
                    field: field + 1,
                    values,
                    digits: 0,
                },
                State::Number { values, digits, .. } if byte == b'-' && digits > 0 => {
                    found(Stamp {
                        seq: values[0],
                        settled: values[1],
                        sent_us: values[2],
                    });
                    State::Prefix(0)
                }
                _ => State::Prefix(usize::from(byte == self.prefix[0])),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_in_pieces(run: RunId, text: &[u8], piece: usize) -> Vec<Stamp> {
        let mut scanner = Scanner::new(run);
        let mut found = Vec::new();
        for chunk in text.chunks(piece) {
            scanner.feed(chunk, |f| found.push(f));
        }
        found
    }

    fn stamp(seq: u64, settled: u64, sent_us: u64) -> Stamp {
        Stamp {
            seq,
            settled,
            sent_us,
        }
    }

    #[test]
    fn payloads_are_found_whatever_the_split() {
        let run = RunId::parse("0badcafe").unwrap();
        let mut stream = Vec::new();
        for seq in 0..5 {
            let text = payload(run, stamp(seq, seq / 2, 1_700_000_000_000_000 + seq), 100);
            assert_eq!(text.len(), 100);
            stream.extend_from_slice(b"id: 1\nevent: message\ndata: {\"data\":\"");
            stream.extend_from_slice(text.as_bytes());
            stream.extend_from_slice(b"\"}\n\n");
        }
        for piece in [1, 2, 3, 7, 64, 4096] {
            let found = scan_in_pieces(run, &stream, piece);
            assert_eq!(found.len(), 5, "piece size {piece}");
            assert_eq!(found[3], stamp(3, 1, 1_700_000_000_000_003));
        }
    }

    #[test]
    fn other_runs_and_near_misses_are_ignored() {
        let run = RunId::parse("00000001").unwrap();
        let other = payload(RunId::parse("00000002").unwrap(), stamp(1, 0, 2), 0);
        let text =
            format!("ssgb00000001-sgb00000001-7-0-sgb00000001-1--1- {other} sgb00000001-9-8-10-");
        let found = scan_in_pieces(run, text.as_bytes(), 5);
        assert_eq!(found, vec![stamp(9, 8, 10)]);
    }

    #[test]
    fn short_sizes_still_carry_the_marker() {
        let run = RunId::parse("abcdef01").unwrap();
        assert_eq!(payload(run, stamp(12, 0, 34), 3), "sgbabcdef01-12-0-34-");
        assert!(RunId::parse("ABCDEF01").is_none());
        assert!(RunId::parse("abc").is_none());
        assert_eq!(RunId::random().as_str().len(), 8);
    }
}
