//! The lifecycle pollers and relays share: a registry of running sources by topic, each
//! started by its topic's first subscriber and stopped once nobody has watched it for its
//! linger time.
//!
//! A run feeds one channel or more (a relay one, a poller one per selected part). A channel
//! nobody watches lingers on its own, then is dropped: a state channel forgets its document,
//! so a later subscriber starts from the source's next fresh `data`, never from a stale one
//! (a log channel keeps its history). A run whose last channel is dropped leaves the
//! registry and stops. A run also carries what its
//! `error` events need: the random session id naming it, its consecutive failures (the
//! backoff's exponent) and which failures its channels have been told.
//!
//! `Supervisor::ensure` is the only place a run starts and `Run::watch` the only place it
//! decides to go on. Whether this node feeds the run's channels, when nodes share a bus, is
//! the run's cluster lease (`Run::hold`): a run without it stands by. The run renews it
//! whatever the source waits for (a request, an upstream connecting, a backoff), so a slow
//! or failing upstream never makes it change hands, and gives it back when it stops.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use super::failure::Failure;
use crate::hub::{Hub, Lease};

/// How often a run looks whether anyone still watches its channels.
pub const WATCH_SLICE: Duration = Duration::from_millis(100);

/// How long a node's lease on a source lasts unless renewed (nodes sharing a bus): how
/// soon another node takes over when this one dies.
pub const LEASE_TTL: Duration = Duration::from_secs(3);
/// How often the holder renews its lease.
pub const LEASE_RENEW: Duration = Duration::from_millis(1000);
/// How often a node without the lease tries to take it.
pub const LEASE_RETRY: Duration = Duration::from_millis(500);

/// The running sources, by topic key.
type Registry<S, P> = Arc<Mutex<HashMap<String, Arc<Running<S, P>>>>>;

/// The running sources of one kind: `S` is what a run shares with `ensure` and the stats,
/// `P` what the source keeps about each channel it feeds.
pub struct Supervisor<S, P> {
    /// What the logs call the source: "poller", "relay".
    name: &'static str,
    hub: Arc<Hub>,
    retell: Tell,
    registry: Registry<S, P>,
}

/// Which failures a source tells its subscribers again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tell {
    /// Each failure as it changes, so one that comes back after another is told again: a
    /// state channel keeps its latest error for new subscribers, which must be the current
    /// one (pollers).
    Changes,
    /// Each distinct failure once until the source works again: an upstream that flaps
    /// between failures while reconnecting is not repeated (relays).
    Distinct,
}

/// A running source as the registry holds it.
struct Running<S, P> {
    shared: S,
    feeds: Mutex<Vec<Feed<P>>>,
}

/// A channel a run feeds.
#[derive(Clone)]
pub struct Feed<P> {
    pub channel: String,
    /// What the source keeps about the channel (a poller's selected part).
    pub part: P,
    /// Since when nobody watches it; dropped after the linger.
    idle_since: Option<Instant>,
}

/// Who watches a running source, for the admin stats.
pub struct Watchers {
    /// The channels it feeds.
    pub channels: usize,
    pub subscribers: usize,
}

/// One run of a source, held by its task from start to stop.
pub struct Run<S, P> {
    /// A random id naming this run in its `error` events.
    pub session: String,
    name: &'static str,
    key: String,
    linger: Duration,
    hub: Arc<Hub>,
    registry: Registry<S, P>,
    running: Arc<Running<S, P>>,
    /// Consecutive failures.
    failures: u32,
    retell: Tell,
    /// The failures told since the source last worked, each with the channels told it.
    told: Vec<(Failure, HashSet<String>)>,
    /// The failure last logged: the log says each change of state once, not each attempt.
    logged: Option<Failure>,
    lease: Lease,
}

/// Whether a run may feed its channels now (`Run::hold`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Another node does: stand by.
    Refused,
    /// This node did and still does.
    Kept,
    /// This node does from now on, and its mirrors of the channels hold what the bus holds:
    /// go on from them, not from what the run kept, which another node may have moved past.
    Taken,
}

/// What a look at the run found (`Run::tend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tended {
    GoOn,
    /// Nobody watches the run's channels any more: it has stopped.
    Unwatched,
    /// The lease was lost, or taken anew: stop feeding, and `hold` again.
    LeaseLost,
}

impl<P> Feed<P> {
    pub fn new(channel: String, part: P) -> Feed<P> {
        Feed {
            channel,
            part,
            idle_since: None,
        }
    }
}

