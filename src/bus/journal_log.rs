//! The journal log: what connections' journals recorded, written before the events whose
//! ids name it go out.
//!
//! The store keeps journals in its file with its commits, handed over every
//! `Connections::keep_all` period: one row write per connection per period whatever the
//! rate of events, but a crash loses the tokens of the last period. This log closes that
//! window at a few bytes per event: an outlet appends what its journal recorded to the
//! current segment with one `write` before it writes to its socket, so a token a client got
//! is in the log even if the process is killed the next instant. (Not synced: a machine that
//! loses power loses what the page cache held, as it would the store's last period.)
//!
//! The log is a write-ahead of the store, not a second store: at start-up its records newer
//! than what the store kept are merged into the journals (`replay`), and a segment is
//! deleted once the store keeps everything it records. Each record carries its journal's
//! `through`, a count of changes that only grows; the store keeps the `through` of each
//! journal write it commits, and a closed segment goes when, for each connection it names,
//! the store's is at least the segment's. A record also carries the count its journal's
//! previous record reached (`from`), so a record lost from the middle of a journal's chain
//! stops the merge of that journal there (its newer tokens get a gap notice, never a wrong
//! position). Each segment starts with the store's identity: segments another store left
//! in the folder (one moved away) are not merged, and are deleted.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{JournalWrite, KeptJournal};

/// How often the store's writer starts a new segment (while it commits).
pub const ROTATE_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// A record's header: its payload's length and CRC-32.
const HEADER: usize = 8;

/// What the log holds of one connection.
#[derive(Debug)]
pub enum Record {
    Write(JournalWrite),
    /// The store dropped the connection's journal: older records of it are void.
    Forgotten(String),
    /// A segment's first record: the identity of the store it belongs to.
    Store(String),
}

/// The log, in a folder of numbered segment files.
#[derive(Debug)]
pub struct JournalLog {
    dir: PathBuf,
    /// The store's identity, at the start of each segment.
    store: String,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    file: File,
    segment: u64,
    /// Each connection's newest `through` logged in the current segment.
    logged: HashMap<String, u64>,
    /// Segments no longer written, oldest first, with what each needs the store to keep.
    closed: VecDeque<Closed>,
    /// A write failed and was told: the next failure is not told again.
    failing: bool,
}

#[derive(Debug)]
struct Closed {
    segments: Vec<u64>,
    through: HashMap<String, u64>,
}

impl JournalLog {
    /// Opens the log of the store named `store` in `dir`: the records of its segments there,
    /// oldest first, and the log, writing a new segment. The old segments stay until
    /// `keep_until` is told what they need kept.
    pub fn open(dir: &Path, store: &str) -> Result<(JournalLog, Vec<Record>, Vec<u64>), String> {
        let mut segments = Vec::new();
        let listing = std::fs::read_dir(dir)
            .map_err(|e| format!("cannot list [bus] data_dir {}: {e}", dir.display()))?;
        for entry in listing.flatten() {
            let name = entry.file_name();
            if let Some(n) = segment_number(&name.to_string_lossy()) {
                segments.push(n);
            }
        }
        segments.sort_unstable();
        let mut records = Vec::new();
        for &n in &segments {
            let path = segment_path(dir, n);
            let bytes = std::fs::read(&path)
                .map_err(|e| format!("cannot read the journal log {}: {e}", path.display()))?;
            let mut read = Vec::new();
            let whole = read_records(&bytes, &mut read);
            match read.first() {
                Some(Record::Store(id)) if id == store => {}
                // Cut short as it was made: nothing in it.
                None if bytes.len() < 64 => continue,
                _ => {
                    tracing::info!(
                        "the journal log {} is not this store's; it is deleted",
                        path.display()
                    );
                    continue;
                }
            }
            if !whole {
                tracing::warn!(
                    "the journal log {} ends in a damaged record; tokens it held resume with \
                     a gap notice",
                    path.display()
                );
            }
            records.extend(read.into_iter().skip(1));
        }
        let segment = segments.last().map_or(0, |n| n + 1);
        let log = JournalLog {
            dir: dir.to_owned(),
            store: store.to_owned(),
            inner: Mutex::new(Inner {
                file: create(dir, segment, store)?,
                segment,
                logged: HashMap::new(),
                closed: VecDeque::new(),
                failing: false,
            }),
        };
        Ok((log, records, segments))
    }

