//! Reading JSON that comes in (published messages, polled documents) with every number kept
//! as the exact text it arrived as.
//!
//! `serde_json` with `arbitrary_precision` keeps a number's digits but rewrites its exponent
//! (`1E5` and `1e5` become `1e+5`), and its typed deserializers turn `-0` into `0`. A gateway
//! must hand on what it was given, so this reader makes each number from its own text. It
//! reads into a [`Document`] (canonical text and a node table, built in one pass with each
//! value's structural hash); [`parse`] turns that into the same `serde_json::Value` serde
//! would build (objects in document order, later duplicate members replacing earlier ones,
//! at most 128 levels deep, one more than `serde_json` allows).

use std::collections::HashSet;
use std::fmt;

use serde_json::Value;

use super::document::{Document, K, Kind, Slot, bytes, member_hash};

/// How deep arrays and objects may nest; deeper input is refused (as `serde_json` does), so
/// what is read can be walked recursively without running out of stack.
pub(super) const MAX_DEPTH: usize = 128;

/// Objects with more members than this find duplicate names through a set, not a scan.
const FEW_MEMBERS: usize = 16;

/// The names of a big object's members, for finding a duplicate: the names themselves in a
/// set keyed at random, so names crafted to collide cannot make reading quadratic.
type Names = HashSet<Box<[u8]>>;

/// Why the input is not JSON, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    what: &'static str,
    line: usize,
    column: usize,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at line {} column {}",
            self.what, self.line, self.column
        )
    }
}

impl std::error::Error for JsonError {}

/// Parses one JSON text (surrounding whitespace allowed) into a `Value` whose numbers are
/// exactly as written.
pub fn parse(input: &[u8]) -> Result<Value, JsonError> {
    Ok(document(input, MAX_DEPTH)?.to_value())
}

/// Parses one JSON text into a [`Document`], nested at most `max_depth` levels.
pub(super) fn document(input: &[u8], max_depth: usize) -> Result<Document, JsonError> {
    let mut reader = Reader {
        input,
        source: "",
        max_depth,
        at: 0,
        run: 0,
        text: String::with_capacity(input.len()),
        // Capacity that is never touched costs address space, not memory; growing costs a copy.
        nodes: Vec::with_capacity(input.len() / 8),
        names: Vec::new(),
        duplicates: false,
    };
    if u32::try_from(input.len()).is_err() {
        return Err(reader.error("document larger than 4 GiB"));
    }
    // Checked once, whole: the grammar allows other than ASCII only inside strings.
    reader.source = match std::str::from_utf8(input) {
        Ok(source) => source,
        Err(e) => {
            reader.at = e.valid_up_to();
            return Err(reader.error("invalid UTF-8"));
        }
    };
    reader.value(0, 0)?;
    reader.flush();
    reader.skip_whitespace();
    if reader.at < input.len() {
        return Err(reader.error("trailing characters"));
    }
    // A document is kept while its topic is polled: it gives back what reading reserved
    // when that is much more than it uses (shrinking always would cost a copy per poll).
    if reader.text.capacity() > reader.text.len() + reader.text.len() / 4 {
        reader.text.shrink_to_fit();
    }
    if reader.nodes.capacity() > 2 * reader.nodes.len() {
        reader.nodes.shrink_to_fit();
    }
    let document = Document {
        text: reader.text,
        nodes: reader.nodes,
    };
    if reader.duplicates {
        // Rare: rebuilt through a map, which keeps the last of each name.
        return Ok(Document::from_value(&document.to_value()));
    }
    Ok(document)
}

struct Reader<'a> {
    input: &'a [u8],
    /// The input, once checked to be UTF-8.
    source: &'a str,
    max_depth: usize,
    at: usize,
    /// The canonical text is `text` followed by `input[run..at]`: the input is copied in
    /// runs, cut only where it is not canonical (whitespace, escapes). The canonical form is
    /// never longer than the input, so its offsets fit in `u32` as the input's do.
    run: usize,
    text: String,
    nodes: Vec<Slot>,
    /// The names of the open objects' members so far: hash, and start and end in the
    /// canonical text.
    names: Vec<(u64, usize, usize)>,
    /// Whether some object named a member twice.
    duplicates: bool,
}

