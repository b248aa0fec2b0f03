//! `GET /docs/{page}`: the user's documentation (`docs/*.md`), served from the binary as
//! Markdown, so that the landing page links to the pages of the version that runs, and the
//! `href` of every ErrorInfo (`/docs/errors#code`) leads to its code wherever the gateway
//! runs.

use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::{ApiError, Segments};
use crate::wire::envelope::{ErrorInfo, codes};

/// Each page: its path under `/docs/`, what it is about, its text.
pub const PAGES: [(&str, &str, &str); 15] = [
    (
        "channels",
        "pub/sub channels and streams",
        include_str!("../../docs/CHANNELS.md"),
    ),
    (
        "polling",
        "JSON APIs as delta streams",
        include_str!("../../docs/POLLING.md"),
    ),
    (
        "relays",
        "upstream SSE relays",
        include_str!("../../docs/RELAYS.md"),
    ),
    (
        "mercure",
        "the Mercure hub",
        include_str!("../../docs/MERCURE.md"),
    ),
    (
        "client",
        "the JavaScript client",
        include_str!("../../docs/CLIENT.md"),
    ),
    (
        "security",
        "keys, tokens, capabilities",
        include_str!("../../docs/SECURITY.md"),
    ),
    (
        "limits",
        "limits and CORS",
        include_str!("../../docs/LIMITS.md"),
    ),
    ("tls", "TLS and HTTP/2", include_str!("../../docs/TLS.md")),
    (
        "logs",
        "what the gateway logs",
        include_str!("../../docs/LOGS.md"),
    ),
    (
        "metrics",
        "the Prometheus metrics",
        include_str!("../../docs/METRICS.md"),
    ),
    (
        "admin",
        "the admin API and its stats",
        include_str!("../../docs/ADMIN.md"),
    ),
    (
        "asyncapi",
        "the AsyncAPI document",
        include_str!("../../docs/ASYNCAPI.md"),
    ),
    (
        "durability",
        "what survives a restart",
        include_str!("../../docs/DURABILITY.md"),
    ),
    (
        "cluster",
        "many nodes on Redis",
        include_str!("../../docs/CLUSTER.md"),
    ),
    (
        "errors",
        "the error codes",
        include_str!("../../docs/ERRORS.md"),
    ),
];

pub async fn page(Segments(page): Segments<String>) -> Result<Response, ApiError> {
    let (_, _, text) = PAGES.iter().find(|(p, _, _)| *p == page).ok_or_else(|| {
        ErrorInfo::new(
            codes::NOT_FOUND,
            format!("no documentation page {page:?}; the landing page (/) lists them"),
        )
    })?;
    let headers = [
        (header::CONTENT_TYPE, "text/markdown; charset=utf-8"),
        (header::CACHE_CONTROL, "public, max-age=3600"),
    ];
    Ok((headers, *text).into_response())
}
