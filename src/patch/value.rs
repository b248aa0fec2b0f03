//! The recursive walk: compares two values of any kind, hands pairs of objects and pairs of
//! arrays to [`super::object`] and [`super::array`], and replaces anything else that differs.

use std::cell::Cell;

use crate::wire::document::{Kind, Node};

use super::ops::Ops;
use super::pointer::Path;
use super::{array, object, size};

/// How deep the diff descends into nested containers. Below it, differing values are
/// replaced whole. This bounds the diff's own recursion: with a few hundred bytes of stack per
/// level it stays far below the 2 MiB of a spawned thread. The JSON reader refuses documents
/// nested deeper than 128 anyway, so parsed input is always diffed structurally.
pub const MAX_DEPTH: usize = 128;

/// How many values one diff may compare before it stops trying alternatives.
const EFFORT: usize = 100_000;

/// The work a diff may still spend on alternatives it may throw away (another pairing for an
/// array element, a positional plan next to the aligned one). Each is a full comparison of
/// two subtrees, and nested arrays could otherwise multiply them level upon level. Once spent,
/// each element is compared with one partner at most, which keeps the work linear in the
/// size of the documents (times their depth). Ordinary documents use a small fraction of it.
pub(super) struct Effort(Cell<usize>);

impl Effort {
    pub(super) fn new() -> Self {
        Effort(Cell::new(EFFORT))
    }

    /// Whether alternatives may still be explored.
    pub(super) fn spare(&self) -> bool {
        self.0.get() > 0
    }

    fn spend(&self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
}

/// Appends to `out` the ops turning `old` (at `path`, `depth` levels down) into `new`.
pub(super) fn diff<'v>(
    old: Node<'_>,
    new: Node<'v>,
    path: &Path,
    depth: usize,
    effort: &Effort,
    out: &mut Ops<'v>,
) {
    effort.spend();
    if old.equals(new) {
        return;
    }
    match (old.kind(), new.kind()) {
        (Kind::Object, Kind::Object) if depth < MAX_DEPTH => {
            let mut ops = Ops::default();
            object::diff(old, new, path, depth, effort, &mut ops);
            settle(new, path, ops, out);
        }
        (Kind::Array, Kind::Array) if depth < MAX_DEPTH => {
            let mut ops = Ops::default();
            array::diff(old, new, path, depth, effort, &mut ops);
            settle(new, path, ops, out);
        }
        _ => out.replace(path, new),
    }
}

/// Appends the edits `ops` of a container, or one `replace` of the whole container by `new`
/// when that is no larger (a list that changed everywhere is cheaper to resend).
fn settle<'v>(new: Node<'v>, path: &Path, mut ops: Ops<'v>, out: &mut Ops<'v>) {
    if ops.is_empty() {
        return;
    }
    let fixed = size::REPLACE + path.pointer_len() + path.base() + 1;
    let whole = ops
        .bytes_under(path.base())
        .checked_sub(fixed)
        .is_some_and(|budget| new.size() <= budget);
    match whole {
        true => out.replace(path, new),
        false => out.append(&mut ops),
    }
}
