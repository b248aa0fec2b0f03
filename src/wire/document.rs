//! A parsed JSON document as two flat buffers: its text and a table of its values.
//!
//! A polled document is parsed, diffed against its previous version and sent on, every
//! interval, for as long as anyone watches it. As a tree of `serde_json::Value`s a 2 MB
//! document is about 20 MB of small allocations (a `String` per key and per number, a map per
//! object), which parsing, diffing and dropping walk one by one. Here a document is:
//!
//! - its **text** in canonical compact form: no whitespace, strings escaped exactly as
//!   `serde_json` writes them, numbers exactly as they arrived. It is what subscribers are
//!   sent, so a `data` event costs no serialization, and the serialized size of any value,
//!   which the diff weighs its choices by, is the length of its span;
//! - one **node** per value, in document order: where its text starts and ends, where its
//!   subtree ends, the length of its member name when it is an object member, and its
//!   structural hash, computed while parsing.
//!
//! Because the text is canonical, two scalars are equal exactly when their texts are, and a
//! container whose text is equal is equal; containers are compared structurally only when
//! their texts differ (objects are equal with their members in any order).

use std::borrow::Cow;
use std::collections::HashMap;

use serde_json::{Map, Number, Value};

use super::json::{self, JsonError};

/// A JSON document: its canonical text and its nodes. Immutable once parsed.
#[derive(Debug, Clone)]
pub struct Document {
    pub(super) text: String,
    pub(super) nodes: Vec<Slot>,
}

/// What the document knows of one value.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Slot {
    /// The value's text is `text[start..end]`.
    pub(super) start: u32,
    pub(super) end: u32,
    /// The index of the first node after this value's subtree.
    pub(super) after: u32,
    /// The value's [`Kind`] in the low 3 bits; above them, for an object member, the length
    /// of its quoted name, which ends one byte (the `:`) before `start` (0 otherwise). The
    /// kind is here so that walking the nodes does not touch the text.
    pub(super) tag: u32,
    /// The unfinished structural hash (see [`Node::hash`]).
    pub(super) hash: u64,
}

impl Slot {
    /// Names this long or longer are refused: their length would not fit beside the kind.
    pub(super) const MAX_NAME: usize = 1 << 29;

    pub(super) fn tag(kind: Kind, name: usize) -> u32 {
        ((name as u32) << 3) | kind as u32
    }

    fn kind(self) -> Kind {
        Kind::ALL[(self.tag & 7) as usize]
    }

    fn name(self) -> usize {
        (self.tag >> 3) as usize
    }
}

/// The kinds of JSON values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

impl Kind {
    const ALL: [Kind; 8] = [
        Kind::Null,
        Kind::Bool,
        Kind::Number,
        Kind::String,
        Kind::Array,
        Kind::Object,
        Kind::Null,
        Kind::Null,
    ];

    /// The kind of the value starting with `byte` (in valid JSON).
    pub(super) fn of(byte: u8) -> Kind {
        match byte {
            b'{' => Kind::Object,
            b'[' => Kind::Array,
            b'"' => Kind::String,
            b'n' => Kind::Null,
            b't' | b'f' => Kind::Bool,
            _ => Kind::Number,
        }
    }
}

impl Document {
    /// Parses one JSON text (surrounding whitespace allowed), refusing what `serde_json`
    /// refuses. Later duplicate members replace earlier ones, as in `serde_json`.
    pub fn parse(input: &[u8]) -> Result<Document, JsonError> {
        json::document(input, json::MAX_DEPTH)
    }

    /// The document of a `serde_json` value, as deep as the value is (a value built in
    /// memory may nest deeper than a parsed one may).
    pub fn from_value(value: &Value) -> Document {
        let text = serde_json::to_string(value).expect("a JSON value always serializes");
        json::document(text.as_bytes(), usize::MAX).expect("serde_json writes JSON")
    }

    /// The whole document's value.
    pub fn root(&self) -> Node<'_> {
        Node { doc: self, at: 0 }
    }

    /// The canonical compact text of the whole document.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The part of the document at a JSON Pointer (RFC 6901), as a document of its own.
    pub fn part(&self, pointer: &str) -> Option<Document> {
        let node = self.root().pointer(pointer)?;
        Some(Document::parse(node.text().as_bytes()).expect("a canonical value parses"))
    }

    /// The document as a `serde_json` value (numbers keep their text).
    pub fn to_value(&self) -> Value {
        self.root().to_value()
    }
}

