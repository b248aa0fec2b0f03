//! The operations being built, with their exact serialized size kept up to date, so that
//! alternatives can be compared and the snapshot decision needs no serialization of the patch.

use json_patch::jsonptr::{Pointer, PointerBuf};
use json_patch::{
    AddOperation, MoveOperation, Patch, PatchOperation, RemoveOperation, ReplaceOperation,
};
use serde_json::Value;

use super::pointer::Path;
use super::size;

/// A sequence of operations and its size.
#[derive(Debug, Default)]
pub(super) struct Ops {
    list: Vec<PatchOperation>,
    /// The serialized size of every op plus one separating comma each.
    bytes: usize,
    /// How many pointers the ops hold (`move` has two), each of which grows when the ops are
    /// placed under a prefix.
    paths: usize,
}

impl Ops {
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

    /// Adds `value` (whose serialized size is `len`) at `path`.
    pub(super) fn add(&mut self, path: &Path, value: &Value, len: usize) {
        let path = path.to_pointer();
        self.bytes += size::ADD + size::string(path.as_str()) + len + 1;
        self.paths += 1;
        self.list.push(PatchOperation::Add(AddOperation {
            path,
            value: value.clone(),
        }));
    }

    /// Replaces what is at `path` with `value` (whose serialized size is `len`).
    pub(super) fn replace(&mut self, path: &Path, value: &Value, len: usize) {
        let path = path.to_pointer();
        self.bytes += size::REPLACE + size::string(path.as_str()) + len + 1;
        self.paths += 1;
        self.list.push(PatchOperation::Replace(ReplaceOperation {
            path,
            value: value.clone(),
        }));
    }

    pub(super) fn remove(&mut self, path: &Path) {
        let path = path.to_pointer();
        self.bytes += size::REMOVE + size::string(path.as_str()) + 1;
        self.paths += 1;
        self.list
            .push(PatchOperation::Remove(RemoveOperation { path }));
    }

    pub(super) fn moved(&mut self, from: &Path, path: &Path) {
        let (from, path) = (from.to_pointer(), path.to_pointer());
        self.bytes += size::MOVE + size::string(from.as_str()) + size::string(path.as_str()) + 1;
        self.paths += 2;
        self.list
            .push(PatchOperation::Move(MoveOperation { from, path }));
    }

    /// Appends `other`, emptying it.
    pub(super) fn append(&mut self, other: &mut Ops) {
        self.bytes += std::mem::take(&mut other.bytes);
        self.paths += std::mem::take(&mut other.paths);
        self.list.append(&mut other.list);
    }

    /// Appends `other`, whose pointers are relative, with every pointer placed under `prefix`.
    pub(super) fn append_under(&mut self, prefix: &Pointer, other: Ops) {
        self.bytes += other.bytes_under(size::string(prefix.as_str()) - 2);
        self.paths += other.paths;
        let place = |path: &mut PointerBuf| *path = prefix.concat(path);
        for mut op in other.list {
            match &mut op {
                PatchOperation::Add(op) => place(&mut op.path),
                PatchOperation::Remove(op) => place(&mut op.path),
                PatchOperation::Replace(op) => place(&mut op.path),
                PatchOperation::Test(op) => place(&mut op.path),
                PatchOperation::Move(op) => {
                    place(&mut op.from);
                    place(&mut op.path);
                }
                PatchOperation::Copy(op) => {
                    place(&mut op.from);
                    place(&mut op.path);
                }
            }
            self.list.push(op);
        }
    }

    pub(super) fn into_patch(self) -> Patch {
        Patch(self.list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sizes_match_serialization() {
        let root = Path::ROOT;
        let a = root.key("a\"~/b");
        let b = a.index(12);
        let value = json!({"x": [1, "two", null]});
        let len = size::value(&value);
        let mut ops = Ops::default();
        assert_eq!(ops.patch_len(), 2);
        ops.add(&b, &value, len);
        ops.replace(&a, &value, len);
        ops.remove(&b);
        ops.moved(&b, &a);
        ops.replace(&root, &json!(1), 1);
        let mut placed = Ops::default();
        placed.append_under(b.to_pointer().as_ref(), ops);
        let mut ops = Ops::default();
        ops.remove(&a);
        ops.append(&mut placed);
        let len = ops.patch_len();
        let text = serde_json::to_string(&ops.into_patch()).unwrap();
        assert_eq!(len, text.len(), "{text}");
    }
}
