//! A connection's journal: what a server-kept resume cursor needs.
//!
//! A connection with many streams (or whose streams change while it is open) cannot put every
//! stream's position in each event id. Instead its ids are short tokens naming the connection
//! and an entry of this journal, and the journal can say which streams were open and where
//! each stood at any recent entry. Its memory is bounded: old entries are folded into a base.
//!
//! With a bus, a journal is kept: what it recorded since the last write is handed over
//! every few hundred ms (`unkept`), so a token a client got resumes after a restart too. With
//! a store's journal log, what it recorded is also logged (`unlogged`) before the events
//! whose ids name it are sent, so every token resumes exactly after a crash.

mod kept;

pub(crate) use kept::{read_spec, spec as spec_bytes};

use std::collections::VecDeque;
use std::sync::Arc;

use super::StreamSpec;
use crate::bus::{JournalWrite, Keeping, KeptJournal};

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
    /// What the bus has not got yet; `None` when the journal is not kept.
    unkept: Option<Unkept>,
    /// What the journal log has not got yet; `None` when there is no log.
    unlogged: Option<Changes>,
    /// Changes made so far (each entry, each restart): what a write covers, counted the
    /// same way by the log and the store, never going back.
    through: u64,
    /// `through` when the log last took the changes: where its next record follows on.
    logged_through: u64,
    /// Restarts so far: the stream indices an outlet got before the last one name other
    /// streams now, so what it still records is dropped (a resumed connection's old outlet
    /// may write an event or two before it sees that it was replaced).
    generation: u64,
}

/// Changes since the last write somewhere.
#[derive(Debug, Default, Clone)]
struct Changes {
    /// The journal started over: the keeper drops what it had first.
    reset: bool,
    /// Indices of streams added since.
    specs: Vec<u32>,
    entries: Vec<(u64, Entry)>,
}

/// A kept journal's changes since its last write.
#[derive(Debug, Default)]
struct Unkept {
    changes: Changes,
    /// The first entry the bus keeps: its base is the state before it. The bus keeps up to
    /// twice the capacity of entries, and gets a new base once per capacity of them.
    kept_from: u64,
    /// What the bus says of the journal's writes.
    keeping: Arc<Keeping>,
}

impl Journal {
    pub fn new(capacity: usize) -> Self {
        Journal {
            specs: Vec::new(),
            base: Vec::new(),
            base_entry: 1,
            entries: VecDeque::new(),
            capacity: capacity.max(1),
            unkept: None,
            unlogged: None,
            through: 1,
            logged_through: 0,
            generation: 0,
        }
    }

    /// A journal whose changes are to be kept (see `unkept`), and logged if `logged`. Its
    /// first write is due even while it holds nothing: it names the connection's node and
    /// credential, which a dynamic connection opened empty needs for streams added through
    /// another node, or for a resume after a restart.
    pub fn kept(capacity: usize, logged: bool) -> Self {
        let mut journal = Journal::new(capacity);
        let fresh = || Changes {
            reset: true,
            ..Changes::default()
        };
        journal.unkept = Some(Unkept {
            changes: fresh(),
            kept_from: journal.base_entry,
            keeping: Arc::default(),
        });
        journal.unlogged = logged.then(fresh);
        journal
    }

    /// A journal as the bus kept it (logged from now on if `logged`). One that the log
    /// made newer than the store's copy is written whole at its next keep.
    pub fn restore(capacity: usize, kept: &KeptJournal, logged: bool) -> Result<Self, String> {
        let mut journal = Journal::new(capacity);
        for (index, spec) in &kept.specs {
            // A stream whose write was lost (a failed commit) ends the streams known; the
            // entries that name a later one end what is known too (see below).
            if *index as usize != journal.specs.len() {
                break;
            }
            journal.specs.push(kept::read_spec(spec)?);
        }
        if let Some((first, state)) = &kept.base {
            if *first == 0 {
                return Err("a journal base numbered 0".into());
            }
            journal.base_entry = *first;
            journal.base = kept::read_base(state)?;
            journal.base.truncate(journal.specs.len());
        }
        journal.base.resize(journal.specs.len(), None);
        let kept_from = journal.base_entry;
        for (last, packed) in &kept.entries {
            for (number, entry) in kept::read_entries(*last, packed)? {
                let next = journal.base_entry + journal.entries.len() as u64;
                // Folded into the base already (a run that straddles it).
                if number < next {
                    continue;
                }
                let known = match entry {
                    Entry::Added { stream, .. }
                    | Entry::Removed { stream }
                    | Entry::Delivered { stream, .. } => (stream as usize) < journal.specs.len(),
                };
                // Written in order, and whole: a hole or an unknown stream ends what is known.
                if number != next || !known {
                    break;
                }
                journal.push(entry);
            }
        }
        journal.through = journal.through.max(kept.through);
        journal.unkept = Some(Unkept {
            changes: match kept.whole_next {
                true => journal.whole(),
                false => Changes::default(),
            },
            kept_from,
            keeping: Arc::default(),
        });
        journal.unlogged = logged.then(Changes::default);
        Ok(journal)
    }

