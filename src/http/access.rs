//! `[log] access = true`: a line per request once its response ended (a stream's when it
//! closed): method, path, status, bytes sent, duration, client address, at `info` under the
//! target `streamgate::access`. The path keeps only the query values that are the
//! gateway's own and never secret; a URL in the path (an ad-hoc poll) loses its user and
//! password.

use std::net::SocketAddr;
use std::time::Instant;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::http::Uri;
use axum::middleware::{self, Next};
use axum::response::Response;

use super::watched::{Watcher, watch};

/// Query parameters whose values are shown; any other's value is not (credentials, a
/// target's own parameters, forwarded headers).
const SHOWN: [&str; 12] = [
    "channels",
    "channel",
    "rewind",
    "lastEvent",
    "enveloped",
    "heartbeats",
    "pollInterval",
    "mode",
    "select",
    "dynamic",
    "topic",
    "presence",
];

/// `app`, logging each request when `[log] access` says so.
pub fn apply(app: Router, on: bool) -> Router {
    match on {
        true => app.layer(middleware::from_fn(log)),
        false => app,
    }
}

async fn log(request: Request, next: Next) -> Response {
    let mut line = Line {
        start: Instant::now(),
        method: request.method().to_string(),
        path: shown(request.uri()),
        client: request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0),
        status: 0,
        bytes: 0,
    };
    let response = next.run(request).await;
    line.status = response.status().as_u16();
    watch(response, line)
}

/// One request's line, written when its response's body is dropped.
struct Line {
    start: Instant,
    method: String,
    path: String,
    client: Option<SocketAddr>,
    status: u16,
    bytes: u64,
}

impl Watcher for Line {
    fn sent(&mut self, bytes: usize) {
        self.bytes += bytes as u64;
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        let client = self.client.map(|c| c.to_string()).unwrap_or_default();
        tracing::info!(
            target: "streamgate::access",
            method = %self.method,
            path = %self.path,
            status = self.status,
            bytes = self.bytes,
            ms = self.start.elapsed().as_millis() as u64,
            client = %client,
            "{} {} {}",
            self.method,
            self.path,
            self.status
        );
    }
}

/// The request's path and query as the log shows them.
fn shown(uri: &Uri) -> String {
    let path = uri.path();
    // An ad-hoc poll's target URL: no user or password.
    let mut shown = match path.split_once("://") {
        Some((scheme, rest)) if path.starts_with("/http") => match rest.split_once('@') {
            Some((_, host)) if !host.split('/').next().unwrap_or("").is_empty() => {
                format!("{scheme}://{host}")
            }
            _ => path.to_owned(),
        },
        _ => path.to_owned(),
    };
    if let Some(query) = uri.query() {
        let pairs: Vec<String> = form_urlencoded::parse(query.as_bytes())
            .map(|(name, value)| match SHOWN.contains(&&*name) {
                true => format!("{name}={value}"),
                false => format!("{name}=…"),
            })
            .collect();
        shown.push('?');
        shown.push_str(&pairs.join("&"));
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_left_out() {
        let shown = |u: &str| shown(&u.parse().unwrap());
        assert_eq!(
            shown("/sse?channels=a,b&key=app:secret&rewind=3"),
            "/sse?channels=a,b&key=…&rewind=3"
        );
        assert_eq!(
            shown("/https://user:pw@api.example.com/x?token=s"),
            "/https://api.example.com/x?token=…"
        );
        assert_eq!(
            shown("/channels/a%40b/messages"),
            "/channels/a%40b/messages"
        );
    }
}
