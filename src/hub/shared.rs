//! Pub/sub channels whose history a bus shared by several nodes holds (`[bus] backend =
//! "redis"`). The bus gives positions and keeps history; each node's channel is a mirror of
//! it, made when a client of the node first needs the channel (`Hub::prepare`), fed by the
//! bus's announcements in order, and read back from the bus when an announcement was
//! missed: once per node, whatever the number of its subscribers. A channel nobody on the
//! node watches is dropped after the history TTL and no longer heard.
//!
//! Channels of polls and relays stay the node's own for now (their names start with `[`).

use std::sync::Arc;

use tokio::sync::mpsc;

use super::channel::{Channel, ChannelKind};
use super::event::Body;
use super::{Appended, Hub, NewMessage, cursor, stored};
use crate::bus::redis::{Appending, Notice, Range, RedisBus, Span, Trim};
use crate::clock::now_ms;

/// Events read from the bus at once when catching up.
const READ_BATCH: usize = 1000;

impl Hub {
    /// Makes ready the channels `names` that a shared bus holds (a no-op otherwise): each
    /// one's mirror is made and heard before an outlet subscribes to it or its history is
    /// read. `Err` when the bus cannot be reached.
    pub async fn prepare(&self, names: &[&str]) -> Result<(), String> {
        let Some(bus) = &self.shared else {
            return Ok(());
        };
        for name in names.iter().filter(|n| is_shared(n)) {
            self.attach(bus, name).await?;
        }
        Ok(())
    }

    /// `Err` when the shared bus cannot be reached (never, without one).
    pub async fn ready(&self) -> Result<(), String> {
        match &self.shared {
            Some(bus) => bus.ready().await,
            None => Ok(()),
        }
    }

    /// The mirror of `name`, made if needed: heard first, then read, so nothing announced
    /// in between is lost.
    async fn attach(&self, bus: &Arc<RedisBus>, name: &str) -> Result<Arc<Channel>, String> {
        if let Some(channel) = self.get(name) {
            channel.touch();
            return Ok(channel);
        }
        let _one_at_a_time = self.attaching.lock().await;
        if let Some(channel) = self.get(name) {
            channel.touch();
            return Ok(channel);
        }
        bus.listen(name).await?;
        let newest = Range::Newest(self.limits.size);
        let span = bus.read(name, cursor::fresh_epoch(), newest).await?;
        let base = match span.events.first() {
            Some(&(first, _)) => first - 1,
            None => span.head,
        };
        let channel = Arc::new(Channel::new(
            Arc::from(name),
            ChannelKind::Log,
            cursor::position(span.epoch, base),
        ));
        self.mirror(&channel, span, true);
        {
            let mut channels = self.channels.write().unwrap();
            channels.insert(Arc::from(name), Arc::clone(&channel));
            self.metrics.channels.set(channels.len() as f64);
        }
        // What was announced between hearing and making the mirror went unheard.
        self.catch_up(bus, &channel).await?;
        Ok(channel)
    }

    /// Publishes through the shared bus: answered once Redis holds the messages. The
    /// node's mirror, if it has one, gets them at once (its own clients read what they
    /// wrote), the other nodes' when they hear the announcement.
    pub(super) async fn publish_shared(
        self: &Arc<Self>,
        bus: &RedisBus,
        name: &str,
        mut batch: Vec<NewMessage>,
    ) -> Result<Appended, String> {
        let timestamp = now_ms();
        let events: Vec<Appending> = batch
            .iter_mut()
            .map(|message| {
                let given = message.id.is_some();
                let id = message.id.get_or_insert_with(|| self.next_message_id());
                Appending {
                    id: id.clone(),
                    given,
                    json: stored::json(message, timestamp),
                }
            })
            .collect();
        let trim = Trim {
            size: self.limits.size,
            ttl_ms: self.limits.ttl_ms,
        };
        let answer = bus
            .append(name, cursor::fresh_epoch(), &events, &trim)
            .await?;
        let ids = events.iter().map(|e| e.id.clone()).collect();
        let new: Vec<(u64, Vec<u8>)> = answer
            .offsets
            .iter()
            .zip(events)
            .filter(|(offset, _)| **offset > 0)
            .map(|(&offset, event)| (offset as u64, event.json))
            .collect();
        let count = new.len();
        let head = new.last().map_or(0, |&(offset, _)| offset);
        self.metrics.published.increment(count as u64);
        if let Some(channel) = self.get(name).filter(|_| count > 0) {
            let span = Span {
                epoch: answer.epoch,
                head,
                events: new,
            };
            let last = cursor::position(span.epoch, span.head);
            if !self.mirror(&channel, span, false) {
                self.catch_up_later(&channel, last);
            }
        }
        Ok(Appended { ids, count })
    }

