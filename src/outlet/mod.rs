//! An outlet: one streaming client connection.
//!
//! It owns its subscriptions (a position per channel), its encoder and its keepalive timer.
//! Its "queue" is the channels' shared history: an outlet holds only positions, is woken after
//! each publish, and copies at most `batch` events per write. A client that does not read
//! stops the outlet at its write (TCP backpressure), so it costs its positions plus one batch,
//! whatever is published meanwhile; when it reads again it continues from history, or is told
//! about the gap if its position has left history.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::sync::watch;
use tokio::time::Instant;

pub mod change;
pub mod journal;
pub mod registry;
pub mod window;

use std::sync::Mutex;

use crate::config::Overflow;
use crate::hub::census::Counted;
use crate::hub::{Channel, ChannelKind, Event, Hub, Subscription, Wake, cursor};
use crate::metrics::Tally;
use crate::wire::envelope::{ErrorInfo, codes};
use crate::wire::{WireFormat, ndjson, sse};
use journal::Journal;
use registry::{Connections, Control, Registration};
use window::WriteWindow;

/// A write stops taking events past this many bytes (one event always fits).
const WRITE_BYTES: usize = 64 * 1024;

/// Where a channel's stream starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Only what is published from now on.
    Live,
    /// The last `n` retained messages first.
    Rewind(u64),
    /// Retained messages at most this many milliseconds old first.
    RewindMs(u64),
    /// Exactly after this position (from a resume id).
    After(u64),
    /// After a position we cannot place (an id that is not ours): report a gap and send
    /// everything retained, which is all newer than what the client saw.
    Unknown,
}

/// One stream of a connection: a channel, its kind, and where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSpec {
    /// What the client calls the stream (to remove it): the channel's name, or a polled
    /// API's URL.
    pub name: String,
    pub channel: String,
    pub kind: ChannelKind,
    pub start: Start,
    /// State channels only: send the whole document on every change instead of patches
    /// (`mode=snapshot`); a slow client gets only the freshest one.
    pub snapshots_only: bool,
    /// A polled stream's topic, so a resumed connection can restart its poller.
    pub topic: Option<crate::sources::topic::Topic>,
    /// A configured API's stream read back from a journal, which keeps none of the API's
    /// secrets: made again from the catalog before it is opened (it has no channel nor
    /// topic until then).
    pub pending: Option<crate::sources::topic::ApiRef>,
}

impl StreamSpec {
    /// A pub/sub channel stream.
    pub fn log(channel: String, start: Start) -> Self {
        StreamSpec {
            name: channel.clone(),
            channel,
            kind: ChannelKind::Log,
            start,
            snapshots_only: false,
            topic: None,
            pending: None,
        }
    }
}

/// How the connection writes.
/// Which events of its streams a connection gets (all, without one).
#[derive(Clone)]
pub struct Filter(pub Arc<dyn Fn(&Event) -> bool + Send + Sync>);

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Filter")
    }
}

#[derive(Debug, Clone)]
pub struct OutletOptions {
    pub format: WireFormat,
    /// Events the filter refuses are passed over (a Mercure subscriber's selectors).
    pub filter: Option<Filter>,
    pub heartbeats: bool,
    pub keepalive: Duration,
    pub batch: usize,
    /// `[stream] write_window_ms`: the longest a busy stream holds a write (see `window`).
    pub write_window: Duration,
    /// How far a stream may fall behind while the client is not reading (see `Overflow`).
    pub queue: u64,
    pub overflow: Overflow,
    pub retry_ms: u64,
    /// Streams a dynamic connection may hold.
    pub max_streams: usize,
    /// When the credential's token expires (milliseconds since the Unix epoch): the stream
    /// ends then with error 40142.
    pub expires_at_ms: Option<u64>,
}

struct Sub {
    /// What the client calls the stream, also in notices: a relay's or poll's channel name
    /// holds the upstream URL and headers, which may carry secrets.
    name: String,
    /// The stream's index in the connection's journal, when it has one.
    journal_index: u32,
    subscription: Subscription,
    cursor: u64,
    /// Log channels: the position could not be resumed exactly; say so before the backlog.
    gap_pending: bool,
    /// State channels: send the current state next (new subscriber, lost position).
    state_pending: bool,
    snapshots_only: bool,
    /// Sending a backlog the client asked for (rewind, resume): exempt from overflow until it
    /// reaches the head.
    replaying: bool,
}