impl PartialEq for Document {
    /// JSON equality: objects are equal with their members in any order.
    fn eq(&self, other: &Document) -> bool {
        self.root().equals(other.root())
    }
}

/// One value of a document.
#[derive(Debug, Clone, Copy)]
pub struct Node<'d> {
    doc: &'d Document,
    at: u32,
}

impl<'d> Node<'d> {
    fn slot(self) -> Slot {
        self.doc.nodes[self.at as usize]
    }

    pub fn kind(self) -> Kind {
        self.slot().kind()
    }

    /// The value's canonical compact text.
    pub fn text(self) -> &'d str {
        let slot = self.slot();
        &self.doc.text[slot.start as usize..slot.end as usize]
    }

    /// The length of the value's serialized text.
    pub fn size(self) -> usize {
        let slot = self.slot();
        (slot.end - slot.start) as usize
    }

    /// The structural hash: equal values (with object members in any order) hash alike;
    /// different values may collide, so a match found by hash is confirmed with
    /// [`Node::equals`]. Not keyed: crafted collisions can make patches larger and the
    /// diff's pairing slower (within its fixed effort budget), never wrong.
    pub fn hash(self) -> u64 {
        finish(self.slot().hash)
    }

    /// The elements of an array (nothing for any other kind).
    pub fn items(self) -> Children<'d> {
        self.children(Kind::Array)
    }

    /// The members of an object (nothing for any other kind), in document order.
    pub fn members(self) -> impl Iterator<Item = Member<'d>> {
        self.children(Kind::Object).map(|value| Member { value })
    }

    /// The values below this one if it is of kind `container`, else none.
    fn children(self, container: Kind) -> Children<'d> {
        let after = self.slot().after;
        let at = match self.kind() == container {
            true => self.at + 1,
            false => after,
        };
        Children {
            doc: self.doc,
            at,
            end: after,
        }
    }

    /// Whether the two values are equal as JSON values (numbers by their exact text).
    pub fn equals(self, other: Node<'_>) -> bool {
        let (a, b) = (self.slot(), other.slot());
        if a.hash != b.hash {
            return false;
        }
        if self.text() == other.text() {
            return true;
        }
        match (self.kind(), other.kind()) {
            (Kind::Object, Kind::Object) => same_members(self, other),
            (Kind::Array, Kind::Array) => {
                let (mut x, mut y) = (self.items(), other.items());
                loop {
                    match (x.next(), y.next()) {
                        (None, None) => return true,
                        (Some(x), Some(y)) if x.equals(y) => {}
                        _ => return false,
                    }
                }
            }
            _ => false,
        }
    }

    /// The value at a JSON Pointer below this one.
    pub fn pointer(self, pointer: &str) -> Option<Node<'d>> {
        if pointer.is_empty() {
            return Some(self);
        }
        let mut node = self;
        for token in pointer.strip_prefix('/')?.split('/') {
            let token = token.replace("~1", "/").replace("~0", "~");
            node = match node.kind() {
                // Names are unique: the reader keeps the last of a repeated one.
                Kind::Object => node.members().find(|m| m.name() == token)?.value,
                Kind::Array => {
                    let canonical = token == "0" || !token.starts_with(['0', '+']);
                    let index: usize = token.parse().ok().filter(|_| canonical)?;
                    node.items().nth(index)?
                }
                _ => return None,
            };
        }
        Some(node)
    }

    /// The value as a `serde_json` value (numbers keep their text).
    pub fn to_value(self) -> Value {
        match self.kind() {
            Kind::Null => Value::Null,
            Kind::Bool => Value::Bool(self.text() == "true"),
            Kind::Number => Value::Number(Number::from_string_unchecked(self.text().to_owned())),
            Kind::String => Value::String(unquote(self.text()).into_owned()),
            Kind::Array => Value::Array(self.items().map(Node::to_value).collect()),
            Kind::Object => {
                let mut map = Map::new();
                for member in self.members() {
                    map.insert(member.name().into_owned(), member.value.to_value());
                }
                Value::Object(map)
            }
        }
    }
}

