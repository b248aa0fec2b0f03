//! The parts of a polled topic that other nodes' clients watch, when nodes share a bus.
//!
//! One node polls a topic for the cluster (the holder of its lease), and it feeds the parts
//! (selected pointers) its own clients watch. A node standing by tells it, through the bus,
//! which parts its clients watch and at what interval, every second; a wish lapses 3 s after
//! it was last told. The holder reads the wishes before each poll, at most once a second, and
//! feeds those parts too: a client watching a part on any node gets it, whichever node
//! polls.

use std::time::Duration;

use tokio::time::Instant;

use super::poller::Part;
use super::supervisor::Feed;
use super::topic::{ApiRef, Topic};
use crate::hub::{Hub, Lease};

/// How often a node tells its wishes, and the holder reads them.
const WANT_EVERY: Duration = Duration::from_secs(1);
/// How long a wish lasts unless told again.
const WANT_FOR: Duration = Duration::from_secs(3);

/// What a poller run knows of other nodes' parts.
#[derive(Default)]
pub(super) struct Wanted {
    /// The parts other nodes want that this node does not feed for its own clients.
    elsewhere: Vec<Feed<Part>>,
    /// When the bus was last told or asked.
    last: Option<Instant>,
}

impl Wanted {
    /// Standing by: tells the holder the parts `feeds` this node's clients watch, at
    /// `interval_ms` (at most every `WANT_EVERY`). What this node knew of other nodes'
    /// wishes is dropped: the holder reads them anew.
    pub(super) async fn tell(
        &mut self,
        hub: &Hub,
        lease: &Lease,
        feeds: &[Feed<Part>],
        interval_ms: u64,
    ) {
        self.elsewhere.clear();
        if !self.due() {
            return;
        }
        let parts: Vec<(String, u64)> = feeds
            .iter()
            .map(|feed| (part_name(&feed.part.select), interval_ms))
            .collect();
        if let Err(e) = hub.want(lease, &parts, WANT_FOR).await {
            tracing::debug!("the parts this node watches were not told: {e}");
        }
    }

    /// Holding the lease: reads the parts other nodes want (at most every `WANT_EVERY`)
    /// and keeps those that `local` lacks, each brought up to what the bus holds when it
    /// joins (this node's copy may lag: it fed none of them); `forget` is given each part
    /// this node feeds no more. Returns the shortest interval asked for, if any.
    pub(super) async fn refresh(
        &mut self,
        hub: &Hub,
        lease: &Lease,
        topic: &Topic,
        local: &[Feed<Part>],
        mut forget: impl FnMut(&str),
    ) -> Option<u64> {
        if !self.due() {
            return None;
        }
        let wished = match hub.wanted(lease).await {
            Ok(wished) => wished,
            Err(e) => {
                tracing::debug!("the parts other nodes watch were not read: {e}");
                return None;
            }
        };
        let mut elsewhere: Vec<Feed<Part>> = Vec::new();
        let mut shortest = None;
        for (name, interval_ms) in wished {
            let Some(select) = part_select(&name) else {
                continue;
            };
            shortest = Some(shortest.map_or(interval_ms, |s: u64| s.min(interval_ms)));
            let part = Topic::new(
                topic.url.clone(),
                topic.headers.clone(),
                select,
                topic.interval,
            );
            // A configured API's part is named as its own clients name it.
            let part = match &topic.api {
                Some(api) => part.of_api(ApiRef::clone(api), hub.secret()),
                None => part,
            };
            let fed = |feeds: &[Feed<Part>]| feeds.iter().any(|f| f.channel == part.channel);
            if fed(local) || fed(&elsewhere) {
                continue;
            }
            let feed = Part {
                select: part.select,
                stream: part.stream,
            };
            elsewhere.push(Feed::new(part.channel, feed));
        }
        let joined: Vec<String> = elsewhere
            .iter()
            .filter(|f| {
                !self
                    .elsewhere
                    .iter()
                    .any(|known| known.channel == f.channel)
            })
            .map(|f| f.channel.clone())
            .collect();
        if let Err(e) = hub.settle(&joined).await {
            // Fed from the next read on.
            tracing::debug!("parts other nodes watch were not read back: {e}");
            elsewhere.retain(|f| !joined.contains(&f.channel));
            self.last = None;
        }
        for gone in &self.elsewhere {
            let fed = |feeds: &[Feed<Part>]| feeds.iter().any(|f| f.channel == gone.channel);
            if !fed(&elsewhere) && !fed(local) {
                forget(&gone.channel);
            }
        }
        self.elsewhere = elsewhere;
        shortest
    }

    /// A node that takes the lease anew reads every wish at once, and reads each part back.
    pub(super) fn taken(&mut self) {
        *self = Wanted::default();
    }

    /// The parts other nodes want that this node feeds besides its own.
    pub(super) fn elsewhere(&self) -> &[Feed<Part>] {
        &self.elsewhere
    }

    fn due(&mut self) -> bool {
        if self.last.is_some_and(|last| last.elapsed() < WANT_EVERY) {
            return false;
        }
        self.last = Some(Instant::now());
        true
    }
}

/// A part as the bus names it: `` for the whole document, `=` and the pointer otherwise.
fn part_name(select: &Option<String>) -> String {
    match select {
        Some(pointer) => format!("={pointer}"),
        None => String::new(),
    }
}

/// The pointer a part's name gives (`None` inside for the whole document); `None` when the
/// name is not one `part_name` makes.
fn part_select(name: &str) -> Option<Option<String>> {
    match name {
        "" => Some(None),
        _ => name.strip_prefix('=').map(|p| Some(p.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_names_read_back() {
        for select in [None, Some(String::new()), Some("/items/7".to_owned())] {
            assert_eq!(part_select(&part_name(&select)), Some(select));
        }
        assert_eq!(part_select("/items"), None);
    }
}
