//! Query-string and header reading shared by the endpoints, with errors that name the
//! parameter.

use axum::http::HeaderMap;

use crate::auth::Credential;
use crate::wire::envelope::{ErrorInfo, codes};

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
