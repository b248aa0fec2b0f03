//! `[[key]]` and `[auth]`: who may do what.
//!
//! With no key and no token key configured, everything is allowed (a gateway on a trusted
//! network, or in development) but the admin API, which stays off until some credential may
//! have the `admin` capability. Once any is configured, every request needs a credential,
//! unless `[auth] anonymous` grants capabilities to requests without one.
//!
//! Capabilities stay here as written: which operations exist, and so whether a capability
//! means anything, is for `auth` to say. `auth` reads these types, never the other way round,
//! so that the config stays a leaf every module may read. Whoever loads a config builds
//! `auth::Auth` from it (the command line, the catalog), which refuses a bad capability as
//! early as `Config::validate` would.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

/// Capabilities: resource pattern (`*` matches any run of characters) → operations
/// (`subscribe`, `publish`, `history`, `poll`, `admin`, or `*` for all).
pub type CapabilityMap = BTreeMap<String, Vec<String>>;

/// An API key: presented as `name:secret` (HTTP Basic, `key=`, `X-Sd-Token`), or used to
/// sign HS256 tokens that name it in their `kid` header.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    pub name: String,
    pub secret: String,
    pub capabilities: CapabilityMap,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Capabilities of requests that present no credential, once keys are configured.
    pub anonymous: CapabilityMap,
    /// PEM public keys (RSA or EC) that verify RS256 / ES256 tokens.
    pub public_key_files: Vec<PathBuf>,
    /// A JWKS file of public keys for RS256 / ES256 tokens, chosen by the token's `kid`.
    pub jwks_file: Option<PathBuf>,
}

impl AuthConfig {
    /// Whether any credential can be checked: then requests without one are limited to
    /// `anonymous`.
    pub fn enabled(&self, keys: &[KeyConfig]) -> bool {
        !keys.is_empty() || self.token_keys()
    }

    /// Whether public keys verify RS256 / ES256 tokens.
    pub fn token_keys(&self) -> bool {
        !self.public_key_files.is_empty() || self.jwks_file.is_some()
    }
}

impl KeyConfig {
    pub(super) fn validate(&self) -> Result<(), String> {
        if self.name.is_empty() || self.name.contains(':') {
            return Err(format!(
                "[[key]] name {:?} must be non-empty, without ':'",
                self.name
            ));
        }
        if self.secret.is_empty() {
            return Err(format!("[[key]] {}: secret is empty", self.name));
        }
        Ok(())
    }
}
