//! A channel: an ordered, bounded log of events and the set of outlets watching it.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use bytes::Bytes;

use super::append::{StateUpdate, Waiting};
use super::event::{Body, Event, StateData, StateKind, state_body};
use super::{HistoryLimits, Wake, cursor};
use crate::wire::WireFormat;
use crate::wire::document::Document;

/// One channel incarnation.
///
/// Positions are contiguous within an incarnation and start above `base`, the first
/// position of a fresh epoch (`cursor::fresh_base`). A channel that was dropped while idle
/// and made again therefore never reuses a position, so a client holding an old position is
/// told about the gap instead of silently skipping events.
#[derive(Debug)]
pub struct Channel {
    name: Arc<str>,
    kind: ChannelKind,
    log: RwLock<Log>,
    /// Mirror of `Log::head`, so an outlet can see "nothing new" without taking the lock.
    head: AtomicU64,
    subscribers: Mutex<Subscribers>,
    /// Held by a commit from placing its events to appending them (see `Hub::append`): one
    /// at a time per channel, so positions on the bus and in memory agree.
    turn: Arc<tokio::sync::Mutex<()>>,
    /// Appends waiting for the next commit of this channel.
    waiting: Mutex<Vec<Waiting>>,
    /// A channel of a shared bus: the newest position announced, and whether a task is
    /// reading history to reach it (see `Hub::catch_up`).
    catch_up: Mutex<CatchUp>,
}

#[derive(Debug, Default)]
struct CatchUp {
    announced: u64,
    running: bool,
}

/// What an event placed by the bus is to a channel (see `Log::follow`).
#[derive(Debug, PartialEq, Eq)]
enum Follow {
    Next,
    Known,
    Hole,
}

/// Epochs a channel remembers having left.
const LEFT_EPOCHS: usize = 4;

/// The two kinds of channel: each event stands alone, or events change a state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelKind {
    /// Pub/sub: a subscriber that fell behind gets the retained events (or a gap notice).
    Log,
    /// A polled document: a new or lagging subscriber gets the current document, never a
    /// pile of stale patches.
    State,
}

/// A state channel's current state, read at one instant.
#[derive(Debug, Default)]
pub struct StateView {
    /// The whole document as a `data` event at the position of the change that made it.
    pub snapshot: Option<Arc<Event>>,
    /// The latest upstream error, if newer than the snapshot.
    pub error: Option<Arc<Event>>,
    /// The channel's head: the view reflects every event up to it.
    pub head: u64,
}

#[derive(Debug)]
struct Log {
    /// Invariant: when not empty, `events[0].seq == floor + 1` and the last seq is `head`.
    events: VecDeque<Arc<Event>>,
    /// How many of `events` are relay notices (see `Relayed::notice`).
    notices: usize,
    /// The summed `state_size` of `events`: zero on a log channel.
    state_bytes: usize,
    /// The size of the last `data` event of a state channel: what a fresh `data` costs.
    document_bytes: usize,
    head: u64,
    /// Every event at or below this position has left history.
    floor: u64,
    /// The epochs this channel left, newest last: their events are never appended again.
    left: Vec<u64>,
    /// Publisher-given message ids still in history, for idempotent publishing.
    ids: HashMap<String, u64>,
    /// State channels: the current document and the latest error (see `StateView`).
    snapshot: Option<Arc<Event>>,
    error: Option<Arc<Event>>,
    /// A state channel restored from a store: the document that clients resuming at `head`
    /// hold, for the source to diff its next document against (see `take_restored`). Not
    /// a snapshot: a new subscriber waits for the source's fresh one.
    restored: Option<Arc<Document>>,
}

#[derive(Debug, Default)]
struct Subscribers {
    next_id: u64,
    wakers: Vec<(u64, Arc<Wake>)>,
    /// When the last subscriber left; an idle, empty channel is dropped after the history TTL.
    idle_since: Option<Instant>,
}

/// The outcome of reading a channel after a position.
#[derive(Debug, Default)]
pub struct Read {
    /// Events between the position and the first returned one have left history.
    pub gap: bool,
    /// The position the events follow: the one asked for, or the floor after a gap.
    pub from: u64,
    pub events: Vec<Arc<Event>>,
}

