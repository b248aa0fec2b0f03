//! Pollers: one per topic, turning a JSON API into a state channel of `data` and `patch`
//! events.
//!
//! A poller starts with the first subscriber of its topic and stops once the topic has had
//! no subscriber for `[poll] linger_ms`, each selected part lingering on its own (the
//! lifecycle is the supervisor's, shared with relays). It requests the target once per
//! interval however many clients watch, start to start on a fixed schedule (a poll still
//! running when the next is due skips that slot), conditionally (ETag / Last-Modified), and
//! diffs each new document against the last. A channel the poller stops feeding forgets its
//! document, so a later subscriber starts from a fresh poll, never from a stale document. A
//! failing target gives subscribers an `error` event (once per distinct failure) and is
//! retried with exponential backoff and jitter; when it recovers, patches resume from the
//! last good document.

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::header::{ACCEPT, ETAG, HeaderValue, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
use reqwest::{Method, StatusCode};
use tokio::time::Instant;

use super::failure::{Failure, backoff, classify, status};
use super::supervisor::{Claim, Feed, LEASE_RETRY, Run, Supervisor, Tell};
use super::topic::Topic;
use super::upstream::Upstream;
use super::wanted::Wanted;
use crate::config::PollConfig;
use crate::hub::{Append, Hub, Lease, StateData, StateKind, StateUpdate};
use crate::metrics::{AD_HOC, PollMetrics};
use crate::patch::{Delta, delta};
use crate::wire::document::Document;

/// The running pollers, by topic key.
pub struct Pollers {
    hub: Arc<Hub>,
    upstream: Upstream,
    config: PollConfig,
    supervisor: Supervisor<Shared, Part>,
}

/// What a running poller shares with `ensure` and the stats.
struct Shared {
    /// The target without its query, for the stats.
    url: String,
    /// Requests made, and the last answer's status (304 unchanged, 2000+ a failure).
    requests: AtomicU64,
    last_status: AtomicU64,
    interval_ms: AtomicU64,
    metrics: PollMetrics,
}

impl super::supervisor::Shown for Shared {
    fn shown(&self) -> &str {
        &self.url
    }
}

/// A selected part being streamed, the channel it feeds aside.
#[derive(Clone)]
pub(super) struct Part {
    pub(super) select: Option<String>,
    pub(super) stream: Arc<str>,
}

impl Pollers {
    pub fn new(hub: Arc<Hub>, upstream: Upstream, config: PollConfig) -> Self {
        Pollers {
            supervisor: Supervisor::new("poller", Arc::clone(&hub), Tell::Changes),
            hub,
            upstream,
            config,
        }
    }

    /// Makes sure the topic is being polled; call after subscribing to its channel. A
    /// shorter interval than the running poller's takes effect from its next poll.
    /// Selected parts of one topic share its poller: one request serves them all.
    pub fn ensure(self: &Arc<Self>, topic: &Topic) {
        let interval_ms = topic.interval.as_millis() as u64;
        let part = Part {
            select: topic.select.clone(),
            stream: Arc::clone(&topic.stream),
        };
        let run = self.supervisor.ensure(
            &topic.key,
            Duration::from_millis(self.config.linger_ms),
            Feed::new(topic.channel.clone(), part),
            || Shared {
                url: super::target::redact(&topic.url),
                requests: AtomicU64::new(0),
                last_status: AtomicU64::new(0),
                interval_ms: AtomicU64::new(interval_ms),
                metrics: PollMetrics::of(topic.api.as_ref().map_or(AD_HOC, |a| &a.name)),
            },
            |shared| {
                shared.interval_ms.fetch_min(interval_ms, Ordering::Relaxed);
            },
        );
        if let Some(run) = run {
            tokio::spawn(Arc::clone(self).run(topic.clone(), run));
        }
    }

    /// The running pollers, for the admin stats.
    pub fn stats(&self) -> Vec<serde_json::Value> {
        let mut stats = self.supervisor.stats(|shared, watchers| {
            serde_json::json!({
                "url": shared.url,
                "intervalMs": shared.interval_ms.load(Ordering::Relaxed),
                "parts": watchers.channels,
                "subscribers": watchers.subscribers,
                "requests": shared.requests.load(Ordering::Relaxed),
                "lastStatus": shared.last_status.load(Ordering::Relaxed),
            })
        });
        stats.sort_by(|a, b| a["url"].as_str().cmp(&b["url"].as_str()));
        stats
    }

    /// How many topics are polled, and how many of them failed their last poll.
    pub fn tally(&self) -> (usize, usize) {
        let statuses = self
            .supervisor
            .stats(|shared, _| shared.last_status.load(Ordering::Relaxed));
        let failing = statuses.iter().filter(|&&status| status >= 400).count();
        (statuses.len(), failing)
    }

    async fn run(self: Arc<Self>, topic: Topic, mut run: Run<Shared, Part>) {
        let mut state = PollState::default();
        // The first poll is at once (a subscriber waits for it); the next ones are due at
        // `slot + interval`, `slot` starting a phase of the topic's own past now.
        let interval = Duration::from_millis(run.shared().interval_ms.load(Ordering::Relaxed));
        let mut slot = Instant::now() + phase(&topic.key, interval);
        // One node polls a topic at a time when nodes share a bus; a node without the
        // lease stands by (its subscribers get the holder's events through the bus, for
        // the parts it tells the holder of) and takes over once the holder stops renewing.
        let mut wanted = Wanted::default();
        loop {
            match run.hold().await {
                Claim::Refused => {
                    let interval_ms = run.shared().interval_ms.load(Ordering::Relaxed);
                    wanted
                        .tell(&self.hub, run.lease(), &run.feeds(), interval_ms)
                        .await;
                    // What this node diffed against grows stale meanwhile.
                    state = PollState::default();
                    let retry = Instant::now() + LEASE_RETRY;
                    if !run
                        .sleep_until(retry, |channel| state.forget(channel))
                        .await
                    {
                        break;
                    }
                    continue;
                }
                // Another node may have published since this one last did: diff against
                // the documents clients hold, not the ones this node kept.
                Claim::Taken => {
                    state = PollState::default();
                    wanted.taken();
                }
                Claim::Kept => {}
            }
            let mut feeds = run.feeds();
            let forget = |channel: &str| state.forget(channel);
            let lease = run.lease();
            if let Some(ms) = wanted
                .refresh(&self.hub, lease, &topic, &feeds, forget)
                .await
            {
                run.shared().interval_ms.fetch_min(ms, Ordering::Relaxed);
            }
            // A part a client of this node asked for since the last read is fed once.
            let elsewhere = wanted.elsewhere().iter();
            let elsewhere = elsewhere.filter(|f| !feeds.iter().any(|own| own.channel == f.channel));
            let elsewhere: Vec<_> = elsewhere.cloned().collect();
            feeds.extend(elsewhere);
            let started = Instant::now();
            let Some(outcome) = run.holding(self.poll(&topic, &mut state)).await else {
                continue;
            };
            let metrics = &run.shared().metrics;
            match &outcome {
                Ok(fresh) => metrics.answered(fresh.as_ref().map(|f| f.1), started.elapsed()),
                Err(failure) => metrics.failed(&failure.reason(), started.elapsed()),
            }
            let status = match &outcome {
                Ok(Some(_)) => 200,
                Ok(None) => 304,
                Err(failure) => u64::from(failure.status),
            };
            run.shared().requests.fetch_add(1, Ordering::Relaxed);
            self.hub.metrics().polled();
            run.shared().last_status.store(status, Ordering::Relaxed);
            let interval_ms = run.shared().interval_ms.load(Ordering::Relaxed);
            slot = match outcome {
                Ok(fresh) => {
                    run.recovered();
                    let changed = fresh.is_some();
                    if let Some((document, _)) = fresh {
                        state.whole = Some(Arc::new(document));
                    }
                    // On a 304 only a part asked for since the last change has anything to
                    // send (its first document); the others would compare equal.
                    if let Some(whole) = state.whole.take() {
                        for feed in &feeds {
                            if changed || !state.documents.contains_key(&feed.channel) {
                                let session = &run.session;
                                let published = self
                                    .publish_part(feed, &mut state, &whole, session, run.lease())
                                    .await;
                                run.shared().metrics.patched(published);
                            }
                        }
                        state.whole = Some(whole);
                    }
                    let (next, skipped) =
                        next_slot(slot, Duration::from_millis(interval_ms), Instant::now());
                    run.shared().metrics.skipped(skipped);
                    next
                }
                Err(failure) => {
                    let failures = run.failed(&failure);
                    // Each part is told each failure once, a part asked for during the
                    // failure included.
                    for feed in &feeds {
                        if run.tell(&failure, &feed.channel) {
                            self.publish_error(feed, &failure, &run.session, run.lease())
                                .await;
                        }
                    }
                    // Backing off counts from the failure; the schedule restarts from the
                    // first poll that succeeds again.
                    Instant::now() + backoff(interval_ms, failures, self.config.max_backoff_ms)
                }
            };
            // A part nobody watches is dropped: its channel forgets its document, which
            // would only grow stale, and the part starts afresh (with a `data` event) if it
            // is asked for again. The lease is renewed meanwhile.
            if !run.sleep_until(slot, |channel| state.forget(channel)).await {
                break;
            }
        }
    }

    /// One request; the new document and its size in bytes, or `None` when the target
    /// says it is unchanged.
    async fn poll(
        &self,
        topic: &Topic,
        state: &mut PollState,
    ) -> Result<Option<(Document, usize)>, Failure> {
        let mut request = self
            .upstream
            .request(Method::GET, topic.url.clone())?
            .header(ACCEPT, "application/json")
            .timeout(Duration::from_millis(self.config.timeout_ms));
        for (name, value) in &topic.headers {
            request = request.header(name, value);
        }
        if state.whole.is_some() {
            if let Some(etag) = &state.etag {
                request = request.header(IF_NONE_MATCH, etag);
            }
            if let Some(modified) = &state.last_modified {
                request = request.header(IF_MODIFIED_SINCE, modified);
            }
        }
        let mut response = request.send().await.map_err(classify)?;
        let status = response.status();
        if status == StatusCode::NOT_MODIFIED && state.whole.is_some() {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(Failure::status(status));
        }
        let etag = response.headers().get(ETAG).cloned();
        let last_modified = response.headers().get(LAST_MODIFIED).cloned();
        let body = read_capped(&mut response, self.config.max_body_bytes).await?;
        let document = Document::parse(&body).map_err(|e| Failure {
            status: status::NOT_JSON,
            cause: "parse",
            message: format!("the target's body is not JSON: {e}"),
        })?;
        state.etag = etag;
        state.last_modified = last_modified;
        Ok(Some((document, body.len())))
    }

    /// Publishes a selected part's change (`data` or `patch`), diffed against that part's
    /// previous value (after a restart, the value its channel's clients hold): subscribers
    /// of one part share the work. The whole document is shared, not copied, by the poller
    /// and the channel's snapshot; a selected part is copied out. Returns the bytes of patch
    /// published.
    async fn publish_part(
        &self,
        feed: &Feed<Part>,
        state: &mut PollState,
        whole: &Arc<Document>,
        session: &str,
        lease: &Lease,
    ) -> usize {
        let channel = &feed.channel;
        let document = match &feed.part.select {
            Some(pointer) => match whole.part(pointer) {
                Some(part) => Arc::new(part),
                None => {
                    // Told once; the part starts afresh with `data` once it exists.
                    state.documents.remove(channel);
                    if state.missing.insert(channel.clone()) {
                        let failure = Failure::select_missing(pointer);
                        self.publish_error(feed, &failure, session, lease).await;
                    }
                    return 0;
                }
            },
            None => Arc::clone(whole),
        };
        state.missing.remove(channel);
        let snapshot = || StateData::Document(Arc::clone(&document));
        // A channel restored from the store gets a patch even when nothing changed: its
        // new subscribers wait for one, and its clients resume with it.
        let restored = match state.documents.contains_key(channel) {
            true => None,
            false => self.hub.held_document(channel),
        };
        let (kind, data, after) = match restored.as_ref().or(state.documents.get(channel)) {
            Some(old) if *old == document && restored.is_none() => return 0,
            Some(old) => match delta(old, &document) {
                Delta::Patch(text) => {
                    let after = Some(Arc::clone(&document));
                    (StateKind::Patch, StateData::Text(text.into()), after)
                }
                Delta::Snapshot => (StateKind::Data, snapshot(), None),
            },
            None => (StateKind::Data, snapshot(), None),
        };
        let patch_bytes = match (&kind, &data) {
            (StateKind::Patch, StateData::Text(text)) => text.len(),
            _ => 0,
        };
        if self.publish(feed, kind, data, after, lease).await {
            state.documents.insert(channel.clone(), document);
            return patch_bytes;
        }
        if let Some(restored) = restored {
            state.documents.insert(channel.clone(), restored);
        }
        // Not delivered: the next poll must not be answered "not modified".
        state.etag = None;
        state.last_modified = None;
        0
    }

    async fn publish_error(
        &self,
        feed: &Feed<Part>,
        failure: &Failure,
        session: &str,
        lease: &Lease,
    ) {
        tracing::debug!(
            status = failure.status,
            cause = failure.cause,
            "poll failed"
        );
        let error = StateData::Text(failure.to_json(session).to_string().into());
        self.publish(feed, StateKind::Error, error, None, lease)
            .await;
    }

    /// Appends one event to a part's channel; false when the store could not keep it (then
    /// nobody saw it, and the next poll diffs against what they did see).
    async fn publish(
        &self,
        feed: &Feed<Part>,
        kind: StateKind,
        data: StateData,
        document: Option<Arc<Document>>,
        lease: &Lease,
    ) -> bool {
        let update = StateUpdate {
            kind,
            stream: Arc::clone(&feed.part.stream),
            data,
            document,
        };
        let appended = self
            .hub
            .append(&feed.channel, Append::State(update), Some(lease));
        let appended = appended.await;
        if let Err(e) = &appended {
            tracing::warn!("a polled document was not delivered: {e}");
        }
        appended.is_ok()
    }
}

/// Where a topic's polls fall within its interval, from its key: topics started together
/// (a restart, a client opening many streams) do not all poll at the same instant.
fn phase(key: &str, interval: Duration) -> Duration {
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    let interval_ns = interval.as_nanos().clamp(1, u128::from(u64::MAX)) as u64;
    Duration::from_nanos(hasher.finish() % interval_ns)
}

/// The first slot after `slot` on its `interval` schedule that is not past `now`, and how
/// many were skipped because a poll was still running when they were due.
fn next_slot(slot: Instant, interval: Duration, now: Instant) -> (Instant, u64) {
    let due = slot + interval;
    if due >= now {
        return (due, 0);
    }
    let interval = interval.max(Duration::from_millis(1));
    let skipped = ((now - due).as_nanos() / interval.as_nanos()) as u32 + 1;
    (due + interval * skipped, u64::from(skipped))
}

#[derive(Default)]
struct PollState {
    /// The last document of each selected part, by channel.
    documents: HashMap<String, Arc<Document>>,
    /// The selected parts whose pointer matched nothing in the last document, by channel:
    /// their subscribers have been told so.
    missing: HashSet<String>,
    /// The last whole document: later polls may be conditional.
    whole: Option<Arc<Document>>,
    etag: Option<HeaderValue>,
    last_modified: Option<HeaderValue>,
}

impl PollState {
    /// Forgets a part that was dropped: it starts afresh if it is asked for again.
    fn forget(&mut self, channel: &str) {
        self.documents.remove(channel);
        self.missing.remove(channel);
    }
}

/// Reads the body, refusing more than `max` bytes (announced or actual).
async fn read_capped(response: &mut reqwest::Response, max: usize) -> Result<Vec<u8>, Failure> {
    let too_large = || Failure {
        status: status::TOO_LARGE,
        cause: "size",
        message: format!("the target's body is larger than {max} bytes ([poll] max_body_bytes)"),
    };
    if response.content_length().is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(classify)? {
        if body.len() + chunk.len() > max {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_missed_while_polling_is_skipped_not_made_up() {
        let start = Instant::now();
        let ms = Duration::from_millis;
        // On time: the next slot is one interval after the last.
        assert_eq!(
            next_slot(start, ms(300), start + ms(150)),
            (start + ms(300), 0)
        );
        // A poll that ran past one slot (or two) goes on at the first slot still ahead.
        assert_eq!(
            next_slot(start, ms(300), start + ms(350)),
            (start + ms(600), 1)
        );
        assert_eq!(
            next_slot(start, ms(300), start + ms(650)),
            (start + ms(900), 2)
        );
    }

    #[test]
    fn phases_are_within_the_interval_and_differ_by_topic() {
        let interval = Duration::from_millis(1000);
        let phases: HashSet<Duration> = (0..100)
            .map(|n| phase(&format!("[poll]GET https://api.example.com/{n}"), interval))
            .collect();
        assert!(phases.iter().all(|p| *p < interval));
        assert!(phases.len() > 90, "{} distinct phases of 100", phases.len());
    }
}
