//! Presence on a shared bus: a pub/sub channel's members (and a Mercure selector's
//! subscribers) are those of every node, kept by the bus (see `bus::redis` `presence`), and
//! a pub/sub channel's presence stream is a shared channel like the channel itself, so a
//! stream on any node hears every change.
//!
//! A member on a connection is bound to the node holding the connection: when that node is
//! not heard for `[bus] node_timeout_ms` (it died, or lost Redis), the first node to notice
//! removes its members and announces each one's leave. A member entered over REST is bound
//! to no node and stays until it leaves. A node taken for dead that is heard again enters
//! its members again.

use std::sync::Arc;
use std::time::Duration;

use super::Hub;
use super::presence::Member;
use crate::bus::redis::RedisBus;
use crate::clock::now_ms;
use crate::wire::envelope::{PresenceAction, PresenceMessage};

/// Sets `member`'s entry on its channel to `entered` (`None`: it leaves); what it was.
pub(super) async fn change(
    bus: &RedisBus,
    channel: &str,
    member: &Member,
    entered: Option<&PresenceMessage>,
) -> Result<Option<PresenceMessage>, String> {
    let entry = entered.map(|message| entry(bus, member, message));
    let before = bus
        .presence_change(channel, &field(member), entry.as_deref())
        .await?;
    Ok(before.as_deref().and_then(read_entry))
}

/// Every node's members of `channel`, as they entered or last updated.
pub(super) async fn members(bus: &RedisBus, channel: &str) -> Result<Vec<PresenceMessage>, String> {
    let entries = bus.presence_members(channel).await?;
    Ok(entries.iter().filter_map(|e| read_entry(e)).collect())
}

/// The hash field of `member`.
fn field(member: &Member) -> String {
    let connection = member.connection_id.as_deref().unwrap_or_default();
    format!("{}\n{connection}", member.client_id)
}

/// The entry of `member`: the node it is bound to (none over REST), then its message.
fn entry(bus: &RedisBus, member: &Member, message: &PresenceMessage) -> String {
    let node = match member.connection_id {
        Some(_) => bus.node(),
        None => "",
    };
    let json = serde_json::to_string(message).expect("a PresenceMessage always serializes");
    format!("{node}\n{json}")
}

fn read_entry(entry: &str) -> Option<PresenceMessage> {
    let (_, json) = entry.split_once('\n')?;
    match serde_json::from_str(json) {
        Ok(message) => Some(message),
        Err(e) => {
            tracing::warn!("a presence entry on the bus is not readable ({e}); skipped");
            None
        }
    }
}

impl Hub {
    /// Beats for this node on the shared bus every third of `timeout_ms`, removes the
    /// members of nodes not heard for that long, and enters this node's members again
    /// when others had taken it for dead. Runs for the life of the process.
    pub async fn keep_presence(self: Arc<Self>, timeout_ms: u64) {
        let Some(bus) = self.shared.clone() else {
            return;
        };
        let mut beats = tokio::time::interval(Duration::from_millis(timeout_ms / 3));
        beats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            beats.tick().await;
            let beat = match bus.beat(timeout_ms).await {
                Ok(beat) => beat,
                Err(e) => {
                    tracing::debug!("presence: this node's beat did not reach the bus: {e}");
                    continue;
                }
            };
            if beat.absent {
                self.enter_again(&bus).await;
            }
            for node in beat.dead.iter().filter(|n| *n != bus.node()) {
                if let Err(e) = self.remove_node(&bus, node).await {
                    tracing::debug!("presence: the members of node {node} not removed yet: {e}");
                }
            }
        }
    }

    /// Removes the members of dead `node` from every channel it had members on, each
    /// announced as leaving, then forgets the node.
    async fn remove_node(self: &Arc<Self>, bus: &RedisBus, node: &str) -> Result<(), String> {
        for channel in bus.channels_of(node).await? {
            for gone in bus.remove_members_of(node, &channel).await? {
                let Some(last) = read_entry(&gone) else {
                    continue;
                };
                let leave = PresenceMessage {
                    id: self.next_message_id(),
                    action: PresenceAction::Leave,
                    timestamp: now_ms(),
                    ..last
                };
                self.tell(&leave).await?;
            }
        }
        tracing::info!("presence: node {node} was not heard for the timeout; its members left");
        bus.forget_node(node).await
    }

    /// Puts this node's members back in the shared sets (another node removed them while
    /// this one was not heard), each announced as entering again.
    async fn enter_again(self: &Arc<Self>, bus: &RedisBus) {
        let members = self.members.lock().await;
        for (channel, set) in members
            .iter()
            .filter(|(c, _)| self.presence_bus(c).is_some())
        {
            if let Err(e) = bus.presence_here(channel, true).await {
                tracing::debug!("presence: {channel:?} not entered again yet: {e}");
                continue;
            }
            for (member, entered) in set {
                match change(bus, channel, member, Some(entered)).await {
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        let enter = PresenceMessage {
                            id: self.next_message_id(),
                            action: PresenceAction::Enter,
                            timestamp: now_ms(),
                            ..entered.clone()
                        };
                        if let Err(e) = self.tell(&enter).await {
                            tracing::debug!("presence: entering {channel:?} again not told: {e}");
                        }
                    }
                    Err(e) => tracing::debug!("presence: {channel:?} not entered again yet: {e}"),
                }
            }
        }
    }
}