/// A state update with its event's body and SSE encoding made.
struct ReadyState {
    kind: StateKind,
    body: Body,
    raw: Bytes,
    stream: Arc<str>,
    document: Option<Arc<Document>>,
}

impl ReadyState {
    fn new(update: StateUpdate) -> Self {
        let (body, raw) = state_body(update.kind, update.data, Arc::clone(&update.stream));
        ReadyState {
            kind: update.kind,
            body,
            raw,
            stream: update.stream,
            document: update.document,
        }
    }
}

/// An event the bus placed (see `Channel::place`).
pub(super) enum Placed {
    Log(Body),
    State(StateUpdate),
}

impl Channel {
    pub(super) fn new(name: Arc<str>, kind: ChannelKind, base: u64) -> Self {
        Channel {
            name,
            kind,
            log: RwLock::new(Log {
                events: VecDeque::new(),
                notices: 0,
                state_bytes: 0,
                document_bytes: 0,
                head: base,
                floor: base,
                left: Vec::new(),
                ids: HashMap::new(),
                snapshot: None,
                error: None,
                restored: None,
            }),
            head: AtomicU64::new(base),
            subscribers: Mutex::new(Subscribers {
                idle_since: Some(Instant::now()),
                ..Default::default()
            }),
            turn: Arc::default(),
            waiting: Mutex::default(),
            catch_up: Mutex::default(),
        }
    }

    /// A log channel as a store kept it: `events` as (position, hub-wide publish order,
    /// timestamp, message or relayed event), in position order.
    pub(super) fn restore(name: Arc<str>, events: Vec<(u64, u64, u64, Body)>) -> Self {
        let base = events.first().map_or(0, |(first, ..)| first - 1);
        let channel = Channel::new(name, ChannelKind::Log, base);
        {
            let mut log = channel.log.write().unwrap();
            for (position, order, timestamp, body) in events {
                // A hole (never written) is closed, so resuming across it reports the gap.
                if log.follow(position, true) == Follow::Next {
                    log.push_message_ordered(position, body, timestamp, order);
                }
            }
            channel.head.store(log.head, Ordering::Release);
        }
        channel
    }

    /// Appends events the bus placed, as `(position, timestamp, event)` in position order
    /// (a state event's document after it computed by the caller), then wakes the
    /// subscribers once. Events known already are skipped; an event of another epoch starts
    /// the channel afresh in that epoch (its history was lost: subscribers are told of the
    /// gap). An event that does not follow the head is a hole (a shared bus placed other
    /// nodes' events between): with `jump` (the events were read from history, which no
    /// longer has what the hole held) the channel continues after it, reporting the gap;
    /// without, nothing from there on is appended and this answers false: the caller reads
    /// history to fill the hole.
    ///
    /// A state channel's history keeps at most `state_bytes` of events besides the count
    /// and age limits, and at most twice the size of the document as last sent whole: the
    /// document is kept apart as the snapshot, so a client resuming past the retained
    /// patches gets it afresh (which is then smaller than the patches it replaces), and
    /// patches of big documents cannot pile up to gigabytes.
    pub(super) fn place(
        &self,
        events: Vec<(u64, u64, Placed)>,
        jump: bool,
        limits: &HistoryLimits,
        order: &AtomicU64,
    ) -> bool {
        // A state event's bytes are made before the lock (subscribers of the channel wait on
        // it): they size the event against `state_bytes`, and are kept as its encoding.
        enum Ready {
            Log(Body),
            State(ReadyState),
        }
        let ready = events.into_iter().map(|(position, timestamp, placed)| {
            let ready = match placed {
                Placed::Log(body) => Ready::Log(body),
                Placed::State(update) => Ready::State(ReadyState::new(update)),
            };
            (position, timestamp, ready)
        });
        let ready: Vec<_> = ready.collect();
        let mut complete = true;
        let mut appended = 0;
        {
            let mut log = self.log.write().unwrap();
            for (position, timestamp, ready) in ready {
                match log.follow(position, jump) {
                    Follow::Next => {}
                    Follow::Known => continue,
                    Follow::Hole => {
                        complete = false;
                        break;
                    }
                }
                match ready {
                    Ready::State(state) => {
                        log.push_state(state, timestamp, order);
                    }
                    Ready::Log(body) => {
                        let order = order.fetch_add(1, Ordering::Relaxed) + 1;
                        log.push_message_ordered(position, body, timestamp, order);
                    }
                }
                appended += 1;
            }
            log.evict(limits, crate::clock::now_ms());
            self.head.store(log.head, Ordering::Release);
        }
        if appended > 0 {
            self.wake_all();
        }
        complete
    }

