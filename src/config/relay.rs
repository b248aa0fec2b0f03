//! `[[relay]]`: upstream SSE servers fronted by the gateway.
//!
//! A relay is reached under its listen path (with `{version}` filled in, as WSO2 writes
//! versioned contexts). What follows the listen path names a topic; `topics` maps topic
//! names to upstream paths. A name ending in `*` matches any rest, and the rest replaces the
//! `*` of its upstream path; without `topics` every path is a topic, relayed to the same path
//! upstream (`{ "*" = "/*" }`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::names::GATEWAY_PARAMETERS;

/// Paths the gateway's own endpoints use; a relay may not hide them.
const RESERVED: [&str; 13] = [
    "/channels",
    "/sse",
    "/event-stream",
    "/apis",
    "/connections",
    "/healthz",
    "/readyz",
    "/metrics",
    "/asyncapi.json",
    "/asyncapi.yaml",
    "/admin",
    "/docs",
    "/.well-known",
];

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RelayMode {
    /// One upstream connection per topic, fanned out through a channel with history.
    #[default]
    Shared,
    /// A 1:1 streaming reverse proxy.
    Passthrough,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RelayConfig {
    pub name: String,
    /// Where clients reach the relay, e.g. `/prices` or `/prices/{version}`.
    pub listen_path: String,
    /// The upstream SSE server's base URL.
    pub upstream: reqwest::Url,
    /// Whether the listen path is dropped from the path sent upstream (as in Tyk).
    #[serde(default = "yes")]
    pub strip_listen_path: bool,
    /// Fills `{version}` in the listen path, or is appended to it as a last segment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Topic name (or `prefix*`) → upstream path (with `*` for the matched rest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topics: Option<BTreeMap<String, String>>,
    /// Headers sent upstream on every request (credentials, typically); never shown to
    /// clients.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Request headers passed from the client to the upstream (case-insensitive names).
    /// In shared mode their values are part of the topic: clients that send different
    /// values get different upstream connections.
    #[serde(default)]
    pub forward_headers: Vec<String>,
    /// Shared mode: the client's query parameters passed upstream (case-sensitive names).
    /// Their values are part of the topic; any other parameter is refused, so a client
    /// cannot open upstream connections of its own by varying the query. Passthrough relays
    /// pass the whole query on, as a proxy does.
    #[serde(default)]
    pub forward_query: Vec<String>,
    #[serde(default)]
    pub mode: RelayMode,
    /// How long a shared upstream connection outlives its last subscriber.
    #[serde(default = "default_linger_ms")]
    pub linger_ms: u64,
    /// Reconnect (shared) or end the response (passthrough) when the upstream has sent
    /// nothing, not even a comment, for this long. None: wait for as long as it takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_ms: Option<u64>,
    /// Longest wait between reconnection attempts while the upstream keeps failing; also
    /// caps the upstream's `retry:`.
    #[serde(
        default = "default_max_backoff_ms",
        deserialize_with = "super::at_least_one"
    )]
    pub max_backoff_ms: u64,
    /// Largest upstream event (shared mode); a larger one drops the upstream connection
    /// with an `error` event, status 2004.
    #[serde(
        default = "default_max_event_bytes",
        deserialize_with = "super::at_least_one"
    )]
    pub max_event_bytes: usize,
}

fn yes() -> bool {
    true
}

fn default_linger_ms() -> u64 {
    5_000
}

fn default_max_backoff_ms() -> u64 {
    30_000
}

fn default_max_event_bytes() -> usize {
    1024 * 1024
}

/// Where a request under a relay's listen path goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The topic as the client named it (the path after the listen path, without the
    /// leading `/`; empty for the listen path itself).
    pub topic: String,
    /// The upstream URL (without the client's query).
    pub upstream: reqwest::Url,
}

