//! Presence: who is on a channel now, with their data. One set of members per channel; each
//! change is also an event of the channel's companion `[presence]{name}`, which the streams
//! that ask for presence read like any channel (fan-out, history, resume). Presence is
//! never kept beyond the process (see `Hub::bus_of`): a member is there while this process
//! knows it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::Value;

use super::{Append, Hub};
use crate::clock::now_ms;
use crate::wire::envelope::{PresenceAction, PresenceMessage};

/// What names a channel's presence stream: users cannot name a channel so.
const PREFIX: &str = "[presence]";

/// The presence stream of channel `name`.
pub fn stream_of(name: &str) -> String {
    format!("{PREFIX}{name}")
}

/// The channel whose presence stream `stream` is, if it is one.
pub fn channel_of(stream: &str) -> Option<&str> {
    stream.strip_prefix(PREFIX)
}

/// Whether the channel `name` is a presence stream.
pub(super) fn is_stream(name: &str) -> bool {
    name.starts_with(PREFIX)
}

/// Every channel's members: by client id, the message that entered or last updated each.
pub(super) type Members = tokio::sync::Mutex<HashMap<String, BTreeMap<String, PresenceMessage>>>;

impl Hub {
    /// Carries out `action` (enter, update or leave) for `client_id` on `channel`: its
    /// member set changes, and the change is appended to the channel's presence stream, in
    /// the same order. `None` when it changed nothing (leaving without being there).
    /// Entering again is an update; updating without having entered enters.
    pub async fn presence(
        self: &Arc<Self>,
        channel: &str,
        client_id: &str,
        action: PresenceAction,
        data: Value,
    ) -> Result<Option<PresenceMessage>, String> {
        // Held until the change is in the stream: changes reach members and streams in one
        // order.
        let mut members = self.members.lock().await;
        let set = members.entry(channel.to_owned()).or_default();
        let action = match (action, set.contains_key(client_id)) {
            (PresenceAction::Leave, false) => return Ok(None),
            (PresenceAction::Enter, true) => PresenceAction::Update,
            (PresenceAction::Update, false) => PresenceAction::Enter,
            (action, _) => action,
        };
        let message = PresenceMessage {
            id: self.next_message_id(),
            action,
            client_id: client_id.to_owned(),
            data,
            timestamp: now_ms(),
            channel: channel.to_owned(),
        };
        let before = match action {
            PresenceAction::Leave => set.remove(client_id),
            _ => set.insert(client_id.to_owned(), message.clone()),
        };
        let appended = self
            .append(&stream_of(channel), Append::Presence(message.clone()), None)
            .await;
        let set = members.entry(channel.to_owned()).or_default();
        if let Err(e) = appended {
            // Nobody was told: the set stays as it was.
            match before {
                Some(before) => set.insert(client_id.to_owned(), before),
                None => set.remove(client_id),
            };
            return Err(e);
        }
        if set.is_empty() {
            members.remove(channel);
        }
        Ok(Some(message))
    }

    /// The members of `channel` now, each as a `present` message with the data it last
    /// entered or updated with, by client id.
    pub async fn members(&self, channel: &str) -> Vec<PresenceMessage> {
        let members = self.members.lock().await;
        let set = members.get(channel).into_iter().flat_map(BTreeMap::values);
        set.map(|entered| PresenceMessage {
            action: PresenceAction::Present,
            ..entered.clone()
        })
        .collect()
    }
}
