//! Arrays: which elements stayed, which moved, which changed in place, which came and went.
//!
//! 1. The common head and tail are trimmed by equality: a typical feed changes at one end.
//! 2. What is left (the span) is aligned on element hashes: the longest common subsequence
//!    of unchanged elements is kept, so an insert at the head of a long list is one `add`,
//!    whatever the list's length. When the elements whose hash is on one side only are all
//!    that differs (items changed in place), that is read off directly; otherwise Myers'
//!    diff finds it.
//! 3. The elements left over are paired ([`super::moves`], [`super::gaps`]): an element removed
//!    here and added, unchanged, there becomes one `move`; an object that moved and changed
//!    becomes a `move` and a small edit when that is smaller than removing and re-adding it;
//!    old and new elements left facing each other between the same kept elements are edited in
//!    place (`replace /items/3/price`) or replaced whole, whichever is smaller. A pair the
//!    layout cannot leave in place needs a `move`, and stays a pair only when the move and the
//!    edit are smaller than a `remove` and an `add`.
//! 4. [`super::emit`] turns that plan into ops whose indices are right when applied in order.
//!
//! A purely positional plan (element i edited into element i) is also weighed when its lower
//! bound could beat the aligned one, which happens when the alignment matched little; and the
//! caller replaces the whole array when even that is smaller.
//!
//! The edit between two elements is computed once, with pointers relative to the element, and
//! placed under the element's final index only when emitted: plans and pairings that are
//! weighed and dropped share those edits instead of redoing them.

use std::cell::RefCell;

use rustc_hash::FxHashMap;
use similar::{Algorithm, DiffOp, capture_diff_slices};

use crate::wire::document::Node;

use super::emit::{self, Plan};
use super::gaps;
use super::moves::{self, Matching};
use super::ops::Ops;
use super::pointer::Path;
use super::size;
use super::value::{self, Effort};

/// The changed middle of an array diff and where it sits.
///
/// `'v` is the new document's lifetime: the ops borrow its values.
pub(super) struct Span<'a, 'v> {
    /// The old elements between the common head and tail.
    pub(super) old: &'a [Node<'a>],
    /// The new elements between the common head and tail.
    pub(super) new: &'a [Node<'v>],
    /// How many equal elements precede the span.
    pub(super) head: usize,
    /// The array's location.
    pub(super) path: &'a Path<'a>,
    depth: usize,
    pub(super) effort: &'a Effort,
    /// The escaped length of the array's pointer, quotes included.
    path_len: usize,
    /// Edits between old and new elements, by their indices in the span.
    edits: RefCell<FxHashMap<(usize, usize), Ops<'v>>>,
}

impl<'v> Span<'_, 'v> {
    /// The escaped length (quotes included) of the pointer to index `at` of the span.
    pub(super) fn index_len(&self, at: usize) -> usize {
        let digits = (self.head + at).checked_ilog10().unwrap_or(0) as usize + 1;
        self.path_len + 1 + digits
    }

    /// The size of the edit turning old element `a` into new element `b`, once placed at
    /// index `at` of the span.
    pub(super) fn edit_len(&self, a: usize, b: usize, at: usize) -> usize {
        let mut edits = self.edits.borrow_mut();
        let edit = edits.entry((a, b)).or_insert_with(|| {
            let mut ops = Ops::default();
            let root = Path::relative(self.index_len(b) - 2);
            let (old, new) = (self.old[a], self.new[b]);
            value::diff(old, new, &root, self.depth + 1, self.effort, &mut ops);
            ops
        });
        edit.bytes_under(self.index_len(at) - 2)
    }

    /// The edit turning old element `a` into new element `b`, relative to the element.
    pub(super) fn take_edit(&self, a: usize, b: usize) -> Ops<'v> {
        self.edit_len(a, b, b);
        self.edits.borrow_mut().remove(&(a, b)).unwrap_or_default()
    }

    /// The serialized size of new element `b`.
    pub(super) fn new_len(&self, b: usize) -> usize {
        self.new[b].size()
    }
}

/// Appends to `out` the ops turning the array `old` (at `path`) into `new`.
pub(super) fn diff<'v>(
    old: Node<'_>,
    new: Node<'v>,
    path: &Path,
    depth: usize,
    effort: &Effort,
    out: &mut Ops<'v>,
) {
    let old: Vec<Node> = old.items().collect();
    let new: Vec<Node<'v>> = new.items().collect();
    let head = old
        .iter()
        .zip(&new)
        .take_while(|(a, b)| a.equals(**b))
        .count();
    let (old, new) = (&old[head..], &new[head..]);
    let tail = old
        .iter()
        .rev()
        .zip(new.iter().rev())
        .take_while(|(a, b)| a.equals(**b))
        .count();
    let (old, new) = (&old[..old.len() - tail], &new[..new.len() - tail]);
    if old.is_empty() {
        for (i, &item) in new.iter().enumerate() {
            out.add(&path.index(head + i), item);
        }
        return;
    }
    if new.is_empty() {
        for _ in old {
            out.remove(&path.index(head));
        }
        return;
    }
    let span = Span {
        old,
        new,
        head,
        path,
        depth,
        effort,
        path_len: path.pointer_len() + path.base(),
        edits: RefCell::default(),
    };
    let old_hashes: Vec<u64> = old.iter().map(|n| n.hash()).collect();
    let new_hashes: Vec<u64> = new.iter().map(|n| n.hash()).collect();
    let kept = align(&span, &old_hashes, &new_hashes);
    let plan = aligned(&span, &old_hashes, &new_hashes, &kept);
    let plan = match emit::cost_below(&span, &plan, usize::MAX) {
        Some(plan_len)
            if effort.spare() && positional_floor(&span, &old_hashes, &new_hashes) < plan_len =>
        {
            let other = positional(&span, &old_hashes, &new_hashes, &kept);
            match emit::cost_below(&span, &other, plan_len) {
                Some(_) => other,
                None => plan,
            }
        }
        _ => plan,
    };
    out.append(&mut emit::ops(&span, &plan));
}