/// Whether two objects have the same members, in any order. Members are compared in order
/// while their names agree (successive versions nearly always list them alike); from the
/// first that differs, by name through a map, so a reordering costs linear time (a map keyed
/// at random: names an upstream crafted to collide cannot make it quadratic).
fn same_members(a: Node<'_>, b: Node<'_>) -> bool {
    let (mut ours, mut theirs) = (a.members(), b.members());
    loop {
        match (ours.next(), theirs.next()) {
            (None, None) => return true,
            (Some(x), Some(y)) if x.raw_name() == y.raw_name() => {
                if !x.value.equals(y.value) {
                    return false;
                }
            }
            (Some(x), Some(y)) => {
                let rest: HashMap<&str, Node> = std::iter::once(y)
                    .chain(theirs)
                    .map(|m| (m.raw_name(), m.value))
                    .collect();
                let mut left = rest.len();
                for m in std::iter::once(x).chain(ours) {
                    match rest.get(m.raw_name()) {
                        Some(theirs) if m.value.equals(*theirs) => left -= 1,
                        _ => return false,
                    }
                }
                return left == 0;
            }
            _ => return false,
        }
    }
}

/// The children of an array or an object.
pub struct Children<'d> {
    doc: &'d Document,
    at: u32,
    end: u32,
}

impl<'d> Iterator for Children<'d> {
    type Item = Node<'d>;

    fn next(&mut self) -> Option<Node<'d>> {
        if self.at >= self.end {
            return None;
        }
        let node = Node {
            doc: self.doc,
            at: self.at,
        };
        self.at = self.doc.nodes[self.at as usize].after;
        Some(node)
    }
}

/// An object member: its name and its value.
#[derive(Debug, Clone, Copy)]
pub struct Member<'d> {
    pub value: Node<'d>,
}

impl<'d> Member<'d> {
    /// The name as written in the canonical text, without its quotes.
    pub fn raw_name(self) -> &'d str {
        let slot = self.value.slot();
        let end = slot.start as usize - 2;
        &self.value.doc.text[end + 2 - slot.name()..end]
    }

    /// The name, unescaped.
    pub fn name(self) -> Cow<'d, str> {
        let slot = self.value.slot();
        let end = slot.start as usize - 1;
        unquote(&self.value.doc.text[end - slot.name()..end])
    }

    /// The hash of the member (name and value), which objects add up; used to find objects
    /// that share members.
    pub fn hash(self) -> u64 {
        member_hash(bytes(7, self.raw_name().as_bytes()), self.value.slot().hash)
    }
}

/// The content of a canonical string literal, unescaped.
fn unquote(literal: &str) -> Cow<'_, str> {
    let content = &literal[1..literal.len() - 1];
    if content.contains('\\') {
        Cow::Owned(serde_json::from_str(literal).expect("a canonical string parses"))
    } else {
        Cow::Borrowed(content)
    }
}

pub(super) const K: u64 = 0x9e37_79b9_7f4a_7c15;

/// The hash of one member from its name's hash (`bytes(7, raw name)`) and its value's
/// unfinished hash, as objects add them up.
pub(super) fn member_hash(name: u64, value: u64) -> u64 {
    finish(name ^ value.rotate_left(32))
}

