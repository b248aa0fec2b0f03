//! The bus: where events get their positions, and what must outlive the process or span
//! nodes.
//!
//! The hub keeps fan-out to local subscribers (wakers, encodings made once); its [`Bus`]
//! places what is appended and keeps what a restart or a crash must not lose: pub/sub
//! history, the position and document of each polled topic; [`Journals`] keeps the
//! journals behind server-kept cursors.
//!
//! - [`memory`]: one node's bus without `data_dir`: it places events and keeps nothing.
//! - [`store`]: one node's bus, an embedded store (redb) whose writer groups the commits of
//!   concurrent appends.
//! - [`redis`]: many nodes' bus: Redis gives pub/sub channels their positions, holds their
//!   history and announces each append to the nodes (the hub's `shared` mirrors them).

pub mod journal_log;
pub mod memory;
pub mod position;
pub mod redis;
pub mod store;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Where the hub appends: what gives each event its position and keeps it.
///
/// Every source appends through one call: a publisher's messages, a polled document's
/// changes and relayed events alike. The bus places the events (a position each, or the
/// position of the message already kept under its publisher-given id), keeps them, and only
/// then does the hub append them to memory, where subscribers see them: after a crash no
/// position a client saw is given to another event. One node's bus ([`memory`], [`store`])
/// places events right after the hub's copy of the channel, which its turn leaves as the
/// only writer; a bus shared by several nodes ([`redis`]) gives positions itself, and the
/// hub's copy is a mirror of it.
pub trait Bus: Send + Sync + std::fmt::Debug {
    /// Places and keeps `append`'s events, all or none.
    fn append(&self, append: Append) -> Placing<'_>;
    /// Drops a log channel's events up to position `through`: they left history (or never
    /// were: a channel made afresh starts at `through`). The channel's epoch and position
    /// are kept even when no event is left.
    fn trim(&self, channel: &str, through: u64);
    /// This node lets go of a channel (idle and empty, or its source stopped): one node's
    /// bus drops all it kept of it; a shared bus stops telling this node of it.
    fn drop_channel(&self, channel: &str);
    /// Whether the bus keeps events beyond memory: it then needs their stored form
    /// (`Appending::json`, left empty otherwise).
    fn keeps(&self) -> bool;
    /// What the operator calls this bus, for messages (e.g. the store's file).
    fn describe(&self) -> String;
}

/// Events to append to one channel.
#[derive(Debug, Default)]
pub struct Append {
    pub channel: String,
    /// A state channel's (a polled document's), whose bus keeps its head and document, not
    /// its events; else a log channel's.
    pub state: bool,
    pub events: Vec<Appending>,
    /// A state channel's document after the events (JSON text), when they changed it.
    pub document: Option<Vec<u8>>,
    /// The position of the newest event of this node's copy of the channel, if it has one.
    pub after: Option<u64>,
    /// Only the holder of this lease may append (a source's, on a shared bus).
    pub fence: Option<Fence>,
    pub limits: Trim,
}

/// One event to append.
#[derive(Debug, Default)]
pub struct Appending {
    /// A message's id (empty for other events).
    pub id: String,
    /// Given by the publisher: while a message with this id is kept, the event is
    /// acknowledged, not appended.
    pub given: bool,
    /// The stored form (see `Bus::keeps`).
    pub json: Vec<u8>,
}

/// A source's claim to append alone in the cluster: the lease's name and this holder's
/// token, which a shared bus checks on every append.
#[derive(Debug, Clone)]
pub struct Fence {
    pub lease: String,
    pub token: String,
}

/// The history limits a bus applies to what it keeps.
#[derive(Debug, Clone, Copy, Default)]
pub struct Trim {
    pub size: usize,
    pub ttl_ms: u64,
}

/// Where the events of an `Append` went, in order: a position each, or `None` for a message
/// whose id was kept already.
pub type Placed = Vec<Option<u64>>;

