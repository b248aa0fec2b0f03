//! `GET /figures`: the node's own figures (see `sources::figures`), one SSE event a second,
//! starting with the last minutes' the channel retains: what the landing page charts. Open
//! to anyone, like `/metrics`: they are node-wide sums only.

use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;

use super::polls::resume_start;
use super::query::Query;
use super::streams::{Delivery, respond};
use super::{ApiError, AppState};
use crate::hub::FIGURES;
use crate::outlet::{Start, StreamSpec};
use crate::wire::WireFormat;

/// How far back a new watcher's chart starts (as far as history is retained).
const CHART_MS: u64 = 10 * 60 * 1000;

pub async fn stream(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let query = Query::parse(uri.query());
    let start = match resume_start(&query, &headers)? {
        Start::Live => Start::RewindMs(CHART_MS),
        resumed => resumed,
    };
    let spec = StreamSpec::log(FIGURES.to_owned(), start);
    let delivery = Delivery::new(WireFormat::SseRaw, false, None);
    respond(&state, &[spec], None, delivery).await
}
