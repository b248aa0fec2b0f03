//! Positions and resume cursors: the SSE `id` of a connection's events.
//!
//! A position is `{epoch, offset}` of one channel, packed in a `u64`: the channel's epoch in
//! the high `EPOCH_BITS`, the offset in the rest. A channel draws a new epoch whenever its
//! history starts afresh (made in memory, or its stored history lost), so positions of an
//! earlier incarnation never compare as positions of this one: they lie outside its
//! `[floor, head]` or in another epoch, and a client resuming with one is told of the gap.
//! Positions mean the same in every process that reads the same store.
//!
//! A cursor is the position reached in each of the connection's channels, in the
//! connection's channel order (sorted names), as `{epoch}-{offset}` joined by `.`, the epoch
//! in base 36. One id thus resumes every channel of a multiplexed connection exactly. Only
//! ASCII letters, digits, `-` and `.` appear, so the text needs no escaping in SSE or JSON.

use std::fmt::Write;

use rand::Rng;

use crate::bus::position::{EPOCH_LIMIT, OFFSET_BITS};
pub use crate::bus::position::{fresh_base, fresh_epoch, position, split};

/// A random tag for this process (or store): the prefix of the message ids it makes and of
/// its server-kept cursors.
pub fn new_epoch() -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    (0..6)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Writes the cursor for `positions` into `out` (cleared first).
pub fn encode(positions: impl IntoIterator<Item = u64>, out: &mut String) {
    out.clear();
    for (i, p) in positions.into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        let (epoch, offset) = split(p);
        put_base36(epoch, out);
        write!(out, "-{offset}").expect("writing to a String cannot fail");
    }
}

fn put_base36(mut n: u64, out: &mut String) {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut digits = [0u8; 13];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = DIGITS[(n % 36) as usize];
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.extend(digits[start..].iter().map(|&d| d as char));
}

/// A server-kept cursor: `{epoch}-c{connection}.{entry}`, the connection's journal entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub epoch: String,
    pub connection: String,
    pub entry: u64,
}

/// Writes the token for `entry` of `connection` into `out` (cleared first).
pub fn encode_token(epoch: &str, connection: &str, entry: u64, out: &mut String) {
    out.clear();
    write!(out, "{epoch}-c{connection}.{entry}").expect("writing to a String cannot fail");
}

/// Parses a server-kept cursor; `None` when the text is not one.
pub fn parse_token(text: &str) -> Option<Token> {
    let (epoch, rest) = text.split_once('-')?;
    let (connection, entry) = rest.strip_prefix('c')?.split_once('.')?;
    let valid = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric());
    if !valid(epoch) || !valid(connection) {
        return None;
    }
    Some(Token {
        epoch: epoch.to_owned(),
        connection: connection.to_owned(),
        entry: entry.parse().ok()?,
    })
}

/// A cursor read back from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub positions: Vec<u64>,
}

/// Parses a cursor; `None` when the text is not one of ours.
pub fn parse(text: &str) -> Option<Cursor> {
    let positions = text
        .split('.')
        .map(|part| {
            let (epoch, offset) = part.split_once('-')?;
            let base36 = |b: u8| b.is_ascii_digit() || b.is_ascii_lowercase();
            if epoch.is_empty() || !epoch.bytes().all(base36) {
                return None;
            }
            if offset.is_empty() || !offset.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let epoch = u64::from_str_radix(epoch, 36)
                .ok()
                .filter(|&e| e < EPOCH_LIMIT)?;
            let offset: u64 = offset.parse().ok().filter(|&o| o < 1 << OFFSET_BITS)?;
            Some(epoch << OFFSET_BITS | offset)
        })
        .collect::<Option<Vec<u64>>>()?;
    Some(Cursor { positions })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let mut out = String::new();
        let positions = [
            1 << OFFSET_BITS,
            (36 << OFFSET_BITS) + 41,
            (EPOCH_LIMIT - 1) << OFFSET_BITS | 7,
        ];
        encode(positions, &mut out);
        assert_eq!(out, "1-0.10-41.mh33-7");
        assert_eq!(
            parse(&out),
            Some(Cursor {
                positions: positions.to_vec()
            })
        );
    }

    #[test]
    fn fresh_epochs_are_never_zero_and_differ_from_each_other() {
        let a = fresh_base();
        assert!(a >= 1 << OFFSET_BITS && a.is_multiple_of(1 << OFFSET_BITS));
        // Two draws agree once in a million; ten in a row never do.
        assert!((0..10).any(|_| fresh_base() != a));
    }

    #[test]
    fn tokens_round_trip_and_are_not_cursors() {
        let mut out = String::new();
        encode_token("k3x9ab", "q1w2e3", 42, &mut out);
        assert_eq!(out, "k3x9ab-cq1w2e3.42");
        let token = parse_token(&out).unwrap();
        assert_eq!((token.connection.as_str(), token.entry), ("q1w2e3", 42));
        assert_eq!(parse(&out), None);
        assert_eq!(parse_token("k3x9ab-1.2"), None);
    }

    #[test]
    fn rejects_what_is_not_a_cursor() {
        for bad in [
            "",
            "abc",
            "-1",
            "e-",
            "e-1..2",
            "e-x",
            "é-1",
            "e-1.-2",
            "e-99999999999999999999",
            "mh34-1",
            "A-1",
            "e-+1",
            "e- 1",
            "e-17592186044416",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