impl Reader<'_> {
    fn error(&self, what: &'static str) -> JsonError {
        let before = &self.input[..self.at.min(self.input.len())];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        // Columns count characters, not bytes, as editors do.
        let column = String::from_utf8_lossy(&before[line_start..])
            .chars()
            .count()
            + 1;
        JsonError { what, line, column }
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.at).copied()
    }

    fn skip_whitespace(&mut self) {
        if let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.flush();
            while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
                self.at += 1;
            }
            self.run = self.at;
        }
    }

    /// Moves the pending run of input into `text`. Runs end only at ASCII bytes.
    fn flush(&mut self) {
        self.text.push_str(&self.source[self.run..self.at]);
        self.run = self.at;
    }

    /// The offset in the canonical text the reader is at.
    fn pos(&self) -> usize {
        self.text.len() + self.at - self.run
    }

    /// The canonical text from `start` to `end`, which lie in one token (a string or a
    /// number): flushed whole or still pending whole.
    fn canonical(&self, start: usize, end: usize) -> &[u8] {
        match start.checked_sub(self.text.len()) {
            Some(pending) => &self.input[self.run + pending..self.run + pending + end - start],
            None => &self.text.as_bytes()[start..end],
        }
    }

    /// Reads one value into a node (with `name`, the length of its quoted member name, when
    /// it is an object member); returns its unfinished hash.
    fn value(&mut self, depth: usize, name: usize) -> Result<u64, JsonError> {
        self.skip_whitespace();
        let at = self.nodes.len();
        let start = self.pos();
        let Some(first) = self.peek() else {
            return Err(self.error("EOF while parsing a value"));
        };
        self.nodes.push(Slot {
            start: start as u32,
            tag: Slot::tag(Kind::of(first), name),
            ..Slot::default()
        });
        let hash = match first {
            b'{' => self.object(depth + 1)?,
            b'[' => self.array(depth + 1)?,
            b'"' => {
                self.string()?;
                bytes(5, self.canonical(start + 1, self.pos() - 1))
            }
            b't' => self.literal("true", 3)?,
            b'f' => self.literal("false", 2)?,
            b'n' => self.literal("null", 1)?,
            b'-' | b'0'..=b'9' => {
                self.number()?;
                bytes(4, self.canonical(start, self.pos()))
            }
            _ => return Err(self.error("expected value")),
        };
        let (end, after) = (self.pos() as u32, self.nodes.len() as u32);
        let slot = &mut self.nodes[at];
        slot.end = end;
        slot.after = after;
        slot.hash = hash;
        Ok(hash)
    }

    fn literal(&mut self, text: &str, hash: u64) -> Result<u64, JsonError> {
        if self.input[self.at..].starts_with(text.as_bytes()) {
            self.at += text.len();
            Ok(hash)
        } else {
            Err(self.error("expected value"))
        }
    }

    /// Steps into an array or object (the reader at its opening bracket); true when it is
    /// empty (its `close` consumed).
    fn enter(&mut self, depth: usize, close: u8) -> Result<bool, JsonError> {
        if depth > self.max_depth {
            return Err(self.error("recursion limit exceeded"));
        }
        self.at += 1;
        self.skip_whitespace();
        let empty = self.peek() == Some(close);
        if empty {
            self.at += 1;
        }
        Ok(empty)
    }

    /// After an element or member: true at a `,` (another follows), false at `close`.
    fn more(&mut self, close: u8, in_what: &'static str) -> Result<bool, JsonError> {
        self.skip_whitespace();
        match self.peek() {
            Some(b',') => {
                self.at += 1;
                Ok(true)
            }
            Some(c) if c == close => {
                self.at += 1;
                Ok(false)
            }
            None => Err(self.error(in_what)),
            Some(_) if close == b']' => Err(self.error("expected `,` or `]`")),
            Some(_) => Err(self.error("expected `,` or `}`")),
        }
    }

    /// Elements are folded in order.
    fn array(&mut self, depth: usize) -> Result<u64, JsonError> {
        let mut hash = 6u64.wrapping_mul(K);
        let mut count = 0u64;
        if !self.enter(depth, b']')? {
            loop {
                hash = (hash.rotate_left(5) ^ self.value(depth, 0)?).wrapping_mul(K);
                count += 1;
                if !self.more(b']', "EOF while parsing a list")? {
                    break;
                }
            }
        }
        Ok(hash ^ count)
    }

    /// Members are added up, so that their order does not change the hash.
    fn object(&mut self, depth: usize) -> Result<u64, JsonError> {
        let mut sum = 0u64;
        let mut count = 0u64;
        let first = self.names.len();
        let mut seen = Names::new();
        if !self.enter(depth, b'}')? {
            loop {
                self.skip_whitespace();
                match self.peek() {
                    Some(b'"') => {}
                    None => return Err(self.error("EOF while parsing an object")),
                    Some(_) => return Err(self.error("key must be a string")),
                }
                let start = self.pos();
                self.string()?;
                let end = self.pos();
                if end - start >= Slot::MAX_NAME {
                    return Err(self.error("member name longer than 512 MiB"));
                }
                let name = bytes(7, self.canonical(start + 1, end - 1));
                self.note_name(first, &mut seen, (name, start, end));
                self.skip_whitespace();
                if self.peek() != Some(b':') {
                    return Err(self.error("expected `:`"));
                }
                self.at += 1;
                let value = self.value(depth, end - start)?;
                sum = sum.wrapping_add(member_hash(name, value));
                count += 1;
                if !self.more(b'}', "EOF while parsing an object")? {
                    break;
                }
            }
        }
        self.names.truncate(first);
        Ok((sum ^ count ^ 8).wrapping_mul(K))
    }

    /// Records a member's name among the names of its object (from `first` on), noting a
    /// duplicate. A few names are scanned; past [`FEW_MEMBERS`] they go in `seen`. Once one
    /// duplicate is found the document is rebuilt anyway, and nothing more is checked.
    fn note_name(&mut self, first: usize, seen: &mut Names, name: (u64, usize, usize)) {
        if self.duplicates {
            return;
        }
        let names = &self.names[first..];
        if names.len() < FEW_MEMBERS {
            let this = self.canonical(name.1, name.2);
            let same = |&(hash, start, end): &(u64, usize, usize)| {
                hash == name.0 && self.canonical(start, end) == this
            };
            self.duplicates = names.iter().any(same);
        } else {
            if seen.is_empty() {
                let known = names
                    .iter()
                    .map(|&(_, start, end)| self.canonical(start, end));
                seen.extend(known.map(Box::from));
            }
            self.duplicates = !seen.insert(self.canonical(name.1, name.2).into());
        }
        self.names.push(name);
    }

    /// A string, the reader at its opening quote. One with escapes is written to `text`
    /// whole, in canonical form; one without is left in the pending run.
    fn string(&mut self) -> Result<(), JsonError> {
        self.at += 1;
        let mut escaped = false;
        loop {
            // Copy the run up to the next quote, backslash or control character at once.
            let run = self.input[self.at..]
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20);
            let Some(len) = run else {
                self.at = self.input.len();
                return Err(self.error("EOF while parsing a string"));
            };
            self.at += len;
            match self.input[self.at] {
                b'"' => {
                    self.at += 1;
                    if escaped {
                        self.flush();
                    }
                    return Ok(());
                }
                b'\\' => {
                    self.flush();
                    self.at += 1;
                    let c = self.escape()?;
                    escape_as_serde(&mut self.text, c);
                    self.run = self.at;
                    escaped = true;
                }
                _ => return Err(self.error("control character in a string")),
            }
        }
    }

    /// One escape, the reader just after its backslash.
    fn escape(&mut self) -> Result<char, JsonError> {
        let Some(byte) = self.peek() else {
            return Err(self.error("EOF while parsing a string"));
        };
        self.at += 1;
        let c = match byte {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let first = self.hex4()?;
                let code = if (0xD800..0xDC00).contains(&first) {
                    if !self.input[self.at..].starts_with(b"\\u") {
                        return Err(self.error("lone leading surrogate in hex escape"));
                    }
                    self.at += 2;
                    let second = self.hex4()?;
                    if !(0xDC00..0xE000).contains(&second) {
                        return Err(self.error("lone leading surrogate in hex escape"));
                    }
                    0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
                } else {
                    first
                };
                char::from_u32(code).ok_or_else(|| self.error("lone trailing surrogate"))?
            }
            _ => {
                self.at -= 1;
                return Err(self.error("invalid escape"));
            }
        };
        Ok(c)
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let digits = self
            .input
            .get(self.at..self.at + 4)
            .ok_or_else(|| self.error("EOF while parsing a string"))?;
        let mut code = 0;
        for &d in digits {
            let nibble = (d as char)
                .to_digit(16)
                .ok_or_else(|| self.error("invalid \\u escape"))?;
            code = code * 16 + nibble;
        }
        self.at += 4;
        Ok(code)
    }

    /// A number, kept as its text: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn number(&mut self) -> Result<(), JsonError> {
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek() {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.error("invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            self.required_digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            self.required_digits()?;
        }
        if let Some(b'0'..=b'9') = self.peek() {
            // A second digit after a leading zero.
            return Err(self.error("invalid number"));
        }
        Ok(())
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.at += 1;
        }
    }

    fn required_digits(&mut self) -> Result<(), JsonError> {
        if !matches!(self.peek(), Some(b'0'..=b'9')) {
            return Err(self.error("invalid number"));
        }
        self.digits();
        Ok(())
    }
}

