//! The hub: every stream is a channel; sources write into channels, outlets read them.
//!
//! Channels are made on first use (a publish or a subscription) and dropped once they have
//! been idle and empty for the history TTL. Each channel incarnation has an epoch of its own
//! in its positions (see `cursor`), so a resume id from an incarnation whose history is gone
//! is recognised as such.

pub mod append;
pub mod census;
pub mod channel;
pub mod cursor;
pub mod entered;
pub mod event;
pub mod presence;
mod shared;
mod shared_presence;
mod stored;
pub mod wake;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::bus::memory::Memory;
use crate::bus::redis::RedisBus;
use crate::bus::{Bus, Restored, Trim, unreadable};
use crate::clock::now_ms;
use crate::metrics::Metrics;
use crate::wire::document::Document;
pub use append::{Append, Appended, NewMessage, StateUpdate};
use channel::Placed;
pub use channel::{Channel, ChannelKind, Read, StateView, Subscription};
pub use event::{Event, Relayed, StateData, StateKind};
pub use shared::Lease;
pub use wake::Wake;

/// How much history each channel keeps: the newer of `size` events and `ttl_ms` of age,
/// and on a state channel at most `state_bytes` of events (see `Channel::append`).
#[derive(Debug, Clone)]
pub struct HistoryLimits {
    pub size: usize,
    pub ttl_ms: u64,
    pub state_bytes: usize,
}

#[derive(Debug)]
pub struct Hub {
    channels: RwLock<HashMap<Arc<str>, Arc<Channel>>>,
    limits: HistoryLimits,
    epoch: String,
    /// Every event ever appended in this process: the publish order across channels, which
    /// a connection on several channels interleaves its backlog by.
    order: AtomicU64,
    /// Names messages published without an id.
    message_ids: AtomicU64,
    /// Open outlets (streaming connections), for the figures and the admin stats.
    census: Arc<census::Census>,
    metrics: Metrics,
    /// Keys the digests of secrets in channel names (see `secret`).
    secret: Vec<u8>,
    /// What places this node's channels and keeps them beyond the process (`[bus]
    /// data_dir`), or places them only.
    bus: Arc<dyn Bus>,
    /// What places and holds the channels several nodes share (`[bus] backend = "redis"`;
    /// see `shared`): their channels here are mirrors.
    shared: Option<Arc<RedisBus>>,
    /// Mirrors are made one at a time (see `Hub::prepare`).
    attaching: tokio::sync::Mutex<()>,
    /// Who is on each channel (see `presence`).
    members: presence::Members,
    /// Who is told of the presence changes of the gateway's own channels.
    announcers: presence::Announcers,
}

/// The channel of the node's own figures (see `sources::figures`): never kept, never
/// shared.
pub const FIGURES: &str = "[figures]";

/// The channel every update of the Mercure hub goes to (see `http::mercure`).
pub const MERCURE: &str = "[mercure]";

/// The channel the Mercure hub copies the updates of `topic` to (`topic` empty: the prefix
/// of them all).
pub fn mercure_topic(topic: &str) -> String {
    format!("{MERCURE}\n{topic}")
}

/// Whether `name` is one of the Mercure hub's topic channels (or a selector's presence).
fn is_mercure_topic(name: &str) -> bool {
    name.strip_prefix(MERCURE)
        .is_some_and(|rest| rest.starts_with('\n'))
}

/// Whether the channel `name`'s events are never kept beyond the process: presence streams
/// (on one node, members are the process's own), the Mercure hub's topic channels (copies
/// of `[mercure]`'s updates, made again from it when a node starts) and the node's figures.
fn never_kept(name: &str) -> bool {
    presence::is_stream(name) || is_mercure_topic(name) || name == FIGURES
}

/// One channel, as the admin stats show it.
#[derive(Debug, serde::Serialize)]
pub struct ChannelStats {
    pub name: String,
    pub kind: &'static str,
    /// The newest position.
    pub head: u64,
    pub retained: u64,
    pub subscribers: usize,
}