pub struct Outlet {
    hub: Arc<Hub>,
    /// What the census shows of it while it is open.
    card: Counted,
    subs: Vec<Sub>,
    waker: Arc<Wake>,
    options: OutletOptions,
    shutdown: watch::Receiver<bool>,
    next_keepalive: Instant,
    /// Made at the first write: an idle stream that never wrote keeps none, nor does any
    /// stream with `write_window_ms = 0`.
    window: Option<Box<WriteWindow>>,
    /// When the token the connection was opened with expires.
    expires: Option<Instant>,
    id: String,
    finished: bool,
    /// For connections with server-kept cursors: their id, journal and control line.
    link: Option<Link>,
    /// The journal's generation when this outlet opened (see `Journal::generation`).
    journal_generation: u64,
    /// Written before anything else: why a resume failed, and a dynamic connection's
    /// `connected` event.
    greeting: Option<Bytes>,
}

/// A connection's entry in the registry.
pub struct Link {
    pub registry: Arc<Connections>,
    pub registration: Registration,
    /// Dynamic connections announce their id with `event: connected`.
    pub announce: bool,
    /// Sent first, as `event: error`: why the connection resumed is not this one.
    pub notice: Option<ErrorInfo>,
    /// Streams restored from the journal on resume, with their journal indices.
    pub restored: Vec<(u32, StreamSpec)>,
}

impl Outlet {
    /// Subscribes to `streams` (channel names sorted and unique: the cursor's order). With
    /// a `link`, event ids are server-kept tokens and streams can change while it is open.
    pub fn open(
        hub: Arc<Hub>,
        streams: &[StreamSpec],
        options: OutletOptions,
        shutdown: watch::Receiver<bool>,
        mut link: Option<Link>,
    ) -> Outlet {
        let waker = Arc::new(Wake::default());
        let greeting = link.as_ref().map(|l| {
            let mut buf = BytesMut::new();
            if let Some(notice) = &l.notice {
                put_event(options.format, &mut buf, "error", &notice.to_json());
            }
            if l.announce {
                let json = serde_json::json!({ "connectionId": l.registration.id });
                put_event(options.format, &mut buf, "connected", &json.to_string());
            }
            buf.freeze()
        });
        let greeting = greeting.filter(|g| !g.is_empty());
        let restored = link
            .as_mut()
            .map(|l| std::mem::take(&mut l.restored))
            .unwrap_or_default();
        let journal_generation = link
            .as_ref()
            .map_or(0, |l| l.registration.journal.lock().unwrap().generation());
        let channels = streams.iter().map(|s| &*s.channel);
        let card = hub.outlet_opened(channels, link.as_ref().map(|l| l.registration.id.clone()));
        let mut outlet = Outlet {
            hub: Arc::clone(&hub),
            card,
            subs: Vec::with_capacity(streams.len()),
            waker,
            next_keepalive: Instant::now() + options.keepalive,
            window: None,
            expires: options.expires_at_ms.map(|at| {
                Instant::now() + Duration::from_millis(at.saturating_sub(crate::clock::now_ms()))
            }),
            options,
            shutdown,
            id: String::new(),
            finished: false,
            link,
            journal_generation,
            greeting,
        };
        for (index, spec) in restored {
            outlet.add(spec, Some(index));
        }
        for spec in streams {
            outlet.add(spec.clone(), None);
        }
        outlet
    }

