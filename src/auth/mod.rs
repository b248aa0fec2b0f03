//! Credentials and the decision whether they allow an operation on a resource.
//!
//! Until keys are configured every request is allowed, except the admin API: it needs a
//! credential that may have the `admin` capability. Credentials are always parsed, keys and
//! tokens alike, so a malformed one is reported rather than silently ignored. Secrets and
//! tokens are never shown: not in errors, and not in `Debug` output (which logs may use).
//!
//! Auth reads the config's key types, and `Auth::new` is where a config's capabilities are
//! parsed and so checked: the config holds them as written and imports nothing of auth.

mod capability;
mod token;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

pub use capability::{Capabilities, Operation};
use token::TokenKeys;
pub use token::expired as token_expired;
pub use token::public_key;

use crate::config::Config;
use crate::wire::envelope::{ErrorInfo, codes};

/// What a request presented.
#[derive(Clone)]
pub enum Credential {
    Anonymous,
    /// An API key `name:secret` (the `key` parameter or HTTP Basic).
    Key {
        name: String,
        secret: String,
    },
    /// A token (`accessToken` or `Authorization: Bearer`).
    Token(String),
}

/// The SHA-256 digest of `text`.
fn digest(text: &str) -> Vec<u8> {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    digest.as_ref().to_vec()
}

/// Secrets and tokens compare in constant time: the connection registry compares a
/// presented credential with the one that opened a connection.
impl PartialEq for Credential {
    fn eq(&self, other: &Credential) -> bool {
        match (self, other) {
            (Credential::Anonymous, Credential::Anonymous) => true,
            (
                Credential::Key { name, secret },
                Credential::Key {
                    name: other_name,
                    secret: other_secret,
                },
            ) => (name == other_name) & same_secret(secret, other_secret),
            (Credential::Token(token), Credential::Token(other)) => same_secret(token, other),
            _ => false,
        }
    }
}

impl Eq for Credential {}

impl Credential {
    /// A SHA-256 digest of the credential: what a connection is bound to unless its
    /// principal says otherwise (see `Principal::binding`); no secret is on disk.
    fn digest(&self) -> Vec<u8> {
        match self {
            Credential::Anonymous => digest("a"),
            Credential::Key { name, secret } => digest(&format!("k\0{name}\0{secret}")),
            Credential::Token(token) => digest(&format!("t\0{token}")),
        }
    }

    /// Reads a credential from the `key` / `accessToken` parameters and the `Authorization`
    /// header, in that order of precedence.
    pub fn from_request(
        key: Option<&str>,
        access_token: Option<&str>,
        authorization: Option<&str>,
    ) -> Result<Credential, ErrorInfo> {
        if let Some(key) = key {
            return parse_key(key);
        }
        if let Some(token) = access_token {
            return Credential::token(token);
        }
        let Some(header) = authorization else {
            return Ok(Credential::Anonymous);
        };
        let (scheme, value) = header.split_once(' ').unwrap_or((header, ""));
        if scheme.eq_ignore_ascii_case("bearer") {
            Credential::token(value.trim())
        } else if scheme.eq_ignore_ascii_case("basic") {
            use base64::Engine;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(value.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    ErrorInfo::new(
                        codes::BAD_CREDENTIALS,
                        "Basic credentials are not base64 of name:secret",
                    )
                })?;
            parse_key(&decoded)
        } else {
            Err(ErrorInfo::new(
                codes::BAD_CREDENTIALS,
                "unsupported Authorization scheme; use Basic (an API key) or Bearer (a token)",
            ))
        }
    }

    /// A token in the form of a JWT, with or without keys configured (its signature and
    /// claims are checked only when they are).
    fn token(token: &str) -> Result<Credential, ErrorInfo> {
        token::header(token)?;
        Ok(Credential::Token(token.to_owned()))
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Anonymous => f.write_str("Anonymous"),
            Credential::Key { name, .. } => write!(f, "Key({name}:<redacted>)"),
            Credential::Token(_) => f.write_str("Token(<redacted>)"),
        }
    }
}

fn parse_key(key: &str) -> Result<Credential, ErrorInfo> {
    match key.split_once(':') {
        Some((name, secret)) if !name.is_empty() && !secret.is_empty() => Ok(Credential::Key {
            name: name.to_owned(),
            secret: secret.to_owned(),
        }),
        // The text may be a secret: never echo it.
        _ => Err(ErrorInfo::new(
            codes::BAD_CREDENTIALS,
            "an API key has the form name:secret",
        )),
    }
}