/// The pairs of equal elements kept in place: a Myers alignment of the element hashes, each
/// match confirmed (a hash collision is left to the pairing).
fn align(span: &Span, old_hashes: &[u64], new_hashes: &[u64]) -> Vec<(usize, usize)> {
    let mut kept = Vec::new();
    if let Some(common) = unique_changes_only(old_hashes, new_hashes) {
        for (a, b) in common {
            if span.old[a].equals(span.new[b]) {
                kept.push((a, b));
            }
        }
        return kept;
    }
    for op in capture_diff_slices(Algorithm::Myers, old_hashes, new_hashes) {
        if let DiffOp::Equal {
            old_index,
            new_index,
            len,
        } = op
        {
            for (a, b) in (old_index..old_index + len).zip(new_index..) {
                if span.old[a].equals(span.new[b]) {
                    kept.push((a, b));
                }
            }
        }
    }
    kept
}

/// The alignment when it needs no search, as when items of a list change in place: once the
/// elements whose hash is found on one side only are set aside (no alignment can match
/// them), what is left is the same sequence on both sides, so all of it is a longest common
/// subsequence. `None` otherwise.
fn unique_changes_only(old: &[u64], new: &[u64]) -> Option<Vec<(usize, usize)>> {
    let mut sides: FxHashMap<u64, (bool, bool)> = FxHashMap::default();
    sides.reserve(old.len() + new.len());
    for &h in old {
        sides.entry(h).or_default().0 = true;
    }
    for &h in new {
        sides.entry(h).or_default().1 = true;
    }
    let shared = |h: &u64| sides[h] == (true, true);
    let old_shared = (0..old.len()).filter(|&a| shared(&old[a]));
    let mut new_shared = (0..new.len()).filter(|&b| shared(&new[b]));
    let mut common = Vec::new();
    for a in old_shared {
        let b = new_shared.next()?;
        if old[a] != new[b] {
            return None;
        }
        common.push((a, b));
    }
    new_shared.next().is_none().then_some(common)
}

/// The plan keeping the `kept` elements and pairing the others.
fn aligned(span: &Span, old_hashes: &[u64], new_hashes: &[u64], kept: &[(usize, usize)]) -> Plan {
    let mut matching = Matching::new(span.old.len(), span.new.len());
    for &(a, b) in kept {
        matching.keep(a, b);
    }
    moves::pair_equal(span, old_hashes, new_hashes, &mut matching);
    if span.effort.spare() {
        moves::pair_similar(span, &mut matching);
    }
    gaps::pair_facing(kept, &mut matching);
    gaps::layout(span, kept, matching)
}

/// The plan that edits element i into element i and removes or adds the excess at the end.
/// Positions the alignment already kept in place (in `aligned_kept`) are known equal.
fn positional(
    span: &Span,
    old_hashes: &[u64],
    new_hashes: &[u64],
    aligned_kept: &[(usize, usize)],
) -> Plan {
    let mut known = vec![false; span.old.len()];
    for &(a, b) in aligned_kept {
        known[a] = a == b;
    }
    let mut matching = Matching::new(span.old.len(), span.new.len());
    let mut kept = Vec::new();
    for (i, (a, b)) in old_hashes.iter().zip(new_hashes).enumerate() {
        if a == b && (known[i] || span.old[i].equals(span.new[i])) {
            matching.keep(i, i);
            kept.push((i, i));
        }
    }
    gaps::pair_facing(&kept, &mut matching);
    gaps::layout(span, &kept, matching)
}

/// A lower bound on the size of the positional plan: at least one op per position whose
/// elements differ, and per element in excess.
fn positional_floor(span: &Span, old_hashes: &[u64], new_hashes: &[u64]) -> usize {
    let changed = old_hashes
        .iter()
        .zip(new_hashes)
        .filter(|(a, b)| a != b)
        .count();
    let excess = old_hashes.len().abs_diff(new_hashes.len());
    (changed + excess) * (size::REMOVE + span.index_len(0) + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// When the shortcut answers, it answers a longest common subsequence, as Myers does.
        #[test]
        fn the_shortcut_is_a_longest_alignment(
            old in prop::collection::vec(0u64..30, 0..16),
            new in prop::collection::vec(0u64..30, 0..16),
        ) {
            let Some(common) = unique_changes_only(&old, &new) else {
                return Ok(());
            };
            let longest: usize = capture_diff_slices(Algorithm::Myers, &old, &new)
                .iter()
                .map(|op| match *op {
                    DiffOp::Equal { len, .. } => len,
                    _ => 0,
                })
                .sum();
            prop_assert_eq!(common.len(), longest);
            prop_assert!(common.iter().all(|&(a, b)| old[a] == new[b]));
            prop_assert!(common.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1));
        }
    }

    #[test]
    fn items_changed_in_place_need_no_search() {
        let common = unique_changes_only(&[1, 2, 3, 4], &[1, 7, 3, 8, 4]).unwrap();
        assert_eq!(common, [(0, 0), (2, 2), (3, 4)]);
        assert_eq!(unique_changes_only(&[1, 2], &[2, 1]), None);
    }
}
