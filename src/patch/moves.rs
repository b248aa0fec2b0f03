//! Pairing elements that left one place of an array with elements that arrived at another,
//! so they travel as a `move` instead of a `remove` and an `add` of the whole value.
//!
//! Two passes run over the elements the alignment did not keep:
//! - equal values (a re-sorted list): the pair costs one `move`;
//! - objects sharing members that few other objects share (an item that moved and changed
//!   a field, e.g. re-sorted by a price that changed): the pair costs a `move` plus the edit
//!   between the two, and is kept only when that is smaller than a `remove` and an `add`.
//!
//! Where the pairs' moves go, and the indices they use, is [`super::emit`]'s business.

use rustc_hash::FxHashMap;

use crate::wire::document::Kind;

use super::array::Span;
use super::size;

/// A member shared by more old objects than this says little about which one an object came
/// from (think `"currency": "USD"`), and is not used to find candidates.
const CROWDED: usize = 4;

/// What became of an element of the span.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fate {
    /// Nothing yet: an old element is removed, a new one added.
    Free,
    /// Kept by the alignment, unchanged and in order.
    Kept,
    /// One side of the pair with this index.
    Paired(usize),
}

/// An old element that becomes a new one, by a move, an edit, or both.
#[derive(Clone, Copy, Debug)]
pub(super) struct Pair {
    pub(super) old: usize,
    pub(super) new: usize,
}

/// The fates of all elements of a span.
pub(super) struct Matching {
    pub(super) old: Vec<Fate>,
    pub(super) new: Vec<Fate>,
    pub(super) pairs: Vec<Pair>,
}

impl Matching {
    pub(super) fn new(old: usize, new: usize) -> Self {
        Matching {
            old: vec![Fate::Free; old],
            new: vec![Fate::Free; new],
            pairs: Vec::new(),
        }
    }

    pub(super) fn keep(&mut self, old: usize, new: usize) {
        self.old[old] = Fate::Kept;
        self.new[new] = Fate::Kept;
    }

    pub(super) fn pair(&mut self, old: usize, new: usize) {
        self.old[old] = Fate::Paired(self.pairs.len());
        self.new[new] = Fate::Paired(self.pairs.len());
        self.pairs.push(Pair { old, new });
    }

    fn free_old(&self) -> impl Iterator<Item = usize> + '_ {
        free(&self.old)
    }

    fn free_new(&self) -> impl Iterator<Item = usize> + '_ {
        free(&self.new)
    }
}

fn free(fates: &[Fate]) -> impl Iterator<Item = usize> + '_ {
    (0..fates.len()).filter(|&i| fates[i] == Fate::Free)
}

/// Pairs free new elements with free old elements of equal value, the first of each first.
pub(super) fn pair_equal(span: &Span, old_hashes: &[u64], new_hashes: &[u64], m: &mut Matching) {
    let mut left: FxHashMap<u64, Vec<usize>> = FxHashMap::default();
    for a in m.free_old().collect::<Vec<_>>().into_iter().rev() {
        left.entry(old_hashes[a]).or_default().push(a);
    }
    if left.is_empty() {
        return;
    }
    let arrived: Vec<usize> = m.free_new().collect();
    for b in arrived {
        let Some(candidates) = left.get_mut(&new_hashes[b]) else {
            continue;
        };
        if let Some(at) = candidates
            .iter()
            .rposition(|&a| span.old[a].equals(span.new[b]))
        {
            let a = candidates.remove(at);
            m.pair(a, b);
        }
    }
}

/// The old objects having one member: the first [`CROWDED`] of them, and how many there are.
#[derive(Clone, Copy, Default)]
struct Holders {
    count: u32,
    first: [u32; CROWDED],
}

impl Holders {
    fn add(&mut self, a: usize) {
        if let Some(slot) = self.first.get_mut(self.count as usize) {
            *slot = a as u32;
        }
        self.count = self.count.saturating_add(1);
    }

    /// The holders, unless the member is too common to tell objects apart.
    fn distinctive(&self) -> &[u32] {
        self.first.get(..self.count as usize).unwrap_or_default()
    }
}

/// Pairs free new objects with the free old object sharing the most distinctive members,
/// when a move and an edit are smaller than a remove and an add.
pub(super) fn pair_similar(span: &Span, m: &mut Matching) {
    let mut by_member: FxHashMap<u64, Holders> = FxHashMap::default();
    let free: Vec<usize> = m.free_old().collect();
    // Sized for objects like the first: list items are mostly alike. Never more than a few
    // members per element, whatever the first one holds.
    if let Some(&a) = free.first() {
        let members = span.old[a].members().take(8).count();
        by_member.reserve(free.len() * members);
    }
    for a in free {
        for member in span.old[a].members() {
            by_member.entry(member.hash()).or_default().add(a);
        }
    }
    if by_member.is_empty() {
        return;
    }
    let arrived: Vec<usize> = m.free_new().collect();
    let mut votes: Vec<(usize, usize)> = Vec::new();
    for b in arrived {
        if !span.effort.spare() {
            return;
        }
        if span.new[b].kind() != Kind::Object {
            continue;
        }
        // A few candidates at most (CROWDED per member): a list beats a map.
        votes.clear();
        for member in span.new[b].members() {
            let Some(holders) = by_member.get(&member.hash()) else {
                continue;
            };
            for a in holders.distinctive().iter().map(|&a| a as usize) {
                if m.old[a] != Fate::Free {
                    continue;
                }
                match votes.iter_mut().find(|(old, _)| *old == a) {
                    Some((_, count)) => *count += 1,
                    None => votes.push((a, 1)),
                }
            }
        }
        let best = votes
            .iter()
            .copied()
            .max_by_key(|&(a, count)| (count, usize::MAX - a.abs_diff(b), usize::MAX - a));
        let Some((a, _)) = best else {
            continue;
        };
        if worth_moving(span, a, b) {
            m.pair(a, b);
        }
    }
}

/// Whether a `move` of old element `a` and the edit turning it into new element `b` are
/// smaller than removing `a` and adding `b`. Both are weighed at `b`'s index: where the ops
/// really land differs by a digit at most, on both sides alike.
pub(super) fn worth_moving(span: &Span, a: usize, b: usize) -> bool {
    let path = span.index_len(b);
    let moved = size::MOVE + 2 * path + 1 + span.edit_len(a, b, b);
    let resent = (size::REMOVE + path + 1) + (size::ADD + path + 1) + span.new_len(b);
    moved < resent
}
