//! Objects are diffed member by member, by key.
//!
//! Ops come in a stable order: removals in the old document's key order, then edits and
//! additions in the new document's. Applying them appends new members at the end of the
//! object, so a client's key order may differ from the source's when the source inserts a key
//! in the middle; JSON objects are unordered, and the values are what must (and do) match.

use serde_json::{Map, Value};

use super::ops::Ops;
use super::pointer::Path;
use super::value::Effort;
use super::{size, value};

/// Appends to `out` the ops turning the object `old` (at `path`) into `new`.
pub(super) fn diff<'a>(
    old: &Map<String, Value>,
    new: &'a Map<String, Value>,
    path: &Path,
    depth: usize,
    effort: &Effort,
    out: &mut Ops<'a>,
) {
    for key in old.keys() {
        if !new.contains_key(key) {
            out.remove(&path.key(key));
        }
    }
    for (key, new_value) in new {
        let member = path.key(key);
        match old.get(key) {
            Some(old_value) => value::diff(old_value, new_value, &member, depth + 1, effort, out),
            None => out.add(&member, new_value, size::value(new_value)),
        }
    }
}