    /// The segments read at start-up go once the store keeps each journal through `through`
    /// (what `replay` returned).
    pub fn keep_until(&self, segments: Vec<u64>, through: HashMap<String, u64>) {
        if segments.is_empty() {
            return;
        }
        let closed = Closed { segments, through };
        self.inner.lock().unwrap().closed.push_front(closed);
    }

    /// Appends a journal's changes; `false` when they could not be written (told once per
    /// run of failures: the journal then logs itself whole next time).
    pub fn append(&self, write: &JournalWrite) -> bool {
        let record = encode_write(write);
        let mut inner = self.inner.lock().unwrap();
        let written = self.write_locked(&mut inner, &record);
        if written {
            inner.logged.insert(write.connection.clone(), write.through);
        }
        written
    }

    /// `connection`'s journal is being dropped from the store (logged before the store's
    /// commit, so no crash leaves the log holding a journal the store dropped): nothing of
    /// it needs keeping any more.
    pub fn forget(&self, connection: &str) {
        let record = encode_forgotten(connection);
        let mut inner = self.inner.lock().unwrap();
        inner.logged.remove(connection);
        for closed in &mut inner.closed {
            closed.through.remove(connection);
        }
        self.write_locked(&mut inner, &record);
    }

    /// Writes a record to the current segment; on failure, tells it (once per run of
    /// failures) and starts another segment: a partly written record ends a segment for a
    /// reader.
    fn write_locked(&self, inner: &mut Inner, record: &[u8]) -> bool {
        match inner.file.write_all(record) {
            Ok(()) => {
                inner.failing = false;
                true
            }
            Err(e) => {
                if !std::mem::replace(&mut inner.failing, true) {
                    tracing::error!(
                        "cannot write the journal log in {}: {e}; resume tokens given meanwhile \
                         may resume with a gap notice after a crash",
                        self.dir.display()
                    );
                }
                let _ = self.rotate_locked(inner);
                false
            }
        }
    }

    /// Starts a new segment; the current one is closed.
    pub fn rotate(&self) {
        let mut inner = self.inner.lock().unwrap();
        if let Err(e) = self.rotate_locked(&mut inner) {
            tracing::warn!("cannot start a new journal log segment: {e}");
        }
    }

    fn rotate_locked(&self, inner: &mut Inner) -> Result<(), String> {
        let file = create(&self.dir, inner.segment + 1, &self.store)?;
        inner.file = file;
        let closed = Closed {
            segments: vec![inner.segment],
            through: std::mem::take(&mut inner.logged),
        };
        inner.segment += 1;
        inner.closed.push_back(closed);
        Ok(())
    }

    /// Deletes the closed segments, oldest first, whose every journal the store keeps at
    /// least as far as they record (`kept`: the store's `through` of each journal).
    pub fn release(&self, kept: &HashMap<String, u64>) {
        let mut gone = Vec::new();
        {
            let mut inner = self.inner.lock().unwrap();
            while let Some(oldest) = inner.closed.front() {
                let done = oldest.through.iter().all(|(connection, &through)| {
                    kept.get(connection).is_some_and(|&k| k >= through)
                });
                if !done {
                    break;
                }
                gone.extend(inner.closed.pop_front().expect("a front").segments);
            }
        }
        // Outside the lock: outlets append meanwhile. A segment that cannot be deleted is
        // read again at the next start, where what it holds is already kept.
        for n in gone {
            let path = segment_path(&self.dir, n);
            if let Err(e) = std::fs::remove_file(&path)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!("cannot delete the journal log {}: {e}", path.display());
            }
        }
    }
}

/// What `replay` did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Replayed {
    /// Each changed journal's `through`, which the store must keep before the segments
    /// read go (the changed journals are marked to be written whole).
    pub changed: HashMap<String, u64>,
    /// Journals the store holds that the log says were dropped (its commit did not happen).
    pub forgotten: Vec<String>,
}