/// Writes `c` as `serde_json` does inside a string: quote, backslash and control characters
/// escaped (the short forms where JSON has them, else `\u00xx`), everything else as itself.
fn escape_as_serde(out: &mut String, c: char) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if u32::from(c) < 0x20 => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            let b = c as u8;
            out.push_str("\\u00");
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0xf)] as char);
        }
        c => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_their_text() {
        for text in [
            "0",
            "-0",
            "-0.0",
            "1E5",
            "1e5",
            "1e+5",
            "1E-05",
            "1e400",
            "-1.50e-3",
            "12345678901234567890123456",
            "0.1000000000000000000000001",
        ] {
            let value = parse(text.as_bytes()).unwrap();
            assert_eq!(serde_json::to_string(&value).unwrap(), text);
        }
    }

    #[test]
    fn reads_what_serde_json_reads() {
        let text = r#" {"a": [1, -2.5, true, false, null, "x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"],
            "b": {}, "c": [], "a": "last wins", "é": "ü"} "#;
        let ours = parse(text.as_bytes()).unwrap();
        let theirs: Value = serde_json::from_str(text).unwrap();
        assert_eq!(ours, theirs);
        assert_eq!(
            ours.as_object().unwrap().keys().collect::<Vec<_>>(),
            theirs.as_object().unwrap().keys().collect::<Vec<_>>()
        );
    }

    #[test]
    fn refuses_what_serde_json_refuses() {
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        let deepest_allowed = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(parse(deepest_allowed.as_bytes()).is_ok());
        for bad in [
            "",
            " ",
            "01",
            "1.",
            ".5",
            "1e",
            "1e+",
            "-",
            "+1",
            "NaN",
            "[1,]",
            "{\"a\":1,}",
            "{a:1}",
            "\"\\x\"",
            "\"\\ud800\"",
            "\"\\udc00\"",
            "\"\u{1}\"",
            "\"open",
            "[1 2]",
            "tru",
            "nul",
            "1 2",
            "{\"a\" 1}",
            &deep,
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad:?} was accepted");
            assert!(
                serde_json::from_str::<Value>(bad).is_err(),
                "{bad:?} is JSON after all"
            );
        }
        assert!(parse(b"\"\xff\"").is_err());
        assert!(parse(b"[\xc3\xa9]").is_err(), "text outside a string");
        assert_eq!(
            parse(b"[\"ok\", \"\xe9t\xe9\"]").unwrap_err().to_string(),
            "invalid UTF-8 at line 1 column 9"
        );
    }

    #[test]
    fn errors_say_where() {
        let e = parse(b"{\n  \"a\": tru\n}").unwrap_err();
        assert_eq!(e.to_string(), "expected value at line 2 column 8");
    }
}
