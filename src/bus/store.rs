//! The durable history of pub/sub channels and the documents of polled topics, in one redb
//! file under `[bus] data_dir`.
//!
//! A publish is acknowledged, and a state event delivered, only once committed. Commits are grouped: one
//! writer thread takes every batch waiting when it is free and commits them together, so
//! concurrent publishers share the cost of a flush to disk.
//!
//! Positions survive restarts: a kept channel goes on from its last position, in its epoch
//! (see `hub::cursor`). Each start counts itself in the store, so the ids the gateway gives
//! messages published without one (`{epoch}:{n}`, `n` from `starts << 40` up) never repeat.
//!
//! Connections' journals are kept here with the commits, and logged ahead of them in the
//! same folder (`journal_log`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use redb::{Database, ReadableTable, TableDefinition};

use super::journal_log::{self, JournalLog};
use super::position;
use super::{
    Answered, Append, Bus, JournalWrite, Journals, Kept, KeptJournal, KeptMessages, KeptState,
    Loaded, Placing, Restored, next_positions,
};
use tokio::sync::oneshot;

/// Messages by channel and position: the message as its JSON envelope.
const MESSAGES: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("messages");
/// Each pub/sub channel's floor: every position up to it has left history. What keeps a
/// channel whose history is empty, with its epoch.
const LOG_FLOORS: TableDefinition<&str, u64> = TableDefinition::new("log_floors");
/// Each state channel's head: the position of its newest event.
const STATE_HEADS: TableDefinition<&str, u64> = TableDefinition::new("state_heads");
/// Each state channel's document, as JSON text.
const STATE_DOCUMENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("state_documents");
/// Each connection's journal: the credential digest, the base (the state before its first
/// kept entry, and that entry's number), its streams, and its entries in runs as written
/// (each keyed by its last entry's number).
const JOURNAL_CREDENTIALS: TableDefinition<&str, &[u8]> = TableDefinition::new("journals");
const JOURNAL_BASES: TableDefinition<&str, (u64, &[u8])> = TableDefinition::new("journal_bases");
const JOURNAL_SPECS: TableDefinition<(&str, u32), &[u8]> = TableDefinition::new("journal_specs");
/// Each journal's count of changes its last write brought it to (see `journal_log`).
const JOURNAL_THROUGH: TableDefinition<&str, u64> = TableDefinition::new("journal_through");
const JOURNAL_ENTRIES: TableDefinition<(&str, u64), &[u8]> =
    TableDefinition::new("journal_entries");
/// The store's own facts: `format`, `epoch`, `starts`, `secret`.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// The layout this build writes and reads (2: journals count their changes and are logged
/// ahead in `journal_log`, which a build of format 1 would not read back; 3: a polled
/// topic's document is kept as its `data` event, as a shared bus keeps it, not as bare JSON).
const FORMAT: u64 = 3;
/// Message ids each start may give before the next start's range begins.
const START_SHIFT: u32 = 40;

/// The file under `data_dir`.
const FILE: &str = "history.redb";

/// When the writer looks at the file's size, and from what size on it compacts it.
#[derive(Debug, Clone, Copy)]
struct Compaction {
    every: Duration,
    floor: u64,
}

/// Once a minute, when the file is past 64 MiB and more than half of it is free pages.
const COMPACTION: Compaction = Compaction {
    every: Duration::from_secs(60),
    floor: 64 << 20,
};

/// A handle on the store's writer.
#[derive(Clone, Debug)]
pub struct Store {
    writer: mpsc::Sender<Request>,
    path: PathBuf,
    log: Arc<JournalLog>,
}

/// A log channel's new events: `(position, stored form)`, in order, and the positions up to
/// `forget_through` that leave history with them (0: none).
struct Batch {
    channel: String,
    messages: Vec<(u64, Vec<u8>)>,
    forget_through: u64,
}

/// A state channel's next head, and its document after it when the events changed it.
struct StateEvent {
    channel: String,
    position: u64,
    document: Option<Vec<u8>>,
}

