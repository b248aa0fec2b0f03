//! The bus: what must outlive the process, and later what spans nodes.
//!
//! The hub keeps fan-out to local subscribers (wakers, encodings made once); its [`Bus`]
//! keeps what a restart or a crash must not lose: pub/sub history, the position and document
//! of each polled topic, and the journals behind server-kept cursors. Without `[bus] data_dir` the hub has no bus and everything
//! lives in memory.
//!
//! - [`store`]: one node's bus, an embedded store (redb) whose writer groups the commits of
//!   concurrent appends.
//! - [`redis`]: many nodes' bus: Redis gives pub/sub channels their positions, holds their
//!   history and announces each append to the nodes (the hub's `shared` mirrors them).

pub mod journal_log;
pub mod redis;
pub mod store;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Where the hub keeps what it appends.
///
/// The hub plans positions (one node: its channel's turn is the only writer) and appends an
/// event to memory, where subscribers see it, only once the bus has kept it: after a crash no
/// position a client saw is given to another event. A bus shared by several nodes will give
/// the positions itself.
pub trait Bus: Journals {
    /// Keeps new messages of a pub/sub channel, all or none; resolves once they are durable.
    fn append(&self, batch: Batch) -> Kept<'_>;
    /// Keeps a state channel's next position, and its document when the event changes it.
    fn append_state(&self, event: StateEvent) -> Kept<'_>;
    /// Drops a pub/sub channel's messages up to `through`: they left history (or never
    /// were: a channel made afresh starts at `through`). The channel's epoch and position
    /// are kept even when no message is left.
    fn trim(&self, channel: &str, through: u64);
    /// Drops all a channel has kept: it left memory (idle and empty), or its source stopped.
    fn drop_channel(&self, channel: &str);
    /// What the operator calls this bus, for messages (e.g. the store's file).
    fn describe(&self) -> String;
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

/// One pub/sub channel's new messages, and the positions it no longer keeps.
pub struct Batch {
    pub channel: String,
    /// `(position, JSON envelope)`, in order.
    pub messages: Vec<(u64, Vec<u8>)>,
    /// Positions up to this one leave the bus (0: none).
    pub forget_through: u64,
}

/// A state channel's next event: its position, and the document after it (JSON text) when
/// the event changes the document.
pub struct StateEvent {
    pub channel: String,
    pub position: u64,
    pub document: Option<Vec<u8>>,
}

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
