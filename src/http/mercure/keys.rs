//! The keys Mercure tokens are checked with, read once at start-up: an HS256 secret, or an
//! RSA / EC public key file for RS256 / ES256.

use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation};
use serde::Deserialize;

use crate::auth::public_key;
use crate::config::mercure::{JwtKey, MercureConfig};
use crate::wire::envelope::{ErrorInfo, codes};

/// The hub's config, with the publishers' and the subscribers' keys read from it.
pub struct MercureKeys {
    pub config: MercureConfig,
    pub publisher: Key,
    pub subscriber: Key,
}

impl MercureKeys {
    pub fn load(config: &MercureConfig) -> Result<MercureKeys, String> {
        Ok(MercureKeys {
            config: config.clone(),
            publisher: Key::load(config.publisher_key(), "publisher")?,
            subscriber: Key::load(config.subscriber_key(), "subscriber")?,
        })
    }
}

/// One key, and the algorithm tokens must be signed with.
pub struct Key {
    decoding: DecodingKey,
    algorithm: Algorithm,
}

/// The `mercure` claim of a token.
#[derive(Debug, Default, Deserialize)]
pub struct Claim {
    #[serde(default)]
    pub publish: Vec<String>,
    #[serde(default)]
    pub subscribe: Vec<String>,
    /// What subscription events and the subscriptions API show of the subscriber.
    #[serde(default)]
    pub payload: serde_json::Value,
}

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    mercure: Claim,
    exp: Option<u64>,
}

impl Key {
    fn load(key: JwtKey, who: &str) -> Result<Key, String> {
        let path = match key {
            JwtKey::Secret(secret) => {
                return Ok(Key {
                    decoding: DecodingKey::from_secret(secret.as_bytes()),
                    algorithm: Algorithm::HS256,
                });
            }
            JwtKey::File(path) => path,
        };
        let pem = std::fs::read(path).map_err(|e| {
            format!(
                "[mercure] {who}_jwt_key_file: cannot read {}: {e}",
                path.display()
            )
        })?;
        let decoding = public_key(&pem).ok_or_else(|| {
            format!(
                "[mercure] {who}_jwt_key_file: {} is neither an RSA nor an EC public key in PEM",
                path.display()
            )
        })?;
        let algorithm = match decoding.family() {
            AlgorithmFamily::Rsa => Algorithm::RS256,
            _ => Algorithm::ES256,
        };
        Ok(Key {
            decoding,
            algorithm,
        })
    }

    /// Checks a token: its `mercure` claim, and when it expires (milliseconds since the Unix
    /// epoch) if it does. 401 when it does not verify.
    pub fn verify(&self, token: &str) -> Result<(Claim, Option<u64>), ErrorInfo> {
        let mut validation = Validation::new(self.algorithm);
        validation.required_spec_claims.clear();
        validation.validate_aud = false;
        validation.leeway = 0;
        let decoded = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|e| unauthorized(format!("the Mercure JWT is not valid: {e}")))?;
        let claims = decoded.claims;
        Ok((claims.mercure, claims.exp.map(|s| s.saturating_mul(1000))))
    }
}

pub fn unauthorized(message: impl Into<String>) -> ErrorInfo {
    ErrorInfo::new(codes::BAD_CREDENTIALS, message)
}
