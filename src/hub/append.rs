//! The one way into a channel: a publisher's messages, a polled document's changes and
//! relayed upstream events are placed by the bus (a position each), kept by it, and only then
//! enter history and wake the channel's subscribers (see `Bus`).

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::oneshot;

use crate::bus::{self, Appending, Fence};
use crate::clock::now_ms;
use crate::wire::document::Document;
use crate::wire::envelope::{Message, PresenceMessage};

use super::channel::{Channel, ChannelKind, Placed};
use super::event::{Body, Relayed, StateData, StateKind};
use super::{Hub, Lease, stored};

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
    /// Events relayed from an upstream SSE server, in order.
    Relayed(Vec<Relayed>),
    /// A change of a channel's members, to its presence stream (see `presence`).
    Presence(PresenceMessage),
}

impl Append {
    /// The kind of channel this goes to (and makes, on first use).
    pub fn channel_kind(&self) -> ChannelKind {
        match self {
            Append::State(_) => ChannelKind::State,
            Append::Messages(_) | Append::Relayed(_) | Append::Presence(_) => ChannelKind::Log,
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

/// An append waiting for its channel's turn, and where to answer it.
pub(super) struct Waiting {
    append: Append,
    fence: Option<Fence>,
    done: oneshot::Sender<Result<Appended, String>>,
}

impl std::fmt::Debug for Waiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Waiting({:?})", self.append.channel_kind())
    }
}

impl Hub {
    /// Appends to the channel `name`, making it if needed: the only way into a channel.
    /// `Err` when the bus failed: nothing was appended (a source keeps what it had, e.g.
    /// the document to diff its next one against).
    ///
    /// Appends to a channel wait for its turn, and each turn places everything waiting then
    /// in one call to the bus: concurrent publishers share a flush to disk or a round trip
    /// to Redis. A source passes its `lease`: on a shared bus only its holder may append.
    pub async fn append(
        self: &Arc<Self>,
        name: &str,
        append: Append,
        lease: Option<&Lease>,
    ) -> Result<Appended, String> {
        let kind = append.channel_kind();
        let (done, answer) = oneshot::channel();
        let mut waiting = Some(Waiting {
            append,
            fence: lease.map(Lease::fence),
            done,
        });
        let channel = match self.shared_bus(name) {
            // A state channel's source diffs against the mirror's document: it is made.
            Some(bus) if kind == ChannelKind::State => Some(self.attach(bus, name).await?),
            // Published to without a mirror here: the bus alone holds it. Queued under the
            // map's read lock, as below.
            Some(_) => self.channels.read().unwrap().get(name).map(|channel| {
                channel.wait(waiting.take());
                Arc::clone(channel)
            }),
            // Queued under the map's read lock: the sweeper never drops a channel with an
            // append waiting (see `Channel::is_disposable`).
            None => Some(self.with_channel(name, kind, |channel| {
                channel.wait(waiting.take());
                Arc::clone(channel)
            })),
        };
        match channel {
            Some(channel) => {
                channel.wait(waiting.take());
                let hub = Arc::clone(self);
                // A task of its own: an appender that goes away mid-commit must not leave
                // events kept that memory never got (the next turn would reuse positions).
                tokio::spawn(async move {
                    let (_turn, group) = channel.turn().await;
                    hub.commit(channel.name(), Some(&channel), group).await;
                });
            }
            None => self.commit(name, None, waiting.into_iter().collect()).await,
        }
        answer.await.map_err(|_| {
            "the bus did not answer; the messages may or may not be kept: retry with the same \
             message ids (a retry is never doubled)"
                .to_owned()
        })?
    }

    /// Commits `group` (appends to the channel `name`, in order; this node's `copy` of the
    /// channel, if it has one, has its turn held), answering each. Publishers' messages go
    /// together; a source's appends one by one.
    async fn commit(
        self: &Arc<Self>,
        name: &str,
        copy: Option<&Arc<Channel>>,
        group: Vec<Waiting>,
    ) {
        let mut group = group.into_iter().peekable();
        while let Some(first) = group.next() {
            let mut run = vec![first];
            while let Some(next) = group.next_if(|next| {
                matches!(
                    (&run[0].append, &next.append),
                    (Append::Messages(_), Append::Messages(_))
                )
            }) {
                run.push(next);
            }
            self.place(name, copy, run).await;
        }
    }

