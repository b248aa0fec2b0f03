//! Liveness, readiness and Prometheus metrics.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::{ApiError, AppState, streams};

pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready once the hub serves, and its bus (when shared by several nodes) answers: a node
/// that cannot reach Redis is taken out of a load balancer's rotation.
pub async fn readyz(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    state.hub.ready().await.map_err(streams::unavailable)?;
    Ok("ready\n")
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.hub.metrics().render(&state.prometheus),
    )
}
