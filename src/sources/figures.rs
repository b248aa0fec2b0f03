//! The gateway's own figures, once a second, as messages of the channel `hub::FIGURES`: what
//! the landing page (`GET /`) charts live over `GET /figures`. They are node-wide sums
//! only, never a channel's, a topic's or a client's name: anyone may read them, as anyone
//! may read `/metrics`. The channel is never kept (a restart starts the chart again) and
//! never shared with other nodes: each node tells its own.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::poller::Pollers;
use super::relay::Relays;
use crate::hub::{Append, FIGURES, Hub, NewMessage};
use crate::metrics::Counts;

/// How often the figures are taken.
const EVERY: Duration = Duration::from_secs(1);

/// Publishes the figures every second, for as long as the process runs.
pub async fn publish(hub: Arc<Hub>, pollers: Arc<Pollers>, relays: Arc<Relays>) {
    let mut ticks = tokio::time::interval(EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is at once: the first rates are of the second after it.
    ticks.tick().await;
    let mut last = (Instant::now(), hub.metrics().counts());
    loop {
        ticks.tick().await;
        let now = (Instant::now(), hub.metrics().counts());
        let rates = Rates::between(last, now);
        last = now;
        let (topics, failing) = pollers.tally();
        let (upstreams, connected) = relays.tally();
        let data = json!({
            "time": crate::clock::now_ms(),
            "connections": hub.outlets(),
            "channels": hub.channel_count(),
            "publishedPerSecond": rates.published,
            "deliveredPerSecond": rates.delivered,
            "pollsPerSecond": rates.polls,
            "polledTopics": topics,
            "failingTopics": failing,
            "relayUpstreams": upstreams,
            "relayUpstreamsConnected": connected,
        });
        let message = NewMessage {
            id: None,
            name: Some("figures".to_owned()),
            encoding: None,
            data,
        };
        if let Err(e) = hub
            .append(FIGURES, Append::Messages(vec![message]), None)
            .await
        {
            tracing::debug!("the figures were not published: {e}");
        }
    }
}

/// Events per second between two readings.
struct Rates {
    published: f64,
    delivered: f64,
    polls: f64,
}

impl Rates {
    fn between((then, before): (Instant, Counts), (now, after): (Instant, Counts)) -> Rates {
        let seconds = now.duration_since(then).as_secs_f64().max(0.001);
        // One decimal is all a chart shows.
        let rate = |a: u64, b: u64| (b.saturating_sub(a) as f64 / seconds * 10.0).round() / 10.0;
        Rates {
            published: rate(before.published, after.published),
            delivered: rate(before.delivered, after.delivered),
            polls: rate(before.polls, after.polls),
        }
    }
}