enum Request {
    Commit(Batch, oneshot::Sender<Result<(), String>>),
    /// Drops positions up to `.1` of channel `.0`; nobody waits for it.
    Forget(String, u64),
    State(StateEvent, oneshot::Sender<Result<(), String>>),
    /// Drops all a channel has kept; nobody waits for it.
    Drop(String),
    Journal(JournalWrite),
    /// Answered once every request before it is committed.
    Flush(oneshot::Sender<Result<(), String>>),
    /// Drops a connection's journal; nobody waits for it.
    ForgetJournal(String),
}

impl Store {
    /// Opens (or makes) the store in `dir`. A store that cannot be read, or was written by a
    /// newer streamgate, is an error that says so: it is never wiped.
    pub fn open(
        dir: &Path,
        new_epoch: impl FnOnce() -> String,
    ) -> Result<(Store, Restored), String> {
        std::fs::create_dir_all(dir).map_err(|e| {
            format!(
                "[bus] data_dir {}: cannot make the folder: {e}",
                dir.display()
            )
        })?;
        let path = dir.join(FILE);
        let unreadable = |e: &dyn std::fmt::Display| {
            format!(
                "the history store {} cannot be read ({e}); move it away to start with an \
                 empty history",
                path.display()
            )
        };
        let db = Database::create(&path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => format!(
                "the history store {} is in use by another process; give each gateway its \
                 own [bus] data_dir",
                path.display()
            ),
            e => unreadable(&e),
        })?;
        let restored = start(&db, new_epoch).map_err(|e| match e {
            StartError::Newer(format) => format!(
                "the history store {} was written by a newer streamgate (format {format}, this \
                 one reads {FORMAT}); run that version, or move the store away",
                path.display()
            ),
            StartError::Malformed(what) => unreadable(&what),
            StartError::Store(e) => unreadable(&e),
        })?;
        let mut restored = restored;
        let (log, records, segments) = JournalLog::open(dir, &restored.epoch)?;
        let replayed = journal_log::replay(&mut restored.journals, records);
        if !replayed.forgotten.is_empty() {
            forget_journals(&db, &replayed.forgotten).map_err(|e| unreadable(&e))?;
        }
        log.keep_until(segments, replayed.changed);
        let log = Arc::new(log);
        let (writer, requests) = mpsc::channel();
        let file = path.clone();
        let writer_log = Arc::clone(&log);
        std::thread::Builder::new()
            .name("history-store".into())
            .spawn(move || write(Some(db), &file, requests, COMPACTION, &writer_log))
            .map_err(|e| format!("cannot start the history store's writer: {e}"))?;
        Ok((Store { writer, path, log }, restored))
    }

    /// The journal log, which outlets write before they send what it records.
    pub fn log(&self) -> Arc<JournalLog> {
        Arc::clone(&self.log)
    }

    async fn request(
        &self,
        request: Request,
        committed: oneshot::Receiver<Result<(), String>>,
    ) -> Result<(), String> {
        self.writer.send(request).map_err(|_| self.stopped())?;
        committed.await.map_err(|_| self.stopped())?
    }

    fn stopped(&self) -> String {
        format!("the history store {} stopped", self.path.display())
    }
}

impl Journals for Store {
    /// With the next commit.
    fn keep_journal(&self, write: JournalWrite) {
        let _ = self.writer.send(Request::Journal(write));
    }

    /// With the next commit (in the journal log at once).
    fn forget_journal(&self, connection: &str) {
        self.log.forget(connection);
        let _ = self
            .writer
            .send(Request::ForgetJournal(connection.to_owned()));
    }

    /// Every journal was read at start-up: one not in memory is gone.
    fn load_journal(&self, _connection: &str, _credential: &[u8]) -> Loaded<'_> {
        Box::pin(std::future::ready(Ok(None)))
    }

    /// One node holds every connection.
    fn claim_journal(&self, _connection: &str) -> Kept<'_> {
        Box::pin(std::future::ready(Ok(())))
    }

    fn ask_holder(&self, _connection: &str, _credential: &[u8], _change: Vec<u8>) -> Answered<'_> {
        Box::pin(std::future::ready(Ok(None)))
    }

    fn flush(&self) -> Kept<'_> {
        let (done, committed) = oneshot::channel();
        Box::pin(self.request(Request::Flush(done), committed))
    }
}

