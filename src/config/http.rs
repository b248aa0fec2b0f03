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
        if origin == "*" {
            continue;
        }
        let normalized = url::Url::parse(origin)
            .ok()
            .map(|url| url.origin())
            .filter(|o| o.is_tuple())
            .map(|o| o.ascii_serialization());
        match normalized {
            Some(normalized) if normalized == *origin => {}
            Some(normalized) => {
                return Err(serde::de::Error::custom(format!(
                    "{origin:?} is not an origin as browsers send it; write {normalized:?}"
                )));
            }
            None => {
                return Err(serde::de::Error::custom(format!(
                    "{origin:?} is not an origin; write scheme://host[:port] \
                     (e.g. \"https://app.example.com\") or \"*\""
                )));
            }
        }
    }
    Ok(origins)
}