    /// Places `run` through the bus, then appends what is new to `copy`, answering each.
    async fn place(
        self: &Arc<Self>,
        name: &str,
        copy: Option<&Arc<Channel>>,
        mut run: Vec<Waiting>,
    ) {
        let bus = self.bus_of(name);
        let keeps = bus.keeps();
        let timestamp = now_ms();
        let mut seen = HashSet::new();
        let mut request = bus::Append {
            channel: name.to_owned(),
            after: copy.map(|c| c.head()),
            fence: run[0].fence.clone(),
            limits: self.trim(),
            ..bus::Append::default()
        };
        // History's count passes over relay notices (failures never push events out): the
        // bus keeps as many more as may be in it.
        if let Append::Relayed(events) = &run[0].append {
            let notices = events.iter().filter(|r| r.notice).count();
            request.limits.size += notices + copy.map_or(0, |c| c.notices());
        }
        // Per append, the indices of its events that are new (the others are known by id).
        let mut fresh = Vec::with_capacity(run.len());
        for waiting in &mut run {
            let mut new = Vec::new();
            match &mut waiting.append {
                Append::Messages(batch) => {
                    for (i, message) in batch.iter_mut().enumerate() {
                        let given = message.id.is_some();
                        let id = message.id.get_or_insert_with(|| self.next_message_id());
                        let known = copy.is_some_and(|c| c.holds_id(id));
                        if known || !seen.insert(id.clone()) {
                            continue;
                        }
                        let id = id.clone();
                        let json = match keeps {
                            true => stored::json(message, timestamp),
                            false => Vec::new(),
                        };
                        request.events.push(Appending { id, given, json });
                        new.push(i);
                    }
                }
                Append::State(update) => {
                    request.state = true;
                    let (event, document) = match keeps {
                        true => stored::state_forms(update, timestamp),
                        false => Default::default(),
                    };
                    request.document = document;
                    request.events.push(Appending {
                        json: event,
                        ..Appending::default()
                    });
                    new.push(0);
                }
                // Kept by a shared bus only (see `Hub::bus_of`).
                Append::Presence(message) => {
                    let json = match keeps {
                        true => stored::presence_json(message),
                        false => Vec::new(),
                    };
                    request.events.push(Appending {
                        json,
                        ..Appending::default()
                    });
                    new.push(0);
                }
                Append::Relayed(events) => {
                    for (i, relayed) in events.iter().enumerate() {
                        let json = match keeps {
                            true => stored::relayed_json(relayed, timestamp),
                            false => Vec::new(),
                        };
                        request.events.push(Appending {
                            json,
                            ..Appending::default()
                        });
                        new.push(i);
                    }
                }
            }
            fresh.push(new);
        }
        // Nothing new (every message known by id): nothing to wait for.
        let placed = match request.events.is_empty() {
            true => Ok(Vec::new()),
            false => bus.append(request).await,
        };
        let mut placed = match placed {
            Ok(placed) => placed.into_iter(),
            Err(e) => {
                for waiting in run {
                    let _ = waiting.done.send(Err(e.clone()));
                }
                return;
            }
        };
        let mut events = Vec::new();
        let mut answers = Vec::with_capacity(run.len());
        for (waiting, new) in run.into_iter().zip(fresh) {
            let mut appended = Appended::default();
            let mut positions = new.into_iter().map(|i| (i, placed.next().flatten()));
            match waiting.append {
                Append::Messages(batch) => {
                    let ids = batch.iter().map(|m| m.id.clone().unwrap_or_default());
                    appended.ids = ids.collect();
                    let mut batch: Vec<Option<NewMessage>> = batch.into_iter().map(Some).collect();
                    for (i, position) in positions {
                        let (Some(position), Some(message)) = (position, batch[i].take()) else {
                            continue;
                        };
                        let body = Body::Message(Message {
                            id: message.id.unwrap_or_default(),
                            name: message.name,
                            timestamp,
                            encoding: message.encoding,
                            channel: name.to_owned(),
                            data: message.data,
                        });
                        events.push((position, timestamp, Placed::Log(body)));
                        appended.count += 1;
                    }
                }
                Append::State(update) => {
                    if let Some((_, Some(position))) = positions.next() {
                        events.push((position, timestamp, Placed::State(update)));
                        appended.count += 1;
                    }
                }
                Append::Presence(message) => {
                    if let Some((_, Some(position))) = positions.next() {
                        let body = Body::Presence(message);
                        events.push((position, timestamp, Placed::Log(body)));
                        appended.count += 1;
                    }
                }
                Append::Relayed(relayed) => {
                    let mut relayed: Vec<Option<Relayed>> = relayed.into_iter().map(Some).collect();
                    for (i, position) in positions {
                        if let (Some(position), Some(relayed)) = (position, relayed[i].take()) {
                            let body = Body::Relayed(relayed);
                            events.push((position, timestamp, Placed::Log(body)));
                            appended.count += 1;
                        }
                    }
                }
            }
            answers.push((waiting.done, appended));
        }
        let count: usize = answers.iter().map(|(_, a)| a.count).sum();
        // The node's figures are the gateway's own, not what its users published.
        if name != super::FIGURES {
            self.metrics.published(count as u64);
        }
        if let Some(copy) = copy {
            self.apply(copy, events);
        }
        for (done, appended) in answers {
            let _ = done.send(Ok(appended));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::Append;
    use crate::bus::Journals;
    use crate::bus::store::Store;
    use crate::hub::{HistoryLimits, Hub, Relayed};
    use crate::metrics::Metrics;

    fn relayed(id: Option<&str>, notice: bool) -> Relayed {
        Relayed {
            event: if notice { "error" } else { "tick" }.into(),
            data: "{}".into(),
            upstream_id: id.map(str::to_owned),
            stream: Arc::from("r"),
            notice,
        }
    }

    /// A hub on the store in `dir`, opened again until the last one let go of the file.
    async fn durable(dir: &std::path::Path) -> (Arc<Hub>, Arc<Store>) {
        let limits = HistoryLimits {
            size: 3,
            ttl_ms: 3_600_000,
            state_bytes: 1 << 20,
        };
        let mut tries = 0;
        let (store, restored) = loop {
            match Store::open(dir, || "e".into()) {
                Ok(opened) => break opened,
                Err(e) if tries < 100 => {
                    tries += 1;
                    assert!(e.contains("in use"), "{e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("{e}"),
            }
        };
        let store = Arc::new(store);
        let bus = Arc::clone(&store) as Arc<dyn crate::bus::Bus>;
        let hub = Hub::durable(limits, Metrics::install().0, bus, restored).unwrap();
        (Arc::new(hub), store)
    }

    #[tokio::test]
    async fn relay_notices_push_no_event_out_of_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let (hub, store) = durable(dir.path()).await;
        let events = ["u1", "u2", "u3"].map(|id| relayed(Some(id), false));
        let channel = "[relay]r";
        hub.append(channel, Append::Relayed(events.into()), None)
            .await
            .unwrap();
        for _ in 0..4 {
            let notice = vec![relayed(None, true)];
            hub.append(channel, Append::Relayed(notice), None)
                .await
                .unwrap();
        }
        let newest = |hub: &Hub| {
            let channel = hub.get(channel).unwrap();
            channel.find_newest(|e| e.relayed().and_then(|r| r.upstream_id.clone()))
        };
        assert_eq!(newest(&hub).as_deref(), Some("u3"));
        store.flush().await.unwrap();
        drop((hub, store));
        // What a restarted relay resumes its upstream after is still there.
        let (hub, _store) = durable(dir.path()).await;
        assert_eq!(newest(&hub).as_deref(), Some("u3"));
    }

    #[tokio::test]
    async fn presence_is_never_kept_beyond_the_process() {
        let dir = tempfile::tempdir().unwrap();
        let (hub, store) = durable(dir.path()).await;
        let action = crate::wire::envelope::PresenceAction::Enter;
        let alice = crate::hub::presence::Member {
            client_id: "alice".into(),
            connection_id: None,
        };
        let entered = hub.presence("room", &alice, action, serde_json::Value::Null);
        assert!(entered.await.unwrap().is_some());
        let stream = crate::hub::presence::stream_of("room");
        let head = hub.get(&stream).unwrap().bounds().1;
        assert_eq!(crate::bus::position::split(head).1, 1);
        store.flush().await.unwrap();
        drop((hub, store));
        // Who was there went with the process: a restart knows nobody, and no stream.
        let (hub, _store) = durable(dir.path()).await;
        assert!(hub.members("room").await.unwrap().is_empty());
        assert!(hub.get(&stream).is_none());
    }

    #[tokio::test]
    async fn leaving_channels_nobody_entered_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let (hub, _store) = durable(dir.path()).await;
        let nobody = crate::hub::presence::Member {
            client_id: "mallory".into(),
            connection_id: None,
        };
        let leave = crate::wire::envelope::PresenceAction::Leave;
        for i in 0..100 {
            let channel = format!("made-up-{i}");
            let left = hub.presence(&channel, &nobody, leave, Default::default());
            assert!(left.await.unwrap().is_none());
        }
        assert!(hub.members.lock().await.is_empty());
    }
}
