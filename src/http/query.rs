//! Query-string and header reading shared by the endpoints, with errors that name the
//! parameter.

use axum::http::HeaderMap;

use crate::auth::Credential;
use crate::names::GATEWAY_PARAMETERS;
use crate::wire::envelope::{ErrorInfo, codes};

/// A request's query pairs, percent-decoded; a repeated key's last value wins.
#[derive(Debug, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
    /// The pairs whose key or value is not UTF-8 once percent-decoded: `pairs` holds them
    /// with U+FFFD in place of the bad bytes, so `text` can refuse them.
    not_utf8: Vec<usize>,
}

impl Query {
    /// Decodes as `application/x-www-form-urlencoded` (`+` is a space).
    pub fn parse(raw: Option<&str>) -> Query {
        let mut query = Query::default();
        for piece in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (key, value) = piece.split_once('=').unwrap_or((piece, ""));
            let ((key, key_ok), (value, value_ok)) = (decode(key), decode(value));
            if !(key_ok && value_ok) {
                query.not_utf8.push(query.pairs.len());
            }
            query.pairs.push((key, value));
        }
        query
    }

    /// A value that names something (a channel): different bytes must not become one name,
    /// so a value that is not UTF-8 once percent-decoded is refused, not read lossily.
    pub fn text(&self, key: &str) -> Result<Option<&str>, ErrorInfo> {
        let Some(i) = self.pairs.iter().rposition(|(k, _)| k == key) else {
            return Ok(None);
        };
        if self.not_utf8.contains(&i) {
            return Err(ErrorInfo::bad_request(format!(
                "{key} is not UTF-8 once percent-decoded; percent-encode the UTF-8 bytes of \
                 the text"
            )));
        }
        Ok(Some(&self.pairs[i].1))
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// Adds a pair, as if it came last in the query.
    pub fn push(&mut self, key: &str, value: &str) {
        self.pairs.push((key.to_owned(), value.to_owned()));
    }

    /// The pairs that are not the gateway's own (`GATEWAY_PARAMETERS`): what may go upstream.
    pub fn upstream_pairs(&self) -> Vec<(String, String)> {
        self.pairs
            .iter()
            .filter(|(k, _)| !GATEWAY_PARAMETERS.contains(&k.as_str()))
            .cloned()
            .collect()
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// An optional non-negative integer.
    pub fn number<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>, ErrorInfo> {
        self.get(key)
            .map(|v| {
                v.parse().map_err(|_| {
                    ErrorInfo::bad_request(format!(
                        "{key} must be a non-negative integer, not {v:?}"
                    ))
                })
            })
            .transpose()
    }

    /// An optional boolean (`true`/`false`, as Ably's parameters are written).
    pub fn flag(&self, key: &str, default: bool) -> Result<bool, ErrorInfo> {
        match self.get(key) {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(other) => Err(ErrorInfo::bad_request(format!(
                "{key} must be true or false, not {other:?}"
            ))),
        }
    }

    /// The credential from `key` (or Streamdata's `X-Sd-Token`) / `accessToken`, else the
    /// `X-Sd-Token` header, else the Authorization header: parameters win over headers.
    pub fn credential(&self, headers: &HeaderMap) -> Result<Credential, ErrorInfo> {
        let ascii = |name: &str| {
            headers
                .get(name)
                .map(|v| v.to_str())
                .transpose()
                .map_err(|_| {
                    ErrorInfo::new(
                        codes::BAD_CREDENTIALS,
                        format!("{name} header is not ASCII"),
                    )
                })
        };
        let key = self.get("key").or_else(|| self.get("X-Sd-Token"));
        let (key, access_token) = match (key, self.get("accessToken")) {
            (None, None) => (ascii("X-Sd-Token")?, None),
            given => given,
        };
        Credential::from_request(key, access_token, ascii("Authorization")?)
    }
}

/// One percent-decoded component, and whether it was UTF-8 (if not, decoded lossily).
fn decode(component: &str) -> (String, bool) {
    let spaced = component.replace('+', " ");
    let bytes: Vec<u8> = percent_encoding::percent_decode_str(&spaced).collect();
    match String::from_utf8(bytes) {
        Ok(text) => (text, true),
        Err(e) => (String::from_utf8_lossy(e.as_bytes()).into_owned(), false),
    }
}