impl Hub {
    pub fn new(limits: HistoryLimits, metrics: Metrics) -> Self {
        Hub {
            channels: RwLock::new(HashMap::new()),
            limits,
            epoch: cursor::new_epoch(),
            order: AtomicU64::new(0),
            message_ids: AtomicU64::new(0),
            census: Arc::new(census::Census::new(metrics.clone())),
            metrics,
            secret: crate::bus::new_secret(),
            bus: Arc::new(Memory),
            shared: None,
            attaching: tokio::sync::Mutex::const_new(()),
            members: presence::Members::default(),
            announcers: presence::Announcers::default(),
        }
    }

    /// A hub whose pub/sub channels `bus` holds for several nodes; start `Hub::hear` with
    /// the bus's announcements once the hub is shared.
    /// `secret` is the cluster's (`RedisBus::secret`): every node names a relay's channel
    /// alike.
    pub fn shared(
        limits: HistoryLimits,
        metrics: Metrics,
        bus: Arc<RedisBus>,
        secret: Vec<u8>,
    ) -> Self {
        let mut hub = Hub::new(limits, metrics);
        hub.shared = Some(bus);
        hub.secret = secret;
        hub
    }

    /// A hub whose channels are kept by `bus`, starting from what it `restored`.
    pub fn durable(
        limits: HistoryLimits,
        metrics: Metrics,
        bus: Arc<dyn Bus>,
        restored: Restored,
    ) -> Result<Self, String> {
        let mut hub = Hub::new(limits, metrics);
        hub.epoch = restored.epoch;
        hub.message_ids = AtomicU64::new(restored.message_ids);
        hub.secret = restored.secret;
        let mut kept = Vec::with_capacity(restored.channels.len());
        // Channels never kept (an earlier version kept Mercure's topic copies) are made
        // again by their sources.
        let restored_channels = restored.channels.into_iter();
        for (name, stored) in restored_channels.filter(|(name, _)| !never_kept(name)) {
            let events = stored
                .into_iter()
                .map(|(position, json)| {
                    let parsed = match position {
                        0 => Err("position 0 is no event's".to_owned()),
                        _ => stored::body(&name, &json),
                    };
                    let (body, timestamp) = parsed
                        .map_err(|e| unreadable(&*bus, &format!("an event of {name:?}"), e))?;
                    Ok((position, timestamp, body))
                })
                .collect::<Result<Vec<_>, String>>()?;
            kept.push((name, events));
        }
        // The publish order across channels, which a connection on several channels
        // interleaves its backlog by: by time, as they were published.
        let mut by_time: Vec<(u64, usize, usize)> = kept
            .iter()
            .enumerate()
            .flat_map(|(c, (_, events))| {
                events
                    .iter()
                    .enumerate()
                    .map(move |(i, &(_, timestamp, _))| (timestamp, c, i))
            })
            .collect();
        by_time.sort_unstable();
        let mut orders: Vec<Vec<u64>> = kept.iter().map(|(_, m)| vec![0; m.len()]).collect();
        for (rank, &(_, c, i)) in by_time.iter().enumerate() {
            orders[c][i] = rank as u64 + 1;
        }
        hub.order = AtomicU64::new(by_time.len() as u64);
        let now = now_ms();
        let mut channels = HashMap::new();
        for ((name, events), orders) in kept.into_iter().zip(orders) {
            let events = events
                .into_iter()
                .zip(orders)
                .map(|((position, timestamp, body), order)| (position, order, timestamp, body))
                .collect();
            let name: Arc<str> = Arc::from(name);
            let channel = Channel::restore(Arc::clone(&name), events);
            channel.expire(&hub.limits, now);
            // What the limits dropped since leaves the disk too.
            bus.trim(&name, channel.bounds().0);
            channels.insert(name, Arc::new(channel));
        }
        for (name, floor) in restored.empty {
            let name: Arc<str> = Arc::from(name);
            let channel = Channel::new(Arc::clone(&name), ChannelKind::Log, floor);
            channels.insert(name, Arc::new(channel));
        }
        for (name, kept) in restored.states {
            let document = kept
                .document
                .map(|text| stored::document(&text).map(Arc::new))
                .transpose()
                .map_err(|e| unreadable(&*bus, "a document of a polled topic", e))?;
            let name: Arc<str> = Arc::from(name);
            let channel = Channel::restore_state(Arc::clone(&name), kept.head, document);
            channels.insert(name, Arc::new(channel));
        }
        hub.metrics.channels.set(channels.len() as f64);
        hub.channels = RwLock::new(channels);
        hub.bus = bus;
        Ok(hub)
    }

    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    /// The gateway's own secret: sources key the digests of secrets that name a channel
    /// with it (a relay's injected headers), so the digest gives nothing away, and, kept by
    /// the bus, names the same channel after a restart.
    pub fn secret(&self) -> &[u8] {
        &self.secret
    }