    /// Notes that the bus announced `position`; true when the caller should start catching
    /// the channel up (none runs).
    pub(super) fn announced(&self, position: u64) -> bool {
        let mut catch_up = self.catch_up.lock().unwrap();
        let same_epoch = cursor::split(position).0 == cursor::split(catch_up.announced).0;
        if !same_epoch || position > catch_up.announced {
            catch_up.announced = position;
        }
        !std::mem::replace(&mut catch_up.running, true)
    }

    /// Ends a catch-up, unless a position was announced that the head has not reached:
    /// then true, and the caller goes on.
    pub(super) fn caught_up(&self) -> bool {
        let mut catch_up = self.catch_up.lock().unwrap();
        let head = self.head();
        let behind = cursor::split(catch_up.announced).0 == cursor::split(head).0
            && catch_up.announced > head;
        catch_up.running = behind;
        behind
    }

    /// Empties history, which continues after `head` (a position of another epoch, or one
    /// further on): the subscribers are told of the gap.
    pub(super) fn reset(&self, head: u64) {
        {
            let mut log = self.log.write().unwrap();
            log.restart(head);
            self.head.store(head, Ordering::Release);
        }
        self.wake_all();
    }

    /// Marks the channel as just used: the sweeper keeps a channel of a shared bus while it
    /// is watched or was used within the history TTL.
    pub(super) fn touch(&self) {
        let mut subs = self.subscribers.lock().unwrap();
        if subs.idle_since.is_some() {
            subs.idle_since = Some(Instant::now());
        }
    }

    /// A state channel as a store kept it: at `head`, with the document clients hold there.
    pub(super) fn restore_state(
        name: Arc<str>,
        head: u64,
        document: Option<Arc<Document>>,
    ) -> Self {
        let channel = Channel::new(name, ChannelKind::State, head);
        channel.log.write().unwrap().restored = document;
        channel
    }

    /// The document a restored state channel's clients hold, once: the source's first
    /// event after a restart is diffed against it, so it applies to what they hold.
    pub fn take_restored(&self) -> Option<Arc<Document>> {
        self.log.write().unwrap().restored.take()
    }

    /// Queues an append for the next commit of this channel.
    pub(super) fn wait(&self, waiting: Option<Waiting>) {
        self.waiting.lock().unwrap().extend(waiting);
    }

    /// This channel's turn to commit, and the publishes waiting for it (perhaps none: an
    /// earlier turn may have taken them all).
    pub(super) async fn turn(&self) -> (tokio::sync::OwnedMutexGuard<()>, Vec<Waiting>) {
        let turn = Arc::clone(&self.turn).lock_owned().await;
        (turn, std::mem::take(&mut *self.waiting.lock().unwrap()))
    }

    /// How many relay notices history holds: the count limit passes over them.
    pub(super) fn notices(&self) -> usize {
        self.log.read().unwrap().notices
    }

