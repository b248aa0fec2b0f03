//! Serialized sizes, the currency of every choice the diff makes (recursive edit or whole
//! replacement, move or remove + add, aligned or positional, patch or snapshot).
//!
//! Sizes are those of `serde_json`'s compact output, the form patches travel in. A value's
//! is the length of its canonical text in the document; here are the ops' fixed parts and
//! the pointers' escaped lengths.

/// Fixed bytes of an `add` op around its path and value:
/// `{"op":"add","path":` + `,"value":` + `}`.
pub(super) const ADD: usize = 29;
/// Fixed bytes of a `remove` op around its path: `{"op":"remove","path":` + `}`.
pub(super) const REMOVE: usize = 23;
/// Fixed bytes of a `replace` op around its path and value.
pub(super) const REPLACE: usize = 33;
/// Fixed bytes of a `move` op around its two paths: `{"op":"move","from":` + `,"path":` + `}`.
pub(super) const MOVE: usize = 29;

/// The length of `text` as a JSON string literal, quotes and escapes included, exactly as
/// `serde_json` writes it.
pub(super) fn string(text: &str) -> usize {
    2 + text.bytes().map(byte).sum::<usize>()
}

/// The length of one byte of a string once written as JSON text.
pub(super) fn byte(b: u8) -> usize {
    match b {
        b'"' | b'\\' | b'\x08' | b'\x0c' | b'\n' | b'\r' | b'\t' => 2,
        0..0x20 => 6,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
