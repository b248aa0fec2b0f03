//! Resume cursors: the SSE `id` of a connection's events.
//!
//! A cursor is `{epoch}-{p1}.{p2}...`: the hub's epoch, then the position reached in each of
//! the connection's channels, in the connection's channel order (sorted names). One id thus
//! resumes every channel of a multiplexed connection exactly. Only ASCII letters, digits,
//! `-` and `.` appear, so the text needs no escaping in SSE or JSON.

use std::fmt::Write;

use rand::Rng;

/// A random tag for this process's positions, so ids from before a restart are recognised.
pub fn new_epoch() -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    (0..6)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Writes the cursor for `positions` into `out` (cleared first).
pub fn encode(epoch: &str, positions: impl IntoIterator<Item = u64>, out: &mut String) {
    out.clear();
    out.push_str(epoch);
    out.push('-');
    for (i, p) in positions.into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        write!(out, "{p}").expect("writing to a String cannot fail");
    }
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
    pub epoch: String,
    pub positions: Vec<u64>,
}

/// Parses a cursor; `None` when the text is not one of ours.
pub fn parse(text: &str) -> Option<Cursor> {
    let (epoch, positions) = text.split_once('-')?;
    if epoch.is_empty() || !epoch.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let positions = positions
        .split('.')
        .map(|p| p.parse().ok())
        .collect::<Option<Vec<u64>>>()?;
    Some(Cursor {
        epoch: epoch.to_owned(),
        positions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let mut out = String::new();
        encode("k3x9ab", [0, 41, 7], &mut out);
        assert_eq!(out, "k3x9ab-0.41.7");
        assert_eq!(
            parse(&out),
            Some(Cursor {
                epoch: "k3x9ab".into(),
                positions: vec![0, 41, 7]
            })
        );
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
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
