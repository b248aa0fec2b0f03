//! Presence: who is on a channel now, with their data. One set of members per channel; each
//! change is also an event of the channel's companion `[presence]{name}`, which the streams
//! that ask for presence read like any channel (fan-out, history, resume). On one node,
//! presence is never kept beyond the process (see `Hub::bus_of`): a member is there while
//! this process knows it. On a shared bus, a pub/sub channel's set and its presence stream
//! are shared by every node (see `shared_presence`).
//!
//! A member is a client id on a connection, as in Ably: one that entered over REST has none;
//! a stream that entered its subscriber (see `Entered`) leaves when it closes, whatever the
//! client's other streams do.
//!
//! The gateway's own channels (named with `[`, which users cannot name) have member sets but
//! no presence stream: nobody could ask for one. Their changes go to the surface that
//! registered for them instead (`Hub::announce_presence`): the Mercure hub keeps its
//! subscribers so and publishes their changes as updates of its own.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::Value;

use super::{Append, Hub, shared_presence};
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

/// Who is present: a client id, on a connection or none.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Member {
    pub client_id: String,
    pub connection_id: Option<String>,
}

/// Every channel's members, each with the message that entered or last updated it.
pub(super) type Members = tokio::sync::Mutex<HashMap<String, BTreeMap<Member, PresenceMessage>>>;

impl Hub {
    /// Carries out `action` (enter, update or leave) for `member` on `channel`: its member
    /// set changes, and the change is appended to the channel's presence stream, in the
    /// same order. `None` when it changed nothing (leaving without being there). Entering
    /// again is an update; updating without having entered enters; leaving without data
    /// leaves with the member's last.
    pub async fn presence(
        self: &Arc<Self>,
        channel: &str,
        member: &Member,
        action: PresenceAction,
        data: Value,
    ) -> Result<Option<PresenceMessage>, String> {
        // Held until the change is in the stream: changes reach members and streams in one
        // order.
        let mut members = self.members.lock().await;
        let mut message = PresenceMessage {
            id: self.next_message_id(),
            action,
            client_id: member.client_id.clone(),
            connection_id: member.connection_id.clone(),
            data,
            timestamp: now_ms(),
            channel: channel.to_owned(),
        };
        // The member as it was: on a shared bus, in the set every node shares (it may have
        // entered through another node), which changes at once; else in this node's.
        let shared = self.presence_bus(channel);
        let leaving = action == PresenceAction::Leave;
        // This node's set: every member on a bus of its own; on a shared one, those on its
        // connections (they go when it does).
        let kept_here = shared.is_none() || member.connection_id.is_some();
        if let Some(bus) = shared
            && kept_here
            && !leaving
            && !members.contains_key(channel)
        {
            // Listed before it enters: a channel listed with none of this node's members
            // costs nothing, one missing would keep them there when this node dies.
            bus.presence_here(channel, true).await?;
        }
        let here = members
            .get(channel)
            .and_then(|set| set.get(member))
            .cloned();
        let before = match shared {
            Some(bus) => {
                let entry = (!leaving).then_some(&message);
                let shared_before = shared_presence::change(bus, channel, member, entry).await?;
                // A member this node holds that leaves is told to leave even when the
                // shared set no longer has it: an earlier attempt whose answer was lost may
                // have removed it, or another node while this one was not heard (a leave
                // told twice changes nothing; one missed would leave it present for good).
                shared_before.or(here.filter(|_| leaving))
            }
            None => here,
        };
        message.action = match (action, &before) {
            (PresenceAction::Leave, None) => return Ok(None),
            (PresenceAction::Enter, Some(_)) => PresenceAction::Update,
            (PresenceAction::Update, None) => PresenceAction::Enter,
            (action, _) => action,
        };
        // A leave without data carries the member's last data, as Ably's does.
        if let (PresenceAction::Leave, Some(last)) = (action, &before)
            && message.data.is_null()
        {
            message.data = last.data.clone();
        }
        let set = members.entry(channel.to_owned()).or_default();
        let was_empty = set.is_empty();
        if kept_here {
            match message.action {
                PresenceAction::Leave => set.remove(member),
                _ => set.insert(member.clone(), message.clone()),
            };
        }
        if let Err(e) = self.tell(&message).await {
            // Nobody was told: the sets stay as they were.
            match &before {
                Some(before) if kept_here => set.insert(member.clone(), before.clone()),
                _ => set.remove(member),
            };
            if let Some(bus) = shared {
                shared_presence::change(bus, channel, member, before.as_ref()).await?;
            }
            if set.is_empty() {
                members.remove(channel);
            }
            return Err(e);
        }
        let is_empty = set.is_empty();
        if is_empty {
            members.remove(channel);
        }
        if let Some(bus) = shared.filter(|_| is_empty && !was_empty)
            && let Err(e) = bus.presence_here(channel, false).await
        {
            // Listed with none of this node's members: harmless.
            tracing::debug!("presence: {channel:?} stays in this node's list: {e}");
        }
        Ok(Some(message))
    }

