//! `[mercure]`: the Mercure hub at `/.well-known/mercure` (off unless the section exists).

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MercureConfig {
    /// The HS256 secret publishers' tokens are signed with...
    pub publisher_jwt_key: String,
    /// ...or the RSA or EC public key (PEM) of their RS256 / ES256 signatures.
    pub publisher_jwt_key_file: Option<PathBuf>,
    /// The same for subscribers' tokens; the publisher's when neither is set.
    pub subscriber_jwt_key: String,
    pub subscriber_jwt_key_file: Option<PathBuf>,
    /// Subscribers without a token may receive public updates.
    pub anonymous: bool,
    /// The cookie a browser's token may come in.
    pub cookie_name: String,
    /// Origins (`scheme://host[:port]`) allowed to publish with the cookie.
    pub publish_origins: Vec<String>,
    /// Subscription events and the subscriptions API (`/.well-known/mercure/subscriptions`).
    pub subscriptions: bool,
    /// How often an idle subscriber's stream gets a comment (keeps proxies from closing it).
    #[serde(deserialize_with = "super::at_least_one")]
    pub heartbeat_ms: u64,
}

impl Default for MercureConfig {
    fn default() -> Self {
        MercureConfig {
            publisher_jwt_key: String::new(),
            publisher_jwt_key_file: None,
            subscriber_jwt_key: String::new(),
            subscriber_jwt_key_file: None,
            anonymous: false,
            cookie_name: "mercureAuthorization".into(),
            publish_origins: Vec::new(),
            subscriptions: false,
            heartbeat_ms: 40_000,
        }
    }
}

/// Where a token key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtKey<'a> {
    /// An HS256 secret.
    Secret(&'a str),
    /// A PEM file holding an RSA or EC public key.
    File(&'a std::path::Path),
}

impl MercureConfig {
    /// The key publishers' tokens are checked with.
    pub fn publisher_key(&self) -> JwtKey<'_> {
        key(&self.publisher_jwt_key, &self.publisher_jwt_key_file)
    }

    /// The key subscribers' tokens are checked with: the publisher's unless one is set.
    pub fn subscriber_key(&self) -> JwtKey<'_> {
        match (
            self.subscriber_jwt_key.is_empty(),
            &self.subscriber_jwt_key_file,
        ) {
            (true, None) => self.publisher_key(),
            _ => key(&self.subscriber_jwt_key, &self.subscriber_jwt_key_file),
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        for (who, secret, file) in [
            (
                "publisher",
                &self.publisher_jwt_key,
                &self.publisher_jwt_key_file,
            ),
            (
                "subscriber",
                &self.subscriber_jwt_key,
                &self.subscriber_jwt_key_file,
            ),
        ] {
            if !secret.is_empty() && file.is_some() {
                return Err(format!(
                    "[mercure] sets both {who}_jwt_key and {who}_jwt_key_file: keep one"
                ));
            }
        }
        if self.publisher_jwt_key.is_empty() && self.publisher_jwt_key_file.is_none() {
            return Err(
                "[mercure] needs publisher_jwt_key (the HS256 secret publishers' tokens are \
                 signed with) or publisher_jwt_key_file (a PEM public key for RS256 / ES256)"
                    .into(),
            );
        }
        Ok(())
    }
}

fn key<'a>(secret: &'a str, file: &'a Option<PathBuf>) -> JwtKey<'a> {
    match file {
        Some(path) => JwtKey::File(path),
        None => JwtKey::Secret(secret),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_needed_and_only_one_of_each() {
        let mut config = MercureConfig::default();
        assert!(config.validate().unwrap_err().contains("publisher_jwt_key"));
        config.publisher_jwt_key = "secret".into();
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.subscriber_key(), JwtKey::Secret("secret"));
        config.subscriber_jwt_key_file = Some("sub.pem".into());
        assert_eq!(config.subscriber_key(), JwtKey::File("sub.pem".as_ref()));
        config.publisher_jwt_key_file = Some("pub.pem".into());
        let both = config.validate().unwrap_err();
        assert!(
            both.contains("both publisher_jwt_key and publisher_jwt_key_file"),
            "{both}"
        );
    }
}