    /// Everything the journal knows, as changes over nothing.
    fn whole(&self) -> Changes {
        Changes {
            reset: true,
            specs: (0..self.specs.len() as u32).collect(),
            entries: (self.base_entry..)
                .zip(self.entries.iter().copied())
                .collect(),
        }
    }

    /// What the bus has not got yet (`None`: nothing, or the journal is not kept); the
    /// caller names the connection and its credential.
    pub fn unkept(&mut self) -> Option<JournalWrite> {
        let keeping = Arc::clone(&self.unkept.as_ref()?.keeping);
        // The next write waits for the last one: they land in order.
        let writing = keeping.start()?;
        let whole = keeping.take_lost().then(|| self.whole());
        let unkept = self.unkept.as_mut()?;
        if let Some(whole) = whole {
            // A write was lost: everything the journal knows, over what the bus kept.
            unkept.changes = whole;
        }
        let mut write = take(&mut unkept.changes, &self.specs, self.through)?;
        write.writing = writing;
        if write.reset || self.base_entry >= unkept.kept_from + self.capacity as u64 {
            unkept.kept_from = self.base_entry;
            write.base = Some((self.base_entry, kept::base(&self.base)));
        }
        Some(write)
    }

    /// What the journal log has not got yet (`None`: nothing, or there is no log); the
    /// caller names the connection and its credential.
    pub fn unlogged(&mut self) -> Option<JournalWrite> {
        let mut write = take(self.unlogged.as_mut()?, &self.specs, self.through)?;
        if write.reset {
            write.base = Some((self.base_entry, kept::base(&self.base)));
        }
        write.from = std::mem::replace(&mut self.logged_through, self.through);
        Some(write)
    }

    /// The log could not take the last changes: the next ones are everything.
    pub fn log_lost(&mut self) {
        let whole = self.whole();
        if let Some(unlogged) = &mut self.unlogged {
            *unlogged = whole;
        }
    }

    /// Whether a write of the journal is under way.
    pub fn writing(&self) -> bool {
        self.unkept.as_ref().is_some_and(|u| u.keeping.busy())
    }

    /// Whether another node took the connection over (its bus refused a write).
    pub fn moved(&self) -> bool {
        self.unkept.as_ref().is_some_and(|u| u.keeping.moved())
    }

    /// Records a new stream; returns its index.
    pub fn add(&mut self, spec: StreamSpec, position: Option<u64>) -> u32 {
        let stream = self.specs.len() as u32;
        self.specs.push(spec);
        for changes in self.pending() {
            changes.specs.push(stream);
        }
        self.base.push(None);
        self.push(Entry::Added { stream, position });
        stream
    }

