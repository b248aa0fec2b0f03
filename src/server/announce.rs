//! What the gateway serves, said once at start-up: a line per address, API, relay and
//! surface, so an operator reading the log knows what this process does. Upstreams are
//! named by host only: their URLs may carry credentials.

use std::net::SocketAddr;

use crate::config::Config;

/// Logs what `config` serves at `addr`.
pub fn announce(config: &Config, addr: SocketAddr, tls: bool, demo: bool) {
    let base = format!("{}://{addr}", if tls { "https" } else { "http" });
    let protocols = if tls {
        "HTTP/2 and HTTP/1.1 over TLS"
    } else {
        "HTTP/1.1 (and h2c)"
    };
    tracing::info!("listening on {base} ({protocols}); landing page {base}/");
    tracing::info!(
        "pub/sub channels at {base}/channels/{{channel}}/messages, streams at {base}/sse"
    );
    for api in &config.apis {
        let every = api.interval_ms.unwrap_or(config.poll.interval_ms);
        tracing::info!(
            "API {} at {base}/apis/{}/{{path}}: polls {} every {every} ms",
            api.name,
            api.name,
            api.base_url.host_str().unwrap_or("its upstream")
        );
    }
    if !config.poll.allowed_targets.is_empty() {
        tracing::info!(
            "ad-hoc polls at {base}/{{url}} of URLs matching {} pattern(s) of [poll] \
             allowed_targets",
            config.poll.allowed_targets.len()
        );
    }
    for relay in &config.relays {
        tracing::info!(
            "relay {} at {base}{}: relays {}",
            relay.name,
            relay.listen_path,
            relay.upstream.host_str().unwrap_or("its upstream")
        );
    }
    if config.mercure.is_some() {
        tracing::info!("Mercure hub at {base}/.well-known/mercure");
    }
    if demo {
        tracing::info!(
            "demo: the page {base}/demo, the API {base}/apis/demo/quotes (changes every \
             second), the channel demo-quotes"
        );
    }
    if let Some(dir) = &config.bus.data_dir {
        tracing::info!("channels and connections kept in {}", dir.display());
    }
}