/// An append in progress: `Err` (a message for the client) when it could not be kept.
pub type Placing<'a> = Pin<Box<dyn Future<Output = Result<Placed, String>> + Send + 'a>>;

/// The positions one node's bus gives `append`'s events: the next ones after the hub's
/// copy (the hub left out what it already holds by id).
fn next_positions(append: &Append) -> Placed {
    let after = append.after.unwrap_or_default();
    (1..=append.events.len() as u64)
        .map(|i| Some(after + i))
        .collect()
}

/// Where the journals behind server-kept cursors are kept: one node's store, or Redis for
/// many nodes (where a connection may resume on any node).
pub trait Journals: Send + Sync + std::fmt::Debug {
    /// Keeps what a connection's journal recorded since the last write; nobody waits.
    fn keep_journal(&self, write: JournalWrite);
    /// Drops a connection's journal: it closed longer ago than it may be resumed (unless
    /// another node has taken the connection over since).
    fn forget_journal(&self, connection: &str);
    /// A connection's journal as kept, for a node resuming it, if `credential` (its digest)
    /// may. A store read at start-up has none to add.
    fn load_journal(&self, connection: &str, credential: &[u8]) -> Loaded<'_>;
    /// This node holds the connection from now on (a client's resume of it was accepted
    /// here): the keeper refuses any other node's writes of its journal, and they learn it
    /// from `Keeping::moved`.
    fn claim_journal(&self, connection: &str) -> Kept<'_>;
    /// Asks the node that holds connection `connection`, if another node does, to carry
    /// out `change` (opaque here) for the credential whose digest is `credential`: that
    /// node's answer, or `None`. One node has nobody to ask.
    fn ask_holder(&self, connection: &str, credential: &[u8], change: Vec<u8>) -> Answered<'_>;
    /// Resolves once everything asked of the keeper before is kept (at shutdown; a store
    /// keeps all it was asked, history included).
    fn flush(&self) -> Kept<'_>;
}

/// Another node's answer on its way (see `Journals::ask_holder`).
pub type Answered<'a> = Pin<Box<dyn Future<Output = Result<Option<Vec<u8>>, String>> + Send + 'a>>;

/// A journal being read: `Err` (a message for the client) when the bus cannot be reached.
pub type Loaded<'a> = Pin<Box<dyn Future<Output = Result<Option<Handed>, String>> + Send + 'a>>;

/// A journal as a node resuming its connection read it.
#[derive(Debug)]
pub struct Handed {
    pub journal: KeptJournal,
    /// This node held the connection last: its own journal is as new as the kept one, or
    /// newer (writes are made every few hundred ms).
    pub ours: bool,
}

/// What start-up says of a part of `bus` (`what`: "an event of ...") it cannot read.
pub fn unreadable(bus: &dyn Bus, what: &str, error: impl std::fmt::Display) -> String {
    format!(
        "{} holds {what} that is not readable ({error}); move the store away to start with \
         an empty history",
        bus.describe()
    )
}

/// A fresh secret for `Restored::secret`: 32 random bytes.
pub fn new_secret() -> Vec<u8> {
    use rand::RngCore;
    let mut secret = vec![0; 32];
    rand::rng().fill_bytes(&mut secret);
    secret
}

/// An append in progress: `Err` (a message for the client) when it could not be kept.
pub type Kept<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// What a bus held when the gateway started.
pub struct Restored {
    /// The prefix of the message ids and server-kept cursors the gateway gives.
    pub epoch: String,
    /// Message ids given from now on count from here.
    pub message_ids: u64,
    /// The gateway's own secret: it keys the digests of secrets in channel names (see
    /// `Hub::secret`), which must name the same channels after a restart.
    pub secret: Vec<u8>,
    /// Each pub/sub channel's kept messages.
    pub channels: Vec<(String, KeptMessages)>,
    /// The pub/sub channels kept without a message: each one's head.
    pub empty: Vec<(String, u64)>,
    /// Each state channel's head and document.
    pub states: Vec<(String, KeptState)>,
    /// Each connection's journal.
    pub journals: Vec<KeptJournal>,
}

