//! The gaps: the runs of elements between two kept elements (or a kept element and an end of
//! the span), where old elements left and new ones arrived.
//!
//! Old and new elements still free in the same gap face each other: the first with the first,
//! and so on. Such a pair is edited in place (the edit is a whole `replace` when that is
//! smaller), which beats removing one and adding the other as long as it needs no `move`.
//!
//! The layout then lists every element, old and new, as a slot in the order the array passes
//! through them, which is what [`super::emit`] needs to compute indices. Within a gap, the
//! largest set of pairs whose old and new elements come in the same order is put side by
//! side, so those pairs need no move. Every other pair needs one (a pair that moved into
//! another gap, or one crossed by a pair of the same gap), and stays a pair only when the move
//! and its edit are smaller than removing the old element and adding the new one: a pair
//! across a run of facing pairs would otherwise push each of them into a move and a rewrite.

use super::array::Span;
use super::emit::{Plan, Slot};
use super::moves::{self, Fate, Matching, Pair};

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

/// Lists the slots of the span: kept elements, and in each gap its old and new elements, with
/// the pairs side by side that can be, and the others dissolved where a move does not pay.
pub(super) fn layout(span: &Span, kept: &[(usize, usize)], m: Matching) -> Plan {
    let Matching {
        mut old,
        mut new,
        pairs,
    } = m;
    let mut in_place = vec![false; pairs.len()];
    for (olds, news) in gaps(kept, old.len(), new.len()) {
        let here: Vec<usize> = olds
            .filter_map(|a| match old[a] {
                Fate::Paired(p) if news.contains(&pairs[p].new) => Some(p),
                _ => None,
            })
            .collect();
        for p in in_order(&here, |p| pairs[p].new) {
            in_place[p] = true;
        }
    }
    for (p, pair) in pairs.iter().enumerate() {
        if !in_place[p] && !moves::worth_moving(span, pair.old, pair.new) {
            old[pair.old] = Fate::Free;
            new[pair.new] = Fate::Free;
        }
    }
    let mut slots = Vec::with_capacity(old.len() + new.len());
    for (k, (olds, news)) in gaps(kept, old.len(), new.len()).enumerate() {
        let (mut a, mut b) = (olds.start, news.start);
        let side_by_side = olds.clone().filter_map(|a| match old[a] {
            Fate::Paired(p) if in_place[p] => Some(pairs[p]),
            _ => None,
        });
        // Removals and additions before each pair in place, then its two slots together.
        let end = Pair {
            old: olds.end,
            new: news.end,
        };
        for pair in side_by_side.chain([end]) {
            slots.extend((a..pair.old).map(|a| old_slot(&old, a)));
            slots.extend((b..pair.new).map(|b| new_slot(&new, b)));
            if pair.old < olds.end {
                slots.push(old_slot(&old, pair.old));
                slots.push(new_slot(&new, pair.new));
            }
            (a, b) = (pair.old + 1, pair.new + 1);
        }
        if k < kept.len() {
            slots.push(Slot::Kept);
        }
    }
    Plan::new(slots, pairs)
}

/// The longest run of `pairs` (given in the order of their old elements) whose new elements
/// `new_of` are in increasing order too, found by patience sorting.
fn in_order(pairs: &[usize], new_of: impl Fn(usize) -> usize) -> Vec<usize> {
    // ends[k]: the position in `pairs` of the run of length k + 1 with the smallest last new
    // element so far; before[i]: the position of the element preceding `pairs[i]` in its run.
    let mut ends: Vec<usize> = Vec::new();
    let mut before: Vec<Option<usize>> = vec![None; pairs.len()];
    for (i, &p) in pairs.iter().enumerate() {
        let len = ends.partition_point(|&e| new_of(pairs[e]) < new_of(p));
        before[i] = len.checked_sub(1).map(|k| ends[k]);
        if len == ends.len() {
            ends.push(i);
        } else {
            ends[len] = i;
        }
    }
    let mut run = Vec::with_capacity(ends.len());
    let mut at = ends.last().copied();
    while let Some(i) = at {
        run.push(pairs[i]);
        at = before[i];
    }
    run.reverse();
    run
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

#[cfg(test)]
mod tests {
    use super::in_order;

    #[test]
    fn longest_run_in_order() {
        // Pair i's new element is `news[i]`; pairs are listed in old order.
        let news = [3, 0, 1, 2, 9, 4];
        let pairs: Vec<usize> = (0..news.len()).collect();
        assert_eq!(in_order(&pairs, |p| news[p]), [1, 2, 3, 5]);
        assert_eq!(in_order(&[], |p| news[p]), Vec::<usize>::new());
    }
}