    /// Tells a change of a member set to who follows it: the channel's presence stream, or
    /// for the gateway's own channels the surface registered for them.
    pub(super) async fn tell(self: &Arc<Self>, change: &PresenceMessage) -> Result<(), String> {
        let channel = &change.channel;
        if !channel.starts_with('[') {
            let append = Append::Presence(change.clone());
            return self
                .append(&stream_of(channel), append, None)
                .await
                .map(drop);
        }
        let announcer = {
            let announcers = self.announcers.0.read().unwrap();
            let mut registered = announcers.iter();
            let found = registered.find(|(prefix, _)| channel.starts_with(prefix.as_str()));
            found.map(|(_, announce)| Arc::clone(announce))
        };
        match announcer {
            Some(announce) => announce(change.clone()).await,
            None => Ok(()),
        }
    }

    /// Changes of the member sets of the channels named `prefix…` (the gateway's own) are
    /// told to `announce` from now on.
    pub fn announce_presence(&self, prefix: &str, announce: Announce) {
        let mut announcers = self.announcers.0.write().unwrap();
        announcers.push((prefix.to_owned(), announce));
    }

    /// The shared bus, when it holds `channel`'s member set: a pub/sub channel's, or a
    /// Mercure selector's.
    pub(super) fn presence_bus(&self, channel: &str) -> Option<&Arc<crate::bus::redis::RedisBus>> {
        let held = !channel.starts_with('[') || super::is_mercure_topic(channel);
        self.shared.as_ref().filter(|_| held)
    }

    /// The members of `channel` now, each as a `present` message with the data it last
    /// entered or updated with, by client id.
    pub async fn members(&self, channel: &str) -> Result<Vec<PresenceMessage>, String> {
        let present = |entered: &PresenceMessage| PresenceMessage {
            action: PresenceAction::Present,
            ..entered.clone()
        };
        if let Some(bus) = self.presence_bus(channel) {
            let mut members = shared_presence::members(bus, channel).await?;
            members.sort_by(|a, b| {
                (&a.client_id, &a.connection_id).cmp(&(&b.client_id, &b.connection_id))
            });
            return Ok(members.iter().map(present).collect());
        }
        let members = self.members.lock().await;
        let set = members.get(channel).into_iter().flat_map(BTreeMap::values);
        Ok(set.map(present).collect())
    }

    /// The channels named `prefix…` that have members bound to a node now (on a shared bus,
    /// to any node).
    pub async fn present_channels(&self, prefix: &str) -> Result<Vec<String>, String> {
        let mut channels: Vec<String> = match self.presence_bus(prefix) {
            Some(bus) => bus.present_channels().await?,
            None => self.members.lock().await.keys().cloned().collect(),
        };
        channels.retain(|c| c.starts_with(prefix));
        channels.sort_unstable();
        channels.dedup();
        Ok(channels)
    }
}

/// Who is told of the changes of the member sets of the gateway's own channels.
pub type Announce =
    Arc<dyn Fn(PresenceMessage) -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// The announcers registered, by the prefix of the channels they are told of.
#[derive(Default)]
pub(super) struct Announcers(std::sync::RwLock<Vec<(String, Announce)>>);

impl std::fmt::Debug for Announcers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let announcers = self.0.read().unwrap();
        f.debug_list()
            .entries(announcers.iter().map(|(prefix, _)| prefix))
            .finish()
    }
}