impl Bus for Store {
    /// Resolves once the events are on disk. Events the count limit (`limits.size`, which
    /// the hub raises by the relay notices history passes over) pushes out of history leave
    /// in the same commit; the age limit's with the hub's `trim`.
    fn append(&self, append: Append) -> Placing<'_> {
        let placed = next_positions(&append);
        let (done, committed) = oneshot::channel();
        let mut positions = placed.iter().map(|p| p.unwrap_or_default());
        let request = match append.state {
            true => Request::State(
                StateEvent {
                    channel: append.channel,
                    position: positions.next_back().unwrap_or_default(),
                    document: append.document,
                },
                done,
            ),
            false => {
                let last = placed.last().copied().flatten().unwrap_or_default();
                let forget_through = match last.checked_sub(append.limits.size as u64) {
                    // Within the channel's epoch: its offset goes past the size.
                    Some(through) if position::split(through).0 == position::split(last).0 => {
                        through
                    }
                    _ => 0,
                };
                let events = append.events.into_iter().map(|e| e.json);
                let batch = Batch {
                    channel: append.channel,
                    messages: positions.zip(events).collect(),
                    forget_through,
                };
                Request::Commit(batch, done)
            }
        };
        Box::pin(async move {
            self.request(request, committed).await?;
            Ok(placed)
        })
    }

    /// With the next commit.
    fn trim(&self, channel: &str, through: u64) {
        let _ = self
            .writer
            .send(Request::Forget(channel.to_owned(), through));
    }

    /// With the next commit.
    fn drop_channel(&self, channel: &str) {
        let _ = self.writer.send(Request::Drop(channel.to_owned()));
    }

    fn keeps(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        format!("the history store {}", self.path.display())
    }
}

enum StartError {
    Newer(u64),
    /// A fact of the store's own that is not what this version writes.
    Malformed(String),
    Store(StoreError),
}

impl<E: Into<redb::Error>> From<E> for StartError {
    fn from(e: E) -> Self {
        StartError::Store(StoreError::from(e))
    }
}

/// Any of redb's errors, boxed: they are large, and rare.
struct StoreError(Box<redb::Error>);