    /// The journal's restarts so far; an outlet records under the one it opened with.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn remove(&mut self, generation: u64, stream: u32) {
        if generation == self.generation {
            self.push(Entry::Removed { stream });
        }
    }

    /// Records a delivery; returns the entry number for the event's id (the newest one,
    /// recording nothing, for an outlet of an earlier `generation`).
    pub fn delivered(&mut self, generation: u64, stream: u32, seq: u64) -> u64 {
        match generation == self.generation {
            true => self.push(Entry::Delivered { stream, seq }),
            false => self.last(),
        }
    }

    fn push(&mut self, entry: Entry) -> u64 {
        self.entries.push_back(entry);
        self.through += 1;
        let number = self.base_entry + self.entries.len() as u64 - 1;
        for changes in self.pending() {
            changes.entries.push((number, entry));
        }
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
        let last = self.last();
        if entry.saturating_add(1) < self.base_entry || entry > last {
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
        let last = self.last();
        let (state, lost, entry) = match self.at(entry) {
            Some(state) => (state, false, entry),
            // Newer than the journal knows (it was not kept before a crash): the newest
            // state it knows, numbered after the client's, whose numbers are never reused.
            None if entry > last => {
                let newest = self.at(last).unwrap_or_else(|| self.earliest());
                (newest, true, entry)
            }
            None => (self.earliest(), true, self.base_entry - 1),
        };
        self.specs = state.iter().map(|r| r.spec.clone()).collect();
        self.base = state.iter().map(|r| Some(r.position)).collect();
        self.base_entry = entry + 1;
        self.entries.clear();
        self.through += 1;
        self.generation += 1;
        let whole = self.whole();
        if self.unlogged.is_some() {
            self.unlogged = Some(whole.clone());
        }
        if let Some(unkept) = &mut self.unkept {
            unkept.changes = whole;
            unkept.kept_from = self.base_entry;
        }
        let streams = state
            .into_iter()
            .enumerate()
            .map(|(i, r)| (i as u32, r))
            .collect();
        (streams, lost)
    }

    /// The change trackers: the store's and the log's.
    fn pending(&mut self) -> impl Iterator<Item = &mut Changes> {
        let unkept = self.unkept.as_mut().map(|u| &mut u.changes);
        unkept.into_iter().chain(self.unlogged.as_mut())
    }

    /// The number of the newest entry (`base_entry - 1` when there is none).
    fn last(&self) -> u64 {
        self.base_entry + self.entries.len() as u64 - 1
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

/// A write of `changes` (taken: they are handed over), numbered `through`; `None` when there
/// are none.
fn take(changes: &mut Changes, specs: &[StreamSpec], through: u64) -> Option<JournalWrite> {
    if !changes.reset && changes.specs.is_empty() && changes.entries.is_empty() {
        return None;
    }
    let changes = std::mem::take(changes);
    Some(JournalWrite {
        reset: changes.reset,
        specs: changes
            .specs
            .into_iter()
            .map(|i| (i, kept::spec(&specs[i as usize])))
            .collect(),
        entries: kept::entries(&changes.entries),
        through,
        ..JournalWrite::default()
    })
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
        let e1 = j.delivered(j.generation(), a, 11);
        let e2 = j.delivered(j.generation(), b, 4);
        j.remove(j.generation(), a);
        let e3 = j.delivered(j.generation(), b, 5);
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
            last = j.delivered(j.generation(), a, seq);
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
        let token = j.delivered(j.generation(), a, 1);
        j.delivered(j.generation(), a, 2);
        j.add(spec("b"), Some(5));
        let (streams, lost) = j.restart(token);
        assert!(!lost);
        assert_eq!(streams.len(), 1, "b came after the token");
        assert_eq!(streams[0].1.position, Some(1));
        assert_eq!(j.at(token).unwrap()[0].position, Some(1));
        let next = j.delivered(j.generation(), streams[0].0, 2);
        assert_eq!(next, token + 1);
        assert_eq!(j.at(next).unwrap()[0].position, Some(2));

        // A token newer than the journal (not kept before a crash): the newest state it
        // knows, and entries numbered after the token, never reusing a number it held.
        let b = j.add(spec("b"), Some(5));
        let newest = j.delivered(j.generation(), b, 6);
        let (streams, lost) = j.restart(newest + 10);
        assert!(lost);
        let at: Vec<_> = streams.iter().map(|(_, r)| r.position).collect();
        assert_eq!(at, [Some(2), Some(6)]);
        assert_eq!(j.delivered(j.generation(), streams[1].0, 7), newest + 11);
    }

    /// The journal's next write, as the bus would take it: done at once.
    fn written(journal: &mut Journal) -> Option<JournalWrite> {
        let mut write = journal.unkept()?;
        drop(std::mem::take(&mut write.writing));
        Some(write)
    }

    /// What the bus would hold after every write of `writes`, in order.
    fn held(writes: Vec<JournalWrite>) -> KeptJournal {
        let mut kept = KeptJournal::default();
        for w in writes {
            if w.reset {
                kept = KeptJournal::default();
            }
            kept.specs.extend(w.specs);
            kept.entries.extend(w.entries);
            if let Some((first, state)) = w.base {
                kept.entries.retain(|(n, _)| *n >= first);
                kept.base = Some((first, state));
            }
        }
        kept
    }

    #[test]
    fn a_kept_journal_reads_back_at_every_remembered_entry() {
        let mut j = Journal::kept(4, false);
        let mut writes = Vec::new();
        let a = j.add(spec("a"), Some(10));
        let b = j.add(spec("b"), None);
        let mut entries = Vec::new();
        for seq in 11..=30 {
            entries.push(j.delivered(j.generation(), a, seq));
            if seq % 3 == 0 {
                writes.extend(written(&mut j));
            }
        }
        j.remove(j.generation(), b);
        entries.push(j.delivered(j.generation(), a, 31));
        writes.extend(written(&mut j));
        assert!(j.unkept().is_none(), "nothing left to write");
        let kept = held(writes);
        assert!(
            kept.entries.len() <= 8,
            "at most twice the capacity is kept"
        );
        let back = Journal::restore(4, &kept, false).unwrap();
        // Where each stream starts is the resume's to say, not the journal's.
        let at = |j: &Journal, entry| {
            j.at(entry).map(|streams| {
                let stream = |r: Resumed| (r.spec.name, r.spec.kind, r.position);
                streams.into_iter().map(stream).collect::<Vec<_>>()
            })
        };
        for &entry in &entries {
            assert_eq!(at(&back, entry), at(&j, entry), "entry {entry}");
        }
        assert_eq!(back.open_streams().len(), 1);

        // A write the bus lost (it sets `lost`): the next one is whole, so what is kept
        // still reads back at every entry.
        let mut lossy = Journal::kept(4, false);
        let s = lossy.add(spec("a"), Some(1));
        let mut kept_first = lossy.unkept().unwrap();
        let e1 = lossy.delivered(lossy.generation(), s, 2);
        assert!(
            lossy.unkept().is_none(),
            "the next write waits for the last"
        );
        drop(std::mem::take(&mut kept_first.writing));
        let lost = lossy.unkept().unwrap();
        lost.writing.lost();
        drop(lost);
        let e2 = lossy.delivered(lossy.generation(), s, 3);
        let whole = lossy.unkept().unwrap();
        assert!(whole.reset);
        let again = Journal::restore(4, &held(vec![kept_first, whole]), false).unwrap();
        for entry in [e1, e2] {
            assert_eq!(at(&again, entry), at(&lossy, entry), "entry {entry}");
        }

        // A journal that starts over (a resume) is written whole.
        let mut j = back;
        j.unkept = Some(Unkept::default());
        let (streams, lost) = j.restart(entries[entries.len() - 2]);
        assert!(!lost);
        let write = j.unkept().unwrap();
        assert!(write.reset && write.base.is_some() && write.specs.len() == streams.len());
        let again = Journal::restore(4, &held(vec![write]), false).unwrap();
        let last = *entries.last().unwrap() - 1;
        assert_eq!(at(&again, last), at(&j, last));
    }

    #[test]
    fn an_outlet_from_before_a_restart_records_nothing() {
        let mut j = Journal::new(100);
        let old = j.generation();
        let a = j.add(spec("a"), Some(0));
        let token = j.delivered(old, a, 1);
        let b = j.add(spec("b"), Some(0));
        j.delivered(old, b, 1);
        // The client resumes at `token`: b came later, so only a is restored, as index 0.
        let (streams, _) = j.restart(token);
        assert_eq!(streams.len(), 1);
        // The replaced outlet writes once more, with its old indices (b was 1).
        let newest = j.delivered(old, b, 2);
        j.remove(old, b);
        assert_eq!(newest, token, "nothing recorded");
        assert_eq!(j.open_streams().len(), 1);
        assert_eq!(j.at(token).unwrap()[0].position, Some(1));
    }
}
