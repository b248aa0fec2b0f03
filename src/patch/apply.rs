//! Applying a patch atomically: every step records how to undo itself, and when an op fails
//! the steps already taken are undone in reverse, so the document is left as it was, member
//! order included.
//!
//! Undoing moves values back rather than copying them: a failed patch costs no more than the
//! steps it took. Each undo step runs on exactly the document its step produced, so the
//! locations it names always exist.
//!
//! Object members are removed with `shift_remove`, which keeps the order of the others (the
//! plain `remove` of an order-preserving map would move the last member into the hole).

use std::fmt;

use json_patch::jsonptr::Pointer;
use json_patch::{Patch, PatchOperation};
use serde_json::Value;

use super::equal;
use super::pointer::array_index;

/// Why a patch was refused; the document is unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatchError {
    /// The position of the failing op in the patch.
    pub op: usize,
    /// What was wrong with it.
    pub kind: PatchErrorKind,
}

/// What was wrong with an op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchErrorKind {
    /// `path` (or the container it points into) does not exist.
    NoPath,
    /// `from` does not exist.
    NoFrom,
    /// An array index is not a canonical number, or is out of bounds.
    BadIndex,
    /// `path` points into a number, string, boolean or null.
    NotContainer,
    /// The root cannot be removed.
    RemoveRoot,
    /// A `move` would put a value inside itself.
    MoveIntoItself,
    /// A `test` found a different value.
    TestFailed,
}

impl fmt::Display for PatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            PatchErrorKind::NoPath => "the path does not exist",
            PatchErrorKind::NoFrom => "the `from` location does not exist",
            PatchErrorKind::BadIndex => "the array index is not a valid index for that array",
            PatchErrorKind::NotContainer => "the path goes through a value that is not a container",
            PatchErrorKind::RemoveRoot => "the whole document cannot be removed",
            PatchErrorKind::MoveIntoItself => "a value cannot be moved inside itself",
            PatchErrorKind::TestFailed => "the `test` found a different value",
        };
        write!(f, "patch op {} failed: {what}", self.op)
    }
}

impl std::error::Error for PatchError {}

/// Applies `patch` to `doc`, all or nothing.
pub fn apply(doc: &mut Value, patch: &Patch) -> Result<(), PatchError> {
    let mut undo = Vec::new();
    for (op, operation) in patch.iter().enumerate() {
        if let Err(kind) = step(doc, operation, &mut undo) {
            for entry in undo.into_iter().rev() {
                revert(doc, entry);
            }
            return Err(PatchError { op, kind });
        }
    }
    Ok(())
}

/// Where a value was put, and what was there before.
enum Placed {
    /// The whole document was replaced; this was it.
    Root(Value),
    /// A member or element was replaced; this was its value.
    Over(String, Value),
    /// A new member was added to the object at this pointer.
    Member(String, String),
    /// An element was inserted into the array at this pointer.
    Element(String, usize),
}

/// Where a value was taken from.
enum Hole {
    /// A member of the object at this pointer, at this position.
    Member(String, usize, String),
    /// An element of the array at this pointer.
    Element(String, usize),
}

enum Undo {
    Put(Placed),
    Take(Hole, Value),
    Move(Hole, Placed),
}

fn step(
    doc: &mut Value,
    operation: &PatchOperation,
    undo: &mut Vec<Undo>,
) -> Result<(), PatchErrorKind> {
    match operation {
        PatchOperation::Add(op) => {
            let placed = put(doc, &op.path, op.value.clone()).map_err(|(kind, _)| kind)?;
            undo.push(Undo::Put(placed));
        }
        PatchOperation::Remove(op) => {
            let (value, hole) = take(doc, &op.path)?;
            undo.push(Undo::Take(hole, value));
        }
        PatchOperation::Replace(op) => {
            let target = doc
                .pointer_mut(op.path.as_str())
                .ok_or(PatchErrorKind::NoPath)?;
            let old = std::mem::replace(target, op.value.clone());
            undo.push(Undo::Put(match op.path.is_root() {
                true => Placed::Root(old),
                false => Placed::Over(op.path.as_str().to_owned(), old),
            }));
        }
        PatchOperation::Move(op) => {
            let (from, path) = (op.from.as_str(), op.path.as_str());
            if from == path {
                doc.pointer(from).ok_or(PatchErrorKind::NoFrom)?;
                return Ok(());
            }
            if path.starts_with(from) && path.as_bytes().get(from.len()) == Some(&b'/') {
                return Err(PatchErrorKind::MoveIntoItself);
            }
            let (value, hole) = take(doc, &op.from).map_err(|kind| match kind {
                PatchErrorKind::NoPath => PatchErrorKind::NoFrom,
                kind => kind,
            })?;
            match put(doc, &op.path, value) {
                Ok(placed) => undo.push(Undo::Move(hole, placed)),
                Err((kind, value)) => {
                    refill(doc, hole, value);
                    return Err(kind);
                }
            }
        }
        PatchOperation::Copy(op) => {
            let value = doc
                .pointer(op.from.as_str())
                .ok_or(PatchErrorKind::NoFrom)?
                .clone();
            let placed = put(doc, &op.path, value).map_err(|(kind, _)| kind)?;
            undo.push(Undo::Put(placed));
        }
        PatchOperation::Test(op) => {
            let found = doc
                .pointer(op.path.as_str())
                .ok_or(PatchErrorKind::NoPath)?;
            if !equal::same(found, &op.value) {
                return Err(PatchErrorKind::TestFailed);
            }
        }
    }
    Ok(())
}

