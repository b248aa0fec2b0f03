//! Turning an array plan into ops whose indices are right when applied one after another.
//!
//! The plan lists slots: every old element and every new element of the span, in an order
//! that agrees with the old array (old elements), with the new array (kept and new elements)
//! and with the layout of each gap. At any moment of applying the ops, the array is exactly
//! the present slots in that order: old elements present until removed or moved away, new
//! ones from when they are added or moved in. So the index of a slot is the number of present
//! slots before it, which a Fenwick tree answers in O(log n) while the slots are visited in
//! order:
//! - a removed old element: `remove` at its index, then it is absent;
//! - an added new element: it becomes present, `add` at its index;
//! - a pair, at its new slot: the old slot's index is `from`; the old slot goes absent and
//!   the new one present; its index is `path` (counted after the removal, as `move` defines
//!   it). A `move` is emitted unless the two are the same, then the pair's edit at `path`.
//!
//! Kept elements never move, so the number of moves is the number of pairs whose ends are not
//! side by side, and no op is needed for anything else.

use super::array::Span;
use super::moves::Pair;
use super::ops::Ops;
use super::size;

/// A position the array passes through.
#[derive(Clone, Copy, Debug)]
pub(super) enum Slot {
    /// An element kept by the alignment.
    Kept,
    /// An old element that is removed.
    Removed,
    /// The old element of a pair.
    Source(usize),
    /// A new element (by its index in the span) that is added.
    Added(usize),
    /// The new element of a pair.
    Target(usize),
}

/// The slots of a span and the pairs they refer to.
pub(super) struct Plan {
    slots: Vec<Slot>,
    pairs: Vec<Pair>,
    /// The slot of each pair's old element.
    sources: Vec<usize>,
}

impl Plan {
    pub(super) fn new(slots: Vec<Slot>, pairs: Vec<Pair>) -> Self {
        let mut sources = vec![0; pairs.len()];
        for (at, slot) in slots.iter().enumerate() {
            if let Slot::Source(pair) = *slot {
                sources[pair] = at;
            }
        }
        Plan {
            slots,
            pairs,
            sources,
        }
    }
}

/// One op of a plan, with indices into the span as they are when the op applies.
#[derive(Clone, Copy, Debug)]
enum Step {
    Remove(usize),
    /// Add new element `.1` at `.0`.
    Add(usize, usize),
    Move(usize, usize),
    /// The edit of pair `.0`, whose new element is at `.1`.
    Edit(usize, usize),
}

/// The steps carrying out `plan`, in order.
fn steps(plan: &Plan) -> Vec<Step> {
    let mut present = Ranks::new(
        plan.slots
            .iter()
            .map(|slot| matches!(slot, Slot::Kept | Slot::Removed | Slot::Source(_))),
    );
    let mut steps = Vec::new();
    for (slot, &kind) in plan.slots.iter().enumerate() {
        match kind {
            Slot::Kept | Slot::Source(_) => {}
            Slot::Removed => {
                steps.push(Step::Remove(present.before(slot)));
                present.toggle(slot, false);
            }
            Slot::Added(b) => {
                steps.push(Step::Add(present.before(slot), b));
                present.toggle(slot, true);
            }
            Slot::Target(pair) => {
                let source = plan.sources[pair];
                let from = present.before(source);
                present.toggle(source, false);
                let to = present.before(slot);
                present.toggle(slot, true);
                if from != to {
                    steps.push(Step::Move(from, to));
                }
                steps.push(Step::Edit(pair, to));
            }
        }
    }
    steps
}

/// The size of the ops carrying out `plan`, if it is below `limit`. Steps are weighed in
/// order and weighing stops at the limit, sparing the edits of a plan that already lost.
pub(super) fn cost_below(span: &Span, plan: &Plan, limit: usize) -> Option<usize> {
    let mut total = 0;
    for step in steps(plan) {
        total += match step {
            Step::Remove(at) => size::REMOVE + span.index_len(at) + 1,
            Step::Add(at, b) => size::ADD + span.index_len(at) + span.new_len(b) + 1,
            Step::Move(from, to) => size::MOVE + span.index_len(from) + span.index_len(to) + 1,
            Step::Edit(pair, at) => {
                let Pair { old, new } = plan.pairs[pair];
                span.edit_len(old, new, at)
            }
        };
        if total >= limit {
            return None;
        }
    }
    Some(total)
}

/// The ops carrying out `plan`.
pub(super) fn ops<'v>(span: &Span<'_, 'v>, plan: &Plan) -> Ops<'v> {
    let mut out = Ops::default();
    let index = |at: usize| span.path.index(span.head + at);
    for step in steps(plan) {
        match step {
            Step::Remove(at) => out.remove(&index(at)),
            Step::Add(at, b) => out.add(&index(at), span.new[b]),
            Step::Move(from, to) => out.moved(&index(from), &index(to)),
            Step::Edit(pair, at) => {
                let Pair { old, new } = plan.pairs[pair];
                let edit = span.take_edit(old, new);
                if !edit.is_empty() {
                    out.append_under(index(at).to_pointer().as_ref(), edit);
                }
            }
        }
    }
    out
}

/// Which slots are present, with the count of present slots before any slot (a Fenwick tree).
struct Ranks {
    tree: Vec<i32>,
}

impl Ranks {
    fn new(present: impl Iterator<Item = bool>) -> Self {
        let mut tree: Vec<i32> = present.map(i32::from).collect();
        for i in 0..tree.len() {
            let parent = i | (i + 1);
            if parent < tree.len() {
                tree[parent] += tree[i];
            }
        }
        Ranks { tree }
    }

    /// The number of present slots before `slot`.
    fn before(&self, slot: usize) -> usize {
        let mut sum = 0;
        let mut end = slot;
        while end > 0 {
            sum += self.tree[end - 1];
            end &= end - 1;
        }
        usize::try_from(sum).unwrap_or(0)
    }

    /// Marks `slot` present or absent; it must currently be the other.
    fn toggle(&mut self, slot: usize, present: bool) {
        let delta = if present { 1 } else { -1 };
        let mut i = slot;
        while i < self.tree.len() {
            self.tree[i] += delta;
            i |= i + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Ranks;

    #[test]
    fn ranks_count_present_slots() {
        let initial = [true, false, true, true, false, true, true, false, true];
        let mut ranks = Ranks::new(initial.iter().copied());
        let mut model = initial.to_vec();
        let check = |ranks: &Ranks, model: &[bool]| {
            for slot in 0..=model.len() {
                let expected = model[..slot].iter().filter(|&&p| p).count();
                assert_eq!(ranks.before(slot), expected, "slot {slot}");
            }
        };
        check(&ranks, &model);
        for (slot, present) in [(1, true), (0, false), (8, false), (4, true), (1, false)] {
            ranks.toggle(slot, present);
            model[slot] = present;
            check(&ranks, &model);
        }
    }
}