impl<S, P> Supervisor<S, P> {
    pub fn new(name: &'static str, hub: Arc<Hub>, retell: Tell) -> Self {
        Supervisor {
            name,
            hub,
            retell,
            registry: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Makes sure the topic `key` runs and feeds `feed`; call after subscribing to the
    /// feed's channel (its run cannot stop meanwhile: it re-checks under the same lock).
    /// A new run is returned for the caller's task to drive; a running one is left to its
    /// task, `join` telling its shared part about the newcomer.
    pub fn ensure(
        &self,
        key: &str,
        linger: Duration,
        feed: Feed<P>,
        start: impl FnOnce() -> S,
        join: impl FnOnce(&S),
    ) -> Option<Run<S, P>> {
        let mut registry = self.registry.lock().unwrap();
        if let Some(running) = registry.get(key) {
            join(&running.shared);
            let mut feeds = running.feeds.lock().unwrap();
            match feeds.iter_mut().find(|f| f.channel == feed.channel) {
                Some(known) => known.idle_since = None,
                None => feeds.push(feed),
            }
            return None;
        }
        let running = Arc::new(Running {
            shared: start(),
            feeds: Mutex::new(vec![feed]),
        });
        registry.insert(key.to_owned(), Arc::clone(&running));
        let session = format!("{:016x}", rand::rng().random::<u64>());
        tracing::debug!(session, "{} started", self.name);
        Some(Run {
            session,
            name: self.name,
            key: key.to_owned(),
            linger,
            hub: Arc::clone(&self.hub),
            registry: Arc::clone(&self.registry),
            running,
            failures: 0,
            retell: self.retell,
            told: Vec::new(),
            logged: None,
            lease: self.hub.lease(key),
        })
    }

    /// `f` of each running source's shared part and watchers, for the admin stats.
    pub fn stats<T>(&self, mut f: impl FnMut(&S, Watchers) -> T) -> Vec<T> {
        let registry = self.registry.lock().unwrap();
        registry
            .values()
            .map(|running| {
                let feeds = running.feeds.lock().unwrap();
                let subscribers = feeds
                    .iter()
                    .filter_map(|feed| self.hub.get(&feed.channel))
                    .map(|channel| channel.subscriber_count())
                    .sum();
                let watchers = Watchers {
                    channels: feeds.len(),
                    subscribers,
                };
                f(&running.shared, watchers)
            })
            .collect()
    }
}

impl<S, P> Drop for Run<S, P> {
    /// Another node may take the lease at once.
    fn drop(&mut self) {
        self.hub.release(&mut self.lease);
    }
}

/// What a run's logs call its upstream: its URL without secrets.
pub trait Shown {
    fn shown(&self) -> &str;
}

impl<S: Shown, P: Clone> Run<S, P> {
    /// Counts a failure; how many in a row, from which the source picks its backoff.
    /// Logged when it is not the failure logged last.
    pub fn failed(&mut self, failure: &Failure) -> u32 {
        self.failures += 1;
        if self.logged.as_ref() != Some(failure) {
            let (name, shown) = (self.name, self.shared().shown());
            let message = &failure.message;
            // An upstream ending its stream is reconnected as EventSource would.
            if failure.status == super::failure::status::CLOSED {
                tracing::info!("{name} of {shown}: {message}; reconnecting");
            } else {
                tracing::warn!("{name} of {shown} failed: {message}; retrying, backing off");
            }
            self.logged = Some(failure.clone());
        }
        self.failures
    }

    /// The upstream works again: failures count from zero and are all told anew; logged if
    /// a failure was.
    pub fn recovered(&mut self) {
        if let Some(failure) = self.logged.take()
            && failure.status != super::failure::status::CLOSED
        {
            let (name, shown, failures) = (self.name, self.shared().shown(), self.failures);
            tracing::info!("{name} of {shown} works again, after {failures} failed attempt(s)");
        }
        self.failures = 0;
        self.told.clear();
    }
}

impl<S, P: Clone> Run<S, P> {
    /// What the run shares with `ensure` and the stats.
    pub fn shared(&self) -> &S {
        &self.running.shared
    }

    /// The channels the run feeds now.
    pub fn feeds(&self) -> Vec<Feed<P>> {
        self.running.feeds.lock().unwrap().clone()
    }

    /// One look at the run's channels. One nobody has watched for the linger time is
    /// dropped, and `forget` is given its name: what the source kept for it would only grow
    /// stale, and the channel starts afresh if it is asked for again. False once the last
    /// channel is gone: the run has left the registry and must stop.
    pub fn watch(&mut self, mut forget: impl FnMut(&str)) -> bool {
        let mut feeds = self.running.feeds.lock().unwrap();
        feeds.retain_mut(|feed| {
            let channel = self.hub.get(&feed.channel);
            if channel.as_ref().is_some_and(|c| c.subscriber_count() > 0) {
                feed.idle_since = None;
                return true;
            }
            if feed.idle_since.get_or_insert_with(Instant::now).elapsed() < self.linger {
                return true;
            }
            // Refused when a subscriber arrived meanwhile: the channel is watched after all.
            // (A log channel has no state to forget: only the refusal matters.)
            if !channel.is_none_or(|c| self.hub.retire_state(&c)) {
                feed.idle_since = None;
                return true;
            }
            for (_, told) in &mut self.told {
                told.remove(&feed.channel);
            }
            forget(&feed.channel);
            false
        });
        if !feeds.is_empty() {
            return true;
        }
        drop(feeds);
        let mut registry = self.registry.lock().unwrap();
        // Re-checked under the registry lock: `ensure`, which runs after subscribing, may
        // have given the run a channel again meanwhile.
        if !self.running.feeds.lock().unwrap().is_empty() {
            return true;
        }
        registry.remove(&self.key);
        tracing::debug!(
            session = self.session,
            "{} stopped: no subscribers",
            self.name
        );
        false
    }

    /// The run's lease, which every append of its events carries.
    pub fn lease(&self) -> &Lease {
        &self.lease
    }

    /// Takes or renews the run's lease. When taken anew, the run's channels are first
    /// brought up to what the bus holds; were that impossible the lease is given back.
    pub async fn hold(&mut self) -> Claim {
        if !self.hub.hold(&mut self.lease, LEASE_TTL).await {
            return Claim::Refused;
        }
        if !self.lease.fresh() {
            return Claim::Kept;
        }
        let names: Vec<String> = self.feeds().into_iter().map(|f| f.channel).collect();
        match self.hub.settle(&names).await {
            Ok(()) => {
                self.lease.settled();
                Claim::Taken
            }
            Err(e) => {
                tracing::debug!("{} gave its lease back: {e}", self.name);
                self.hub.release(&mut self.lease);
                Claim::Refused
            }
        }
    }

    /// One look at the run (see `watch`), renewing the lease when it is held and due.
    pub async fn tend(&mut self, forget: impl FnMut(&str)) -> Tended {
        if !self.watch(forget) {
            return Tended::Unwatched;
        }
        if self.lease.due(LEASE_RENEW) {
            let held = self.hub.hold(&mut self.lease, LEASE_TTL).await;
            // Taken anew means it lapsed: another node may have fed the channels.
            if !held || self.lease.fresh() {
                return Tended::LeaseLost;
            }
        }
        Tended::GoOn
    }

    /// Awaits `work` while renewing the lease; `None` (and `work` dropped) once the lease
    /// is lost, as another node may be feeding the channels by then.
    pub async fn holding<F: Future>(&mut self, work: F) -> Option<F::Output> {
        // Without a lease to renew (no shared bus) the work is simply awaited.
        if !self.lease.held() {
            return Some(work.await);
        }
        let mut work = std::pin::pin!(work);
        loop {
            let renew = LEASE_RENEW.saturating_sub(self.lease.renewed_ago());
            tokio::select! {
                done = &mut work => return Some(done),
                () = tokio::time::sleep(renew) => {
                    let held = self.hub.hold(&mut self.lease, LEASE_TTL).await;
                    if !held || self.lease.fresh() {
                        return None;
                    }
                }
            }
        }
    }

    /// Sleeps until `deadline`, watching every `WATCH_SLICE` and renewing the lease (see
    /// `tend`); false once the run must stop. A lease lost meanwhile is for the next `hold`
    /// to find.
    pub async fn sleep_until(&mut self, deadline: Instant, mut forget: impl FnMut(&str)) -> bool {
        loop {
            if self.tend(&mut forget).await == Tended::Unwatched {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            tokio::time::sleep((deadline - now).min(WATCH_SLICE)).await;
        }
    }

    /// Whether `channel` is yet to be told `failure` (see `Tell`); from now on it has been.
    pub fn tell(&mut self, failure: &Failure, channel: &str) -> bool {
        if self.retell == Tell::Changes && self.told.last().is_some_and(|(f, _)| f != failure) {
            self.told.clear();
        }
        let index = match self.told.iter().position(|(f, _)| f == failure) {
            Some(index) => index,
            None => {
                self.told.push((failure.clone(), HashSet::new()));
                self.told.len() - 1
            }
        };
        self.told[index].1.insert(channel.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::{ChannelKind, HistoryLimits, Wake};
    use crate::metrics::Metrics;

    fn supervisor(tell: Tell) -> Supervisor<(), ()> {
        let limits = HistoryLimits {
            size: 100,
            ttl_ms: u64::MAX,
            state_bytes: 1 << 20,
        };
        let hub = Arc::new(Hub::new(limits, Metrics::install().0));
        Supervisor::new("test", hub, tell)
    }

    fn start(
        supervisor: &Supervisor<(), ()>,
        channel: &str,
        linger: Duration,
    ) -> Option<Run<(), ()>> {
        let feed = Feed::new(channel.to_owned(), ());
        supervisor.ensure("topic", linger, feed, || (), |_| {})
    }

    fn subscribe(supervisor: &Supervisor<(), ()>, channel: &str) -> impl Drop {
        let wake = Arc::new(Wake::default());
        supervisor.hub.subscribe(channel, ChannelKind::Log, wake)
    }

    impl Shown for () {
        fn shown(&self) -> &str {
            "the test's upstream"
        }
    }

    fn failure(status: u16) -> Failure {
        Failure {
            status,
            cause: "status",
            message: format!("the target answered {status}"),
        }
    }

    /// Of the failures that happen in turn, those told to one channel.
    fn told(tell: Tell, happen: &[u16]) -> Vec<u16> {
        let supervisor = supervisor(tell);
        let mut run = start(&supervisor, "topic", Duration::ZERO).unwrap();
        let mut told = Vec::new();
        for &status in happen {
            if run.tell(&failure(status), "topic") {
                told.push(status);
            }
        }
        told
    }

    #[test]
    fn each_failure_is_told_once_to_each_channel_and_anew_after_recovery() {
        let supervisor = supervisor(Tell::Distinct);
        let mut run = start(&supervisor, "topic", Duration::ZERO).unwrap();
        let (a, b) = (failure(503), failure(404));
        assert!(run.tell(&a, "one"));
        assert!(!run.tell(&a, "one"), "told once");
        assert!(run.tell(&a, "two"), "each channel is told");
        assert!(run.tell(&b, "one"));
        assert_eq!((run.failed(&a), run.failed(&a)), (1, 2));
        run.recovered();
        assert!(run.tell(&b, "one"), "told anew after recovery");
        assert_eq!(run.failed(&b), 1);
    }

    #[test]
    fn a_failure_that_comes_back_is_told_again_only_as_a_change() {
        assert_eq!(told(Tell::Changes, &[503, 503, 404, 503]), [503, 404, 503]);
        assert_eq!(told(Tell::Distinct, &[503, 503, 404, 503]), [503, 404]);
    }

    #[test]
    fn each_channel_lingers_on_its_own_and_the_run_stops_with_the_last() {
        let supervisor = supervisor(Tell::Changes);
        let mut run = start(&supervisor, "whole", Duration::ZERO).unwrap();
        assert!(
            start(&supervisor, "part", Duration::ZERO).is_none(),
            "one run per topic"
        );
        let watching = subscribe(&supervisor, "part");
        let mut forgotten = Vec::new();
        assert!(run.watch(|channel| forgotten.push(channel.to_owned())));
        assert_eq!(forgotten, ["whole"]);
        assert_eq!(
            supervisor.stats(|_, w| (w.channels, w.subscribers)),
            [(1, 1)]
        );
        drop(watching);
        assert!(!run.watch(|channel| forgotten.push(channel.to_owned())));
        assert_eq!(forgotten, ["whole", "part"]);
        assert!(supervisor.stats(|_, _| ()).is_empty(), "deregistered");
        assert!(
            start(&supervisor, "whole", Duration::ZERO).is_some(),
            "started anew"
        );
    }

    #[test]
    fn an_unwatched_channel_lingers() {
        let supervisor = supervisor(Tell::Distinct);
        let mut run = start(&supervisor, "topic", Duration::from_secs(60)).unwrap();
        assert!(run.watch(|_| panic!("dropped before its linger")));
        assert_eq!(supervisor.stats(|_, w| w.channels), [1]);
    }
}
