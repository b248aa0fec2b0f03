//! A stream's subscriber on the channels' presence for as long as its stream is open: the
//! channels it enters as it opens, and those added to or removed from its connection later.
//!
//! One task per stream carries out its changes in the order they are asked (an enter asked
//! before a leave is never carried out after it), and leaves every channel it entered when
//! the stream closes, whatever was added meanwhile, trying again while the bus fails.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::Hub;
use super::presence::Member;
use crate::wire::envelope::PresenceAction;

/// What a stream enters for as long as it is open.
pub struct Entering {
    pub client_id: String,
    /// The data it enters with.
    pub data: Value,
    pub channels: Vec<String>,
    /// Whether a channel added to the connection later is entered too.
    pub admits: Arc<dyn Fn(&str) -> bool + Send + Sync>,
}

/// A stream's subscriber, entered on its channels while this lives: dropped, it leaves
/// them all.
pub struct Entered(Presence);

/// A way to change an entered subscriber's channels while its stream is open.
#[derive(Clone)]
pub struct Presence {
    changes: mpsc::UnboundedSender<Change>,
    admits: Arc<dyn Fn(&str) -> bool + Send + Sync>,
}

impl std::fmt::Debug for Presence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Presence")
    }
}

enum Change {
    Enter(String, oneshot::Sender<Result<(), String>>),
    Leave(String, oneshot::Sender<Result<(), String>>),
    /// The stream closed.
    Close,
}

impl Entered {
    /// Enters a subscriber on its channels, on a connection of its own.
    pub async fn enter(hub: &Arc<Hub>, entering: Entering) -> Result<Entered, String> {
        let member = Member {
            client_id: entering.client_id,
            connection_id: Some(format!("{:016x}", rand::random::<u64>())),
        };
        let (changes, asked) = mpsc::unbounded_channel();
        tokio::spawn(carry_out(Arc::clone(hub), member, entering.data, asked));
        let entered = Entered(Presence {
            changes,
            admits: entering.admits,
        });
        for channel in entering.channels {
            entered.0.enter(channel).await?;
        }
        Ok(entered)
    }

    /// What changes this subscriber's channels later.
    pub fn presence(&self) -> Presence {
        self.0.clone()
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        let _ = self.0.changes.send(Change::Close);
    }
}

impl Presence {
    /// Whether a channel added to the stream's connection is entered.
    pub fn admits(&self, channel: &str) -> bool {
        (self.admits)(channel)
    }

    /// Enters `channel`, once the changes asked before are made.
    pub async fn enter(&self, channel: String) -> Result<(), String> {
        self.ask(|done| Change::Enter(channel, done)).await
    }

    /// Leaves `channel` if it was entered, once the changes asked before are made.
    pub async fn leave(&self, channel: String) -> Result<(), String> {
        self.ask(|done| Change::Leave(channel, done)).await
    }

    async fn ask(
        &self,
        change: impl FnOnce(oneshot::Sender<Result<(), String>>) -> Change,
    ) -> Result<(), String> {
        let (done, answer) = oneshot::channel();
        // A stream closed has left everything: nothing more to change.
        if self.changes.send(change(done)).is_err() {
            return Ok(());
        }
        answer.await.unwrap_or(Ok(()))
    }
}

/// Carries out a subscriber's changes in order; leaves every channel it entered when its
/// stream closes.
async fn carry_out(
    hub: Arc<Hub>,
    member: Member,
    data: Value,
    mut asked: mpsc::UnboundedReceiver<Change>,
) {
    let mut entered: Vec<String> = Vec::new();
    while let Some(change) = asked.recv().await {
        let (channel, action, done) = match change {
            Change::Enter(channel, done) => {
                // Counted before it is entered: a stream that closes meanwhile still
                // leaves it (a leave of a member not there changes nothing).
                if !entered.contains(&channel) {
                    entered.push(channel.clone());
                }
                (channel, PresenceAction::Enter, done)
            }
            Change::Leave(channel, done) => {
                if !entered.contains(&channel) {
                    let _ = done.send(Ok(()));
                    continue;
                }
                (channel, PresenceAction::Leave, done)
            }
            Change::Close => break,
        };
        let data = match action {
            PresenceAction::Enter => data.clone(),
            _ => Value::Null,
        };
        let changed = hub.presence(&channel, &member, action, data).await;
        // Left: no longer listed. A leave that failed stays listed: the close leaves it.
        if action == PresenceAction::Leave && changed.is_ok() {
            entered.retain(|c| *c != channel);
        }
        let _ = done.send(changed.map(drop));
    }
    for channel in entered {
        leave(&hub, &member, &channel).await;
    }
}

/// Leaves `channel`, trying again while the bus fails (the member would stay otherwise).
async fn leave(hub: &Arc<Hub>, member: &Member, channel: &str) {
    let mut wait = Duration::from_millis(100);
    loop {
        let leave = hub.presence(channel, member, PresenceAction::Leave, Value::Null);
        match leave.await {
            Ok(_) => return,
            Err(e) => tracing::debug!("a stream's subscriber did not leave {channel:?} yet: {e}"),
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(5));
    }
}
