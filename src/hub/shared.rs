//! Channels whose history a bus shared by several nodes holds (`[bus] backend = "redis"`):
//! pub/sub channels, the state channels of polls and the channels of relays. The bus gives positions and keeps
//! history; each node's channel is a mirror of it, made when a client of the node first
//! needs the channel (`Hub::prepare`), fed by the bus's announcements in order, and read
//! back from the bus when an announcement was missed: once per node, whatever the number of
//! its subscribers. A channel nobody on the node watches is dropped after the history TTL
//! and no longer heard.
//!
//! A state channel has one writer in the cluster: the node holding its poll's lease
//! (`Hub::hold`). The others apply its patches to their copy of the document, so a new
//! subscriber anywhere gets the document at once, and a node taking the lease over diffs
//! against that copy: clients see the same patch chain go on.
//!
//! A relay's channel is a log channel with one writer in the cluster too: the holder of its
//! topic's lease keeps the upstream connection, and a node taking over resumes the upstream
//! after the newest event its mirror holds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::channel::{Channel, ChannelKind, Placed};
use super::event::{StateData, StateKind};
use super::{Hub, StateUpdate, cursor, stored};
use crate::bus::Fence;
use crate::bus::redis::{Claim, Notice, Range, RedisBus, Span};
use crate::wire::document::Document;
use crate::wire::json;

/// Events read from the bus at once when catching up.
const READ_BATCH: usize = 1000;
/// How long a client waits at most for its channels to be made ready.
const PREPARE_WITHIN: Duration = Duration::from_secs(5);

/// A source's claim to feed its channels alone in the cluster (see `Hub::hold`).
#[derive(Debug)]
pub struct Lease {
    key: String,
    /// Unique to this claim: the fencing token the bus checks on every append.
    token: Arc<str>,
    held: bool,
    /// Taken anew since the source last `settled`: another node may have fed the channels
    /// meanwhile.
    taken: bool,
    /// When the bus last confirmed the lease.
    renewed: Instant,
}

impl Lease {
    /// Whether this node holds the lease on a shared bus, as of the last `Hub::hold` (never
    /// without one: there is nothing to renew).
    pub fn held(&self) -> bool {
        self.held
    }

    /// Whether the lease was taken anew since the source last `settled`: it must then go
    /// on from what the bus holds, not from what it kept itself.
    pub fn fresh(&self) -> bool {
        self.taken
    }

    /// The source goes on from what the bus holds.
    pub fn settled(&mut self) {
        self.taken = false;
    }

    /// How long ago the bus last confirmed the lease.
    pub fn renewed_ago(&self) -> Duration {
        self.renewed.elapsed()
    }

    /// What the bus checks on every append of the lease's holder.
    pub(super) fn fence(&self) -> Fence {
        Fence {
            lease: self.key.clone(),
            token: self.token.to_string(),
        }
    }

    /// Whether the lease is held and due for renewal.
    pub fn due(&self, every: Duration) -> bool {
        self.held && self.renewed_ago() >= every
    }
}

impl Hub {
    /// Makes ready the channels `names` that a shared bus holds (a no-op otherwise): each
    /// one's mirror is made and heard before an outlet subscribes to it or its history is
    /// read. `Err` when the bus cannot be reached.
    pub async fn prepare(&self, names: &[&str]) -> Result<(), String> {
        let Some(bus) = &self.shared else {
            return Ok(());
        };
        let attach_all = async {
            for name in names.iter().filter(|n| is_shared(n)) {
                self.attach(bus, name).await?;
            }
            Ok(())
        };
        // Never a hang: a bus that answers slowly is as good as none for a client waiting.
        match tokio::time::timeout(PREPARE_WITHIN, attach_all).await {
            Ok(attached) => attached,
            Err(_) => Err("the bus did not answer in time; try again".to_owned()),
        }
    }

    /// Whether several nodes share this hub's channels (a bus like Redis).
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// `Err` when the shared bus cannot be reached (never, without one).
    pub async fn ready(&self) -> Result<(), String> {
        match &self.shared {
            Some(bus) => bus.ready().await,
            None => Ok(()),
        }
    }

