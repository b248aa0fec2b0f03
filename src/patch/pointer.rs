//! JSON Pointers (RFC 6901): the locations the diff walks through, and the array indices
//! `apply` accepts.
//!
//! While diffing, a location is a chain of [`Path`] links living on the call stack, so walking
//! a large document allocates nothing; a `PointerBuf` is built only when an operation is
//! emitted. Escaping of `~` (`~0`) and `/` (`~1`) in member names happens there, through
//! `jsonptr`'s `Token::new`.

use json_patch::jsonptr::{PointerBuf, Token};

use super::size;

/// One step down from a container to a child.
#[derive(Clone, Copy, Debug)]
pub(super) enum Step<'a> {
    /// An object member, by its unescaped name.
    Key(&'a str),
    /// An array element.
    Index(usize),
}

/// A location in the document being diffed: the root, or a step below a parent location.
///
/// A root may stand for a place not known yet (an array element that may still shift): its
/// pointer is then relative, and `base` says how many bytes the real location will add in
/// front of every pointer, so sizes can be compared as they will be once placed.
#[derive(Debug)]
pub(super) struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    step: Option<Step<'a>>,
    base: usize,
}

impl<'a> Path<'a> {
    /// The whole document (the empty pointer `""`).
    pub(super) const ROOT: Path<'static> = Path::relative(0);

    /// A root to be placed later under a pointer whose escaped text is `base` bytes long.
    pub(super) const fn relative(base: usize) -> Path<'static> {
        Path {
            parent: None,
            step: None,
            base,
        }
    }

    /// The escaped length of the pointer this path will be placed under.
    pub(super) fn base(&self) -> usize {
        self.base
    }

    /// The location one step below this one.
    pub(super) fn child(&'a self, step: Step<'a>) -> Path<'a> {
        Path {
            parent: Some(self),
            step: Some(step),
            base: self.base,
        }
    }

    /// The member `key` of the object at this location.
    pub(super) fn key(&'a self, key: &'a str) -> Path<'a> {
        self.child(Step::Key(key))
    }

    /// The element `index` of the array at this location.
    pub(super) fn index(&'a self, index: usize) -> Path<'a> {
        self.child(Step::Index(index))
    }

    /// The escaped pointer text of this location, e.g. `/items/3/a~1b`.
    pub(super) fn to_pointer(&self) -> PointerBuf {
        let mut pointer = PointerBuf::new();
        self.push_onto(&mut pointer);
        pointer
    }

    fn push_onto(&self, pointer: &mut PointerBuf) {
        if let Some(parent) = self.parent {
            parent.push_onto(pointer);
        }
        match self.step {
            Some(Step::Key(key)) => pointer.push_back(Token::new(key)),
            Some(Step::Index(index)) => pointer.push_back(index),
            None => {}
        }
    }

    /// The length of [`Path::to_pointer`]'s text as a JSON string (quotes and escapes
    /// included), found without building it.
    pub(super) fn pointer_len(&self) -> usize {
        let step = match self.step {
            Some(Step::Key(key)) => 1 + key.bytes().map(escaped_len).sum::<usize>(),
            Some(Step::Index(index)) => 2 + index.checked_ilog10().unwrap_or(0) as usize,
            None => 2,
        };
        step + self.parent.map_or(0, Path::pointer_len)
    }
}

/// The length of one byte of a member name once escaped for a pointer (`~0`, `~1`) and then
/// as JSON text.
fn escaped_len(byte: u8) -> usize {
    match byte {
        b'~' | b'/' => 2,
        _ => size::byte(byte),
    }
}

/// Reads an array index token the way RFC 6901 spells it: `0`, or digits without a leading
/// zero. `-` (the position past the end) is accepted only where `end_ok` says so, and the
/// result must be below `len` (or at most `len` when `end_ok`, as `add` may append).
pub(super) fn array_index(token: &str, len: usize, end_ok: bool) -> Option<usize> {
    let index = if token == "-" {
        end_ok.then_some(len)?
    } else {
        let digits = token.as_bytes();
        let canonical = !digits.is_empty()
            && digits.iter().all(u8::is_ascii_digit)
            && (digits[0] != b'0' || digits.len() == 1);
        if !canonical {
            return None;
        }
        token.parse().ok()?
    };
    let in_range = if end_ok { index <= len } else { index < len };
    in_range.then_some(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_escaped() {
        let root = Path::ROOT;
        let a = root.key("a/b");
        let b = a.index(3);
        let c = b.key("m~n");
        assert_eq!(c.to_pointer().as_str(), "/a~1b/3/m~0n");
        assert_eq!(root.to_pointer().as_str(), "");
        assert_eq!(root.key("").to_pointer().as_str(), "/");
        assert_eq!(root.key("~1").to_pointer().as_str(), "/~01");
        let d = c.key("\"\u{1}\n/é");
        for path in [&root, &a, &b, &c, &d, &root.index(0), &root.index(10)] {
            assert_eq!(path.pointer_len(), size::string(path.to_pointer().as_str()));
        }
    }

    #[test]
    fn indices_follow_rfc_6901() {
        assert_eq!(array_index("0", 2, false), Some(0));
        assert_eq!(array_index("1", 2, false), Some(1));
        assert_eq!(array_index("2", 2, false), None);
        assert_eq!(array_index("2", 2, true), Some(2));
        assert_eq!(array_index("-", 2, true), Some(2));
        assert_eq!(array_index("-", 2, false), None);
        assert_eq!(array_index("0", 0, false), None);
        assert_eq!(array_index("01", 2, false), None);
        assert_eq!(array_index("1e0", 2, false), None);
        assert_eq!(array_index("+1", 2, false), None);
        assert_eq!(array_index("", 2, true), None);
        assert_eq!(array_index("99999999999999999999999", 2, true), None);
    }
}
