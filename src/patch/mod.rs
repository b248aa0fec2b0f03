//! JSON Patch (RFC 6902): the deltas a polled document's subscribers receive.
//!
//! [`delta`] diffs two versions of a polled document ([`Document`]s, as the JSON reader makes
//! them) and tells whether sending the patch beats resending the document; [`diff`] gives the
//! same ops as a [`json_patch::Patch`] for two `serde_json` values. [`parse`] reads a received
//! patch and [`apply`] applies one, all or nothing. Patches serialize to the standard JSON
//! form, so any RFC 6902 implementation can apply them.
//!
//! ## Map
//! - `value.rs`: the recursive walk, the depth limit, whole replacements.
//! - `object.rs`: members by key.
//! - `array.rs`: trimming, hashing and aligning elements; choosing a plan.
//! - `moves.rs`: removed and added elements that become `move`s.
//! - `gaps.rs`: elements edited in place between kept ones, and the slot layout (which pairs
//!   stay side by side, which move, which are dissolved into a `remove` and an `add`).
//! - `emit.rs`: indices that stay right as ops apply one after another.
//! - `ops.rs`, `size.rs`: ops under construction and their exact byte sizes.
//! - `pointer.rs`: JSON Pointer building (`~0`/`~1` escaping) and array indices.
//! - `apply.rs`, `equal.rs`: atomic application; the `test` op's equality.
//!
//! ## What a diff looks like
//! - Minimal where it matters for feeds: an insert at the head of a list is one `add`, a
//!   removal one `remove`, an element that moved one `move`, a changed field of a list item
//!   one `replace` of that field. Every choice compares serialized sizes, and a container is
//!   replaced whole when that is no larger than its edits.
//! - Never a `test` or `copy` op.
//! - Numbers are compared by their exact text (as the JSON reader keeps it): `1.0`
//!   and `1` are different values, so a change of spelling is sent as a `replace`, and every
//!   number reaches clients digit for digit.
//! - Objects compare regardless of member order, as JSON defines them; a reordering alone is
//!   no change.
//! - An element turned into a different one by a `move` and an edit is weighed against
//!   removing the one and adding the other, and the smaller is sent: an array's ops do not
//!   exceed the plain removals and additions around its elements that stayed.
//! - Moves are found among the elements of one array (a re-sorted list, an item that moved
//!   and changed); a value that moves to another container is removed and added.
//! - Structure is followed to a depth of [`MAX_DEPTH`]; deeper, values that differ are
//!   replaced whole. Parsed documents never go deeper (the JSON reader stops at 128).
//! - Work is linear in the size of the documents (times their depth) for the changes feeds
//!   make; alternatives that may be thrown away (another pairing, a positional plan) draw on
//!   a fixed budget per diff, so no input makes it explode.

mod apply;
mod array;
mod emit;
mod equal;
mod gaps;
mod live;
mod moves;
mod object;
mod ops;
mod parse;
mod pointer;
mod size;
mod value;

pub use apply::{PatchError, PatchErrorKind, apply};
pub use json_patch::{Patch, PatchOperation};
pub use live::LiveDocument;
pub use parse::parse;
pub use value::MAX_DEPTH;

use serde_json::Value;

use crate::wire::document::{Document, Node};

use ops::Ops;
use pointer::Path;
use value::Effort;

/// The ops turning `old` into `new`.
pub fn diff(old: &Value, new: &Value) -> Patch {
    let (old, new) = (Document::from_value(old), Document::from_value(new));
    ops(old.root(), new.root()).into_patch()
}

/// What to send subscribers after the document changed from `old` to `new`.
#[derive(Debug)]
pub enum Delta {
    /// This patch's JSON text, no larger than the new document's. It is `[]` when the
    /// documents are equal.
    Patch(String),
    /// The new document itself: the patch would be larger.
    Snapshot,
}

/// Diffs `old` and `new` and chooses between the patch and a snapshot by their serialized
/// sizes, both known without serializing anything (the patch's from the diff, the
/// document's from its text); the patch is written straight from the new document's text,
/// never built as a [`Patch`] first.
pub fn delta(old: &Document, new: &Document) -> Delta {
    let ops = ops(old.root(), new.root());
    if new.text().len() < ops.patch_len() {
        Delta::Snapshot
    } else {
        Delta::Patch(ops.to_text())
    }
}

fn ops<'v>(old: Node<'_>, new: Node<'v>) -> Ops<'v> {
    let mut ops = Ops::default();
    value::diff(old, new, &Path::ROOT, 0, &Effort::new(), &mut ops);
    ops
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn item() -> impl Strategy<Value = Value> {
        prop_oneof![
            (0u8..4).prop_map(Value::from),
            "[a~/\"\\\\\u{1}é]{0,4}".prop_map(Value::from),
            ((0u8..4), "[a-c/~]{0,2}").prop_map(|(id, s)| serde_json::json!({"id": id, s: [id]})),
        ]
    }

    /// The diff's running size is exactly the serialized size of the patch it builds.
    fn exact_size(old: &Value, new: &Value) -> Result<(), TestCaseError> {
        let (old, new) = (Document::from_value(old), Document::from_value(new));
        let ops = ops(old.root(), new.root());
        let expected = ops.patch_len();
        let text = serde_json::to_string(&ops.into_patch()).unwrap();
        prop_assert_eq!(expected, text.len(), "{}", text);
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn sizes_are_exact(
            old in prop::collection::vec(item(), 0..12),
            picks in prop::collection::vec((any::<prop::sample::Index>(), item(), 0u8..3), 0..12),
        ) {
            let new: Vec<Value> = picks
                .into_iter()
                .map(|(index, fresh, kind)| match (kind, old.is_empty()) {
                    (0, false) => index.get(&old).clone(),
                    _ => fresh,
                })
                .collect();
            let (old, new) = (Value::from(old), Value::from(new));
            exact_size(&old, &new)?;
            exact_size(&serde_json::json!({"a/~": [old.clone()]}), &serde_json::json!({"a/~": [new]}))?;
        }
    }
}
