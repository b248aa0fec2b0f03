//! Topics: what makes two poll requests "the same", so they share one poller.
//!
//! A topic is the method, the target URL normalized (scheme and host lower-cased, default
//! port dropped, query pairs sorted, fragment dropped) and the forwarded headers (names
//! lower-cased, sorted). Same topic, one poller, one upstream request per interval. Each
//! selected part (`select`) of a topic is a state channel of its own, fed by that poller.

use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use reqwest::header::{HeaderName, HeaderValue};

/// Everything a poller needs to know about its upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    /// The topic key: `[poll]`, the method and URL, the headers. Users cannot subscribe to
    /// it by name because channel names may not start with `[`.
    pub key: String,
    /// The state channel of this topic's selected part: the key, and the pointer if any.
    pub channel: String,
    /// What multiplexed connections call the stream: the target URL (and `#` the pointer).
    pub stream: Arc<str>,
    pub url: Url,
    /// The URL as it was asked for, before the canonical form: what an ad-hoc poll's
    /// capability was checked against, and is checked against again on a resume.
    pub requested: Arc<str>,
    /// Forwarded and injected headers, sorted by name.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// A JSON Pointer: stream only that part of the document.
    pub select: Option<String>,
    pub interval: Duration,
    /// The configured API it was asked for through, if any: its poller's metrics say so,
    /// and a journal keeps it as this (its URL and headers hold the API's secrets).
    pub api: Option<Arc<ApiRef>>,
}

/// A polled stream of a configured API, as a client asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiRef {
    /// The API's name.
    pub name: String,
    /// The path after the API's base URL (`/apis/{name}/{path}`).
    pub path: String,
    /// The client's query (its own parameters and the gateway's: never the API's).
    pub query: String,
}

impl ApiRef {
    /// The parameters of `query` that are the stream's, not the target's.
    pub const STREAM_PARAMETERS: [&str; 4] = ["pollInterval", "mode", "select", "X-Sd-Header"];

    /// The gateway path clients name the stream by, with the target's own parameters.
    pub fn shown(&self) -> String {
        let mut shown = format!("/apis/{}/{}", self.name, self.path);
        let mut target = form_urlencoded::Serializer::new(String::new());
        let pairs = form_urlencoded::parse(self.query.as_bytes());
        let own = pairs.filter(|(name, _)| !Self::STREAM_PARAMETERS.contains(&name.as_ref()));
        target.extend_pairs(own);
        let target = target.finish();
        if !target.is_empty() {
            shown.push('?');
            shown.push_str(&target);
        }
        shown
    }
}

impl Topic {
    pub fn new(
        mut url: Url,
        mut headers: Vec<(HeaderName, HeaderValue)>,
        select: Option<String>,
        interval: Duration,
    ) -> Topic {
        let requested = Arc::from(url.as_str());
        let key = canonical("[poll]", &mut url, &mut headers);
        let (channel, stream) = match &select {
            Some(select) => (format!("{key}\nselect {select}"), format!("{url}#{select}")),
            None => (key.clone(), url.to_string()),
        };
        Topic {
            key,
            channel,
            stream: Arc::from(stream),
            url,
            requested,
            headers,
            select,
            interval,
            api: None,
        }
    }

    /// The topic of `api`'s stream: named by its gateway path (and `#` the pointer), its
    /// capability `api:{name}`. Its key and channel hold that path and a digest of what
    /// the topic was (its URL and headers, keyed with the gateway's `secret`), never the
    /// API's injected query or headers: channels are kept on disk and in Redis by name.
    pub fn of_api(self, api: ApiRef, secret: &[u8]) -> Topic {
        let shown = api.shown();
        let digest = keyed_digest(secret, [self.key.as_bytes()]);
        let key = format!("[poll]{shown} {digest}");
        let (channel, stream) = match &self.select {
            Some(select) => (
                format!("{key}\nselect {select}"),
                format!("{shown}#{select}"),
            ),
            None => (key.clone(), shown),
        };
        Topic {
            key,
            channel,
            stream: Arc::from(stream),
            requested: Arc::from(format!("api:{}", api.name)),
            api: Some(Arc::new(api)),
            ..self
        }
    }
}

/// The first 8 bytes of an HMAC-SHA256 of `parts` (each ended by a 0 byte) keyed with
/// `secret` (`Hub::secret`), in hex: names that must tell secrets apart without holding them
/// (an unkeyed digest would let a weak one be guessed offline).
pub fn keyed_digest<'a>(secret: &[u8], parts: impl IntoIterator<Item = &'a [u8]>) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let mut digest = aws_lc_rs::hmac::Context::with_key(&key);
    for part in parts {
        digest.update(part);
        digest.update(b"\0");
    }
    let digest = digest.sign();
    let mut hex = String::with_capacity(16);
    for byte in &digest.as_ref()[..8] {
        write!(hex, "{byte:02x}").expect("writing to a String cannot fail");
    }
    hex
}

