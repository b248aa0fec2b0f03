//! `[http]`: how the gateway answers browsers (CORS).

use serde::{Deserialize, Deserializer};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Origins whose pages may call the gateway (CORS), as browsers send them
    /// (`https://app.example.com`), or `"*"` for any. Empty: no CORS headers at all.
    #[serde(deserialize_with = "origins")]
    pub cors_origins: Vec<String>,
}

/// Accepts `*` and exact origins only: a browser's `Origin` is compared byte for byte, so
/// a trailing slash, a path or upper case would silently never match.
fn origins<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    let origins = Vec::<String>::deserialize(deserializer)?;
    for origin in &origins {
        check_origin(origin).map_err(serde::de::Error::custom)?;
    }
    Ok(origins)
}

/// Whether `origin` is `*` or an origin exactly as browsers send it; if not, what to write.
pub fn check_origin(origin: &str) -> Result<(), String> {
    if origin == "*" {
        return Ok(());
    }
    let normalized = url::Url::parse(origin)
        .ok()
        .map(|url| url.origin())
        .filter(|o| o.is_tuple())
        .map(|o| o.ascii_serialization());
    match normalized {
        Some(normalized) if normalized == origin => Ok(()),
        Some(normalized) => Err(format!(
            "{origin:?} is not an origin as browsers send it; write {normalized:?}"
        )),
        None => Err(format!(
            "{origin:?} is not an origin; write scheme://host[:port] \
             (e.g. \"https://app.example.com\") or \"*\""
        )),
    }
}
