//! Query-string and header reading shared by the endpoints, with errors that name the
//! parameter.

use axum::http::{HeaderMap, header};

use crate::auth::Credential;
use crate::wire::envelope::{ErrorInfo, codes};

/// The gateway's own query parameters, the same on every surface: credentials, resume and
/// stream form (Ably's), and polling (Streamdata's). A poll or relay consumes them: they
/// never go upstream, whatever the surface makes of them.
pub const GATEWAY_PARAMETERS: [&str; 11] = [
    "key",
    "accessToken",
    "X-Sd-Token",
    "lastEvent",
    "rewind",
    "enveloped",
    "heartbeats",
    "X-Sd-Header",
    "pollInterval",
    "mode",
    "select",
];

/// A request's query pairs, percent-decoded; a repeated key's last value wins.
#[derive(Debug, Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        Query(
            form_urlencoded::parse(raw.unwrap_or("").as_bytes())
                .into_owned()
                .collect(),
        )
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    /// The pairs that are not the gateway's own (`GATEWAY_PARAMETERS`): what may go upstream.
    pub fn upstream_pairs(&self) -> Vec<(String, String)> {
        self.0
            .iter()
            .filter(|(k, _)| !GATEWAY_PARAMETERS.contains(&k.as_str()))
            .cloned()
            .collect()
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
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

    /// The credential from `key` (or Streamdata's `X-Sd-Token`) / `accessToken` and the
    /// Authorization header.
    pub fn credential(&self, headers: &HeaderMap) -> Result<Credential, ErrorInfo> {
        let authorization = headers
            .get(header::AUTHORIZATION)
            .map(|v| v.to_str())
            .transpose()
            .map_err(|_| {
                ErrorInfo::new(codes::BAD_CREDENTIALS, "Authorization header is not ASCII")
            })?;
        Credential::from_request(
            self.get("key").or_else(|| self.get("X-Sd-Token")),
            self.get("accessToken"),
            authorization,
        )
    }
}
