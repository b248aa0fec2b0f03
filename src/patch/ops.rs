//! The operations being built, with their exact serialized size kept up to date, so that
//! alternatives can be compared and the snapshot decision needs no serialization of the patch.
//!
//! Values are nodes of the new document, never copied: a patch's text is written from the
//! document's canonical text ([`Ops::to_text`]); [`Ops::into_patch`] builds values only for
//! callers that want a [`Patch`].

use json_patch::jsonptr::{Pointer, PointerBuf};
use json_patch::{
    AddOperation, MoveOperation, Patch, PatchOperation, RemoveOperation, ReplaceOperation,
};

use crate::wire::document::Node;

use super::pointer::Path;
use super::size;

/// One operation; values point into the new document.
#[derive(Debug)]
enum Op<'a> {
    Add(PointerBuf, Node<'a>),
    Replace(PointerBuf, Node<'a>),
    Remove(PointerBuf),
    Move { from: PointerBuf, path: PointerBuf },
}

/// A sequence of operations and its size.
#[derive(Debug, Default)]
pub(super) struct Ops<'a> {
    list: Vec<Op<'a>>,
    /// The serialized size of every op plus one separating comma each.
    bytes: usize,
    /// How many pointers the ops hold (`move` has two), each of which grows when the ops are
    /// placed under a prefix.
    paths: usize,
}

impl<'a> Ops<'a> {
    /// The size these ops will add once placed under a prefix of `base` escaped bytes.
    pub(super) fn bytes_under(&self, base: usize) -> usize {
        self.bytes + self.paths * base
    }

    pub(super) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The size of the whole patch `[op,op,...]`.
    pub(super) fn patch_len(&self) -> usize {
        1 + self.bytes.max(1)
    }

    /// Adds `value` at `path`.
    pub(super) fn add(&mut self, path: &Path, value: Node<'a>) {
        let path = path.to_pointer();
        self.bytes += size::ADD + size::string(path.as_str()) + value.size() + 1;
        self.paths += 1;
        self.list.push(Op::Add(path, value));
    }

    /// Replaces what is at `path` with `value`.
    pub(super) fn replace(&mut self, path: &Path, value: Node<'a>) {
        let path = path.to_pointer();
        self.bytes += size::REPLACE + size::string(path.as_str()) + value.size() + 1;
        self.paths += 1;
        self.list.push(Op::Replace(path, value));
    }

    pub(super) fn remove(&mut self, path: &Path) {
        let path = path.to_pointer();
        self.bytes += size::REMOVE + size::string(path.as_str()) + 1;
        self.paths += 1;
        self.list.push(Op::Remove(path));
    }

    pub(super) fn moved(&mut self, from: &Path, path: &Path) {
        let (from, path) = (from.to_pointer(), path.to_pointer());
        self.bytes += size::MOVE + size::string(from.as_str()) + size::string(path.as_str()) + 1;
        self.paths += 2;
        self.list.push(Op::Move { from, path });
    }

    /// Appends `other`, emptying it.
    pub(super) fn append(&mut self, other: &mut Ops<'a>) {
        self.bytes += std::mem::take(&mut other.bytes);
        self.paths += std::mem::take(&mut other.paths);
        self.list.append(&mut other.list);
    }

    /// Appends `other`, whose pointers are relative, with every pointer placed under `prefix`.
    pub(super) fn append_under(&mut self, prefix: &Pointer, other: Ops<'a>) {
        self.bytes += other.bytes_under(size::string(prefix.as_str()) - 2);
        self.paths += other.paths;
        let place = |path: &mut PointerBuf| *path = prefix.concat(path);
        for mut op in other.list {
            match &mut op {
                Op::Add(path, _) | Op::Replace(path, _) | Op::Remove(path) => place(path),
                Op::Move { from, path } => {
                    place(from);
                    place(path);
                }
            }
            self.list.push(op);
        }
    }

    /// The patch, its values copied out of the document.
    pub(super) fn into_patch(self) -> Patch {
        let operation = |op| match op {
            Op::Add(path, value) => PatchOperation::Add(AddOperation {
                path,
                value: value.to_value(),
            }),
            Op::Replace(path, value) => PatchOperation::Replace(ReplaceOperation {
                path,
                value: value.to_value(),
            }),
            Op::Remove(path) => PatchOperation::Remove(RemoveOperation { path }),
            Op::Move { from, path } => PatchOperation::Move(MoveOperation { from, path }),
        };
        Patch(self.list.into_iter().map(operation).collect())
    }

    /// The patch's JSON text, its values copied from the document's text: the form
    /// [`Patch`] serializes to, member for member.
    pub(super) fn to_text(&self) -> String {
        let mut out = Vec::with_capacity(self.patch_len());
        out.push(b'[');
        for (i, op) in self.list.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let (name, path) = match op {
                Op::Add(path, _) => ("add", path),
                Op::Replace(path, _) => ("replace", path),
                Op::Remove(path) => ("remove", path),
                Op::Move { path, .. } => ("move", path),
            };
            out.extend_from_slice(b"{\"op\":\"");
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"\",");
            if let Op::Move { from, .. } = op {
                out.extend_from_slice(b"\"from\":");
                write(&mut out, from.as_str());
                out.push(b',');
            }
            out.extend_from_slice(b"\"path\":");
            write(&mut out, path.as_str());
            if let Op::Add(_, value) | Op::Replace(_, value) = op {
                out.extend_from_slice(b",\"value\":");
                out.extend_from_slice(value.text().as_bytes());
            }
            out.push(b'}');
        }
        out.push(b']');
        String::from_utf8(out).expect("pointers and documents are UTF-8")
    }
}

/// Appends `text` as a JSON string.
fn write(out: &mut Vec<u8>, text: &str) {
    serde_json::to_writer(out, text).expect("strings always serialize");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::document::Document;

    #[test]
    fn sizes_match_serialization() {
        let root = Path::ROOT;
        let a = root.key("a\"~/b");
        let b = a.index(12);
        let value = Document::parse(br#"{"x": [1, "two\u0000", null]}"#).unwrap();
        let mut ops = Ops::default();
        assert_eq!(ops.patch_len(), 2);
        ops.add(&b, value.root());
        ops.replace(&a, value.root());
        ops.remove(&b);
        ops.moved(&b, &a);
        let one = Document::parse(b"1").unwrap();
        ops.replace(&root, one.root());
        let mut placed = Ops::default();
        placed.append_under(b.to_pointer().as_ref(), ops);
        let mut ops = Ops::default();
        ops.remove(&a);
        ops.append(&mut placed);
        let len = ops.patch_len();
        let text = ops.to_text();
        assert_eq!(len, text.len(), "{text}");
        assert_eq!(text, serde_json::to_string(&ops.into_patch()).unwrap());
    }
}
