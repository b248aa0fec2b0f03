//! Shared relays: one upstream SSE connection per topic, fanned out through a log channel.
//!
//! A relay starts with the first subscriber of its topic and stops once the topic has had no
//! subscriber for the relay's linger time (the lifecycle is the supervisor's, shared with
//! pollers). Upstream events keep their type and data; their upstream ids are kept (in the
//! events and in the relay) to resume the upstream with `Last-Event-ID`, while clients get
//! gateway ids and resume from the channel's history like on any channel. When the upstream
//! fails or ends its stream, subscribers get an `error` event (their streams stay open) and
//! the relay reconnects after the upstream's `retry:` time, backing off while it keeps
//! failing.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use reqwest::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue};
use reqwest::{Method, Response, Url};
use tokio::time::Instant;

use super::failure::{Failure, backoff, classify, status};
use super::supervisor::{Claim, Feed, LEASE_RETRY, Run, Supervisor, Tell, Tended, WATCH_SLICE};
use super::upstream::Upstream;
use crate::config::RelayConfig;
use crate::hub::{Append, Hub, Lease, Relayed};
use crate::metrics::RelayMetrics;
use crate::wire::sse_parser::{SseFrame, SseParser};

/// The reconnection delay until the upstream sends `retry:`.
const DEFAULT_RETRY_MS: u64 = 1_000;
/// The shortest reconnection delay, whatever the upstream's `retry:` says (unless the
/// relay's `max_backoff_ms` is shorter): an upstream that asks for 0 and closes at once
/// must not be hammered.
const MIN_RETRY_MS: u64 = 1_000;
/// Upstream ids remembered to drop events an upstream sends again when resumed.
const RECENT_IDS: usize = 1024;

/// Everything a relay needs to know about its upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayTopic {
    /// The log channel: `[relay]`, the relay's name, the upstream URL and the forwarded
    /// headers. Users cannot subscribe to it by name (channel names may not start with `[`).
    pub channel: String,
    /// What enveloped connections call the stream: `{relay}/{topic}`.
    pub stream: Arc<str>,
    /// The relay's name.
    pub relay: Arc<str>,
    pub url: Url,
    /// Injected headers, then forwarded ones.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub linger: Duration,
    pub idle_timeout: Option<Duration>,
    pub max_backoff_ms: u64,
    pub max_event_bytes: usize,
}

impl RelayTopic {
    /// `forwarded` are the client's headers the relay passes on: they make the topic, so
    /// clients that send different values share nothing. `injected` headers are the same
    /// for every client of the relay and stay out of the channel name.
    pub fn new(
        relay: &RelayConfig,
        topic: &str,
        mut url: Url,
        injected: Vec<(HeaderName, HeaderValue)>,
        mut forwarded: Vec<(HeaderName, HeaderValue)>,
        secret: &[u8],
    ) -> RelayTopic {
        forwarded.retain(|(name, _)| !injected.iter().any(|(n, _)| n == name));
        let prefix = format!("[relay]{} ", relay.name);
        let mut channel = super::topic::canonical(&prefix, &mut url, &mut forwarded);
        // A relay whose injected headers change (through the admin API) gets new topics, so
        // new subscribers are not served by a connection made with the old headers. Only a
        // digest of them is in the name, keyed with the gateway's secret (`Hub::secret`): the
        // values are secrets, and an unkeyed digest would let a weak one be guessed offline.
        let parts = injected
            .iter()
            .flat_map(|(name, value)| [name.as_str().as_bytes(), value.as_bytes()]);
        channel.push_str("\ninjected ");
        channel.push_str(&super::topic::keyed_digest(secret, parts));
        let mut headers = injected;
        headers.extend(forwarded);
        RelayTopic {
            channel,
            stream: Arc::from(format!("{}/{topic}", relay.name)),
            relay: Arc::from(relay.name.as_str()),
            url,
            headers,
            linger: Duration::from_millis(relay.linger_ms),
            idle_timeout: relay.idle_timeout_ms.map(Duration::from_millis),
            max_backoff_ms: relay.max_backoff_ms,
            max_event_bytes: relay.max_event_bytes,
        }
    }

    /// The reconnection delay for an asked `retry:`: at least `MIN_RETRY_MS`, at most
    /// `max_backoff_ms` (which wins: the operator's word).
    fn retry_ms(&self, asked: u64) -> u64 {
        asked.max(MIN_RETRY_MS).min(self.max_backoff_ms)
    }
}

/// The running relays, by channel.
pub struct Relays {
    hub: Arc<Hub>,
    upstream: Upstream,
    supervisor: Supervisor<RelayStats, ()>,
}