    /// Subscribes one more stream (already in the journal at `journal_index`, or new).
    fn add(&mut self, spec: StreamSpec, journal_index: Option<u32>) {
        let hub = &self.hub;
        let subscription = hub.subscribe(&spec.channel, spec.kind, Arc::clone(&self.waker));
        self.card.joined(subscription.channel().shared_name());
        let (cursor, lost) = start_position(hub, subscription.channel(), spec.start);
        let state = subscription.channel().kind() == ChannelKind::State;
        let state_pending = state && (lost || !matches!(spec.start, Start::After(_)));
        let journal_index = match (journal_index, self.journal()) {
            (Some(index), _) => index,
            (None, Some(j)) => {
                let position = (!state_pending).then_some(cursor);
                j.lock().unwrap().add(spec.clone(), position)
            }
            (None, None) => 0,
        };
        self.subs.push(Sub {
            name: spec.name,
            journal_index,
            subscription,
            cursor,
            gap_pending: lost && !state,
            state_pending,
            snapshots_only: spec.snapshots_only,
            replaying: spec.start != Start::Live,
        });
    }

    fn journal(&self) -> Option<&Arc<Mutex<Journal>>> {
        self.link.as_ref().map(|l| &l.registration.journal)
    }

    /// Applies a change asked through the registry.
    fn control(&mut self, control: Control) {
        match control {
            Control::Add(spec, reply) => {
                let result = if self.subs.iter().any(|s| s.name == spec.name) {
                    Err(ErrorInfo::bad_request(format!(
                        "the connection already carries {:?}",
                        spec.name
                    )))
                } else if self.subs.len() >= self.options.max_streams {
                    crate::metrics::Limit::StreamsPerConnection.refused();
                    Err(ErrorInfo::bad_request(format!(
                        "the connection carries {} streams already, the most allowed \
                         ([limits] max_streams_per_connection)",
                        self.subs.len()
                    )))
                } else {
                    self.add(*spec, None);
                    Ok(())
                };
                let _ = reply.send(result);
            }
            Control::Remove(name, reply) => {
                let result = match self.subs.iter().position(|s| s.name == name) {
                    Some(i) => {
                        let sub = self.subs.remove(i);
                        self.card.left(sub.subscription.channel().name());
                        if let Some(j) = self.journal() {
                            j.lock()
                                .unwrap()
                                .remove(self.journal_generation, sub.journal_index);
                        }
                        Ok(())
                    }
                    None => Err(ErrorInfo::new(
                        codes::NOT_FOUND,
                        format!("the connection carries no stream {name:?}"),
                    )),
                };
                let _ = reply.send(result);
            }
            Control::Close => self.finished = true,
        }
    }

    /// When the outlet must write without being woken: the next keepalive, or the token's
    /// expiry if that comes first.
    fn next_deadline(&self) -> Instant {
        match self.expires {
            Some(at) => at.min(self.next_keepalive),
            None => self.next_keepalive,
        }
    }

    /// The next bytes to write; `None` ends the stream (server shutting down).
    pub async fn next_chunk(&mut self) -> Option<Bytes> {
        let mut written = Written::default();
        let chunk = self.compose(&mut written).await?;
        self.card.wrote(chunk.len(), &written.latencies);
        let max = self.options.write_window;
        if !max.is_zero() {
            self.window
                .get_or_insert_with(|| Box::new(WriteWindow::new(max)))
                .wrote(crate::clock::mono_us(), window::runtime_busy());
        }
        Some(chunk)
    }