impl<E: Into<redb::Error>> From<E> for StoreError {
    fn from(e: E) -> Self {
        StoreError(Box::new(e.into()))
    }
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Checks the format, counts this start, and reads every kept message and state.
fn start(db: &Database, new_epoch: impl FnOnce() -> String) -> Result<Restored, StartError> {
    let txn = db.begin_write()?;
    let restored = {
        let mut meta = txn.open_table(META)?;
        let number = |key: &str, bytes: &[u8]| {
            let bytes = bytes
                .try_into()
                .map_err(|_| StartError::Malformed(format!("{key} is not a number")))?;
            Ok::<u64, StartError>(u64::from_le_bytes(bytes))
        };
        let format = match meta.get("format")? {
            Some(v) => Some(number("format", v.value())?),
            None => None,
        };
        if let Some(format) = format.filter(|&f| f > FORMAT) {
            return Err(StartError::Newer(format));
        }
        if format.is_some_and(|f| f < 3) {
            // Bare documents, without the stream and time their event needs: the polled
            // topics start again from their next `data` (their positions go on).
            txn.delete_table(STATE_DOCUMENTS)?;
        }
        let epoch = match meta.get("epoch")? {
            Some(epoch) => String::from_utf8_lossy(epoch.value()).into_owned(),
            None => new_epoch(),
        };
        let starts = match meta.get("starts")? {
            Some(v) => number("starts", v.value())?,
            None => 0,
        } + 1;
        // Each start's ids lie above the last one's: a store started 2^24 times has no range
        // left (a crash loop would take years to get there).
        let message_ids = starts
            .checked_mul(1 << START_SHIFT)
            .ok_or_else(|| StartError::Malformed("no positions left for another start".into()))?;
        let secret = match meta.get("secret")? {
            Some(secret) => secret.value().to_vec(),
            None => super::new_secret(),
        };
        meta.insert("secret", secret.as_slice())?;
        meta.insert("format", FORMAT.to_le_bytes().as_slice())?;
        meta.insert("epoch", epoch.as_bytes())?;
        meta.insert("starts", starts.to_le_bytes().as_slice())?;
        let messages = txn.open_table(MESSAGES)?;
        let mut channels: Vec<(String, KeptMessages)> = Vec::new();
        for entry in messages.iter()? {
            let (key, value) = entry?;
            let (channel, position) = key.value();
            match channels.last_mut() {
                Some((name, list)) if name == channel => {
                    list.push((position, value.value().to_vec()))
                }
                _ => channels.push((channel.to_owned(), vec![(position, value.value().to_vec())])),
            }
        }
        let floors = txn.open_table(LOG_FLOORS)?;
        let mut empty = Vec::new();
        for entry in floors.iter()? {
            let (channel, floor) = entry?;
            let channel = channel.value();
            if channels
                .binary_search_by(|(c, _)| c.as_str().cmp(channel))
                .is_err()
            {
                empty.push((channel.to_owned(), floor.value()));
            }
        }
        let heads = txn.open_table(STATE_HEADS)?;
        let documents = txn.open_table(STATE_DOCUMENTS)?;
        let mut states = Vec::new();
        for entry in heads.iter()? {
            let (channel, head) = entry?;
            let document = documents.get(channel.value())?.map(|d| d.value().to_vec());
            let head = head.value();
            states.push((channel.value().to_owned(), KeptState { head, document }));
        }
        let journals = read_journals(&txn)?;
        Restored {
            epoch,
            message_ids,
            secret,
            channels,
            empty,
            states,
            journals,
        }
    };
    txn.commit()?;
    Ok(restored)
}

/// Drops the journals the log says were forgotten (before a crash kept the store from
/// committing it).
fn forget_journals(db: &Database, connections: &[String]) -> Result<(), StoreError> {
    let txn = db.begin_write()?;
    {
        let mut journals = JournalTables::open(&txn)?;
        for connection in connections {
            journals.forget(connection)?;
        }
    }
    txn.commit()?;
    Ok(())
}

/// Every kept journal.
fn read_journals(txn: &redb::WriteTransaction) -> Result<Vec<KeptJournal>, StartError> {
    let credentials = txn.open_table(JOURNAL_CREDENTIALS)?;
    let bases = txn.open_table(JOURNAL_BASES)?;
    let through = txn.open_table(JOURNAL_THROUGH)?;
    let specs = txn.open_table(JOURNAL_SPECS)?;
    let entries = txn.open_table(JOURNAL_ENTRIES)?;
    let mut journals = Vec::new();
    for row in credentials.iter()? {
        let (connection, credential) = row?;
        let connection = connection.value();
        let mut journal = KeptJournal {
            connection: connection.to_owned(),
            credential: credential.value().to_vec(),
            base: bases.get(connection)?.map(|b| {
                let (entry, state) = b.value();
                (entry, state.to_vec())
            }),
            through: through.get(connection)?.map_or(0, |t| t.value()),
            ..KeptJournal::default()
        };
        for row in specs.range((connection, 0)..=(connection, u32::MAX))? {
            let (key, spec) = row?;
            journal.specs.push((key.value().1, spec.value().to_vec()));
        }
        for row in entries.range((connection, 0)..=(connection, u64::MAX))? {
            let (key, entry) = row?;
            journal
                .entries
                .push((key.value().1, entry.value().to_vec()));
        }
        journals.push(journal);
    }
    Ok(journals)
}

/// The writer: takes what is waiting, commits it in one transaction, answers each publisher.
///
/// After a failed commit redb refuses every later write until the file is opened again, so
/// the writer reopens it (redb repairs it then): a full disk that is freed, or a passing I/O
/// error, does not stop publishing until a restart.
///
/// Pages that history no longer uses are reused by later commits, so the file stays about
/// as large as the most history ever kept at once; when that was much more than is kept
/// now, the writer compacts the file while nothing waits (see `Compaction`).
fn write(
    mut db: Option<Database>,
    path: &Path,
    requests: mpsc::Receiver<Request>,
    compaction: Compaction,
    log: &JournalLog,
) {
    let mut looked = Instant::now();
    let mut owed = Owed::default();
    // Each journal's `through` as committed, and when the log last started a segment.
    let mut kept = HashMap::new();
    let mut rotated = Instant::now();
    loop {
        // What a failed commit owes is retried with the next one, at least every second.
        let first = match owed.is_empty() {
            true => requests.recv().ok(),
            false => match requests.recv_timeout(Duration::from_secs(1)) {
                Ok(request) => Some(request),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            },
        };
        let mut pending = owed.take();
        if first.is_none() && pending.is_empty() {
            return;
        }
        pending.extend(first);
        pending.extend(requests.try_iter());
        if db.is_none() {
            db = Database::create(path)
                .inspect_err(|e| tracing::error!("the history store cannot be reopened: {e}"))
                .ok();
        }
        let result = match &db {
            Some(open) => commit(open, &pending).map_err(|e| e.to_string()),
            None => Err("the history store cannot be reopened".to_owned()),
        };
        let result = result.map_err(|e| {
            tracing::error!("the history store could not commit: {e}");
            db = None;
            format!(
                "the history store could not commit ({e}); retry with the same message ids (a \
                 retry is never doubled)"
            )
        });
        if result.is_ok() {
            logged_kept(&pending, &mut kept);
            if rotated.elapsed() >= journal_log::ROTATE_EVERY {
                rotated = Instant::now();
                log.rotate();
            }
            log.release(&kept);
        }
        for request in pending {
            match request {
                Request::Commit(_, done) | Request::State(_, done) | Request::Flush(done) => {
                    let _ = done.send(result.clone());
                }
                // Nobody waits for these: they are owed until a commit keeps them.
                owed_request if result.is_err() => owed.add(owed_request),
                _ => {}
            }
        }
        if looked.elapsed() >= compaction.every
            && let Some(open) = &mut db
        {
            looked = Instant::now();
            if let Err(e) = compact(open, path, compaction.floor) {
                tracing::warn!("the history store could not be compacted: {e}");
            }
        }
    }
}

/// Notes the journals a commit kept, so the log's segments that only held them can go.
fn logged_kept(pending: &[Request], kept: &mut HashMap<String, u64>) {
    for request in pending {
        match request {
            Request::Journal(write) => {
                let through = kept.entry(write.connection.clone()).or_default();
                *through = write.through.max(*through);
            }
            Request::ForgetJournal(connection) => {
                kept.remove(connection);
            }
            _ => {}
        }
    }
}

/// What failed commits owe the store, of the requests nobody waits for, in an order that
/// keeps their meaning: a channel's drop before its later floor, each channel's newest
/// floor, and journals to forget. A journal write is not owed: its journal is told to write
/// itself whole next time.
#[derive(Default)]
struct Owed {
    drops: Vec<String>,
    floors: std::collections::HashMap<String, u64>,
    journals: Vec<String>,
}

impl Owed {
    fn add(&mut self, request: Request) {
        match request {
            Request::Forget(channel, through) => {
                self.floors.insert(channel, through);
            }
            Request::Drop(channel) => {
                self.floors.remove(&channel);
                if !self.drops.contains(&channel) {
                    self.drops.push(channel);
                }
            }
            Request::ForgetJournal(connection) => self.journals.push(connection),
            Request::Journal(write) => write.writing.lost(),
            Request::Commit(..) | Request::State(..) | Request::Flush(_) => {}
        }
    }