impl RelayConfig {
    /// The listen path with `{version}` filled in, without a trailing `/`.
    pub fn path(&self) -> String {
        let path = self.listen_path.trim_end_matches('/');
        match &self.version {
            Some(v) if path.contains("{version}") => path.replace("{version}", v),
            Some(v) => format!("{path}/{v}"),
            None => path.to_owned(),
        }
    }

    /// The path after the listen path if `path` is under it (`""` for the listen path).
    pub fn rest<'a>(&self, listen: &str, path: &'a str) -> Option<&'a str> {
        let rest = path.strip_prefix(listen)?;
        match rest.strip_prefix('/') {
            Some(rest) => Some(rest),
            None if rest.is_empty() => Some(rest),
            None => None,
        }
    }

    /// Maps the path after the listen path to its upstream URL; None when no topic matches.
    pub fn route(&self, listen: &str, rest: &str) -> Option<Route> {
        let upstream_path = match &self.topics {
            None => format!("/{rest}"),
            Some(topics) => match topics.get(rest) {
                Some(path) => path.clone(),
                // The longest matching prefix wins.
                None => {
                    topics
                        .iter()
                        .filter_map(|(name, path)| {
                            let prefix = name.strip_suffix('*')?;
                            let tail = rest.strip_prefix(prefix)?;
                            Some((prefix.len(), path.replacen('*', tail, 1)))
                        })
                        .max_by_key(|(len, _)| *len)?
                        .1
                }
            },
        };
        let mut upstream = self.upstream.clone();
        let base = upstream.path().trim_end_matches('/');
        let kept = if self.strip_listen_path { "" } else { listen };
        let path = format!("{base}{kept}{upstream_path}");
        upstream.set_path(&path);
        Some(Route {
            topic: rest.to_owned(),
            upstream,
        })
    }

    /// Checks one relay on its own (names unique and paths distinct are checked by the
    /// caller).
    pub(super) fn validate(&self) -> Result<(), String> {
        let name = &self.name;
        if name.is_empty() || name.contains('/') {
            return Err(format!(
                "[[relay]] name {name:?} must be non-empty, without '/'"
            ));
        }
        if !matches!(self.upstream.scheme(), "http" | "https") {
            return Err(format!("[[relay]] {name}: upstream must be http or https"));
        }
        if !self.listen_path.starts_with('/') {
            return Err(format!(
                "[[relay]] {name}: listen_path must start with '/', e.g. \"/{name}\""
            ));
        }
        if self.listen_path.contains("{version}") && self.version.is_none() {
            return Err(format!(
                "[[relay]] {name}: listen_path has {{version}} but no version is set"
            ));
        }
        let path = self.path();
        if path.is_empty() || path.contains(['*', '{', '}', '?', '#', '%']) {
            return Err(format!(
                "[[relay]] {name}: listen_path {path:?} must be a plain path such as \"/{name}\""
            ));
        }
        if let Some(reserved) = RESERVED.iter().find(|r| {
            path == **r || path.starts_with(&format!("{r}/")) || r.starts_with(&format!("{path}/"))
        }) {
            return Err(format!(
                "[[relay]] {name}: listen_path {path:?} overlaps the gateway's own {reserved}"
            ));
        }
        if path.starts_with("/http:") || path.starts_with("/https:") {
            return Err(format!(
                "[[relay]] {name}: listen_path {path:?} looks like a polled target URL"
            ));
        }
        for (topic, upstream_path) in self.topics.iter().flatten() {
            if !upstream_path.starts_with('/') {
                return Err(format!(
                    "[[relay]] {name}: topic {topic:?} maps to {upstream_path:?}, which must \
                     start with '/'"
                ));
            }
            let wildcard = topic.ends_with('*');
            if topic[..topic.len() - usize::from(wildcard)].contains('*')
                || wildcard != upstream_path.contains('*')
                || upstream_path.matches('*').count() > 1
            {
                return Err(format!(
                    "[[relay]] {name}: topic {topic:?} → {upstream_path:?}: a '*' may only end \
                     a topic name, and then its upstream path needs exactly one '*'"
                ));
            }
        }
        super::check_headers(&self.headers).map_err(|e| format!("[[relay]] {name}: {e}"))?;
        let gateway_own = |p: &String| GATEWAY_PARAMETERS.contains(&p.as_str());
        if let Some(param) = self
            .forward_query
            .iter()
            .find(|p| p.is_empty() || gateway_own(p))
        {
            return Err(format!(
                "[[relay]] {name}: forward_query {param:?} is empty or one of the gateway's own \
                 parameters ({}), which never go upstream",
                GATEWAY_PARAMETERS.join(", ")
            ));
        }
        for header in &self.forward_headers {
            if reqwest::header::HeaderName::from_bytes(header.as_bytes()).is_err() {
                return Err(format!("[[relay]] {name}: {header:?} is not a header name"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relay(toml_text: &str) -> RelayConfig {
        toml::from_str(toml_text).unwrap()
    }

    fn route(relay: &RelayConfig, path: &str) -> Option<String> {
        let listen = relay.path();
        let rest = relay.rest(&listen, path)?;
        relay.route(&listen, rest).map(|r| r.upstream.to_string())
    }

    #[test]
    fn without_topics_every_path_is_relayed_as_is() {
        let r =
            relay("name = 'p'\nlisten_path = '/prices/'\nupstream = 'http://up:9000/base/?k=1'");
        assert_eq!(r.path(), "/prices");
        assert_eq!(
            route(&r, "/prices/a/b").as_deref(),
            Some("http://up:9000/base/a/b?k=1")
        );
        assert_eq!(
            route(&r, "/prices").as_deref(),
            Some("http://up:9000/base/?k=1")
        );
        assert_eq!(route(&r, "/pricesx"), None);
    }

    #[test]
    fn topics_map_names_and_prefixes() {
        let r = relay(
            "name = 'p'\nlisten_path = '/s/{version}'\nversion = 'v2'\n\
             upstream = 'http://up/'\nstrip_listen_path = false\n\
             topics = { quotes = '/feed/quotes', 'news/*' = '/n/*/live', 'news/eu/*' = '/eu/*' }",
        );
        assert_eq!(r.path(), "/s/v2");
        assert_eq!(
            route(&r, "/s/v2/quotes").as_deref(),
            Some("http://up/s/v2/feed/quotes")
        );
        assert_eq!(
            route(&r, "/s/v2/news/us").as_deref(),
            Some("http://up/s/v2/n/us/live")
        );
        assert_eq!(
            route(&r, "/s/v2/news/eu/fr").as_deref(),
            Some("http://up/s/v2/eu/fr")
        );
        assert_eq!(route(&r, "/s/v2/other"), None);
        assert_eq!(route(&r, "/s/v1/quotes"), None);
    }

    #[test]
    fn bad_relays_are_explained() {
        for (text, expected) in [
            ("listen_path = 'p'", "must start with '/'"),
            ("listen_path = '/channels'", "overlaps"),
            ("listen_path = '/'", "plain path"),
            ("listen_path = '/admin/x'", "overlaps"),
            ("listen_path = '/a/{version}'", "no version"),
            (
                "listen_path = '/a'\ntopics = { 'x*' = '/y' }",
                "exactly one '*'",
            ),
            (
                "listen_path = '/a'\ntopics = { x = 'y' }",
                "must start with '/'",
            ),
            (
                "listen_path = '/a'\nforward_query = ['lastEvent']",
                "gateway's own",
            ),
            (
                "listen_path = '/a'\nheaders = { 'a b' = 'c' }",
                "not a header name",
            ),
            (
                "listen_path = '/a'\nheaders = { a = \"x\\ny\" }",
                "value of header \"a\" is not valid",
            ),
        ] {
            let r = relay(&format!("name = 'r'\nupstream = 'http://up/'\n{text}"));
            let err = r.validate().unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }
}