    /// Applies `span` to the mirror `channel` (see `Channel::mirror`). False when it left
    /// a hole to read.
    fn mirror(&self, channel: &Channel, span: Span, jump: bool) -> bool {
        let name = channel.name();
        let events = span
            .events
            .into_iter()
            .filter_map(|(offset, json)| match stored::body(name, &json) {
                Ok((body, timestamp)) => {
                    Some((cursor::position(span.epoch, offset), timestamp, body))
                }
                Err(e) => {
                    tracing::warn!(
                        "an event of {name:?} on the bus is not readable ({e}); skipped"
                    );
                    None
                }
            })
            .collect::<Vec<(u64, u64, Body)>>();
        channel.mirror(events, jump, &self.limits, &self.order)
    }

    /// Applies the bus's announcements, in order, until the bus is gone.
    pub async fn hear(self: Arc<Self>, mut notices: mpsc::Receiver<Notice>) {
        while let Some(notice) = notices.recv().await {
            match notice {
                Notice::Appended {
                    channel,
                    epoch,
                    events,
                } => {
                    let Some(mirror) = self.get(&channel) else {
                        continue;
                    };
                    let Some(&(last, _)) = events.last() else {
                        continue;
                    };
                    let span = Span {
                        epoch,
                        head: last,
                        events,
                    };
                    if !self.mirror(&mirror, span, false) {
                        self.catch_up_later(&mirror, cursor::position(epoch, last));
                    }
                }
                Notice::Reconnected => {
                    let mirrors: Vec<Arc<Channel>> = {
                        let channels = self.channels.read().unwrap();
                        let shared = channels.values().filter(|c| is_shared(c.name()));
                        shared.cloned().collect()
                    };
                    for mirror in mirrors {
                        self.catch_up_later(&mirror, mirror.head());
                    }
                }
            }
        }
    }

    /// Catches `channel` up to the announced `position` in the background, unless that
    /// already runs (it then goes on to `position`).
    fn catch_up_later(self: &Arc<Self>, channel: &Arc<Channel>, position: u64) {
        let Some(bus) = self.shared.clone() else {
            return;
        };
        if !channel.announced(position) {
            return;
        }
        let (hub, channel) = (Arc::clone(self), Arc::clone(channel));
        tokio::spawn(async move {
            loop {
                if let Err(e) = hub.catch_up(&bus, &channel).await {
                    // Tried again when the bus is back (`Notice::Reconnected`).
                    tracing::debug!("{:?} is not caught up: {e}", channel.name());
                }
                if !channel.caught_up() {
                    return;
                }
            }
        });
    }

    /// Reads `channel`'s history after its head until it has what the bus had when read.
    async fn catch_up(&self, bus: &RedisBus, channel: &Channel) -> Result<(), String> {
        loop {
            let (_, offset) = cursor::split(channel.head());
            // A fresh epoch, never the mirror's: were the channel lost on the bus, its
            // offsets would start again at 1 and name events clients saw under the old one.
            let after = Range::After(offset, READ_BATCH);
            let span = bus
                .read(channel.name(), cursor::fresh_epoch(), after)
                .await?;
            let bus_head = cursor::position(span.epoch, span.head);
            let read_nothing = span.events.is_empty();
            self.mirror(channel, span, true);
            let head = channel.head();
            let caught = cursor::split(head).0 == cursor::split(bus_head).0 && head >= bus_head;
            if caught {
                return Ok(());
            }
            if read_nothing {
                // The bus lost what lay between (its history expired or was trimmed, or
                // it lost the channel): subscribers are told of the gap.
                channel.reset(bus_head);
                return Ok(());
            }
        }
    }
}

/// Whether a channel named `name` is held by a shared bus: pub/sub channels are; polls' and
/// relays' are the node's own.
pub(super) fn is_shared(name: &str) -> bool {
    !name.starts_with('[')
}