    fn is_empty(&self) -> bool {
        self.drops.is_empty() && self.floors.is_empty() && self.journals.is_empty()
    }

    fn take(&mut self) -> Vec<Request> {
        let drops = self.drops.drain(..).map(Request::Drop);
        let floors = self.floors.drain().map(|(c, t)| Request::Forget(c, t));
        let journals = self.journals.drain(..).map(Request::ForgetJournal);
        drops.chain(floors).chain(journals).collect()
    }
}

/// The journal tables, open in one write transaction.
struct JournalTables<'t> {
    credentials: redb::Table<'t, &'static str, &'static [u8]>,
    through: redb::Table<'t, &'static str, u64>,
    bases: redb::Table<'t, &'static str, (u64, &'static [u8])>,
    specs: redb::Table<'t, (&'static str, u32), &'static [u8]>,
    entries: redb::Table<'t, (&'static str, u64), &'static [u8]>,
}

impl<'t> JournalTables<'t> {
    fn open(txn: &'t redb::WriteTransaction) -> Result<Self, StoreError> {
        Ok(JournalTables {
            credentials: txn.open_table(JOURNAL_CREDENTIALS)?,
            through: txn.open_table(JOURNAL_THROUGH)?,
            bases: txn.open_table(JOURNAL_BASES)?,
            specs: txn.open_table(JOURNAL_SPECS)?,
            entries: txn.open_table(JOURNAL_ENTRIES)?,
        })
    }

