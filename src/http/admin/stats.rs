//! `GET /admin/stats`: what the gateway is doing now: channels, upstream topics (pollers and
//! relays), connections.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::Admitted;
use crate::http::{ApiError, AppState};

/// How many open streams the stats list at most.
const LISTED: usize = 1000;

pub async fn stats(State(state): State<AppState>, _: Admitted) -> Result<Response, ApiError> {
    let hub = &state.hub;
    Ok(Json(json!({
        "channels": hub.channel_stats(),
        "topics": {
            "polls": state.pollers.stats(),
            "relays": state.relays.stats(),
        },
        "connections": {
            "open": hub.outlets(),
            "resumable": state.connections.count(),
            "list": hub.outlet_stats(LISTED),
        },
    }))
    .into_response())
}
