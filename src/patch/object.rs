//! Objects are diffed member by member, by name.
//!
//! Ops come in a stable order: removals in the old document's member order, then edits and
//! additions in the new document's. Applying them appends new members at the end of the
//! object, so a client's member order may differ from the source's when the source inserts a
//! member in the middle; JSON objects are unordered, and the values are what must (and do)
//! match.

use std::collections::HashMap;

use smallvec::SmallVec;

use crate::wire::document::{Member, Node};

use super::ops::Ops;
use super::pointer::Path;
use super::value::{self, Effort};

/// Objects with up to this many members are diffed without allocating (list items that
/// changed are many and small).
const SMALL: usize = 16;

/// Appends to `out` the ops turning the object `old` (at `path`) into `new`.
pub(super) fn diff<'v>(
    old: Node<'_>,
    new: Node<'v>,
    path: &Path,
    depth: usize,
    effort: &Effort,
    out: &mut Ops<'v>,
) {
    let olds: SmallVec<[Member; SMALL]> = old.members().collect();
    let partners = partners(&olds, new);
    let mut kept: SmallVec<[bool; SMALL]> = smallvec::smallvec![false; olds.len()];
    for &a in partners.iter().flatten() {
        kept[a] = true;
    }
    for (member, _) in olds.iter().zip(&kept).filter(|(_, kept)| !**kept) {
        out.remove(&path.key(&member.name()));
    }
    for (member, partner) in new.members().zip(partners) {
        let name = member.name();
        let at = path.key(&name);
        match partner {
            Some(a) => value::diff(olds[a].value, member.value, &at, depth + 1, effort, out),
            None => out.add(&at, member.value),
        }
    }
}

/// For each member of `new`, the index of the old member of the same name. Successive
/// versions nearly always list members in the same order, so each is looked for at its own
/// index first, and a map of the old names (keyed at random, so crafted names cannot make
/// it quadratic) is built only when that fails.
fn partners(olds: &[Member], new: Node<'_>) -> SmallVec<[Option<usize>; SMALL]> {
    let mut by_name: Option<HashMap<&str, usize>> = None;
    new.members()
        .enumerate()
        .map(|(i, member)| {
            let name = member.raw_name();
            if olds.get(i).is_some_and(|old| old.raw_name() == name) {
                return Some(i);
            }
            let by_name = by_name.get_or_insert_with(|| {
                let names = olds.iter().enumerate();
                names.map(|(a, old)| (old.raw_name(), a)).collect()
            });
            by_name.get(name).copied()
        })
        .collect()
}