/// The resource the admin API's capability is checked on.
pub const ADMIN_RESOURCE: &str = "admin";

/// Decides what credentials may do; reloaded as a whole when the admin API changes keys.
pub struct Auth {
    rules: std::sync::RwLock<Arc<Rules>>,
}

struct Rules {
    /// False when no key or token key is configured: everything is allowed.
    enabled: bool,
    /// Whether some credential may have the `admin` capability: a key that has it, or a
    /// token key (its tokens say what they may do). Without one the admin API is off.
    admin: bool,
    /// Each key's secret and capabilities, by name.
    keys: HashMap<String, (String, Arc<Capabilities>)>,
    /// What requests without a credential may do; `None` refuses them.
    anonymous: Option<Arc<Capabilities>>,
    tokens: TokenKeys,
}

/// Who a request is, once its credential is checked, and what it may do.
#[derive(Debug, Clone, Default)]
pub struct Principal {
    /// Every set must allow an operation (a token's own, and the key's that signed it).
    /// None at all: everything is allowed.
    capabilities: Vec<Arc<Capabilities>>,
    /// When the token presented expires (milliseconds since the Unix epoch).
    pub expires_at_ms: Option<u64>,
    /// What rate limits count by: the key's name (also for the HS256 tokens it signed), or
    /// `token:{clientId}` for other tokens.
    pub name: Option<String>,
    /// Who the client is, as its token says (`clientId`): whom presence enters.
    pub client_id: Option<String>,
    /// What the connections it opens are bound to: resuming or changing one takes a
    /// principal bound alike. A SHA-256 digest (kept with a connection's journal): of the
    /// API key, of the key that verified a token and its `clientId` when it names one (a
    /// renewed token of the same client resumes its connection, with the new token's
    /// capabilities checked again), else of the token itself.
    pub binding: Vec<u8>,
}

impl Auth {
    /// Builds the decision from the config, reading the token keys' files.
    pub fn new(config: &Config) -> Result<Auth, String> {
        Ok(Auth {
            rules: std::sync::RwLock::new(Arc::new(Rules::new(config)?)),
        })
    }

    /// Applies `other`'s rules from now on (built beforehand, so this cannot fail).
    pub fn adopt(&self, other: Auth) {
        let rules = other.rules.into_inner().unwrap();
        *self.rules.write().unwrap() = rules;
    }

    /// Whether the admin API is on: some credential may have the `admin` capability.
    pub fn admin_enabled(&self) -> bool {
        self.rules.read().unwrap().admin
    }

    /// Checks the credential: who it is and what it may do.
    pub fn principal(&self, credential: &Credential) -> Result<Principal, ErrorInfo> {
        let rules = Arc::clone(&self.rules.read().unwrap());
        rules.principal(credential)
    }

    /// Checks the credential and that it allows `operation` on `resource`.
    pub fn authorize(
        &self,
        credential: &Credential,
        operation: Operation,
        resource: &str,
    ) -> Result<Principal, ErrorInfo> {
        let principal = self.principal(credential)?;
        principal.check(operation, resource)?;
        Ok(principal)
    }
}

impl Rules {
    fn new(config: &Config) -> Result<Rules, String> {
        let mut keys = HashMap::new();
        let mut capabilities = HashMap::new();
        for key in &config.keys {
            let caps = Arc::new(
                Capabilities::parse(&key.capabilities)
                    .map_err(|e| format!("[[key]] {}: capabilities: {e}", key.name))?,
            );
            capabilities.insert(key.name.clone(), Arc::clone(&caps));
            keys.insert(key.name.clone(), (key.secret.clone(), caps));
        }
        let anonymous = (!config.auth.anonymous.is_empty())
            .then(|| Capabilities::parse(&config.auth.anonymous))
            .transpose()
            .map_err(|e| format!("[auth] anonymous: {e}"))?
            .map(Arc::new);
        let admin = config.auth.token_keys()
            || capabilities
                .values()
                .any(|caps| caps.allows(Operation::Admin, ADMIN_RESOURCE));
        Ok(Rules {
            enabled: config.auth.enabled(&config.keys),
            admin,
            keys,
            anonymous,
            tokens: TokenKeys::load(&config.auth, &config.keys, &capabilities)?,
        })
    }

