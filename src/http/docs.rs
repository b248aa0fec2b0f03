//! `GET /docs/errors`: the error reference (`docs/ERRORS.md`), served from the binary so that
//! the `href` of every ErrorInfo leads to a description of its code wherever the gateway runs.

use axum::http::header;
use axum::response::IntoResponse;

const ERRORS: &str = include_str!("../../docs/ERRORS.md");

pub async fn errors() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/markdown; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        ERRORS,
    )
}