/// What a running relay shows in the admin stats, and its metrics.
struct RelayStats {
    stream: String,
    /// The upstream URL without its query.
    url: String,
    connects: AtomicU64,
    events: AtomicU64,
    connected: AtomicBool,
    /// The last failure's status (0: none yet).
    last_failure: AtomicU64,
    metrics: RelayMetrics,
}

impl super::supervisor::Shown for RelayStats {
    fn shown(&self) -> &str {
        &self.url
    }
}

/// How one upstream connection ended.
enum Ended {
    /// Nobody has watched the topic for the linger time: the relay stops.
    Unwatched,
    /// Another node holds the topic's lease now (nodes sharing a bus): this one stands by.
    LeaseLost,
    /// The upstream failed or closed; the relay reconnects. `relayed` when the connection
    /// relayed an event: only then is the upstream well again (the wait is the plain retry
    /// time, and failures are told anew). One that closes at once keeps backing off.
    Lost { failure: Failure, relayed: bool },
}

/// What a relay remembers across upstream connections to resume them.
struct Reconnect {
    /// The upstream's last event id: sent as `Last-Event-ID` on reconnection.
    last_id: Option<String>,
    retry_ms: u64,
    /// Upstream ids relayed lately, oldest first, to drop what an upstream sends again.
    recent: VecDeque<String>,
    recent_set: HashSet<String>,
    /// Set on resuming: events whose id was already relayed are dropped until a new one.
    replaying: bool,
}

impl Relays {
    pub fn new(hub: Arc<Hub>, upstream: Upstream) -> Self {
        Relays {
            supervisor: Supervisor::new("relay", Arc::clone(&hub), Tell::Distinct),
            hub,
            upstream,
        }
    }

    /// Makes sure the topic is relayed; call after subscribing to its channel.
    pub fn ensure(self: &Arc<Self>, topic: &RelayTopic) {
        let run = self.supervisor.ensure(
            &topic.channel,
            topic.linger,
            Feed::new(topic.channel.clone(), ()),
            || RelayStats {
                stream: topic.stream.to_string(),
                url: super::target::redact(&topic.url),
                connects: AtomicU64::new(0),
                events: AtomicU64::new(0),
                connected: AtomicBool::new(false),
                last_failure: AtomicU64::new(0),
                metrics: RelayMetrics::of(&topic.relay),
            },
            |_| {},
        );
        if let Some(run) = run {
            tokio::spawn(Arc::clone(self).run(topic.clone(), run));
        }
    }

    /// The running relays, for the admin stats.
    pub fn stats(&self) -> Vec<serde_json::Value> {
        let mut stats = self.supervisor.stats(|r, watchers| {
            serde_json::json!({
                "stream": r.stream,
                "url": r.url,
                "connected": r.connected.load(Ordering::Relaxed),
                "connects": r.connects.load(Ordering::Relaxed),
                "events": r.events.load(Ordering::Relaxed),
                "lastFailure": r.last_failure.load(Ordering::Relaxed),
                "subscribers": watchers.subscribers,
            })
        });
        stats.sort_by(|a, b| a["stream"].as_str().cmp(&b["stream"].as_str()));
        stats
    }

    /// How many upstreams are relayed, and how many of them are connected.
    pub fn tally(&self) -> (usize, usize) {
        let connected = self
            .supervisor
            .stats(|r, _| r.connected.load(Ordering::Relaxed));
        let up = connected.iter().filter(|&&c| c).count();
        (connected.len(), up)
    }

