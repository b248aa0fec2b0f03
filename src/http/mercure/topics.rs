//! The topic index: every node copies each update of `[mercure]`, in its order, into a
//! channel per topic of the update (`[mercure]\n{topic}`), so a subscriber of exact topics
//! reads only those channels and an update wakes only its topics' subscribers.
//!
//! `[mercure]` is the one order (on Redis, shared by the nodes); the copies are the node's
//! own, never kept (made again from `[mercure]`'s history when the node starts), and each
//! names the update it copies by its position in `[mercure]` (`source`): a resume finds its
//! place in every topic's channel by it, and a subscriber reached through two topics of an
//! update gets it once.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::{CHANNEL, as_message, topic_channel, topics};
use crate::hub::{Append, ChannelKind, Event, Hub, Wake};

/// Updates copied at a time.
const BATCH: usize = 256;

/// The field of a copy that names its update's position in `[mercure]`.
const SOURCE: &str = "source";

/// Copies `[mercure]`'s updates into their topics' channels, from the oldest it holds, for
/// the life of the process.
pub async fn copy(hub: Arc<Hub>) {
    // On a shared bus, heard before it is read; the bus may be away at first.
    while let Err(e) = hub.prepare(&[CHANNEL]).await {
        tracing::debug!("mercure: the updates' channel is not ready yet: {e}");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let wake = Arc::new(Wake::default());
    // Held for good: the channel is never dropped while the index reads it.
    let subscription = hub.subscribe(CHANNEL, ChannelKind::Log, Arc::clone(&wake));
    let mut after = 0;
    loop {
        let read = subscription.channel().read_after(after, BATCH);
        let Some(last) = read.events.last() else {
            wake.woken().await;
            continue;
        };
        after = last.seq;
        for event in &read.events {
            copy_one(&hub, event).await;
        }
    }
}

/// Copies one update into the channel of each of its topics.
async fn copy_one(hub: &Arc<Hub>, event: &Event) {
    let Some(message) = event.message() else {
        return;
    };
    let mut data = message.data.clone();
    data[SOURCE] = Value::from(event.seq);
    let mut topics: Vec<&str> = topics(&message.data).collect();
    topics.sort_unstable();
    topics.dedup();
    let copies = topics.iter().map(|topic| {
        let channel = topic_channel(topic);
        let copy = as_message(data.clone());
        async move {
            let copied = hub.append(&channel, Append::Messages(vec![copy]), None);
            if let Err(e) = copied.await {
                tracing::warn!("mercure: an update was not copied to {channel:?}: {e}");
            }
        }
    });
    futures_util::future::join_all(copies).await;
}

/// The position in `[mercure]` of the update a copy is of.
pub fn source(event: &Event) -> Option<u64> {
    event.message()?.data[SOURCE].as_u64()
}