/// What a connection's journal recorded since its last write. The bus keeps the parts as
/// opaque bytes: the journal reads them back (see `outlet::journal`).
#[derive(Debug, Default)]
pub struct JournalWrite {
    pub connection: String,
    /// Drop what was kept of the connection first: its journal started over.
    pub reset: bool,
    /// A digest of the credential that may resume the connection.
    pub credential: Vec<u8>,
    /// New streams, by index.
    pub specs: Vec<(u32, Vec<u8>)>,
    /// New entries, packed, with the number of the last one.
    pub entries: Option<(u64, Vec<u8>)>,
    /// The state before entry `.0`: entries below it leave the bus.
    pub base: Option<(u64, Vec<u8>)>,
    /// The journal's count of changes this write brings it to (see `journal_log`).
    pub through: u64,
    /// The count the log's previous record of the journal brought it to (the log's writes
    /// only: a record that does not follow on from what is known shows one is missing).
    pub from: u64,
    /// The write under way, until the keeper drops it; what the keeper says of it.
    pub writing: Writing,
}

/// What a journal's keeper tells it of its writes (shared by the journal and its writes).
#[derive(Debug, Default)]
pub struct Keeping {
    /// A write is under way: the next one waits for it, so writes of one journal land in
    /// order whatever the keeper (a retried script may pass a later write).
    busy: AtomicBool,
    /// A write was not kept: the next one must be whole (`reset`), or the kept journal
    /// would have a hole.
    lost: AtomicBool,
    /// Another node took the connection over: this one stops keeping it.
    moved: AtomicBool,
}

impl Keeping {
    /// A new write of the journal; `None` while the last one is under way.
    pub fn start(self: &Arc<Self>) -> Option<Writing> {
        let idle = self
            .busy
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        idle.then(|| Writing(Arc::clone(self)))
    }

    /// Whether a write was lost since this was last asked.
    pub fn take_lost(&self) -> bool {
        self.lost.swap(false, Ordering::AcqRel)
    }

    /// Whether a write is under way.
    pub fn busy(&self) -> bool {
        self.busy.load(Ordering::Acquire)
    }

    /// Whether another node took the connection over.
    pub fn moved(&self) -> bool {
        self.moved.load(Ordering::Acquire)
    }
}

/// One write of a journal, under way until dropped.
#[derive(Debug, Default)]
pub struct Writing(Arc<Keeping>);

impl Writing {
    /// The write could not be kept.
    pub fn lost(&self) {
        self.0.lost.store(true, Ordering::Release);
    }

    /// The keeper refused the write: another node holds the connection now.
    pub fn moved(&self) {
        self.0.moved.store(true, Ordering::Release);
    }
}

impl Drop for Writing {
    fn drop(&mut self) {
        self.0.busy.store(false, Ordering::Release);
    }
}

/// A connection's journal as kept.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct KeptJournal {
    pub connection: String,
    pub credential: Vec<u8>,
    pub specs: Vec<(u32, Vec<u8>)>,
    /// Runs of entries as written, each packed, with the number of its last entry.
    pub entries: Vec<(u64, Vec<u8>)>,
    pub base: Option<(u64, Vec<u8>)>,
    /// The journal's count of changes this copy is at (0 when not counted).
    pub through: u64,
    /// The journal log held changes the store had not: the journal is written whole next.
    pub whole_next: bool,
}

/// A pub/sub channel's kept messages, oldest first: `(position, JSON envelope)`.
pub type KeptMessages = Vec<(u64, Vec<u8>)>;

/// A state channel as kept: its head, and the document (JSON text) clients hold there.
#[derive(Debug, PartialEq, Eq)]
pub struct KeptState {
    pub head: u64,
    pub document: Option<Vec<u8>>,
}