    async fn run(self: Arc<Self>, topic: RelayTopic, mut run: Run<RelayStats, ()>) {
        // A topic relayed before (its channel still has history, perhaps kept across a
        // restart) resumes where it stopped.
        let last_id = self.last_kept_id(&topic);
        let mut reconnect = Reconnect {
            replaying: last_id.is_some(),
            last_id,
            retry_ms: topic.retry_ms(DEFAULT_RETRY_MS),
            recent: VecDeque::new(),
            recent_set: HashSet::new(),
        };
        // One node relays a topic at a time when nodes share a bus; a node without the
        // lease stands by (its subscribers get the holder's events through the bus) and
        // takes over once the holder stops renewing, resuming the upstream after the
        // newest event the cluster kept.
        loop {
            match run.hold().await {
                Claim::Refused => {
                    if !run.sleep_until(Instant::now() + LEASE_RETRY, |_| {}).await {
                        break;
                    }
                    continue;
                }
                // The mirror holds what every node relayed: resume after its newest event.
                Claim::Taken => {
                    if let Some(id) = self.last_kept_id(&topic) {
                        reconnect.last_id = Some(id);
                        reconnect.replaying = true;
                    }
                }
                Claim::Kept => {}
            }
            let ended = self.connect(&topic, &mut reconnect, &mut run).await;
            run.shared().connected.store(false, Ordering::Relaxed);
            let (failure, relayed) = match ended {
                Ended::Unwatched => break,
                Ended::LeaseLost => continue,
                Ended::Lost { failure, relayed } => (failure, relayed),
            };
            run.shared()
                .last_failure
                .store(u64::from(failure.status), Ordering::Relaxed);
            run.shared().metrics.reconnects.increment(1);
            if relayed {
                run.recovered();
            }
            // The first reconnection waits the upstream's `retry:` time, as EventSource
            // does; only the attempts that keep failing back off.
            let failures = run.failed(&failure);
            let delay = backoff(reconnect.retry_ms, failures - 1, topic.max_backoff_ms);
            if run.tell(&failure, &topic.channel) {
                self.publish_error(&topic, &failure, &run.session, delay, run.lease())
                    .await;
            }
            if !run.sleep_until(Instant::now() + delay, |_| {}).await {
                break;
            }
            reconnect.replaying = reconnect.last_id.is_some();
        }
    }

    /// One upstream connection, relayed until it ends or nobody watches.
    async fn connect(
        &self,
        topic: &RelayTopic,
        reconnect: &mut Reconnect,
        run: &mut Run<RelayStats, ()>,
    ) -> Ended {
        let request = match self.upstream.request(Method::GET, topic.url.clone()) {
            Ok(request) => request,
            Err(refusal) => return lost(refusal.into(), false),
        };
        let mut request = request
            .header(ACCEPT, "text/event-stream")
            .header(CACHE_CONTROL, "no-cache");
        for (name, value) in &topic.headers {
            request = request.header(name, value);
        }
        if let Some(id) = reconnect.last_id.as_deref()
            // Sent as the raw UTF-8 bytes, as browsers send a non-ASCII id.
            && let Ok(value) = HeaderValue::from_bytes(id.as_bytes())
        {
            request = request.header("last-event-id", value);
        }
        // One timer for the whole connection: a sleep made anew on every turn of the loop
        // would never fire while the upstream keeps sending.
        let mut watch = tokio::time::interval(WATCH_SLICE);
        watch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut send = std::pin::pin!(request.send());
        let mut response = loop {
            tokio::select! {
                sent = &mut send => match sent {
                    Ok(response) => break response,
                    Err(e) => return lost(classify(e), false),
                },
                _ = watch.tick() => match run.tend(|_| {}).await {
                    Tended::GoOn => {}
                    Tended::Unwatched => return Ended::Unwatched,
                    Tended::LeaseLost => return Ended::LeaseLost,
                },
            }
        };
        if let Err(failure) = check(&response) {
            return lost(failure, false);
        }
        let mut relayed = false;
        run.shared().connects.fetch_add(1, Ordering::Relaxed);
        run.shared().metrics.connections.increment(1);
        run.shared().connected.store(true, Ordering::Relaxed);
        let mut parser = SseParser::new();
        let mut frames = Vec::new();
        let mut previous_id = String::new();
        let mut heard = Instant::now();
        // Bytes read since the last event: an upstream line or event that never ends must
        // not grow the parser's buffers without bound.
        let mut pending = 0usize;
        loop {
            let chunk = tokio::select! {
                chunk = response.chunk() => chunk,
                _ = watch.tick() => {
                    match run.tend(|_| {}).await {
                        Tended::GoOn => {}
                        Tended::Unwatched => return Ended::Unwatched,
                        Tended::LeaseLost => return Ended::LeaseLost,
                    }
                    if topic.idle_timeout.is_some_and(|t| heard.elapsed() >= t) {
                        return lost(Failure {
                            status: status::TIMEOUT,
                            cause: "idle",
                            message: "the upstream sent nothing for the relay's idle_timeout_ms"
                                .into(),
                        }, relayed);
                    }
                    continue;
                }
            };
            let chunk = match chunk {
                Ok(Some(chunk)) => chunk,
                Ok(None) => {
                    return lost(
                        Failure {
                            status: status::CLOSED,
                            cause: "closed",
                            message: "the upstream ended its event stream".into(),
                        },
                        relayed,
                    );
                }
                Err(e) => return lost(classify(e), relayed),
            };
            heard = Instant::now();
            parser.feed(&chunk, &mut frames);
            // As a browser does: from the line on, even if no event follows.
            if let Some(retry) = parser.pending_retry() {
                reconnect.retry_ms = topic.retry_ms(retry);
            }
            let dispatched = frames.iter().any(|f| matches!(f, SseFrame::Event(_)));
            pending = if dispatched { 0 } else { pending + chunk.len() };
            if pending > topic.max_event_bytes {
                return lost(
                    Failure {
                        status: status::TOO_LARGE,
                        cause: "size",
                        message: "the upstream sent an event larger than the relay's \
                                  max_event_bytes"
                            .into(),
                    },
                    relayed,
                );
            }
            // The events of one chunk are appended together: with a store, one commit.
            let mut batch = Vec::new();
            for frame in frames.drain(..) {
                let SseFrame::Event(event) = frame else {
                    continue;
                };
                if let Some(retry) = event.retry {
                    reconnect.retry_ms = topic.retry_ms(retry);
                }
                // The parser reports the last event id buffer, which persists across events:
                // an event has an id of its own when it differs from the one before.
                let fresh_id = event.id != previous_id;
                previous_id.clone_from(&event.id);
                let upstream_id = (!event.id.is_empty()).then(|| event.id.clone());
                if fresh_id && let Some(id) = &upstream_id {
                    if reconnect.replaying && reconnect.recent_set.contains(id) {
                        continue;
                    }
                    reconnect.replaying = false;
                    reconnect.remember(id);
                }
                reconnect.last_id.clone_from(&upstream_id);
                relayed = true;
                run.shared().events.fetch_add(1, Ordering::Relaxed);
                run.shared().metrics.events.increment(1);
                let relayed = Relayed {
                    event: event.event,
                    data: event.data,
                    upstream_id,
                    stream: Arc::clone(&topic.stream),
                    notice: false,
                };
                batch.push(relayed);
            }
            if batch.is_empty() {
                continue;
            }
            let ids: Vec<String> = batch.iter().filter_map(|r| r.upstream_id.clone()).collect();
            if let Err(e) = self
                .hub
                .append(&topic.channel, Append::Relayed(batch), Some(run.lease()))
                .await
            {
                // Nobody saw them: the upstream is asked for them again.
                reconnect.forget(&ids);
                reconnect.last_id = self.last_kept_id(topic);
                let message = format!("the upstream's events could not be kept: {e}");
                let failure = Failure {
                    status: status::NOT_KEPT,
                    cause: "store",
                    message,
                };
                return lost(failure, false);
            }
        }
    }