    fn principal(&self, credential: &Credential) -> Result<Principal, ErrorInfo> {
        if !self.enabled {
            return Ok(Principal {
                binding: credential.digest(),
                ..Principal::default()
            });
        }
        match credential {
            Credential::Anonymous => match &self.anonymous {
                Some(caps) => Ok(Principal {
                    capabilities: vec![Arc::clone(caps)],
                    binding: credential.digest(),
                    ..Principal::default()
                }),
                None => Err(ErrorInfo::new(
                    codes::BAD_CREDENTIALS,
                    "credentials are required: an API key (key=name:secret, HTTP Basic or \
                     X-Sd-Token) or a token (accessToken= or Authorization: Bearer)",
                )),
            },
            Credential::Key { name, secret } => match self.keys.get(name) {
                Some((expected, caps)) if same_secret(expected, secret) => Ok(Principal {
                    capabilities: vec![Arc::clone(caps)],
                    name: Some(name.clone()),
                    binding: credential.digest(),
                    ..Principal::default()
                }),
                // Neither the name nor the secret is echoed: either may be mistyped secret.
                _ => Err(ErrorInfo::new(
                    codes::BAD_CREDENTIALS,
                    "the API key is not valid",
                )),
            },
            Credential::Token(token) => {
                let verified = self.tokens.verify(token)?;
                let mut capabilities = vec![Arc::new(verified.capabilities)];
                // What rate limits count by: the signing key for HS256 tokens (whoever holds
                // the key could mint any client id), else the token's client id, kept apart
                // from key names.
                let name = match verified.key {
                    Some((key, caps)) => {
                        capabilities.push(caps);
                        Some(key)
                    }
                    None => verified.client_id.as_ref().map(|id| format!("token:{id}")),
                };
                // A client of one signer resumes its connection with any token that signer
                // gives it: bound to both. A wildcard or empty client id names nobody.
                let binding = match verified.client_id.as_deref() {
                    Some(id) if id != "*" && !id.is_empty() => {
                        digest(&format!("c\0{}\0{id}", verified.signer))
                    }
                    _ => credential.digest(),
                };
                let principal = Principal {
                    capabilities,
                    expires_at_ms: Some(verified.expires_at_ms),
                    name,
                    client_id: verified.client_id,
                    binding,
                };
                principal.check_expiry()?;
                Ok(principal)
            }
        }
    }
}

impl Principal {
    /// Whether this principal may perform `operation` on `resource` (now: an expired token
    /// may do nothing).
    pub fn check(&self, operation: Operation, resource: &str) -> Result<(), ErrorInfo> {
        self.check_expiry()?;
        if self
            .capabilities
            .iter()
            .all(|caps| caps.allows(operation, resource))
        {
            return Ok(());
        }
        Err(ErrorInfo::new(
            codes::NOT_PERMITTED,
            format!(
                "the credential does not allow {} on {resource:?}",
                operation.name()
            ),
        ))
    }

    fn check_expiry(&self) -> Result<(), ErrorInfo> {
        match self.expires_at_ms {
            Some(at) if at <= crate::clock::now_ms() => Err(token::expired()),
            _ => Ok(()),
        }
    }
}

/// Compares secrets in time that does not depend on where they differ.
fn same_secret(expected: &str, given: &str) -> bool {
    let (a, b) = (expected.as_bytes(), given.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, secret: &str) -> Credential {
        Credential::Key {
            name: name.into(),
            secret: secret.into(),
        }
    }

    #[test]
    fn credentials_are_equal_only_when_every_part_is() {
        assert!(key("a", "s3cret") == key("a", "s3cret"));
        assert!(key("a", "s3cret") != key("a", "s3creT"));
        assert!(key("a", "s3cret") != key("b", "s3cret"));
        assert!(key("a", "s") != key("a", "s3cret"));
        assert!(Credential::Token("t.k.n".into()) == Credential::Token("t.k.n".into()));
        assert!(Credential::Token("t.k.n".into()) != Credential::Token("t.k.x".into()));
        assert!(Credential::Token("a:s".into()) != key("a", "s"));
        assert!(Credential::Anonymous == Credential::Anonymous);
        assert!(Credential::Anonymous != Credential::Token(String::new()));
    }
}