/// Merges the log's records into the journals the store kept: each record newer than the
/// journal (by `through`) applies, in order, while it follows on from what is known (by
/// `from`). Journals the log forgot leave `journals`.
pub fn replay(journals: &mut Vec<KeptJournal>, records: Vec<Record>) -> Replayed {
    let stored = journals.len();
    let mut index: HashMap<String, usize> = journals
        .iter()
        .enumerate()
        .map(|(i, j)| (j.connection.clone(), i))
        .collect();
    let mut gone = vec![false; journals.len()];
    let mut changed = HashMap::new();
    for record in records {
        let write = match record {
            Record::Forgotten(connection) => {
                if let Some(&i) = index.get(&connection) {
                    gone[i] = true;
                }
                changed.remove(&connection);
                continue;
            }
            Record::Write(write) => write,
            Record::Store(_) => continue,
        };
        let i = match index.get(&write.connection) {
            Some(&i) if !gone[i] => i,
            // Known only from here: its first record makes it (a journal's first record is
            // whole); a later one without the first is void.
            _ if write.reset => {
                index.insert(write.connection.clone(), journals.len());
                gone.push(false);
                journals.push(KeptJournal::default());
                journals.len() - 1
            }
            _ => continue,
        };
        let journal = &mut journals[i];
        // Known already, or not following on from what is known (a record between is
        // missing): what the journal knows ends here.
        if write.through <= journal.through || (!write.reset && write.from > journal.through) {
            continue;
        }
        if write.reset {
            *journal = KeptJournal {
                connection: write.connection.clone(),
                credential: write.credential,
                specs: Vec::new(),
                entries: Vec::new(),
                base: write.base,
                through: 0,
                whole_next: true,
            };
        }
        for (index, spec) in write.specs {
            if !journal.specs.iter().any(|(i, _)| *i == index) {
                journal.specs.push((index, spec));
            }
        }
        journal.entries.extend(write.entries);
        journal.through = write.through;
        journal.whole_next = true;
        changed.insert(write.connection, write.through);
    }
    let forgotten = journals
        .iter()
        .zip(&gone)
        .take(stored)
        .filter(|(_, gone)| **gone)
        .map(|(j, _)| j.connection.clone())
        .collect();
    let mut i = 0;
    journals.retain(|_| {
        i += 1;
        !gone[i - 1]
    });
    Replayed { changed, forgotten }
}

fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("journal-{n:016x}.log"))
}

fn segment_number(name: &str) -> Option<u64> {
    let hex = name.strip_prefix("journal-")?.strip_suffix(".log")?;
    u64::from_str_radix(hex, 16).ok()
}

/// A new segment, starting with the store's identity.
fn create(dir: &Path, n: u64, store: &str) -> Result<File, String> {
    let path = segment_path(dir, n);
    let failed = |e: std::io::Error| format!("cannot make the journal log {}: {e}", path.display());
    let mut file = File::options()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(failed)?;
    file.write_all(&encode_store(store)).map_err(failed)?;
    Ok(file)
}

/// A journal write's record, with its header.
fn encode_write(w: &JournalWrite) -> Vec<u8> {
    framed(|out| {
        out.push(0);
        put_bytes(out, w.connection.as_bytes());
        out.extend_from_slice(&w.through.to_le_bytes());
        out.extend_from_slice(&w.from.to_le_bytes());
        out.push(w.reset as u8);
        put_bytes(out, &w.credential);
        out.extend_from_slice(&(w.specs.len() as u32).to_le_bytes());
        for (index, spec) in &w.specs {
            out.extend_from_slice(&index.to_le_bytes());
            put_bytes(out, spec);
        }
        for part in [&w.entries, &w.base] {
            match part {
                None => out.push(0),
                Some((number, bytes)) => {
                    out.push(1);
                    out.extend_from_slice(&number.to_le_bytes());
                    put_bytes(out, bytes);
                }
            }
        }
    })
}

/// A segment's first record: whose it is.
fn encode_store(store: &str) -> Vec<u8> {
    framed(|out| {
        out.push(2);
        put_bytes(out, store.as_bytes());
    })
}

/// A forgotten journal's record, with its header.
fn encode_forgotten(connection: &str) -> Vec<u8> {
    framed(|out| {
        out.push(1);
        put_bytes(out, connection.as_bytes());
    })
}

