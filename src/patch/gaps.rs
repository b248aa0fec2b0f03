//! The gaps: the runs of elements between two kept elements (or a kept element and an end of
//! the span), where old elements left and new ones arrived.
//!
//! Old and new elements still free in the same gap face each other: the first with the first,
//! and so on. Such a pair is edited in place (the edit is a whole `replace` when that is
//! smaller), which always beats removing one and adding the other.
//!
//! The layout then lists every element, old and new, as a slot in the order the array passes
//! through them, which is what [`super::emit`] needs to compute indices. Within a gap, a
//! pair's two slots are put side by side wherever the pairs allow it, so that pair needs no
//! move at all.

use super::emit::{Plan, Slot};
use super::moves::{Fate, Matching};

/// Pairs the free old and new elements facing each other in each gap between `kept` pairs
/// (old and new indices, in order).
pub(super) fn pair_facing(kept: &[(usize, usize)], m: &mut Matching) {
    for (olds, news) in gaps(kept, m.old.len(), m.new.len()) {
        let free_old = olds.filter(|&a| m.old[a] == Fate::Free).collect::<Vec<_>>();
        let free_new = news.filter(|&b| m.new[b] == Fate::Free).collect::<Vec<_>>();
        for (a, b) in free_old.into_iter().zip(free_new) {
            m.pair(a, b);
        }
    }
}

/// Lists the slots of the span: kept elements, and in each gap its old and new elements.
pub(super) fn layout(kept: &[(usize, usize)], m: Matching) -> Plan {
    let Matching { old, new, pairs } = m;
    let partner = |a: usize| match old[a] {
        Fate::Paired(p) => Some(pairs[p].new),
        _ => None,
    };
    let mut slots = Vec::with_capacity(old.len() + new.len());
    for (k, (olds, news)) in gaps(kept, old.len(), new.len()).enumerate() {
        let (mut a, mut b) = (olds.start, news.start);
        while a < olds.end || b < news.end {
            let partner = if a < olds.end { partner(a) } else { None };
            let partner_here = partner.filter(|p| news.contains(p));
            if partner_here == Some(b) {
                slots.push(old_slot(&old, a));
                slots.push(new_slot(&new, b));
                (a, b) = (a + 1, b + 1);
            } else if a < olds.end && partner_here.is_none_or(|p| p < b) {
                slots.push(old_slot(&old, a));
                a += 1;
            } else {
                // The old element's partner is a later new element of this gap: the new
                // elements before it go first, so that the two end up side by side.
                slots.push(new_slot(&new, b));
                b += 1;
            }
        }
        if k < kept.len() {
            slots.push(Slot::Kept);
        }
    }
    Plan::new(slots, pairs)
}

fn old_slot(fates: &[Fate], a: usize) -> Slot {
    match fates[a] {
        Fate::Paired(pair) => Slot::Source(pair),
        // Kept elements are not in gaps: a free old element is removed.
        Fate::Free | Fate::Kept => Slot::Removed,
    }
}

fn new_slot(fates: &[Fate], b: usize) -> Slot {
    match fates[b] {
        Fate::Paired(pair) => Slot::Target(pair),
        Fate::Free | Fate::Kept => Slot::Added(b),
    }
}

/// The gaps between `kept` pairs, as ranges of old and of new indices, in order; the last one
/// runs to the ends `old_len` and `new_len`.
fn gaps(
    kept: &[(usize, usize)],
    old_len: usize,
    new_len: usize,
) -> impl Iterator<Item = (std::ops::Range<usize>, std::ops::Range<usize>)> + '_ {
    let ends = kept.iter().copied().chain([(old_len, new_len)]);
    let starts = [(0, 0)]
        .into_iter()
        .chain(kept.iter().map(|&(a, b)| (a + 1, b + 1)));
    starts
        .zip(ends)
        .map(|((a0, b0), (a1, b1))| (a0..a1, b0..b1))
}
