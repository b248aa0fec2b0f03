//! The bus: what must outlive the process, and later what spans nodes.
//!
//! The hub keeps fan-out to local subscribers (wakers, encodings made once); its [`Bus`]
//! keeps what a restart or a crash must not lose: pub/sub history, and the position and
//! document of each polled topic. Without `[bus] data_dir` the hub has no bus and everything
//! lives in memory.
//!
//! - [`store`]: one node's bus, an embedded store (redb) whose writer groups the commits of
//!   concurrent appends.

pub mod store;

use std::future::Future;
use std::pin::Pin;

/// Where the hub keeps what it appends.
///
/// The hub plans positions (one node: its channel's turn is the only writer) and appends an
/// event to memory, where subscribers see it, only once the bus has kept it: after a crash no
/// position a client saw is given to another event. A bus shared by several nodes will give
/// the positions itself.
pub trait Bus: Send + Sync + std::fmt::Debug {
    /// Keeps new messages of a pub/sub channel, all or none; resolves once they are durable.
    fn append(&self, batch: Batch) -> Kept<'_>;
    /// Keeps a state channel's next position, and its document when the event changes it.
    fn append_state(&self, event: StateEvent) -> Kept<'_>;
    /// Drops a pub/sub channel's messages up to `through`: they left history.
    fn trim(&self, channel: &str, through: u64);
    /// Drops a state channel's position and document: its source stopped.
    fn forget_state(&self, channel: &str);
    /// What the operator calls this bus, for messages (e.g. the store's file).
    fn describe(&self) -> String;
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
    /// Each pub/sub channel's kept messages.
    pub channels: Vec<(String, KeptMessages)>,
    /// Each state channel's head and document.
    pub states: Vec<(String, KeptState)>,
}

/// A pub/sub channel's kept messages, oldest first: `(position, JSON envelope)`.
pub type KeptMessages = Vec<(u64, Vec<u8>)>;

/// A state channel as kept: its head, and the document (JSON text) clients hold there.
#[derive(Debug, PartialEq, Eq)]
pub struct KeptState {
    pub head: u64,
    pub document: Option<Vec<u8>>,
}