    /// A claim on the source `key` (a poll's topic), not yet held.
    pub fn lease(&self, key: &str) -> Lease {
        Lease {
            key: key.to_owned(),
            token: Arc::from(format!("{}-{:016x}", self.epoch, rand::random::<u64>())),
            held: false,
            taken: false,
            renewed: Instant::now(),
        }
    }

    /// Takes or renews `lease` for `ttl`: true while this node may feed the source's
    /// channels. Without a shared bus a node is alone, and always may. Not held when the
    /// bus cannot be reached: sources pause, and another node may take over.
    pub async fn hold(&self, lease: &mut Lease, ttl: Duration) -> bool {
        let Some(bus) = &self.shared else {
            return true;
        };
        let held = match bus.lease(&lease.key, &lease.token, ttl).await {
            Ok(Claim::Refused) => false,
            // Held though this node did not know it: a take whose answer was lost.
            Ok(Claim::Kept) if !lease.held => {
                lease.taken = true;
                true
            }
            Ok(Claim::Kept) => true,
            Ok(Claim::Taken) => {
                lease.taken = true;
                true
            }
            Err(e) => {
                tracing::debug!("a lease was not renewed: {e}");
                false
            }
        };
        if held {
            lease.renewed = Instant::now();
        }
        if held != lease.held {
            tracing::debug!(held, "lease of {:?} changed hands", lease.key);
        }
        lease.held = held;
        held
    }

    /// Brings this node's mirrors of `names` up to what the bus holds (a no-op without a
    /// shared bus): a source that just took its lease goes on from the last event any node
    /// appended, which an announcement still on its way would not have told it.
    pub async fn settle(&self, names: &[String]) -> Result<(), String> {
        let Some(bus) = &self.shared else {
            return Ok(());
        };
        for name in names {
            if let Some(channel) = self.get(name) {
                self.catch_up(bus, &channel).await?;
            }
        }
        Ok(())
    }

    /// Tells the node holding `lease` (a polled topic's) which parts of the topic this
    /// node's clients want, for `ttl`: pointer ('' for the whole document) and interval in
    /// ms. The holder polls for the whole cluster, and feeds only what it is told of.
    pub async fn want(
        &self,
        lease: &Lease,
        parts: &[(String, u64)],
        ttl: Duration,
    ) -> Result<(), String> {
        match &self.shared {
            Some(bus) => bus.want(&lease.key, parts, ttl).await,
            None => Ok(()),
        }
    }

    /// The parts of `lease`'s topic other nodes' clients want (see `want`).
    pub async fn wanted(&self, lease: &Lease) -> Result<Vec<(String, u64)>, String> {
        match &self.shared {
            Some(bus) => bus.wanted(&lease.key).await,
            None => Ok(Vec::new()),
        }
    }

    /// Gives `lease` back (its source stopped), so another node may take it at once.
    pub fn release(&self, lease: &mut Lease) {
        if let Some(bus) = self.shared.as_ref().filter(|_| lease.held) {
            bus.release(&lease.key, &lease.token);
        }
        lease.held = false;
    }

    /// The mirror of `name`, made if needed: heard first, then read, so nothing announced
    /// in between is lost.
    pub(super) async fn attach(
        &self,
        bus: &Arc<RedisBus>,
        name: &str,
    ) -> Result<Arc<Channel>, String> {
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
        let channel = self.read_mirror(bus, name).await?;
        {
            let mut channels = self.channels.write().unwrap();
            channels.insert(Arc::from(name), Arc::clone(&channel));
            self.metrics.channels.set(channels.len() as f64);
        }
        // What was announced between hearing and making the mirror went unheard.
        self.catch_up(bus, &channel).await?;
        Ok(channel)
    }

