//! The recursive walk: compares two values of any kind, hands pairs of objects and pairs of
//! arrays to [`super::object`] and [`super::array`], and replaces anything else that differs.

use std::cell::Cell;

use serde_json::Value;

use super::equal::identical;
use super::ops::Ops;
use super::pointer::Path;
use super::{array, object, size};

/// How deep the diff descends into nested containers. Below it, differing values are
/// replaced whole. This bounds the diff's own recursion: with a few hundred bytes of stack per
/// level it stays far below the 2 MiB of a spawned thread. `serde_json`'s parser refuses
/// documents nested deeper than 128 anyway, so parsed input is always diffed structurally.
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
pub(super) fn diff<'a>(
    old: &Value,
    new: &'a Value,
    path: &Path,
    depth: usize,
    effort: &Effort,
    out: &mut Ops<'a>,
) {
    effort.spend();
    match (old, new) {
        (Value::Object(old_members), Value::Object(new_members)) if depth < MAX_DEPTH => {
            let mut ops = Ops::default();
            object::diff(old_members, new_members, path, depth, effort, &mut ops);
            settle(new, path, ops, out);
        }
        (Value::Array(old_items), Value::Array(new_items)) if depth < MAX_DEPTH => {
            let mut ops = Ops::default();
            array::diff(old_items, new_items, path, depth, effort, &mut ops);
            settle(new, path, ops, out);
        }
        _ if identical(old, new) => {}
        _ => out.replace(path, new, size::value(new)),
    }
}

/// Appends the edits `ops` of a container, or one `replace` of the whole container by `new`
/// when that is no larger (a list that changed everywhere is cheaper to resend).
fn settle<'a>(new: &'a Value, path: &Path, mut ops: Ops<'a>, out: &mut Ops<'a>) {
    if ops.is_empty() {
        return;
    }
    let fixed = size::REPLACE + size::string(path.to_pointer().as_str()) + path.base() + 1;
    let whole = ops
        .bytes_under(path.base())
        .checked_sub(fixed)
        .and_then(|budget| size::value_within(new, budget));
    match whole {
        Some(len) => out.replace(path, new, len),
        None => out.append(&mut ops),
    }
}