    fn write(&mut self, write: &JournalWrite) -> Result<(), StoreError> {
        let connection = write.connection.as_str();
        if write.reset {
            self.forget(connection)?;
        }
        self.credentials
            .insert(connection, write.credential.as_slice())?;
        self.through.insert(connection, write.through)?;
        for (index, spec) in &write.specs {
            self.specs.insert((connection, *index), spec.as_slice())?;
        }
        if let Some((last, packed)) = &write.entries {
            self.entries
                .insert((connection, *last), packed.as_slice())?;
        }
        if let Some((base, state)) = &write.base {
            self.bases.insert(connection, (*base, state.as_slice()))?;
            // Runs that end below the base leave; one that straddles it stays.
            let below = (connection, 0)..(connection, *base);
            self.entries.retain_in(below, |_, _| false)?;
        }
        Ok(())
    }

    fn forget(&mut self, connection: &str) -> Result<(), StoreError> {
        self.credentials.remove(connection)?;
        self.through.remove(connection)?;
        self.bases.remove(connection)?;
        self.specs
            .retain_in((connection, 0)..=(connection, u32::MAX), |_, _| false)?;
        self.entries
            .retain_in((connection, 0)..=(connection, u64::MAX), |_, _| false)?;
        Ok(())
    }
}

/// Compacts the file when it is past `floor` and more than half of it is free.
fn compact(db: &mut Database, path: &Path, floor: u64) -> Result<(), String> {
    let size = || std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let before = size();
    let stats = {
        let txn = db.begin_write().map_err(|e| e.to_string())?;
        let stats = txn.stats().map_err(|e| e.to_string())?;
        txn.abort().map_err(|e| e.to_string())?;
        stats
    };
    let used = stats.allocated_pages() * stats.page_size() as u64;
    if before <= floor || before <= 2 * used {
        return Ok(());
    }
    while db.compact().map_err(|e| e.to_string())? {}
    tracing::info!(before, after = size(), "the history store was compacted");
    Ok(())
}