    /// The upstream id of the newest event the topic's channel holds.
    fn last_kept_id(&self, topic: &RelayTopic) -> Option<String> {
        let channel = self.hub.get(&topic.channel)?;
        channel.find_newest(|e| e.relayed().and_then(|r| r.upstream_id.clone()))
    }

    async fn publish_error(
        &self,
        topic: &RelayTopic,
        failure: &Failure,
        session: &str,
        delay: Duration,
        lease: &Lease,
    ) {
        tracing::debug!(
            status = failure.status,
            cause = failure.cause,
            "relay upstream lost"
        );
        let mut error = failure.to_json(session);
        error["retryMs"] = (delay.as_millis() as u64).into();
        let notice = Relayed {
            event: "error".into(),
            data: error.to_string(),
            upstream_id: None,
            stream: Arc::clone(&topic.stream),
            notice: true,
        };
        if let Err(e) = self
            .hub
            .append(&topic.channel, Append::Relayed(vec![notice]), Some(lease))
            .await
        {
            tracing::warn!("a relay's error event was not kept: {e}");
        }
    }
}

impl Reconnect {
    /// Forgets ids remembered for events that were not relayed after all: the upstream is
    /// asked for them again.
    fn forget(&mut self, ids: &[String]) {
        for id in ids {
            if self.recent_set.remove(id) {
                self.recent.retain(|r| r != id);
            }
        }
    }

    fn remember(&mut self, id: &str) {
        if self.recent_set.insert(id.to_owned()) {
            self.recent.push_back(id.to_owned());
            if self.recent.len() > RECENT_IDS
                && let Some(old) = self.recent.pop_front()
            {
                self.recent_set.remove(&old);
            }
        }
    }
}

fn lost(failure: Failure, relayed: bool) -> Ended {
    Ended::Lost { failure, relayed }
}

/// An upstream answer is an event stream: a success status and `text/event-stream`.
fn check(response: &Response) -> Result<(), Failure> {
    let status = response.status();
    if !status.is_success() {
        return Err(Failure::status(status));
    }
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("text/event-stream") {
        return Err(Failure {
            status: status::NOT_SSE,
            cause: "not-sse",
            message: format!("the upstream answered {content_type:?}, not text/event-stream"),
        });
    }
    Ok(())
}
