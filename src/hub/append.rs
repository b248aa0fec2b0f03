//! What sources append to a channel. One path for a publisher's messages, a polled
//! document's changes and relayed upstream events: each gets a position, enters history and
//! wakes the channel's subscribers the same way, and this is where a store will take over
//! positions and history (see `Channel::append`).

use std::sync::Arc;

use serde_json::Value;

use crate::wire::document::Document;

use super::channel::ChannelKind;
use super::event::{Relayed, StateData, StateKind};

/// A message as a source hands it to the hub, before it has a position.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    /// A publisher-given id makes the publish idempotent while it is in history.
    pub id: Option<String>,
    pub name: Option<String>,
    pub encoding: Option<String>,
    pub data: Value,
}

/// One change of a state channel.
#[derive(Debug)]
pub struct StateUpdate {
    pub kind: StateKind,
    /// What multiplexed connections call the stream.
    pub stream: Arc<str>,
    pub data: StateData,
    /// The whole document after a `patch` (a `data` event is its own document; an `error`
    /// leaves it unchanged).
    pub document: Option<Arc<Document>>,
}

/// What is appended.
#[derive(Debug)]
pub enum Append {
    /// A publisher's batch, appended atomically; a message whose publisher-given id is still
    /// in history is acknowledged again, not appended.
    Messages(Vec<NewMessage>),
    /// A change of a polled document.
    State(StateUpdate),
    /// An event relayed from an upstream SSE server.
    Relayed(Relayed),
}

impl Append {
    /// The kind of channel this goes to (and makes, on first use).
    pub fn channel_kind(&self) -> ChannelKind {
        match self {
            Append::State(_) => ChannelKind::State,
            Append::Messages(_) | Append::Relayed(_) => ChannelKind::Log,
        }
    }
}

/// What an append did.
#[derive(Debug, Default)]
pub struct Appended {
    /// The messages' ids, in order (empty for other appends).
    pub ids: Vec<String>,
    /// Events that entered history.
    pub count: usize,
}