    async fn compose(&mut self, written: &mut Written) -> Option<Bytes> {
        if let Some(greeting) = self.greeting.take() {
            return Some(greeting);
        }
        let mut after_write = true;
        loop {
            if self.finished {
                return None;
            }
            let held = self.hold();
            if let Some(hold) = held {
                // Deaf meanwhile to control, shutdown and expiry: they wait for the hold's
                // end, at most a window (at most a second). Boxed: the stream's future keeps
                // room for its largest state all its life, and an idle stream waits in
                // another.
                Box::pin(tokio::time::sleep(hold)).await;
            }
            let mut buf = BytesMut::new();
            // Lag that built up while the previous chunk was being written is the client's
            // slowness; lag found after waking up, or gathered by a hold, is a burst, sent in
            // batches.
            let after_write = std::mem::take(&mut after_write) && held.is_none();
            let passed_over = self.drain(&mut buf, after_write, written);
            self.log_journal();
            if self.finished || !buf.is_empty() {
                self.next_keepalive = Instant::now() + self.options.keepalive;
                return Some(buf.freeze());
            }
            if passed_over {
                continue;
            }
            let deadline = self.next_deadline();
            let control = async {
                match self.link.as_mut() {
                    Some(link) => link.registration.control.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = self.waker.woken() => {}
                control = control => match control {
                    Some(control) => self.control(control),
                    // The registry dropped this connection's control line: a resume of the
                    // same connection took it over (its `Close` did not fit the queue).
                    // Waiting on the closed line again would return at once, for ever.
                    None => self.finished = true,
                },
                // One timer for both deadlines: every idle connection carries it.
                _ = tokio::time::sleep_until(deadline) => {
                    if self.expires.is_some_and(|at| at <= Instant::now()) {
                        self.finished = true;
                        let error = crate::auth::token_expired();
                        self.put_event(&mut buf, "error", &error.to_json());
                    } else {
                        self.put_keepalive(&mut buf);
                        self.next_keepalive = Instant::now() + self.options.keepalive;
                    }
                    return Some(buf.freeze());
                }
                _ = self.shutdown.changed() => {
                    // What was published before the shutdown goes out first: a publish and
                    // the shutdown signal may wake the outlet together.
                    self.drain(&mut buf, false, written);
                    self.log_journal();
                    self.finished = true;
                    if self.options.format.is_sse() {
                        sse::put_retry(&mut buf, self.options.retry_ms);
                    }
                    return (!buf.is_empty()).then(|| buf.freeze());
                }
            }
        }
    }

    /// How long the write window holds the next write (see `window`): only with events
    /// waiting, fewer than a whole write's worth.
    fn hold(&mut self) -> Option<Duration> {
        let now = crate::clock::mono_us();
        let window = self.window.as_deref_mut()?;
        if !window.open(now) {
            return None;
        }
        let batch = self.options.batch as u64;
        let waiting = self.waiting(batch);
        if waiting == 0 {
            return None;
        }
        let hold = self
            .window
            .as_deref_mut()?
            .hold(now, batch.saturating_sub(waiting))?;
        self.card.held();
        Some(hold)
    }

    /// How many events the streams have to send, counted up to `enough` (at least 1 for a
    /// notice or a document owed; `u64::MAX` for a channel gone on in another epoch).
    fn waiting(&self, enough: u64) -> u64 {
        let mut waiting: u64 = 0;
        for sub in &self.subs {
            if waiting >= enough {
                break;
            }
            let head = sub.subscription.channel().head();
            let news = if cursor::split(head).0 != cursor::split(sub.cursor).0 {
                u64::MAX
            } else {
                head.saturating_sub(sub.cursor)
            };
            let owed = u64::from(sub.gap_pending || sub.state_pending);
            waiting = waiting.saturating_add(news.max(owed));
        }
        waiting
    }

    /// Logs what the journal recorded, before the bytes whose ids name it go out (see
    /// `bus::journal_log`).
    fn log_journal(&self) {
        if let Some(link) = &self.link {
            link.registry.log(&link.registration);
        }
    }

    /// Copies up to one batch of new events from the channels into `buf`, interleaving
    /// channels in publish order. True when the filter passed over events: there may be
    /// more to read at once, with nothing to wake the outlet for them.
    fn drain(&mut self, buf: &mut BytesMut, after_write: bool, written: &mut Written) -> bool {
        written.now_us = crate::clock::mono_us();
        let budget = self.options.batch;
        let mut reads = Vec::new();
        for i in 0..self.subs.len() {
            let sub = &mut self.subs[i];
            let channel = Arc::clone(sub.subscription.channel());
            let head = channel.head();
            // A channel whose history a shared bus lost goes on in another epoch: its
            // positions do not compare with the cursor's, and reading tells of the gap.
            let same_epoch = cursor::split(head).0 == cursor::split(sub.cursor).0;
            if head <= sub.cursor && same_epoch {
                sub.replaying = false;
                if !sub.gap_pending && !sub.state_pending {
                    continue;
                }
            }
            let lag = match same_epoch {
                true => head.saturating_sub(sub.cursor),
                false => 0,
            };
            if after_write && !sub.replaying && lag > self.options.queue {
                self.hub.metrics().drops.increment(lag - self.options.queue);
                if channel.kind() == ChannelKind::State {
                    // State-sync: one fresh document instead of the stale patches.
                    self.subs[i].state_pending = true;
                } else if self.options.overflow == Overflow::Disconnect {
                    let error = ErrorInfo::new(
                        codes::OVERFLOW_DISCONNECT,
                        format!(
                            "the client fell {lag} messages behind on channel {}; \
                             reconnect with the last event id to resume",
                            self.subs[i].name
                        ),
                    );
                    self.put_event(buf, "error", &error.to_json());
                    self.finished = true;
                    return false;
                } else {
                    let skipped = lag - self.options.queue;
                    let notice = ErrorInfo::new(
                        codes::OVERFLOW_SKIPPED,
                        format!(
                            "skipped {skipped} messages on channel {}: the client read too \
                             slowly to keep up",
                            self.subs[i].name
                        ),
                    );
                    self.put_event(buf, "error", &notice.to_json());
                    self.subs[i].cursor = head - self.options.queue;
                }
            }
            let sub = &self.subs[i];
            if sub.state_pending || sub.snapshots_only {
                self.send_state(i, buf, written);
                continue;
            }
            let read = channel.read_after(sub.cursor, budget);
            if read.gap && channel.kind() == ChannelKind::State {
                // State-sync: the freshest document, not the patches that are gone.
                self.send_state(i, buf, written);
                continue;
            }
            if read.gap || sub.gap_pending {
                if read.from > sub.cursor && !sub.gap_pending {
                    self.hub.metrics().drops.increment(read.from - sub.cursor);
                }
                let error = ErrorInfo::new(
                    codes::HISTORY_GAP,
                    format!(
                        "history gap on channel {}: messages after the resume position are no \
                         longer in history; continuing from the oldest retained message",
                        sub.name
                    ),
                );
                self.put_event(buf, "error", &error.to_json());
            }
            let sub = &mut self.subs[i];
            sub.gap_pending = false;
            sub.cursor = read.from;
            if !read.events.is_empty() {
                reads.push((i, read.events.into_iter()));
            }
        }
        // A k-way merge on the hub-wide order; ties cannot happen.
        let mut heads: BinaryHeap<Reverse<(u64, usize)>> = reads
            .iter_mut()
            .enumerate()
            .filter_map(|(r, (_, events))| Some(Reverse((events.as_slice().first()?.order, r))))
            .collect();
        let mut delivered = 0;
        // Events the filter passes over count against the budget too: each channel's read
        // holds at most a budget of events, and the merge is in order only while none of
        // them runs out before the others.
        let mut taken = 0;
        // Bounded in bytes too: the chunk is this connection's own copy, held while its
        // client is not reading.
        while taken < budget && buf.len() < WRITE_BYTES {
            let Some(Reverse((_, r))) = heads.pop() else {
                break;
            };
            let (i, events) = &mut reads[r];
            let event = events.next().expect("a queued head has an event");
            if let Some(next) = events.as_slice().first() {
                heads.push(Reverse((next.order, r)));
            }
            let i = *i;
            taken += 1;
            if let Some(Filter(keeps)) = &self.options.filter
                && !keeps(&event)
            {
                self.subs[i].cursor = event.seq;
                continue;
            }
            self.put_positioned(buf, i, &event, written);
            delivered += 1;
        }
        if delivered > 0 {
            self.card.delivered(delivered as u64);
        }
        taken > delivered
    }

    /// Writes a state channel's current state (the document, then a newer error) if it is
    /// newer than what the subscriber has, and moves it to the head.
    ///
    /// A subscriber that needs the whole document while the channel has none yet (its
    /// source has not sent one, or the channel came back from the store with only the
    /// document its earlier clients hold) is told a newer error, and stays pending: the next
    /// event may be a patch it could not apply, and the document after it is what it gets.
    fn send_state(&mut self, i: usize, buf: &mut BytesMut, written: &mut Written) {
        let view = self.subs[i].subscription.channel().state_view();
        let cursor = self.subs[i].cursor;
        let resync = self.subs[i].state_pending;
        if resync && view.snapshot.is_none() {
            if let Some(error) = view.error.filter(|e| e.seq > cursor) {
                self.put_positioned(buf, i, &error, written);
                self.card.delivered(1);
            }
            return;
        }
        for event in [view.snapshot, view.error].into_iter().flatten() {
            if resync || event.seq > cursor {
                self.put_positioned(buf, i, &event, written);
                self.card.delivered(1);
            }
        }
        let sub = &mut self.subs[i];
        sub.cursor = view.head;
        sub.state_pending = false;
    }

    /// Writes an event of stream `i` with the connection's cursor after it as its id.
    fn put_positioned(
        &mut self,
        buf: &mut BytesMut,
        i: usize,
        event: &Event,
        written: &mut Written,
    ) {
        self.subs[i].cursor = event.seq;
        if !self.subs[i].replaying {
            written.saw(event);
            if let Some(window) = self.window.as_deref_mut() {
                window.saw(event.appended_us, written.now_us);
            }
        }
        let body = event.encoded(self.options.format);
        if self.options.format == WireFormat::Mercure {
            // The update's own id, in its encoding: what a Mercure client resumes with.
            buf.extend_from_slice(body);
            return;
        }
        match &self.link {
            Some(link) => {
                let entry = link.registration.journal.lock().unwrap().delivered(
                    self.journal_generation,
                    self.subs[i].journal_index,
                    event.seq,
                );
                cursor::encode_token(self.hub.epoch(), &link.registration.id, entry, &mut self.id);
            }
            None => cursor::encode(self.subs.iter().map(|s| s.cursor), &mut self.id),
        }
        if self.options.format.is_sse() {
            sse::put_id(buf, &self.id);
            buf.extend_from_slice(body);
        } else {
            ndjson::put_event_with_id(buf, event.name(), &self.id, body);
        }
    }

    fn put_event(&self, buf: &mut BytesMut, name: &str, json: &str) {
        put_event(self.options.format, buf, name, json);
    }

    fn put_keepalive(&self, buf: &mut BytesMut) {
        match (self.options.heartbeats, self.options.format.is_sse()) {
            (true, _) => self.put_event(buf, "heartbeat", "{}"),
            (false, true) => sse::put_keepalive(buf),
            (false, false) => ndjson::put_keepalive(buf),
        }
    }
}

/// What one chunk carries for the metrics: the delivery latency of each live event in it
/// (a backlog a client asked to be replayed, by rewind or resume, has no latency to speak
/// of).
#[derive(Default)]
struct Written {
    /// When the events were read (`clock::mono_us`): their bytes go to the socket next.
    now_us: u64,
    latencies: Tally,
}

impl Written {
    fn saw(&mut self, event: &Event) {
        let latency = self.now_us.saturating_sub(event.appended_us);
        self.latencies.add(latency);
    }
}

/// Writes an event without an id (not a resume point) in `format`.
fn put_event(format: WireFormat, buf: &mut BytesMut, name: &str, json: &str) {
    if format.is_sse() {
        sse::put_event(buf, name, json);
    } else {
        ndjson::put_event(buf, name, json);
    }
}

/// Where a new subscription starts, and whether its position was lost (out of history, or
/// of another epoch: an incarnation of the channel whose history is gone).
fn start_position(hub: &Hub, channel: &Channel, start: Start) -> (u64, bool) {
    let (floor, head) = channel.bounds();
    match start {
        Start::Live => (head, false),
        Start::Rewind(n) => (head.saturating_sub(n).max(floor), false),
        Start::RewindMs(ms) => {
            let now = crate::clock::now_ms();
            let since = now.saturating_sub(ms);
            let first = channel
                .retained(hub.limits(), now)
                .into_iter()
                .find(|e| e.timestamp >= since);
            (first.map_or(head, |e| e.seq - 1), false)
        }
        // Below the floor is found by the first read, which knows how to report it.
        // A position of another epoch lies outside `[floor, head]` (see `cursor`).
        Start::After(p) if p <= head => (p, false),
        Start::After(_) | Start::Unknown => (floor, true),
    }
}

impl Drop for Outlet {
    fn drop(&mut self) {
        if let Some(link) = &self.link {
            let registration = &link.registration;
            link.registry
                .closed(&registration.id, registration.generation);
        }
        tracing::debug!(channels = self.subs.len(), "stream closed");
    }
}