/// The payload `fill` writes, after its header.
fn framed(fill: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = vec![0; HEADER];
    fill(&mut out);
    let len = (out.len() - HEADER) as u32;
    let crc = crc32fast::hash(&out[HEADER..]);
    out[..4].copy_from_slice(&len.to_le_bytes());
    out[4..HEADER].copy_from_slice(&crc.to_le_bytes());
    out
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Reads a segment's records into `records`; `false` when it ends in a damaged record (a
/// write cut short), after which nothing is read.
fn read_records(mut bytes: &[u8], records: &mut Vec<Record>) -> bool {
    while !bytes.is_empty() {
        let Some((header, rest)) = bytes.split_at_checked(HEADER) else {
            return false;
        };
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
        let Some((payload, rest)) = rest.split_at_checked(len) else {
            return false;
        };
        if crc32fast::hash(payload) != crc {
            return false;
        }
        match decode(payload) {
            Some(record) => records.push(record),
            None => return false,
        }
        bytes = rest;
    }
    true
}

/// A record's payload back; `None` when it is not one (its checksum matched: a bug).
fn decode(payload: &[u8]) -> Option<Record> {
    let mut r = Reader(payload);
    let kind = r.u8()?;
    let connection = String::from_utf8(r.bytes()?.to_vec()).ok()?;
    match kind {
        0 => {}
        1 => return Some(Record::Forgotten(connection)),
        2 => return Some(Record::Store(connection)),
        _ => return None,
    }
    let through = r.u64()?;
    let from = r.u64()?;
    let reset = r.u8()? == 1;
    let credential = r.bytes()?.to_vec();
    let count = r.u32()?;
    let mut specs = Vec::new();
    for _ in 0..count {
        let index = r.u32()?;
        specs.push((index, r.bytes()?.to_vec()));
    }
    let mut part = || -> Option<Option<(u64, Vec<u8>)>> {
        match r.u8()? {
            0 => Some(None),
            _ => Some(Some((r.u64()?, r.bytes()?.to_vec()))),
        }
    };
    let entries = part()?;
    let base = part()?;
    Some(Record::Write(JournalWrite {
        connection,
        reset,
        credential,
        specs,
        entries,
        base,
        through,
        from,
        writing: Default::default(),
    }))
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let (taken, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(taken)
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn bytes(&mut self) -> Option<&[u8]> {
        let len = self.u32()? as usize;
        self.take(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record of `connection` taking it from `through - 1` to `through`.
    fn write(connection: &str, through: u64, reset: bool, last: u64) -> JournalWrite {
        JournalWrite {
            from: through - 1,
            connection: connection.into(),
            reset,
            credential: b"digest".to_vec(),
            specs: vec![(0, b"{}".to_vec())],
            entries: Some((last, vec![7; 13])),
            base: reset.then(|| (1, vec![0; 9])),
            through,
            writing: Default::default(),
        }
    }

    #[test]
    fn records_read_back_and_a_cut_tail_ends_the_segment() {
        let mut bytes = encode_write(&write("c", 3, true, 1));
        bytes.extend(encode_forgotten("d"));
        let whole = bytes.len();
        bytes.extend(encode_write(&write("c", 4, false, 2)));
        let mut records = Vec::new();
        assert!(read_records(&bytes, &mut records));
        assert_eq!(records.len(), 3);
        match &records[2] {
            Record::Write(w) => {
                assert_eq!(
                    (w.through, w.reset, w.entries.clone()),
                    (4, false, Some((2, vec![7; 13])))
                );
            }
            other => panic!("{other:?}"),
        }
        for cut in [whole + 3, bytes.len() - 1] {
            let mut records = Vec::new();
            assert!(!read_records(&bytes[..cut], &mut records));
            assert_eq!(records.len(), 2);
        }
        let mut flipped = bytes.clone();
        flipped[whole + HEADER + 2] ^= 1;
        let mut records = Vec::new();
        assert!(!read_records(&flipped, &mut records));
        assert_eq!(records.len(), 2);
    }

    #[test]
    fn replay_applies_only_what_the_store_lacks() {
        let kept = KeptJournal {
            connection: "c".into(),
            credential: b"digest".to_vec(),
            through: 5,
            ..KeptJournal::default()
        };
        let mut journals = vec![kept];
        let records = vec![
            Record::Write(write("c", 4, false, 4)),
            Record::Write(write("c", 6, false, 6)),
            Record::Write(write("n", 2, false, 2)),
            Record::Write(write("m", 1, true, 1)),
            Record::Forgotten("m".into()),
        ];
        let replayed = replay(&mut journals, records);
        assert_eq!(replayed.changed, HashMap::from([("c".to_owned(), 6)]));
        assert_eq!(journals.len(), 1, "{journals:?}");
        assert_eq!(journals[0].entries, vec![(6, vec![7; 13])]);
        assert!(journals[0].whole_next);
    }

    fn segments(dir: &Path) -> Vec<u64> {
        let mut found: Vec<u64> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| segment_number(&e.unwrap().file_name().to_string_lossy()))
            .collect();
        found.sort_unstable();
        found
    }

    #[test]
    fn a_segment_goes_once_the_store_keeps_all_it_records() {
        let dir = tempfile::tempdir().unwrap();
        let (log, records, old) = JournalLog::open(dir.path(), "store").unwrap();
        assert!(records.is_empty() && old.is_empty());
        assert!(log.append(&write("c", 3, true, 1)));
        assert!(log.append(&write("d", 2, true, 1)));
        log.rotate();
        assert!(log.append(&write("c", 4, false, 2)));
        log.rotate();
        assert_eq!(segments(dir.path()), [0, 1, 2]);
        let kept = |pairs: &[(&str, u64)]| -> HashMap<String, u64> {
            pairs.iter().map(|(c, t)| (c.to_string(), *t)).collect()
        };
        log.release(&kept(&[("c", 3)]));
        assert_eq!(segments(dir.path()), [0, 1, 2], "d is not kept yet");
        log.forget("d");
        log.release(&kept(&[("c", 3)]));
        assert_eq!(segments(dir.path()), [1, 2], "segment 1 needs c through 4");
        log.release(&kept(&[("c", 4)]));
        assert_eq!(segments(dir.path()), [2]);

        // Read again at the next start: what is left, and a new segment; the old ones go
        // once the store keeps what replaying them changed.
        assert!(log.append(&write("e", 9, true, 1)));
        drop(log);
        let (log, records, old) = JournalLog::open(dir.path(), "store").unwrap();
        assert_eq!(old, [2]);
        assert_eq!(
            records.len(),
            2,
            "d's forgetting and e's write: {records:?}"
        );
        let mut journals = Vec::new();
        let replayed = replay(&mut journals, records);
        assert_eq!(replayed.changed, kept(&[("e", 9)]));
        log.keep_until(old, replayed.changed);
        log.release(&kept(&[]));
        assert_eq!(segments(dir.path()), [2, 3]);
        log.release(&kept(&[("e", 9)]));
        assert_eq!(segments(dir.path()), [3]);
    }

    #[test]
    fn a_record_missing_from_a_chain_ends_what_is_merged_there() {
        let kept = KeptJournal {
            connection: "c".into(),
            through: 5,
            ..KeptJournal::default()
        };
        let mut journals = vec![kept];
        // 6 (from 5) applies; 8 (from 7) does not follow on: the record to 7 is missing.
        let records = vec![
            Record::Write(write("c", 6, false, 6)),
            Record::Write(write("c", 8, false, 8)),
            Record::Write(write("c", 9, false, 9)),
        ];
        let replayed = replay(&mut journals, records);
        assert_eq!(replayed.changed, HashMap::from([("c".to_owned(), 6)]));
        assert_eq!(journals[0].entries, vec![(6, vec![7; 13])]);
        // A journal the log dropped leaves the store too.
        let dropped = KeptJournal {
            connection: "d".into(),
            ..KeptJournal::default()
        };
        let mut journals = vec![dropped];
        let replayed = replay(&mut journals, vec![Record::Forgotten("d".into())]);
        assert_eq!(replayed.forgotten, ["d"]);
        assert!(journals.is_empty());
    }

    #[test]
    fn another_stores_segments_are_not_merged() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _, _) = JournalLog::open(dir.path(), "old store").unwrap();
        assert!(log.append(&write("c", 3, true, 1)));
        drop(log);
        let (_, records, old) = JournalLog::open(dir.path(), "store").unwrap();
        assert!(records.is_empty(), "{records:?}");
        assert_eq!(old, [0], "deleted once released");
    }
}