/// Folds `data` into a state seeded by `tag` and the length: eight bytes at a time, and up to
/// sixteen (most names, numbers and short strings) in two words read at both ends, which may
/// overlap: the length is in the seed, so no two inputs fold alike by that.
pub(super) fn bytes(tag: u64, data: &[u8]) -> u64 {
    let len = data.len();
    let h = (tag ^ (len as u64).rotate_left(16)).wrapping_mul(K);
    let fold = |h: u64, word: u64| (h.rotate_left(5) ^ word).wrapping_mul(K);
    let word = |at: usize| u64::from_le_bytes(data[at..at + 8].try_into().expect("8 bytes"));
    let half = |at: usize| {
        u64::from(u32::from_le_bytes(
            data[at..at + 4].try_into().expect("4 bytes"),
        ))
    };
    match len {
        0 => h,
        1..4 => {
            let (first, middle, last) = (data[0], data[len / 2], data[len - 1]);
            fold(
                h,
                u64::from(first) | u64::from(middle) << 8 | u64::from(last) << 16,
            )
        }
        4..8 => fold(h, half(0) | half(len - 4) << 32),
        8..=16 => fold(fold(h, word(0)), word(len - 8)),
        _ => {
            let mut h = h;
            let mut chunks = data.chunks_exact(8);
            for chunk in &mut chunks {
                h = fold(h, u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
            }
            let rest = chunks.remainder();
            if !rest.is_empty() {
                let mut last = [0u8; 8];
                last[..rest.len()].copy_from_slice(rest);
                h = fold(h, u64::from_le_bytes(last));
            }
            h
        }
    }
}

/// Spreads every input bit over the whole word (the MurmurHash3 finaliser).
fn finish(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn doc(text: &str) -> Document {
        Document::parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn text_is_what_serde_json_writes() {
        for text in [
            r#" { "a" : [ 1 , -2.5e+3 , true , false , null ] , "b" : { } , "c" : [ ] } "#,
            r#""x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00\u001f\u007f""#,
            r#"{"\u0041\n":"é","":""}"#,
            "1E5",
            "-0",
        ] {
            let ours = doc(text);
            let value = json::parse(text.as_bytes()).unwrap();
            assert_eq!(
                ours.text(),
                serde_json::to_string(&value).unwrap(),
                "{text}"
            );
            assert_eq!(ours.to_value(), value);
        }
    }

    #[test]
    fn later_duplicates_replace_earlier_ones() {
        let d = doc(r#"{"a":1,"b":[{"c":1,"c":2}],"a":3}"#);
        assert_eq!(d.text(), r#"{"a":3,"b":[{"c":2}]}"#);
        assert_eq!(d.to_value(), json!({"a": 3, "b": [{"c": 2}]}));
    }

    #[test]
    fn equal_values_hash_alike_and_compare_equal() {
        let a = doc(r#"{"a":1,"b":[1,2,{"c":null,"d":"\u00e9"}]}"#);
        let b = doc(r#"{"b":[1,2,{"d":"é","c":null}],"a":1}"#);
        assert_eq!(a.root().hash(), b.root().hash());
        assert!(a.root().equals(b.root()));
        assert_eq!(a, b);
    }

    #[test]
    fn big_objects_compare_and_deduplicate_by_name() {
        let names: Vec<String> = (0..2_000).map(|i| format!("\"k{i}\":{i}")).collect();
        let forward = doc(&format!("{{{}}}", names.join(",")));
        let backward: Vec<&str> = names.iter().rev().map(String::as_str).collect();
        let backward = doc(&format!("{{{}}}", backward.join(",")));
        assert!(forward.root().equals(backward.root()));
        let changed = doc(&format!("{{{},\"k0\":-1}}", names[1..].join(",")));
        assert!(!forward.root().equals(changed.root()));
        let renamed = doc(&format!("{{{},\"x\":0}}", names[1..].join(",")));
        assert!(!forward.root().equals(renamed.root()));
        // The same names again, later values winning, past the set's threshold.
        let again = doc(&format!(
            "{{{},{}}}",
            names.join(","),
            names.join(",").replace(':', ":-")
        ));
        assert_eq!(again.root().members().count(), 2_000);
        assert_eq!(again.part("/k1999").unwrap().text(), "-1999");
    }

    #[test]
    fn near_values_differ() {
        let values = [
            "null",
            "false",
            "true",
            "0",
            "\"0\"",
            "[]",
            "{}",
            "[0]",
            "[\"0\"]",
            r#"{"a":0}"#,
            r#"{"a":"0"}"#,
            r#"{"0":"a"}"#,
            "[1,2]",
            "[2,1]",
            "[[1],2]",
            "[1,[2]]",
            "\"abcdefgh\"",
            "\"abcdefgh\\u0000\"",
            "1",
            "1.0",
        ]
        .map(doc);
        for (i, a) in values.iter().enumerate() {
            for b in &values[i + 1..] {
                assert_ne!(
                    a.root().hash(),
                    b.root().hash(),
                    "{} {}",
                    a.text(),
                    b.text()
                );
                assert!(!a.root().equals(b.root()), "{} {}", a.text(), b.text());
            }
        }
    }

    #[test]
    fn pointers_find_parts() {
        let d = doc(r#"{"a/b":{"m~n":[10,{"x":"y"}]},"":0}"#);
        assert_eq!(d.part("/a~1b/m~0n/1").unwrap().text(), r#"{"x":"y"}"#);
        assert_eq!(d.part("/").unwrap().text(), "0");
        assert_eq!(d.part("").unwrap().text(), d.text());
        for missing in [
            "/a~1b/m~0n/2",
            "/a~1b/m~0n/01",
            "/a~1b/m~0n/+1",
            "/x",
            "a",
            "//",
        ] {
            let found = d.part(missing).map(|p| p.text().to_owned());
            let theirs = d.to_value().pointer(missing).map(Value::to_string);
            assert_eq!(found, theirs, "{missing}");
        }
    }

    #[test]
    fn members_and_items_walk_the_tree() {
        let d = doc(r#"{"a\"b":[1,[2,3],{}],"c":"d"}"#);
        let names: Vec<_> = d.root().members().map(|m| m.name().into_owned()).collect();
        assert_eq!(names, ["a\"b", "c"]);
        let raw: Vec<_> = d.root().members().map(|m| m.raw_name()).collect();
        assert_eq!(raw, ["a\\\"b", "c"]);
        let items: Vec<_> = d
            .root()
            .pointer("/a\"b")
            .unwrap()
            .items()
            .map(Node::text)
            .collect();
        assert_eq!(items, ["1", "[2,3]", "{}"]);
        assert_eq!(d.root().pointer("/c").unwrap().kind(), Kind::String);
        assert_eq!(d.root().items().count(), 0);
        assert_eq!(d.root().size(), d.text().len());
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            "-?(0|[1-9][0-9]{0,3})(\\.[0-9]{1,3})?([eE][+-]?[0-9]{1,2})?"
                .prop_map(|n| Value::Number(Number::from_string_unchecked(n))),
            "[a\"\\\\/\u{1}\u{1f}\n é😀]{0,5}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 40, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec(("[ab~/\"é]{0,2}", inner), 0..6)
                    .prop_map(|members| Value::Object(members.into_iter().collect())),
            ]
        })
    }

    /// The same value with every object's members in reverse order.
    fn reversed(value: &Value) -> Value {
        match value {
            Value::Array(items) => Value::Array(items.iter().map(reversed).collect()),
            Value::Object(members) => Value::Object(
                members
                    .iter()
                    .rev()
                    .map(|(k, v)| (k.clone(), reversed(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn documents_are_serde_values(a in value(), b in value()) {
            let pretty = serde_json::to_string_pretty(&a).unwrap();
            let d = Document::parse(pretty.as_bytes()).unwrap();
            prop_assert_eq!(d.text(), serde_json::to_string(&a).unwrap());
            prop_assert_eq!(d.to_value(), a.clone());
            let r = Document::from_value(&reversed(&a));
            prop_assert!(d.root().equals(r.root()));
            prop_assert_eq!(d.root().hash(), r.root().hash());
            let other = Document::from_value(&b);
            prop_assert_eq!(d.root().equals(other.root()), a == b);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Text a byte away from JSON is read, or refused, as `serde_json` does, and never
        /// makes the reader panic.
        #[test]
        fn near_json_is_judged_as_serde_judges_it(
            a in value(),
            at in any::<prop::sample::Index>(),
            byte in prop::sample::select(b" \"\\:,[]{}0-.eEtu\xc3\xa9\x01".to_vec()),
            delete in any::<bool>(),
        ) {
            let mut text = serde_json::to_string_pretty(&a).unwrap().into_bytes();
            let at = at.index(text.len() + 1);
            match delete && at < text.len() {
                true => drop(text.remove(at)),
                false => text.insert(at, byte),
            }
            // Accepted alike (serde_json may spell a number's exponent otherwise).
            let theirs = serde_json::from_slice::<Value>(&text);
            match Document::parse(&text) {
                Ok(d) => prop_assert!(theirs.is_ok(), "accepted: {}", d.text()),
                Err(e) => prop_assert!(theirs.is_err(), "refused: {}", e),
            }
        }
    }

    #[test]
    fn the_corpus_reads_as_serde_reads_it() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/corpus/twitter.json"
        );
        let input = std::fs::read(path).unwrap();
        let d = Document::parse(&input).unwrap();
        let value = json::parse(&input).unwrap();
        assert_eq!(d.text(), serde_json::to_string(&value).unwrap());
    }
}
