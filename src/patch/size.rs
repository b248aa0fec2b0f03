//! Serialized sizes, the currency of every choice the diff makes (recursive edit or whole
//! replacement, move or remove + add, aligned or positional, patch or snapshot).
//!
//! Sizes are those of `serde_json`'s compact output, the form patches travel in. Values are
//! measured by serializing them into a counter that can stop early: most comparisons only need
//! to know whether a value is smaller than some small patch.

use std::io;

use serde_json::Value;

/// Fixed bytes of an `add` op around its path and value:
/// `{"op":"add","path":` + `,"value":` + `}`.
pub(super) const ADD: usize = 29;
/// Fixed bytes of a `remove` op around its path: `{"op":"remove","path":` + `}`.
pub(super) const REMOVE: usize = 23;
/// Fixed bytes of a `replace` op around its path and value.
pub(super) const REPLACE: usize = 33;
/// Fixed bytes of a `move` op around its two paths: `{"op":"move","from":` + `,"path":` + `}`.
pub(super) const MOVE: usize = 29;

/// The serialized length of `value`.
pub(super) fn value(value: &Value) -> usize {
    value_within(value, usize::MAX).unwrap_or(usize::MAX)
}

/// The serialized length of `value` if it is at most `limit`, else `None` (found without
/// serializing past `limit`).
pub(super) fn value_within(value: &Value, limit: usize) -> Option<usize> {
    let mut counter = Counter { len: 0, limit };
    serde_json::to_writer(&mut counter, value).ok()?;
    Some(counter.len)
}

/// The length of `text` as a JSON string literal, quotes and escapes included, exactly as
/// `serde_json` writes it.
pub(super) fn string(text: &str) -> usize {
    2 + text
        .bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\x08' | b'\x0c' | b'\n' | b'\r' | b'\t' => 2,
            0..0x20 => 6,
            _ => 1,
        })
        .sum::<usize>()
}

/// A writer that only counts, and fails once the count passes its limit.
struct Counter {
    len: usize,
    limit: usize,
}

impl io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.len = self.len.saturating_add(buf.len());
        if self.len > self.limit {
            return Err(io::ErrorKind::FileTooLarge.into());
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_measure_as_serialized() {
        for text in [
            "",
            "plain",
            "a\"b\\c",
            "\u{0}\u{1f}\u{7f}",
            "\n\t\r\u{8}\u{c}",
            "é€😀",
        ] {
            assert_eq!(
                string(text),
                serde_json::to_string(text).unwrap().len(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn values_measure_within_limits() {
        let v = json!({"a": [1, 2, 3], "b": "text"});
        let len = serde_json::to_string(&v).unwrap().len();
        assert_eq!(value(&v), len);
        assert_eq!(value_within(&v, len), Some(len));
        assert_eq!(value_within(&v, len - 1), None);
    }
}