    /// A mirror of `name` made from what the bus holds: a pub/sub channel's newest events;
    /// a state channel's document and the events after it.
    async fn read_mirror(&self, bus: &RedisBus, name: &str) -> Result<Arc<Channel>, String> {
        let kind = kind_of(name);
        let range = match kind {
            ChannelKind::Log => Range::Newest(self.limits.size),
            ChannelKind::State => Range::Document(self.limits.size),
        };
        let span = bus
            .read(name, cursor::fresh_epoch(), range, &self.trim())
            .await?;
        let first = match &span.document {
            Some((offset, _)) => Some(*offset),
            None => span.events.first().map(|&(offset, _)| offset),
        };
        let base = first.map_or(span.head, |first| first - 1);
        let channel = Channel::new(Arc::from(name), kind, cursor::position(span.epoch, base));
        let channel = Arc::new(channel);
        self.mirror(&channel, span);
        Ok(channel)
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
                    if let Some(mirror) = self.get(&channel) {
                        self.apply_announced(&mirror, epoch, events);
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

    /// Applies announced events to `channel`, catching up from the bus if they leave a hole.
    fn apply_announced(
        self: &Arc<Self>,
        channel: &Arc<Channel>,
        epoch: u64,
        events: Vec<(u64, Vec<u8>)>,
    ) {
        let Some(&(last, _)) = events.last() else {
            return;
        };
        let span = Span {
            epoch,
            head: last,
            events,
            ..Span::default()
        };
        self.apply(channel, self.placed(channel, span));
    }

    /// Applies `span`, read from the bus's history, to the mirror `channel`: it goes on
    /// after what history no longer holds.
    fn mirror(&self, channel: &Channel, span: Span) {
        let placed = self.placed(channel, span);
        channel.place(placed, true, &self.limits, &self.order);
    }

    /// The events of `span` that `channel` may append, readable.
    fn placed(&self, channel: &Channel, span: Span) -> Vec<(u64, u64, Placed)> {
        let name = channel.name();
        let epoch = span.epoch;
        match channel.kind() {
            ChannelKind::Log => span
                .events
                .into_iter()
                .filter_map(|(offset, json)| match stored::body(name, &json) {
                    Ok((body, timestamp)) => Some((
                        cursor::position(epoch, offset),
                        timestamp,
                        Placed::Log(body),
                    )),
                    Err(e) => {
                        unreadable(name, e);
                        None
                    }
                })
                .collect(),
            ChannelKind::State => {
                // A state channel's document is not applied to a copy of another epoch's,
                // nor across a hole: a hole is filled from the bus's document.
                let head = channel.head();
                let current = cursor::split(head).0 == epoch;
                let all = span.document.into_iter().chain(span.events);
                let fresh = all.filter(|(o, _)| !current || cursor::position(epoch, *o) > head);
                let mut previous = channel.document();
                let mut placed = Vec::new();
                for (offset, text) in fresh {
                    let position = cursor::position(epoch, offset);
                    match state_update(&text, previous.as_ref()) {
                        Ok((timestamp, update)) => {
                            if let Some(document) = update.document.clone() {
                                previous = Some(document);
                            } else if let StateData::Document(document) = &update.data {
                                previous = Some(Arc::clone(document));
                            }
                            placed.push((position, timestamp, Placed::State(update)));
                        }
                        Err(e) => {
                            unreadable(name, e);
                            break;
                        }
                    }
                }
                placed
            }
        }
    }

    /// Catches `channel` up to the announced `position` in the background, unless that
    /// already runs (it then goes on to `position`). A read that fails is tried again,
    /// backing off, until the bus answers.
    pub(super) fn catch_up_later(self: &Arc<Self>, channel: &Arc<Channel>, position: u64) {
        let Some(bus) = self.shared.clone() else {
            return;
        };
        if !channel.announced(position) {
            return;
        }
        let (hub, channel) = (Arc::clone(self), Arc::clone(channel));
        tokio::spawn(async move {
            let mut pause = Duration::from_millis(100);
            loop {
                match hub.catch_up(&bus, &channel).await {
                    Ok(()) => pause = Duration::from_millis(100),
                    Err(e) => {
                        tracing::debug!("{:?} is not caught up yet: {e}", channel.name());
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(Duration::from_secs(2));
                        continue;
                    }
                }
                if !channel.caught_up() {
                    return;
                }
            }
        });
    }

    /// Reads `channel`'s history after its head until it has what the bus had when read.
    async fn catch_up(&self, bus: &RedisBus, channel: &Channel) -> Result<(), String> {
        let name = channel.name();
        loop {
            let before = channel.head();
            let (epoch, offset) = cursor::split(before);
            // A fresh epoch, never the mirror's: were the channel lost on the bus, its
            // offsets would start again at 1 and name events clients saw under the old one.
            let after = Range::After(offset, READ_BATCH);
            let trim = self.trim();
            let mut span = bus.read(name, cursor::fresh_epoch(), after, &trim).await?;
            if span.epoch == epoch && span.head < offset {
                // The bus went back behind what this node heard: in this epoch it would
                // give those offsets again, to other events. A new epoch, and clients are
                // told of the gap.
                tracing::warn!("a channel's history went back on the bus; it starts a new epoch");
                bus.renew_epoch(name, epoch, cursor::fresh_epoch()).await?;
                continue;
            }
            if span.epoch != epoch {
                // Another epoch: its history starts at its first offset, not after ours.
                let all = Range::After(0, READ_BATCH);
                span = bus.read(name, span.epoch, all, &trim).await?;
            }
            let bus_head = cursor::position(span.epoch, span.head);
            let follows = span
                .events
                .first()
                .is_some_and(|&(first, _)| cursor::position(span.epoch, first) == before + 1);
            if channel.kind() == ChannelKind::State && !follows && bus_head != before {
                // A patch cannot be applied across a hole: start again from the document.
                let whole = Range::Document(self.limits.size);
                span = bus.read(name, span.epoch, whole, &trim).await?;
                let base = span.document.as_ref().map_or(span.head, |(o, _)| o - 1);
                channel.reset(cursor::position(span.epoch, base));
            }
            self.mirror(channel, span);
            let head = channel.head();
            let caught = cursor::split(head).0 == cursor::split(bus_head).0 && head >= bus_head;
            if caught {
                return Ok(());
            }
            if head == before {
                // Nothing readable moved the head: the bus lost what lay between (history
                // expired or trimmed, or the channel), or holds events this node cannot
                // read. Subscribers are told of the gap.
                channel.reset(bus_head);
                return Ok(());
            }
        }
    }
}

/// Whether a channel named `name` is held by a shared bus: pub/sub channels and their
/// presence streams, polls' and relays', and the Mercure hub's updates are.
pub(super) fn is_shared(name: &str) -> bool {
    match super::presence::channel_of(name) {
        Some(channel) => !channel.starts_with('['),
        None => {
            !name.starts_with('[')
                || name.starts_with("[poll]")
                || name.starts_with("[relay]")
                || name == super::MERCURE
        }
    }
}

fn kind_of(name: &str) -> ChannelKind {
    match name.starts_with("[poll]") {
        true => ChannelKind::State,
        false => ChannelKind::Log,
    }
}

fn unreadable(channel: &str, error: String) {
    tracing::warn!("an event of {channel:?} on the bus is not readable ({error}); skipped");
}

/// A state event stored as `text`, with the document after it (computed from `previous`
/// for a patch).
fn state_update(
    text: &[u8],
    previous: Option<&Arc<Document>>,
) -> Result<(u64, StateUpdate), String> {
    let (kind, stream, timestamp, data) = stored::state(text)?;
    let (data, document) = match kind {
        StateKind::Data => {
            let document = Document::parse(data.as_bytes()).map_err(|e| e.to_string())?;
            (StateData::Document(Arc::new(document)), None)
        }
        StateKind::Patch => {
            let after = previous.and_then(|previous| {
                let ops = json::parse(data.as_bytes()).ok()?;
                let patch = crate::patch::parse(&ops).ok()?;
                let mut document = previous.to_value();
                crate::patch::apply(&mut document, &patch).ok()?;
                Some(Arc::new(Document::from_value(&document)))
            });
            (StateData::Text(data.into()), after)
        }
        StateKind::Error => (StateData::Text(data.into()), None),
    };
    let update = StateUpdate {
        kind,
        stream,
        data,
        document,
    };
    Ok((timestamp, update))
}
