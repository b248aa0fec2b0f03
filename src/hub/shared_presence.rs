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
        // Entering again and removing take a while with many members: they run beside the
        // beats (a node busy with them must still be heard), one of each at a time.
        let mut entering: Option<tokio::task::JoinHandle<()>> = None;
        let mut removing: Option<tokio::task::JoinHandle<()>> = None;
        let idle = |task: &Option<tokio::task::JoinHandle<()>>| {
            task.as_ref().is_none_or(|t| t.is_finished())
        };
        loop {
            beats.tick().await;
            let beat = match bus.beat(timeout_ms).await {
                Ok(beat) => beat,
                Err(e) => {
                    tracing::debug!("presence: this node's beat did not reach the bus: {e}");
                    continue;
                }
            };
            // Absent from the living (Redis lost them), or members removed by another node
            // that took this one for dead while it was away.
            if idle(&entering) {
                let removed = bus.take_removed().await.unwrap_or_else(|e| {
                    tracing::debug!("presence: this node's removal mark not read: {e}");
                    false
                });
                if beat.absent || removed {
                    let (hub, bus) = (Arc::clone(&self), Arc::clone(&bus));
                    entering = Some(tokio::spawn(async move { hub.enter_again(&bus).await }));
                }
            }
            let dead: Vec<String> = beat.dead.into_iter().filter(|n| n != bus.node()).collect();
            if !dead.is_empty() && idle(&removing) {
                let (hub, bus) = (Arc::clone(&self), Arc::clone(&bus));
                removing = Some(tokio::spawn(async move {
                    for node in dead {
                        if let Err(e) = hub.remove_node(&bus, &node, timeout_ms).await {
                            tracing::debug!("presence: node {node}'s members not removed yet: {e}");
                        }
                    }
                }));
            }
        }
    }

    /// Removes the members of dead `node` from every channel it had members on, each
    /// announced as leaving, then forgets the node.
    async fn remove_node(
        self: &Arc<Self>,
        bus: &RedisBus,
        node: &str,
        timeout_ms: u64,
    ) -> Result<(), String> {
        for channel in bus.channels_of(node).await? {
            let removed = bus.remove_members_of(node, &channel).await?;
            if !removed.is_empty() {
                // After the removal: a node that lives enters them again.
                bus.mark_removed(node).await?;
            }
            for gone in removed {
                let Some(last) = read_entry(&gone) else {
                    continue;
                };
                let leave = PresenceMessage {
                    id: self.next_message_id(),
                    action: PresenceAction::Leave,
                    timestamp: now_ms(),
                    ..last
                };
                // Removed already: its leave is told, or tried a few times and given up
                // on (the sets are right; only a stream's watchers miss it).
                self.tell_surely(&leave).await;
            }
        }
        if bus.forget_node(node, timeout_ms).await? {
            tracing::info!("presence: node {node} was not heard for the timeout; its members left");
        }
        Ok(())
    }

    /// Tells `change`, trying again a few times while the bus fails.
    async fn tell_surely(self: &Arc<Self>, change: &PresenceMessage) {
        for attempt in 1..=5 {
            match self.tell(change).await {
                Ok(()) => return,
                Err(e) if attempt == 5 => {
                    let channel = &change.channel;
                    tracing::warn!("presence: a leave of {channel:?} was not told: {e}");
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200 * attempt)).await,
            }
        }
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
                        self.tell_surely(&enter).await;
                    }
                    Err(e) => tracing::debug!("presence: {channel:?} not entered again yet: {e}"),
                }
            }
        }
    }
}
