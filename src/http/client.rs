//! `GET /client/streamgate.js`: the JavaScript client (`clients/js/`, docs/CLIENT.md), built
//! into the binary. Its `ETag` is a digest of the source: a page revalidates it and gets a
//! `304` until the gateway serves another version.

use std::sync::LazyLock;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

const SOURCE: &str = include_str!("../../clients/js/streamgate.js");

static ETAG: LazyLock<HeaderValue> = LazyLock::new(|| {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, SOURCE.as_bytes());
    let hex: String = digest.as_ref()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    HeaderValue::from_str(&format!("\"{hex}\"")).expect("hex digits make a valid header")
});

pub async fn script(headers: HeaderMap) -> Response {
    let unchanged = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == "*" || ETAG.to_str().ok() == Some(tag));
    let mut response = match unchanged {
        true => StatusCode::NOT_MODIFIED.into_response(),
        false => SOURCE.into_response(),
    };
    let h = response.headers_mut();
    h.insert(header::ETAG, ETAG.clone());
    // Kept by browsers and caches, and asked again (with the ETag) before each use.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, no-cache"),
    );
    if !unchanged {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/javascript; charset=utf-8"),
        );
    }
    response
}
