//! A connection's journal: what a server-kept resume cursor needs.
//!
//! A connection with many streams (or whose streams change while it is open) cannot put every
//! stream's position in each event id. Instead its ids are short tokens naming the connection
//! and an entry of this journal, and the journal can say which streams were open and where
//! each stood at any recent entry. Its memory is bounded: old entries are folded into a base.

use std::collections::VecDeque;

use super::StreamSpec;

/// One thing that happened on the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    /// A stream was added; `position` is where it started (`None`: from a fresh state).
    Added {
        stream: u32,
        position: Option<u64>,
    },
    Removed {
        stream: u32,
    },
    /// An event of the stream at this position was written.
    Delivered {
        stream: u32,
        seq: u64,
    },
}

/// A stream as it stood at some entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resumed {
    pub spec: StreamSpec,
    /// `None`: the client had nothing of it yet.
    pub position: Option<u64>,
}

#[derive(Debug)]
pub struct Journal {
    /// Every stream ever added, by index.
    specs: Vec<StreamSpec>,
    /// Which streams were open, and where, just before entry `base_entry`.
    base: Vec<Option<Option<u64>>>,
    base_entry: u64,
    entries: VecDeque<Entry>,
    capacity: usize,
}

impl Journal {
    pub fn new(capacity: usize) -> Self {
        Journal {
            specs: Vec::new(),
            base: Vec::new(),
            base_entry: 1,
            entries: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Records a new stream; returns its index.
    pub fn add(&mut self, spec: StreamSpec, position: Option<u64>) -> u32 {
        let stream = self.specs.len() as u32;
        self.specs.push(spec);
        self.base.push(None);
        self.push(Entry::Added { stream, position });
        stream
    }

    pub fn remove(&mut self, stream: u32) {
        self.push(Entry::Removed { stream });
    }

    /// Records a delivery; returns the entry number for the event's id.
    pub fn delivered(&mut self, stream: u32, seq: u64) -> u64 {
        self.push(Entry::Delivered { stream, seq })
    }

    fn push(&mut self, entry: Entry) -> u64 {
        self.entries.push_back(entry);
        while self.entries.len() > self.capacity {
            let oldest = self.entries.pop_front().expect("not empty");
            apply(&mut self.base, oldest);
            self.base_entry += 1;
        }
        self.base_entry + self.entries.len() as u64 - 1
    }

    /// The open streams and their positions just after entry `entry` was written; `None`
    /// when that entry is older than the journal remembers (or newer than it has).
    pub fn at(&self, entry: u64) -> Option<Vec<Resumed>> {
        let last = self.base_entry + self.entries.len() as u64 - 1;
        if entry + 1 < self.base_entry || entry > last {
            return None;
        }
        let mut state = self.base.clone();
        let replay = (entry + 1 - self.base_entry) as usize;
        for e in self.entries.iter().take(replay) {
            apply(&mut state, *e);
        }
        Some(self.resumed(&state))
    }

    /// The oldest state the journal remembers: for a client whose entry is too old.
    pub fn earliest(&self) -> Vec<Resumed> {
        self.resumed(&self.base)
    }

    fn resumed(&self, state: &[Option<Option<u64>>]) -> Vec<Resumed> {
        state
            .iter()
            .zip(&self.specs)
            .filter_map(|(position, spec)| {
                position.map(|position| Resumed {
                    spec: spec.clone(),
                    position,
                })
            })
            .collect()
    }

    /// Starts the journal over from entry `entry`, for a client resuming with it: the
    /// streams open then become the whole journal, with their indices, and entries continue
    /// after `entry` (what was journaled after it never reached the client). The same token
    /// keeps working. Returns the streams and whether `entry` was older than remembered.
    pub fn restart(&mut self, entry: u64) -> (Vec<(u32, Resumed)>, bool) {
        let (state, lost) = match self.at(entry) {
            Some(state) => (state, false),
            None => (self.earliest(), true),
        };
        let entry = if lost { self.base_entry - 1 } else { entry };
        self.specs = state.iter().map(|r| r.spec.clone()).collect();
        self.base = state.iter().map(|r| Some(r.position)).collect();
        self.base_entry = entry + 1;
        self.entries.clear();
        let streams = state
            .into_iter()
            .enumerate()
            .map(|(i, r)| (i as u32, r))
            .collect();
        (streams, lost)
    }

    /// The streams open now, by index.
    pub fn open_streams(&self) -> Vec<(u32, &StreamSpec)> {
        let mut state = self.base.clone();
        for e in &self.entries {
            apply(&mut state, *e);
        }
        state
            .iter()
            .enumerate()
            .filter(|(_, p)| p.is_some())
            .map(|(i, _)| (i as u32, &self.specs[i]))
            .collect()
    }
}

fn apply(state: &mut [Option<Option<u64>>], entry: Entry) {
    match entry {
        Entry::Added { stream, position } => state[stream as usize] = Some(position),
        Entry::Removed { stream } => state[stream as usize] = None,
        Entry::Delivered { stream, seq } => state[stream as usize] = Some(Some(seq)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outlet::Start;

    fn spec(name: &str) -> StreamSpec {
        StreamSpec::log(name.into(), Start::Live)
    }

    #[test]
    fn positions_at_any_remembered_entry() {
        let mut j = Journal::new(100);
        let a = j.add(spec("a"), Some(10));
        let b = j.add(spec("b"), Some(3));
        let e1 = j.delivered(a, 11);
        let e2 = j.delivered(b, 4);
        j.remove(a);
        let e3 = j.delivered(b, 5);
        let at = |e| {
            j.at(e)
                .unwrap()
                .into_iter()
                .map(|r| (r.spec.channel, r.position))
                .collect::<Vec<_>>()
        };
        assert_eq!(at(e1), [("a".into(), Some(11)), ("b".into(), Some(3))]);
        assert_eq!(at(e2), [("a".into(), Some(11)), ("b".into(), Some(4))]);
        assert_eq!(at(e3), [("b".to_string(), Some(5))]);
        assert_eq!(j.at(e3 + 1), None);
    }

    #[test]
    fn old_entries_fold_into_the_base() {
        let mut j = Journal::new(4);
        let a = j.add(spec("a"), None);
        let mut last = 0;
        for seq in 1..=10 {
            last = j.delivered(a, seq);
        }
        assert_eq!(j.at(last).unwrap()[0].position, Some(10));
        assert_eq!(j.at(last - 3).unwrap()[0].position, Some(7));
        assert_eq!(j.at(1), None, "forgotten");
        assert_eq!(j.earliest()[0].position, Some(6));
        assert_eq!(j.open_streams().len(), 1);
    }

    #[test]
    fn a_restart_keeps_the_token_valid_and_forgets_what_followed() {
        let mut j = Journal::new(100);
        let a = j.add(spec("a"), Some(0));
        let token = j.delivered(a, 1);
        j.delivered(a, 2);
        j.add(spec("b"), Some(5));
        let (streams, lost) = j.restart(token);
        assert!(!lost);
        assert_eq!(streams.len(), 1, "b came after the token");
        assert_eq!(streams[0].1.position, Some(1));
        assert_eq!(j.at(token).unwrap()[0].position, Some(1));
        let next = j.delivered(streams[0].0, 2);
        assert_eq!(next, token + 1);
        assert_eq!(j.at(next).unwrap()[0].position, Some(2));
    }
}