fn commit(db: &Database, pending: &[Request]) -> Result<(), StoreError> {
    let txn = db.begin_write()?;
    {
        let mut messages = txn.open_table(MESSAGES)?;
        let mut floors = txn.open_table(LOG_FLOORS)?;
        let mut heads = txn.open_table(STATE_HEADS)?;
        let mut documents = txn.open_table(STATE_DOCUMENTS)?;
        let mut journals = JournalTables::open(&txn)?;
        for request in pending {
            match request {
                Request::Commit(batch, _) => {
                    let channel = batch.channel.as_str();
                    for (position, message) in &batch.messages {
                        messages.insert((channel, *position), message.as_slice())?;
                    }
                    let through = batch.forget_through;
                    if through > 0 {
                        messages.retain_in((channel, 0)..=(channel, through), |_, _| false)?;
                    }
                }
                Request::Forget(channel, through) => {
                    // Floors only rise within a channel's epoch, and a new epoch follows a
                    // `Drop`: the newest floor is the one to keep.
                    let channel = channel.as_str();
                    floors.insert(channel, *through)?;
                    messages.retain_in((channel, 0)..=(channel, *through), |_, _| false)?;
                }
                Request::State(event, _) => {
                    let channel = event.channel.as_str();
                    heads.insert(channel, event.position)?;
                    if let Some(document) = &event.document {
                        documents.insert(channel, document.as_slice())?;
                    }
                }
                Request::Drop(channel) => {
                    let channel = channel.as_str();
                    heads.remove(channel)?;
                    documents.remove(channel)?;
                    floors.remove(channel)?;
                    messages.retain_in((channel, 0)..=(channel, u64::MAX), |_, _| false)?;
                }
                Request::Journal(write) => journals.write(write)?,
                Request::ForgetJournal(connection) => journals.forget(connection)?,
                Request::Flush(_) => {}
            }
        }
    }
    txn.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use redb::StorageBackend;
    use redb::backends::FileBackend;

    use super::*;

    /// A file whose writes fail while `failing` is set, like a full disk.
    #[derive(Debug)]
    struct Flaky {
        file: FileBackend,
        failing: Arc<AtomicBool>,
        /// Writes refused so far.
        refused: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Flaky {
        fn check(&self) -> std::io::Result<()> {
            match self.failing.load(Ordering::Relaxed) {
                true => {
                    self.refused.fetch_add(1, Ordering::Relaxed);
                    Err(std::io::Error::other("no space left on device"))
                }
                false => Ok(()),
            }
        }
    }

    /// A writer on a store at `path` whose file fails while the flag is set, and the count
    /// of writes it refused. (Once a commit failed, the writer opens the file again, as
    /// itself: then it no longer fails.)
    fn flaky_writer(
        path: &Path,
    ) -> (
        mpsc::Sender<Request>,
        Arc<AtomicBool>,
        Arc<std::sync::atomic::AtomicUsize>,
        std::thread::JoinHandle<()>,
    ) {
        let failing = Arc::new(AtomicBool::new(false));
        let refused = Arc::default();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .unwrap();
        let backend = Flaky {
            file: FileBackend::new(file).unwrap(),
            failing: Arc::clone(&failing),
            refused: Arc::clone(&refused),
        };
        let db = redb::Builder::new().create_with_backend(backend).unwrap();
        let never = Compaction {
            every: Duration::MAX,
            floor: 0,
        };
        let (writer, thread) = spawn_writer(db, path, never);
        (writer, failing, refused, thread)
    }

    /// The store's writer on `db` (the file at `path`), in a thread of its own.
    fn spawn_writer(
        db: Database,
        path: &Path,
        compaction: Compaction,
    ) -> (mpsc::Sender<Request>, std::thread::JoinHandle<()>) {
        let (writer, requests) = mpsc::channel();
        let file = path.to_owned();
        let dir = path.parent().unwrap().to_owned();
        let thread = std::thread::spawn(move || {
            let (log, _, _) = JournalLog::open(&dir, "test").unwrap();
            write(Some(db), &file, requests, compaction, &log)
        });
        (writer, thread)
    }

    fn kept_positions(path: &Path) -> Vec<u64> {
        let db = Database::open(path).unwrap();
        let txn = db.begin_read().unwrap();
        let messages = txn.open_table(MESSAGES).unwrap();
        messages
            .iter()
            .unwrap()
            .map(|entry| entry.unwrap().0.value().1)
            .collect()
    }

    fn commit_one(writer: &mpsc::Sender<Request>, position: u64) -> Result<(), String> {
        let (done, answer) = oneshot::channel();
        let batch = Batch {
            channel: "c".into(),
            messages: vec![(position, b"{}".to_vec())],
            forget_through: 0,
        };
        writer.send(Request::Commit(batch, done)).unwrap();
        answer.blocking_recv().unwrap()
    }

    #[test]
    fn what_a_failed_commit_owes_is_kept_by_the_next_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        let (writer, failing, refused, thread) = flaky_writer(&path);
        assert_eq!(commit_one(&writer, 1), Ok(()));
        failing.store(true, Ordering::Relaxed);
        // A floor nobody waits for, in a commit that fails.
        writer.send(Request::Forget("c".into(), 1)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while refused.load(Ordering::Relaxed) == 0 {
            assert!(Instant::now() < deadline, "the writer never tried");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(commit_one(&writer, 2), Ok(()));
        drop(writer);
        thread.join().unwrap();
        assert_eq!(
            kept_positions(&path),
            [2],
            "message 1 left with the owed floor"
        );
    }

    impl StorageBackend for Flaky {
        fn len(&self) -> std::io::Result<u64> {
            self.file.len()
        }
        fn read(&self, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
            self.file.read(offset, len)
        }
        fn set_len(&self, len: u64) -> std::io::Result<()> {
            self.check()?;
            self.file.set_len(len)
        }
        fn sync_data(&self, eventual: bool) -> std::io::Result<()> {
            self.check()?;
            self.file.sync_data(eventual)
        }
        fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
            self.check()?;
            self.file.write(offset, data)
        }
    }

    #[test]
    fn a_failed_commit_does_not_stop_the_next_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        let (writer, failing, _, thread) = flaky_writer(&path);
        assert!(commit_one(&writer, 1).is_ok());
        failing.store(true, Ordering::Relaxed);
        let refused = commit_one(&writer, 2).unwrap_err();
        assert!(refused.contains("no space left"), "{refused}");
        failing.store(false, Ordering::Relaxed);
        assert_eq!(commit_one(&writer, 3), Ok(()));
        assert_eq!(commit_one(&writer, 4), Ok(()));
        drop(writer);
        thread.join().unwrap();
        assert_eq!(kept_positions(&path), [1, 3, 4]);
    }

    #[test]
    fn a_file_that_history_left_is_compacted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        let db = Database::create(&path).unwrap();
        let always = Compaction {
            every: Duration::ZERO,
            floor: 0,
        };
        let (writer, thread) = spawn_writer(db, &path, always);
        let commit = |batch: Batch| {
            let (done, answer) = oneshot::channel();
            writer.send(Request::Commit(batch, done)).unwrap();
            answer.blocking_recv().unwrap().unwrap();
        };
        let message = vec![b'x'; 64 << 10];
        for position in 1..=200 {
            let messages = vec![(position, message.clone())];
            let channel = "c".into();
            commit(Batch {
                channel,
                messages,
                forget_through: 0,
            });
        }
        let full = std::fs::metadata(&path).unwrap().len();
        assert!(full > 200 * (64 << 10), "{full}");
        // History moves on: everything but the last message leaves.
        let messages = vec![(201, message.clone())];
        let channel = "c".into();
        commit(Batch {
            channel,
            messages,
            forget_through: 200,
        });
        let messages = vec![(202, message)];
        commit(Batch {
            channel: "c".into(),
            messages,
            forget_through: 201,
        });
        // The writer compacts after answering: done once it has stopped.
        drop(writer);
        thread.join().unwrap();
        let compacted = std::fs::metadata(&path).unwrap().len();
        assert!(compacted < full / 4, "{compacted} of {full}");
        assert_eq!(kept_positions(&path), [202]);
    }

    #[test]
    fn a_store_of_format_2_keeps_its_polled_topics_heads_but_not_their_bare_documents() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = Database::create(dir.path().join(FILE)).unwrap();
            let txn = db.begin_write().unwrap();
            let format = 2u64.to_le_bytes();
            let mut meta = txn.open_table(META).unwrap();
            meta.insert("format", format.as_slice()).unwrap();
            drop(meta);
            txn.open_table(STATE_HEADS)
                .unwrap()
                .insert("[poll]t", 7)
                .unwrap();
            let mut documents = txn.open_table(STATE_DOCUMENTS).unwrap();
            documents
                .insert("[poll]t", b"{\"a\":1}".as_slice())
                .unwrap();
            drop(documents);
            txn.commit().unwrap();
        }
        let (_store, restored) = Store::open(dir.path(), || "e".into()).unwrap();
        let kept = KeptState {
            head: 7,
            document: None,
        };
        assert_eq!(restored.states, [("[poll]t".to_owned(), kept)]);
    }
}
