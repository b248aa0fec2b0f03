//! `[mercure]`: the Mercure hub at `/.well-known/mercure` (off unless the section exists).

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MercureConfig {
    /// The HS256 secret publishers' tokens are signed with.
    pub publisher_jwt_key: String,
    /// The HS256 secret subscribers' tokens are signed with; the publisher's when empty.
    pub subscriber_jwt_key: String,
    /// Subscribers without a token may receive public updates.
    pub anonymous: bool,
    /// The cookie a browser's token may come in.
    pub cookie_name: String,
    /// Origins (`scheme://host[:port]`) allowed to publish with the cookie.
    pub publish_origins: Vec<String>,
}

impl Default for MercureConfig {
    fn default() -> Self {
        MercureConfig {
            publisher_jwt_key: String::new(),
            subscriber_jwt_key: String::new(),
            anonymous: false,
            cookie_name: "mercureAuthorization".into(),
            publish_origins: Vec::new(),
        }
    }
}

impl MercureConfig {
    /// The key subscribers' tokens are checked with.
    pub fn subscriber_key(&self) -> &str {
        match self.subscriber_jwt_key.is_empty() {
            true => &self.publisher_jwt_key,
            false => &self.subscriber_jwt_key,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.publisher_jwt_key.is_empty() {
            return Err(
                "[mercure] publisher_jwt_key is empty: set the HS256 secret publishers' tokens \
                 are signed with"
                    .into(),
            );
        }
        Ok(())
    }
}