    /// Whether a message with publisher-given or generated id `id` is in history.
    pub(super) fn holds_id(&self, id: &str) -> bool {
        self.log.read().unwrap().ids.contains_key(id)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name, shared.
    pub fn shared_name(&self) -> Arc<str> {
        Arc::clone(&self.name)
    }

    pub fn kind(&self) -> ChannelKind {
        self.kind
    }

    /// The position of the newest event (the channel's base when none was published).
    pub fn head(&self) -> u64 {
        self.head.load(Ordering::Acquire)
    }

    /// Positions a reader may resume from without a gap: `floor..=head`.
    pub fn bounds(&self) -> (u64, u64) {
        let log = self.log.read().unwrap();
        (log.floor, log.head)
    }

    /// What `f` finds in the newest retained event it finds anything in.
    pub fn find_newest<T>(&self, f: impl Fn(&Event) -> Option<T>) -> Option<T> {
        let log = self.log.read().unwrap();
        log.events.iter().rev().find_map(|e| f(e))
    }

    /// The document a state channel's clients hold now, if any.
    pub(super) fn document(&self) -> Option<Arc<Document>> {
        let log = self.log.read().unwrap();
        match &log.snapshot.as_ref()?.body {
            Body::State(_, StateData::Document(document), _) => Some(Arc::clone(document)),
            _ => None,
        }
    }

    /// The current document and latest newer error, consistent with the head.
    pub fn state_view(&self) -> StateView {
        let log = self.log.read().unwrap();
        let snapshot_seq = log.snapshot.as_ref().map_or(0, |s| s.seq);
        StateView {
            snapshot: log.snapshot.clone(),
            error: log.error.clone().filter(|e| e.seq > snapshot_seq),
            head: log.head,
        }
    }

    fn wake_all(&self) {
        for (_, waker) in &self.subscribers.lock().unwrap().wakers {
            waker.wake();
        }
    }

    /// Drops events past the age limit; called periodically so idle channels age too.
    /// Whether any event left.
    pub(super) fn expire(&self, limits: &HistoryLimits, now_ms: u64) -> bool {
        let mut log = self.log.write().unwrap();
        let floor = log.floor;
        log.evict(limits, now_ms);
        log.floor != floor
    }

    /// Up to `max` events after position `after`.
    ///
    /// A position below the floor (events after it have left history) or above the head
    /// (not a position of this incarnation) reads from the oldest retained event and reports
    /// the gap.
    pub fn read_after(&self, after: u64, max: usize) -> Read {
        let log = self.log.read().unwrap();
        let (from, gap) = if after < log.floor || after > log.head {
            (log.floor, true)
        } else {
            (after, false)
        };
        let start = (from - log.floor) as usize;
        let end = log.events.len().min(start.saturating_add(max));
        Read {
            gap,
            from,
            events: log.events.range(start..end).cloned().collect(),
        }
    }

    /// Every retained event, oldest first (the history API filters and pages this).
    pub fn retained(&self, limits: &HistoryLimits, now_ms: u64) -> Vec<Arc<Event>> {
        let log = self.log.read().unwrap();
        let oldest = now_ms.saturating_sub(limits.ttl_ms);
        log.events
            .iter()
            .filter(|e| e.timestamp >= oldest)
            .cloned()
            .collect()
    }

    /// Registers an outlet's waker; it is woken after every publish until the guard drops.
    pub fn subscribe(self: &Arc<Self>, waker: Arc<Wake>) -> Subscription {
        let mut subs = self.subscribers.lock().unwrap();
        let id = subs.next_id;
        subs.next_id += 1;
        subs.wakers.push((id, waker));
        subs.idle_since = None;
        Subscription {
            channel: Arc::clone(self),
            id,
        }
    }

    /// True when nobody watches, nothing is retained (unless `mirror`: the channel's
    /// history is held by a shared bus, and read again when needed), and that has lasted
    /// `linger`.
    pub(super) fn is_disposable(&self, linger: std::time::Duration, mirror: bool) -> bool {
        let subs = self.subscribers.lock().unwrap();
        let idle_long = subs.idle_since.is_some_and(|t| t.elapsed() >= linger);
        // A durable publish waiting or in progress is about to append here.
        let publishing = self.turn.try_lock().is_err() || !self.waiting.lock().unwrap().is_empty();
        idle_long && (mirror || self.log.read().unwrap().events.is_empty()) && !publishing
    }

    /// Forgets a state channel's document and error, unless someone watches: once its
    /// source stops feeding the channel they only grow stale, and a later subscriber must
    /// start from the source's next fresh `data`, not from them. False (nothing forgotten)
    /// when the channel has a subscriber. History stays, for clients resuming in it.
    pub fn retire_state(&self) -> bool {
        // Under the subscribers' lock: a subscriber is either counted here or arrives after
        // the document is gone.
        let subs = self.subscribers.lock().unwrap();
        if !subs.wakers.is_empty() {
            return false;
        }
        let mut log = self.log.write().unwrap();
        log.snapshot = None;
        log.error = None;
        log.restored = None;
        true
    }

    pub fn subscriber_count(&self) -> usize {
        self.subscribers.lock().unwrap().wakers.len()
    }
}

impl Log {
    /// One state event; the snapshot follows it (see `StateView`).
    fn push_state(&mut self, state: ReadyState, timestamp: u64, order: &AtomicU64) {
        let ReadyState {
            kind,
            body,
            raw,
            stream,
            document,
        } = state;
        self.state_bytes += raw.len();
        if kind == StateKind::Data {
            self.document_bytes = raw.len();
        }
        let event = self.push(body, timestamp, order);
        event.keep_encoding(WireFormat::SseRaw, raw);
        match kind {
            StateKind::Data => self.snapshot = Some(event),
            StateKind::Patch => {
                if let Some(document) = document {
                    let body = Body::State(StateKind::Data, StateData::Document(document), stream);
                    let snapshot = Event::new(event.seq, event.order, timestamp, body);
                    self.snapshot = Some(Arc::new(snapshot));
                }
            }
            StateKind::Error => self.error = Some(event),
        }
    }

