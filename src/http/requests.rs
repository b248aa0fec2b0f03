//! `streamgate_http_requests_total{route, status}`: each request, counted when its response
//! head is ready, by the route it took, as a pattern (`/channels/{channel}/messages`, a
//! relay's listen path, `/{target-url}` for an ad-hoc poll, `unmatched`): never a name or
//! URL a client chose, so the label has as many values as the gateway has routes. A
//! response's body of a known length is counted in `streamgate_bytes_written_total` here; a
//! stream's bytes are counted as its outlet writes them.

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_LENGTH;
use axum::middleware::{self, Next};
use axum::response::Response;
use metrics::counter;

use crate::metrics::Metrics;

/// The route of a request the router's fallback served (see `super::not_found`).
#[derive(Clone)]
pub struct Route(pub String);

/// `app`, counting its requests.
pub fn apply(app: Router, metrics: Metrics) -> Router {
    app.layer(middleware::from_fn_with_state(metrics, count))
}

async fn count(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let head = request.method() == axum::http::Method::HEAD;
    let matched = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned());
    let response = next.run(request).await;
    let route = matched
        .or_else(|| response.extensions().get::<Route>().map(|r| r.0.clone()))
        .unwrap_or_else(|| "unmatched".to_owned());
    let status = response.status().as_u16().to_string();
    counter!("streamgate_http_requests_total", "route" => route, "status" => status).increment(1);
    let length = response.headers().get(CONTENT_LENGTH).filter(|_| !head);
    if let Some(bytes) = length.and_then(|l| l.to_str().ok()?.parse().ok()) {
        metrics.answered(bytes);
    }
    response
}