/// Puts a request in canonical form (fragment dropped, query pairs and headers sorted) and
/// returns its key: `{prefix}GET {url}`, then a `name: value` line per header, the value's
/// bytes escaped so that different values never make the same key.
pub fn canonical(prefix: &str, url: &mut Url, headers: &mut [(HeaderName, HeaderValue)]) -> String {
    url.set_fragment(None);
    let mut pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    pairs.sort();
    set_query_pairs(url, &pairs);
    headers.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()).then(a.1.cmp(&b.1)));
    let mut key = format!("{prefix}GET {url}");
    for (name, value) in headers.iter() {
        let value = value.as_bytes().escape_ascii();
        write!(key, "\n{name}: {value}").expect("writing to a String cannot fail");
    }
    key
}

/// Adds a client's query `pairs` to the URL's own query and then `injected` ones. The
/// URL's and the injected parameters are the gateway's: a client pair with one of their
/// names is dropped, so a client can never repeat (and on servers that read the last value,
/// override) a parameter the config sets.
pub fn merge_query(url: &mut Url, request: Vec<(String, String)>, injected: &[(String, String)]) {
    let mut pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let fixed = |k: &String| {
        pairs.iter().any(|(own, _)| own == k) || injected.iter().any(|(ik, _)| ik == k)
    };
    let request: Vec<(String, String)> = request.into_iter().filter(|(k, _)| !fixed(k)).collect();
    pairs.extend(request);
    pairs.extend(injected.iter().cloned());
    set_query_pairs(url, &pairs);
}

/// Replaces the URL's query with `pairs` (none: no `?` at all, so equal URLs stay equal).
pub fn set_query_pairs(url: &mut Url, pairs: &[(String, String)]) {
    if pairs.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(url: &str, headers: &[(&str, &str)]) -> Topic {
        Topic::new(
            url.parse().unwrap(),
            headers
                .iter()
                .map(|(n, v)| (n.parse().unwrap(), HeaderValue::from_str(v).unwrap()))
                .collect(),
            None,
            Duration::from_secs(1),
        )
    }

    #[test]
    fn equivalent_requests_share_a_topic() {
        let a = topic(
            "HTTPS://Api.Example.com:443/q?b=2&a=1#frag",
            &[("X-B", "2"), ("x-a", "1")],
        );
        let b = topic(
            "https://api.example.com/q?a=1&b=2",
            &[("x-a", "1"), ("x-b", "2")],
        );
        assert_eq!(a.channel, b.channel);
        assert_eq!(a.key, b.key);
        assert_eq!(a.url.as_str(), "https://api.example.com/q?a=1&b=2");
    }

    #[test]
    fn different_requests_do_not() {
        let base = topic("https://api.example.com/q?a=1", &[]);
        for other in [
            topic("https://api.example.com/q?a=2", &[]),
            topic("https://api.example.com/r?a=1", &[]),
            topic("http://api.example.com/q?a=1", &[]),
            topic("https://api.example.com/q?a=1", &[("x-a", "1")]),
        ] {
            assert_ne!(base.channel, other.channel);
        }
    }

    #[test]
    fn configured_query_parameters_cannot_be_repeated_by_clients() {
        let mut url: Url = "https://api.example.com/q?token=S".parse().unwrap();
        let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        let request = vec![pair("token", "mine"), pair("key", "c"), pair("x", "1")];
        merge_query(&mut url, request, &[pair("key", "injected")]);
        assert_eq!(url.query(), Some("token=S&x=1&key=injected"));
    }

    #[test]
    fn header_bytes_that_are_not_utf8_still_make_different_topics() {
        let with = |byte: u8| {
            let value = HeaderValue::from_bytes(&[b'a', byte]).unwrap();
            let header = ("x-a".parse().unwrap(), value);
            Topic::new(
                "https://api.example.com/q".parse().unwrap(),
                vec![header],
                None,
                Duration::from_secs(1),
            )
        };
        assert_ne!(with(0xfe).key, with(0xff).key);
    }

    #[test]
    fn selected_parts_share_the_topic_but_not_the_channel() {
        let whole = topic("https://api.example.com/q", &[]);
        let mut part = topic("https://api.example.com/q", &[]);
        part = Topic::new(part.url, part.headers, Some("/items".into()), part.interval);
        assert_eq!(whole.key, part.key);
        assert_ne!(whole.channel, part.channel);
        assert_ne!(whole.stream, part.stream);
    }
}