    fn push(&mut self, body: Body, timestamp: u64, order: &AtomicU64) -> Arc<Event> {
        let order = order.fetch_add(1, Ordering::Relaxed) + 1;
        self.push_ordered(body, timestamp, order)
    }

    /// Whether an event at `position` may be appended (`Next`): it follows the head, after
    /// starting afresh in its epoch when that is not the head's. A position the head
    /// passed, or of an epoch the channel left (an announcement or a read from before the
    /// bus lost the channel, arriving late), is `Known`. One further on is a `Hole`,
    /// unless `jump`: then history goes on after it.
    fn follow(&mut self, position: u64, jump: bool) -> Follow {
        let epoch = cursor::split(position).0;
        let head_epoch = cursor::split(self.head).0;
        if epoch != head_epoch {
            if self.left.contains(&epoch) {
                return Follow::Known;
            }
            if self.left.len() == LEFT_EPOCHS {
                self.left.remove(0);
            }
            self.left.push(head_epoch);
            self.restart(cursor::position(epoch, 0));
        }
        if position <= self.head {
            return Follow::Known;
        }
        if position != self.head + 1 {
            if !jump {
                return Follow::Hole;
            }
            self.restart(position - 1);
        }
        Follow::Next
    }

    /// Empties history: it continues after `head`.
    fn restart(&mut self, head: u64) {
        self.events.clear();
        self.ids.clear();
        self.notices = 0;
        self.state_bytes = 0;
        self.head = head;
        self.floor = head;
    }

    /// Appends a log channel's event at `position` (the next one), indexing its id.
    fn push_message_ordered(&mut self, position: u64, body: Body, timestamp: u64, order: u64) {
        if let Body::Message(message) = &body {
            self.ids.insert(message.id.clone(), position);
        }
        self.push_ordered(body, timestamp, order);
    }

    /// Appends an event whose hub-wide publish order is known already.
    fn push_ordered(&mut self, body: Body, timestamp: u64, order: u64) -> Arc<Event> {
        let seq = self.head + 1;
        let event = Arc::new(Event::new(seq, order, timestamp, body));
        self.notices += usize::from(is_notice(&event));
        self.events.push_back(Arc::clone(&event));
        self.head = seq;
        event
    }