    pub fn limits(&self) -> &HistoryLimits {
        &self.limits
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Counts an outlet opening now on `channels` (addressed by `connection`, if it has an
    /// id) until the card drops. A watcher of the node's figures alone is not counted in the
    /// deliveries: the figures would count their own.
    pub fn outlet_opened<'a>(
        &self,
        channels: impl IntoIterator<Item = &'a str>,
        connection: Option<String>,
    ) -> census::Counted {
        self.census
            .open(connection, !channels.into_iter().eq([FIGURES]))
    }

    pub fn outlets(&self) -> usize {
        self.census.count()
    }

    /// The open outlets, oldest first, at most `most` of them.
    pub fn outlet_stats(&self, most: usize) -> Vec<census::StreamStats> {
        self.census.list(most)
    }

    /// How many channels are in memory.
    pub fn channel_count(&self) -> usize {
        self.channels.read().unwrap().len()
    }

    /// Every channel in memory, named as `shown_name` shows them.
    pub fn channel_stats(&self) -> Vec<ChannelStats> {
        let channels = self.channels.read().unwrap();
        let mut stats: Vec<ChannelStats> = channels
            .values()
            .map(|c| {
                let (floor, head) = c.bounds();
                ChannelStats {
                    name: shown_name(c.name()),
                    kind: match c.kind() {
                        ChannelKind::Log => "log",
                        ChannelKind::State => "state",
                    },
                    head,
                    retained: head - floor,
                    subscribers: c.subscriber_count(),
                }
            })
            .collect();
        stats.sort_by(|a, b| a.name.cmp(&b.name));
        stats
    }

    pub fn get(&self, name: &str) -> Option<Arc<Channel>> {
        self.channels.read().unwrap().get(name).cloned()
    }

    /// Subscribes `waker` to the channel, making the channel if needed.
    ///
    /// Done under the map's read lock so the sweeper cannot drop the channel between the
    /// lookup and the registration.
    pub fn subscribe(&self, name: &str, kind: ChannelKind, waker: Arc<Wake>) -> Subscription {
        self.with_channel(name, kind, |channel| channel.subscribe(waker))
    }

    /// Whether `id` is in the form this process gives messages published without one
    /// (`{epoch}:{n}`): a publisher may not give such an id, or two messages could share it.
    pub fn reserves_id(&self, id: &str) -> bool {
        id.strip_prefix(self.epoch.as_str())
            .is_some_and(|rest| rest.starts_with(':'))
    }

    fn next_message_id(&self) -> String {
        let n = self.message_ids.fetch_add(1, Ordering::Relaxed) + 1;
        format!("{}:{n}", self.epoch)
    }

    /// The shared bus, when it holds the channel `name`.
    fn shared_bus(&self, name: &str) -> Option<&Arc<RedisBus>> {
        self.shared.as_ref().filter(|_| shared::is_shared(name))
    }

    /// The bus that places the channel `name`'s events: memory's for a channel never kept
    /// (see `never_kept`) whatever the hub's, unless a shared bus holds it.
    fn bus_of(&self, name: &str) -> &dyn Bus {
        match self.shared_bus(name) {
            Some(shared) => shared,
            None if never_kept(name) => &Memory,
            None => &*self.bus,
        }
    }

    /// The history limits, as the bus applies them to what it keeps.
    fn trim(&self) -> Trim {
        Trim {
            size: self.limits.size,
            ttl_ms: self.limits.ttl_ms,
        }
    }

    /// Appends events the bus placed to this node's copy of their channel (see
    /// `Channel::place`), catching the copy up from a shared bus when they leave a hole.
    /// The bus trimmed what the count limit pushed out as it kept them; what ages out
    /// leaves with the sweep.
    fn apply(self: &Arc<Self>, channel: &Arc<Channel>, events: Vec<(u64, u64, Placed)>) {
        let Some(&(last, ..)) = events.last() else {
            return;
        };
        if !channel.place(events, false, &self.limits, &self.order) {
            self.catch_up_later(channel, last);
        }
    }

    /// The document the clients of state channel `name` hold, for its source to diff its
    /// next document against when it has none of its own: the one a store kept (once), or
    /// the one a shared bus keeps current (another node fed the channel until now).
    pub fn held_document(&self, name: &str) -> Option<Arc<Document>> {
        let channel = self.get(name)?;
        let restored = channel.take_restored();
        match self.shared_bus(name) {
            Some(_) => restored.or_else(|| channel.document()),
            None => restored,
        }
    }

    /// Forgets a state channel's document once its source stops feeding it (see
    /// `Channel::retire_state`), on the bus too. False when it has a subscriber.
    pub fn retire_state(&self, channel: &Channel) -> bool {
        // A shared state channel's document stays: the bus keeps it current, whichever
        // node polls, as long as this node holds the channel.
        if self.shared_bus(channel.name()).is_some() {
            return channel.subscriber_count() == 0;
        }
        let retired = channel.retire_state();
        // A log channel (a relay's) has no state: its history stays, on the bus too.
        if retired && channel.kind() == ChannelKind::State {
            self.bus.drop_channel(channel.name());
        }
        retired
    }

    /// Runs `f` on the channel `name`, making it (of `kind`) if needed. A channel's kind is
    /// fixed when it is made; state channels have names users cannot give (see `names`).
    fn with_channel<T>(
        &self,
        name: &str,
        kind: ChannelKind,
        f: impl FnOnce(&Arc<Channel>) -> T,
    ) -> T {
        {
            let channels = self.channels.read().unwrap();
            if let Some(channel) = channels.get(name) {
                return f(channel);
            }
        }
        let mut channels = self.channels.write().unwrap();
        let count = channels.len() + usize::from(!channels.contains_key(name));
        self.metrics.channels.set(count as f64);
        let channel = channels.entry(Arc::from(name)).or_insert_with(|| {
            // A fresh epoch: positions of an older incarnation, dropped while idle, are
            // never this one's (see `cursor`).
            let base = cursor::fresh_base();
            // A log channel's epoch is kept from the start, so a client holding its first
            // position resumes after a restart even if nothing was published.
            if kind == ChannelKind::Log {
                self.bus_of(name).trim(name, base);
            }
            Arc::new(Channel::new(Arc::from(name), kind, base))
        });
        f(channel)
    }

    /// Ages history and drops channels that are idle and empty. Run periodically.
    pub fn sweep(&self) {
        let now = now_ms();
        let linger = Duration::from_millis(self.limits.ttl_ms);
        let mut channels = self.channels.write().unwrap();
        channels.retain(|name, channel| {
            // A log channel's history is kept (relayed channels are log channels too, named
            // `[relay]...`); a state channel's document.
            let bus = self.bus_of(name);
            if channel.expire(&self.limits, now) && channel.kind() == ChannelKind::Log {
                bus.trim(name, channel.bounds().0);
            }
            let mirror = self.shared_bus(name).is_some();
            let disposable = channel.is_disposable(linger, mirror);
            if disposable {
                bus.drop_channel(name);
            }
            !disposable
        });
        self.metrics.channels.set(channels.len() as f64);
    }
}

/// The channel `name` as the admin stats show it: a polled or relayed channel's cut to its
/// first line, without the URL's query: the rest may hold forwarded credentials.
pub fn shown_name(name: &str) -> String {
    match name.starts_with('[') {
        true => without_userinfo(name.split(['\n', '?']).next().unwrap_or(name)),
        false => name.to_owned(),
    }
}

/// `text` with the `user:password@` of a URL in it removed.
fn without_userinfo(text: &str) -> String {
    match text.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
                None => text.to_owned(),
            }
        }
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn userinfo_is_cut_from_shown_urls() {
        let cut = super::without_userinfo;
        assert_eq!(
            cut("[poll]GET https://u:p@h.io/a@b"),
            "[poll]GET https://h.io/a@b"
        );
        assert_eq!(
            cut("[poll]GET https://h.io/a@b"),
            "[poll]GET https://h.io/a@b"
        );
        assert_eq!(cut("plain"), "plain");
    }
}
