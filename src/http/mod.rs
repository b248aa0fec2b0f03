//! The HTTP surface: the router and one file per group of endpoints.

pub mod access;
mod admin;
mod asyncapi;
mod channels;
mod client;
pub mod connections;
mod docs;
mod error;
mod figures;
mod health;
mod landing;
pub mod limits;
pub mod mercure;
mod passthrough;
mod polls;
mod presence;
pub(crate) mod query;
mod relays;
mod request_body;
pub mod requests;
mod stream_params;
mod streams;
pub mod watched;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::response::Response;
use axum::routing::{delete, get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::watch;

use crate::auth::Auth;
use crate::catalog::Catalog;
use crate::config::Config;
use crate::hub::Hub;
use crate::outlet::registry::Connections;
use crate::sources::poller::Pollers;
use crate::sources::relay::Relays;
use crate::sources::upstream::Upstream;
use crate::wire::envelope::{ErrorInfo, codes};
pub use error::{ApiError, Segments};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub hub: Arc<Hub>,
    /// The static parts of the config (APIs, relays and keys: see `catalog`).
    pub config: Arc<Config>,
    /// The APIs, relays and keys as the admin API leaves them.
    pub catalog: Arc<Catalog>,
    pub auth: Arc<Auth>,
    pub prometheus: PrometheusHandle,
    /// Flips to `true` when the server shuts down; open streams end on it.
    pub shutdown: watch::Receiver<bool>,
    pub pollers: Arc<Pollers>,
    /// Shared relays' upstream connections.
    pub relays: Arc<Relays>,
    /// The client for every upstream request (polls, relays, passthrough), and what ad-hoc
    /// poll targets may be.
    pub upstream: Upstream,
    /// Connections addressable by id (dynamic ones, and those with server-kept cursors).
    pub connections: Arc<Connections>,
    /// `[limits] publish_rate_per_key`, per publisher.
    pub publish_rate: Arc<limits::PublishRate>,
    /// The Mercure hub's token keys, when `[mercure]` is on.
    pub mercure: Option<Arc<mercure::MercureKeys>>,
}

/// Where a channel's messages are published (`POST`) and read back (`GET`); a publish's
/// body has its own limit.
const PUBLISH_PATH: &str = "/channels/{channel}/messages";
/// A member's data is bounded as a message is.
const PRESENCE_PATH: &str = "/channels/{channel}/presence";

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(landing::page))
        .route(PUBLISH_PATH, get(channels::history).post(channels::publish))
        .route(PRESENCE_PATH, get(presence::members).post(presence::change))
        .route("/sse", get(streams::sse))
        .route("/apis/{api}/{*path}", get(polls::named))
        .route("/connections/{id}", get(connections::list))
        .route("/connections/{id}/subscriptions", post(connections::add))
        .route(
            "/connections/{id}/subscriptions/{stream}",
            delete(connections::remove),
        )
        .route("/event-stream", get(streams::event_stream))
        .route("/figures", get(figures::stream))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/admin/openapi.json", get(admin::openapi))
        .route("/admin/stats", get(admin::stats))
        .route("/admin/import/asyncapi", post(admin::import_asyncapi))
        .route("/admin/{kind}", get(admin::list).post(admin::create))
        .route(
            "/admin/{kind}/{name}",
            get(admin::get).put(admin::put).delete(admin::delete),
        )
        .route("/client/streamgate.js", get(client::script))
        .route("/asyncapi.json", get(asyncapi::json))
        .route("/asyncapi.yaml", get(asyncapi::yaml))
        .route("/docs/{page}", get(docs::page))
        .route(
            "/.well-known/mercure",
            get(mercure::subscribe).post(mercure::publish),
        )
        .route(mercure::SUBSCRIPTIONS, get(mercure::subscriptions))
        .route(
            &format!("{}/{{*selector}}", mercure::SUBSCRIPTIONS),
            get(mercure::subscriptions),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// Unrouted requests: a path under a relay's listen path goes to the relay (relays are not
/// routes, so the admin API can change them while serving); an embedded target URL
/// (`GET /https://...`) is a poll; anything else is not found.
///
/// The metrics learn which of them served it (`requests::Route`).
async fn not_found(State(state): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let config = state.catalog.config();
    let path = request.uri().path();
    let (route, served) = if let Some((relay, listen)) = relays::find(&config.relays, path) {
        let served = relays::serve(&state, relay, &listen, request).await;
        (listen, served)
    } else if request.method() == Method::GET
        && (path.starts_with("/http:") || path.starts_with("/https:"))
    {
        let served = polls::adhoc(&state, request.uri(), request.headers()).await;
        ("/{target-url}".to_owned(), served)
    } else {
        return Err(ErrorInfo::new(codes::NOT_FOUND, "no such endpoint").into());
    };
    let mut response = axum::response::IntoResponse::into_response(served);
    response.extensions_mut().insert(requests::Route(route));
    Ok(response)
}

async fn method_not_allowed() -> ApiError {
    ErrorInfo::new(
        codes::METHOD_NOT_ALLOWED,
        "method not allowed on this endpoint",
    )
    .into()
}