    /// Drops the oldest events past the age limit, beyond `history_size` events that are
    /// not relay notices, or beyond `state_bytes` of state events.
    fn evict(&mut self, limits: &HistoryLimits, now_ms: u64) {
        let oldest = now_ms.saturating_sub(limits.ttl_ms);
        let state_bytes = match self.document_bytes {
            0 => limits.state_bytes,
            document => limits.state_bytes.min(document.saturating_mul(2)),
        };
        while let Some(front) = self.events.front() {
            if self.events.len() - self.notices <= limits.size
                && front.timestamp >= oldest
                && self.state_bytes <= state_bytes
            {
                break;
            }
            let front = self.events.pop_front().expect("front exists");
            self.notices -= usize::from(is_notice(&front));
            self.state_bytes -= state_size(&front);
            self.floor = front.seq;
            if let Some(message) = front.message()
                && self.ids.get(&message.id) == Some(&front.seq)
            {
                self.ids.remove(&message.id);
            }
        }
    }
}

fn is_notice(event: &Event) -> bool {
    event.relayed().is_some_and(|r| r.notice)
}

/// What a state event counts against `state_bytes`: the length of the encoding a delta
/// stream sends, made when the event is appended and kept for every subscriber (so eviction
/// reads the same length). Zero for the events of a log channel.
fn state_size(event: &Event) -> usize {
    match event.body {
        Body::State(..) => event.encoded(WireFormat::SseRaw).len(),
        Body::Message(_) | Body::Relayed(_) | Body::Presence(_) => 0,
    }
}

/// An outlet's registration on a channel; dropping it unsubscribes.
#[derive(Debug)]
pub struct Subscription {
    channel: Arc<Channel>,
    id: u64,
}

impl Subscription {
    pub fn channel(&self) -> &Arc<Channel> {
        &self.channel
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut subs = self.channel.subscribers.lock().unwrap();
        subs.wakers.retain(|(id, _)| *id != self.id);
        if subs.wakers.is_empty() {
            subs.idle_since = Some(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::envelope::Message;

    fn limits(state_bytes: usize) -> HistoryLimits {
        HistoryLimits {
            size: 1000,
            ttl_ms: u64::MAX,
            state_bytes,
        }
    }

    /// A patch whose encoding grows with `i`, so evictions fall at uneven points.
    fn patch(i: usize) -> StateData {
        let patch =
            serde_json::json!([{"op": "replace", "path": "/n", "value": "x".repeat(i * 37 % 900)}]);
        StateData::Text(patch.to_string().into())
    }

    /// Publishes 200 state events (a `data` of `document` bytes every 50, patches between)
    /// under `state_bytes`, checking after each that history keeps the newest events within
    /// `expected` bytes. Returns the channel.
    fn publish_states(state_bytes: usize, document: usize, expected: usize) -> Channel {
        let stream: Arc<str> = Arc::from("s");
        let channel = Channel::new(Arc::from("[poll]s"), ChannelKind::State, 0);
        let order = AtomicU64::new(0);
        let now = crate::clock::now_ms();
        for i in 0..200 {
            let (kind, data) = match i % 50 {
                0 => {
                    let document = serde_json::json!({"n": "y".repeat(document)});
                    (
                        StateKind::Data,
                        StateData::Document(Arc::new(Document::from_value(&document))),
                    )
                }
                _ => (StateKind::Patch, patch(i)),
            };
            let update = StateUpdate {
                kind,
                stream: Arc::clone(&stream),
                data,
                document: Some(Arc::new(Document::from_value(&serde_json::json!({"n": i})))),
            };
            let placed = vec![(i as u64 + 1, now, Placed::State(update))];
            channel.place(placed, false, &limits(state_bytes), &order);

            let log = channel.log.read().unwrap();
            let sum: usize = log.events.iter().map(|e| state_size(e)).sum();
            assert_eq!(log.state_bytes, sum, "the count follows the events");
            assert!(
                log.state_bytes <= expected,
                "{} bytes retained",
                log.state_bytes
            );
            // Only the oldest left.
            assert_eq!(log.head, i as u64 + 1);
            assert_eq!(log.events.back().map(|e| e.seq), Some(log.head));
            assert_eq!(log.floor + log.events.len() as u64, log.head);
            // The document is kept apart from history.
            assert_eq!(log.snapshot.as_ref().map(|s| s.seq), Some(log.head));
        }
        channel
    }

    #[test]
    fn a_state_channel_keeps_its_newest_events_within_the_byte_bound() {
        const BOUND: usize = 5_000;
        // Twice the document is more than the bound: the bound holds.
        let channel = publish_states(BOUND, 3_000, BOUND);
        assert!(
            channel.bounds().0 > 150,
            "old events left: {:?}",
            channel.bounds()
        );
    }

    #[test]
    fn a_state_channel_keeps_no_more_than_twice_its_document() {
        // A `data` event of `{"n":"y…"}`: 800 bytes of text and its framing.
        let data_event = "event: data\ndata: {\"n\":\"\"}\n\n".len() + 800;
        let channel = publish_states(1 << 20, 800, 2 * data_event);
        let (floor, head) = channel.bounds();
        assert!(head - floor >= 2, "a few patches stay: {floor}..{head}");
    }

    #[test]
    fn a_patch_text_shares_its_encoding() {
        let stream: Arc<str> = Arc::from("s");
        let channel = Channel::new(Arc::from("[poll]s"), ChannelKind::State, 0);
        let update = StateUpdate {
            kind: StateKind::Patch,
            stream,
            data: patch(7),
            document: None,
        };
        let placed = vec![(1, 0, Placed::State(update))];
        channel.place(placed, false, &limits(1 << 20), &AtomicU64::new(0));
        let log = channel.log.read().unwrap();
        let event = log.events.back().expect("appended");
        let Body::State(_, StateData::Text(text), _) = &event.body else {
            panic!("a state event with text");
        };
        let encoded = event.encoded(WireFormat::SseRaw);
        let within = encoded.as_ptr_range();
        assert!(within.contains(&text.as_ptr()), "one buffer for both");
        let line = "event: patch\ndata: ".len()..encoded.len() - 2;
        assert_eq!(&encoded[line], &text[..]);
    }

    #[test]
    fn a_log_channel_keeps_its_count_rule_whatever_the_bytes() {
        let channel = Channel::new(Arc::from("c"), ChannelKind::Log, 0);
        let order = AtomicU64::new(0);
        let now = crate::clock::now_ms();
        let batch = (0..50)
            .map(|i| {
                let message = Message {
                    id: i.to_string(),
                    name: None,
                    timestamp: now,
                    encoding: None,
                    channel: "c".into(),
                    data: serde_json::Value::String("z".repeat(1000 + i)),
                };
                (i as u64 + 1, now, Placed::Log(Body::Message(message)))
            })
            .collect();
        channel.place(batch, false, &limits(100), &order);
        assert_eq!(channel.bounds(), (0, 50));
    }

    /// Events at `offsets` of epoch `epoch`, as a shared bus hands them over.
    fn placed(epoch: u64, offsets: &[u64]) -> Vec<(u64, u64, Placed)> {
        let now = crate::clock::now_ms();
        offsets
            .iter()
            .map(|&o| {
                let message = Message {
                    id: format!("m{o}"),
                    name: None,
                    timestamp: now,
                    encoding: None,
                    channel: "c".into(),
                    data: serde_json::Value::from(o),
                };
                (
                    cursor::position(epoch, o),
                    now,
                    Placed::Log(Body::Message(message)),
                )
            })
            .collect()
    }

    fn offsets(channel: &Channel) -> Vec<u64> {
        let read = channel.read_after(channel.bounds().0, 100);
        read.events.iter().map(|e| cursor::split(e.seq).1).collect()
    }

    #[test]
    fn a_mirror_skips_what_it_has_stops_at_a_hole_and_follows_a_new_epoch_once() {
        let channel = Channel::new(Arc::from("c"), ChannelKind::Log, cursor::position(5, 0));
        let (order, limits) = (AtomicU64::new(0), limits(1 << 20));
        assert!(channel.place(placed(5, &[1, 2]), false, &limits, &order));
        // Known events are skipped; a hole stops the announcement's events there.
        assert!(!channel.place(placed(5, &[2, 3, 5, 6]), false, &limits, &order));
        assert_eq!(offsets(&channel), [1, 2, 3]);
        // Read from history, whose hole is for good: it goes on after it, with a gap.
        assert!(channel.place(placed(5, &[5, 6]), true, &limits, &order));
        assert_eq!(offsets(&channel), [5, 6]);
        assert_eq!(
            channel.bounds(),
            (cursor::position(5, 4), cursor::position(5, 6))
        );
        // Another epoch starts afresh; in it, an event after offset 1 is a hole.
        assert!(!channel.place(placed(2, &[3]), false, &limits, &order));
        assert_eq!(channel.head(), cursor::position(2, 0));
        assert!(channel.place(placed(2, &[1]), false, &limits, &order));
        assert_eq!(offsets(&channel), [1]);
        let old = cursor::position(5, 6);
        assert!(
            channel.read_after(old, 10).gap,
            "an old epoch's position is a gap"
        );
        // A late event of the epoch it left never takes the channel back there.
        assert!(channel.place(placed(5, &[7]), false, &limits, &order));
        assert_eq!(channel.head(), cursor::position(2, 1));
    }
}
