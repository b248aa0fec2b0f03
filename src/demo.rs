//! `serve --demo`: a built-in, changing stock-ticker API, so a newcomer sees a live stream in
//! one command. `GET /demo/quotes` answers the current list, and is configured as the API
//! `demo` (stream it at `/apis/demo/quotes`); every tick the list is also published on the
//! channel `demo-quotes`, and sent as an SSE event by `GET /demo/ticks`, an upstream SSE
//! server that the shared relay `demo` fronts at `/relays/demo/ticks`. `GET /demo` is a page
//! that shows the quotes as a live table, and a channel, through the JavaScript client.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use rand::Rng;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::config::{ApiConfig, Config, RelayConfig};
use crate::hub::{Append, Hub, NewMessage};

pub const CHANNEL: &str = "demo-quotes";
const TICK: Duration = Duration::from_secs(1);
/// Symbol, company and starting price. The names make each quote a realistic row, so a
/// patch of changed prices stays smaller than the list even when every price moved (the
/// ad-hoc form polls every 5 s by default).
const SYMBOLS: [(&str, &str, f64); 8] = [
    ("AAPL", "Apple Inc.", 228.0),
    ("MSFT", "Microsoft Corporation", 415.0),
    ("GOOG", "Alphabet Inc.", 171.0),
    ("AMZN", "Amazon.com, Inc.", 186.0),
    ("NVDA", "NVIDIA Corporation", 131.0),
    ("META", "Meta Platforms, Inc.", 560.0),
    ("TSLA", "Tesla, Inc.", 250.0),
    ("NFLX", "Netflix, Inc.", 710.0),
];

type Quotes = Arc<Mutex<Vec<f64>>>;

/// Each tick as an SSE event, for `/demo/ticks` streams.
type Ticks = broadcast::Sender<bytes::Bytes>;

/// Adds the API `demo` (this server's `/demo/`) to the config, polled every second.
pub fn register(config: &mut Config, local: SocketAddr) {
    // A wildcard listen address is reached on loopback.
    let ip = match local.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => IpAddr::from([127, 0, 0, 1]),
        ip if ip.is_unspecified() => IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let base = format!("http://{}/demo", SocketAddr::new(ip, local.port()));
    let relay = format!("name = 'demo'\nlisten_path = '/relays/demo'\nupstream = '{base}'");
    config
        .relays
        .push(toml::from_str::<RelayConfig>(&relay).expect("the demo relay is valid"));
    config.apis.push(ApiConfig {
        name: "demo".into(),
        base_url: base.parse().expect("a socket address makes a valid URL"),
        headers: Default::default(),
        query: Default::default(),
        interval_ms: Some(TICK.as_millis() as u64),
    });
}

/// Starts the ticker and returns the demo routes.
pub fn start(hub: Arc<Hub>) -> Router {
    let quotes: Quotes = Arc::new(Mutex::new(SYMBOLS.iter().map(|(_, _, p)| *p).collect()));
    let (ticks, _) = broadcast::channel(16);
    tokio::spawn(tick(hub, Arc::clone(&quotes), ticks.clone()));
    Router::new()
        .route("/demo", get(page))
        .route("/demo/quotes", get(current))
        .with_state(quotes)
        .route("/demo/ticks", get(stream_ticks).with_state(ticks))
}

/// An upstream SSE server: one `tick` event per tick, from now on.
async fn stream_ticks(State(ticks): State<Ticks>) -> impl IntoResponse {
    let events = futures_util::stream::unfold(ticks.subscribe(), |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(event) => return Some((Ok::<_, std::convert::Infallible>(event), rx)),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    (
        [(header::CONTENT_TYPE, "text/event-stream")],
        Body::from_stream(events),
    )
}

/// `GET /demo`: the quotes as a live table and a channel to write on, built on the
/// JavaScript client.
async fn page() -> axum::response::Html<&'static str> {
    axum::response::Html(include_str!("../clients/demo.html"))
}

async fn current(State(quotes): State<Quotes>) -> impl IntoResponse {
    axum::Json(document(&quotes.lock().unwrap()))
}

async fn tick(hub: Arc<Hub>, quotes: Quotes, ticks: Ticks) {
    let mut interval = tokio::time::interval(TICK);
    for n in 1u64.. {
        interval.tick().await;
        let doc = {
            let mut prices = quotes.lock().unwrap();
            let mut rng = rand::rng();
            // A random walk on a few symbols per tick, like a real feed between trades.
            for _ in 0..3 {
                let i = rng.random_range(0..prices.len());
                prices[i] = (prices[i] * (1.0 + rng.random_range(-0.01..0.01))).max(1.0);
            }
            document(&prices)
        };
        // Nobody streaming the ticks is not an error.
        let _ = ticks.send(bytes::Bytes::from(format!(
            "id: {n}\nevent: tick\ndata: {doc}\n\n"
        )));
        let quotes = NewMessage {
            id: None,
            name: Some("quotes".into()),
            encoding: None,
            data: doc,
        };
        if let Err(e) = hub
            .append(CHANNEL, Append::Messages(vec![quotes]), None)
            .await
        {
            tracing::warn!("the demo could not publish a tick: {e}");
        }
    }
}

fn document(prices: &[f64]) -> Value {
    let quotes: Vec<Value> = SYMBOLS
        .iter()
        .zip(prices)
        .map(|((symbol, name, _), price)| {
            let price: serde_json::Number = format!("{price:.2}").parse().expect("a decimal");
            json!({
                "symbol": symbol,
                "name": name,
                "exchange": "NASDAQ",
                "currency": "USD",
                "price": price,
            })
        })
        .collect();
    json!({ "quotes": quotes })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch::{Delta, delta};
    use crate::wire::document::Document;

    #[test]
    fn a_patch_of_every_price_is_smaller_than_the_list() {
        let before: Vec<f64> = SYMBOLS.iter().map(|(_, _, p)| *p).collect();
        let after: Vec<f64> = before.iter().map(|p| p * 1.0099).collect();
        let (before, after) = (document(&before), document(&after));
        let patch = delta(
            &Document::from_value(&before),
            &Document::from_value(&after),
        );
        assert!(
            matches!(patch, Delta::Patch(_)),
            "the demo would send data only"
        );
    }
}