/// Puts `value` at `path` as `add` does; on failure hands the value back.
fn put(doc: &mut Value, path: &Pointer, value: Value) -> Result<Placed, (PatchErrorKind, Value)> {
    let Some((parent, last)) = path.split_back() else {
        return Ok(Placed::Root(std::mem::replace(doc, value)));
    };
    let Some(container) = doc.pointer_mut(parent.as_str()) else {
        return Err((PatchErrorKind::NoPath, value));
    };
    match container {
        Value::Object(members) => {
            let key = last.decoded();
            match members.get_mut(key.as_ref()) {
                Some(slot) => Ok(Placed::Over(
                    path.as_str().to_owned(),
                    std::mem::replace(slot, value),
                )),
                None => {
                    members.insert(key.clone().into_owned(), value);
                    Ok(Placed::Member(parent.as_str().to_owned(), key.into_owned()))
                }
            }
        }
        Value::Array(items) => match array_index(last.encoded(), items.len(), true) {
            Some(at) => {
                items.insert(at, value);
                Ok(Placed::Element(parent.as_str().to_owned(), at))
            }
            None => Err((PatchErrorKind::BadIndex, value)),
        },
        _ => Err((PatchErrorKind::NotContainer, value)),
    }
}

/// Takes the value at `path` out of its container, as `remove` does.
fn take(doc: &mut Value, path: &Pointer) -> Result<(Value, Hole), PatchErrorKind> {
    let (parent, last) = path.split_back().ok_or(PatchErrorKind::RemoveRoot)?;
    let container = doc
        .pointer_mut(parent.as_str())
        .ok_or(PatchErrorKind::NoPath)?;
    match container {
        Value::Object(members) => {
            let key = last.decoded();
            let at = members
                .keys()
                .position(|k| *k == *key)
                .ok_or(PatchErrorKind::NoPath)?;
            let value = members
                .shift_remove(key.as_ref())
                .ok_or(PatchErrorKind::NoPath)?;
            Ok((
                value,
                Hole::Member(parent.as_str().to_owned(), at, key.into_owned()),
            ))
        }
        Value::Array(items) => {
            let at =
                array_index(last.encoded(), items.len(), false).ok_or(PatchErrorKind::BadIndex)?;
            Ok((
                items.remove(at),
                Hole::Element(parent.as_str().to_owned(), at),
            ))
        }
        _ => Err(PatchErrorKind::NotContainer),
    }
}

fn revert(doc: &mut Value, entry: Undo) {
    match entry {
        Undo::Put(placed) => {
            unplace(doc, placed);
        }
        Undo::Take(hole, value) => refill(doc, hole, value),
        Undo::Move(hole, placed) => {
            if let Some(value) = unplace(doc, placed) {
                refill(doc, hole, value);
            }
        }
    }
}

/// Undoes a [`put`], returning the value it had put.
fn unplace(doc: &mut Value, placed: Placed) -> Option<Value> {
    match placed {
        Placed::Root(old) => Some(std::mem::replace(doc, old)),
        Placed::Over(path, old) => doc
            .pointer_mut(&path)
            .map(|slot| std::mem::replace(slot, old)),
        Placed::Member(object, key) => match doc.pointer_mut(&object) {
            Some(Value::Object(members)) => members.shift_remove(&key),
            _ => None,
        },
        Placed::Element(array, at) => match doc.pointer_mut(&array) {
            Some(Value::Array(items)) if at < items.len() => Some(items.remove(at)),
            _ => None,
        },
    }
}

/// Undoes a [`take`], putting `value` back where it was.
fn refill(doc: &mut Value, hole: Hole, value: Value) {
    match hole {
        Hole::Member(object, at, key) => {
            if let Some(Value::Object(members)) = doc.pointer_mut(&object) {
                let at = at.min(members.len());
                members.shift_insert(at, key, value);
            }
        }
        Hole::Element(array, at) => {
            if let Some(Value::Array(items)) = doc.pointer_mut(&array) {
                let at = at.min(items.len());
                items.insert(at, value);
            }
        }
    }
}
