//! Tokens: JWTs carrying capabilities, verified with a key's secret (HS256, the key named by
//! the `kid` header) or with configured public keys (RS256 / ES256: PEM files, or a JWKS file
//! whose key the `kid` names).

use std::collections::HashMap;
use std::sync::Arc;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;

use super::capability::Capabilities;
use crate::config::{AuthConfig, KeyConfig};
use crate::wire::envelope::{ErrorInfo, codes};

const UNSUPPORTED: &str = "unsupported token algorithm; use HS256, RS256 or ES256";

/// What verifies tokens.
pub struct TokenKeys {
    /// HS256: each key's secret and capabilities, by key name.
    secrets: HashMap<String, (DecodingKey, Arc<Capabilities>)>,
    /// RS256 / ES256 keys from PEM files.
    public: Vec<DecodingKey>,
    jwks: Option<JwkSet>,
}

/// A token that passed verification.
pub struct Verified {
    pub capabilities: Capabilities,
    /// An HS256 token cannot grant more than the key that signed it.
    pub key: Option<(String, Arc<Capabilities>)>,
    pub expires_at_ms: u64,
    pub client_id: Option<String>,
    /// Which configured key verified it: `key:{name}` (HS256), `jwk:{kid}`, or
    /// `pem:{index}` (the `public_key_files` entry).
    pub signer: String,
}

#[derive(Deserialize)]
struct Claims {
    exp: u64,
    capability: Option<Value>,
    #[serde(rename = "x-ably-capability")]
    ably_capability: Option<Value>,
    #[serde(rename = "clientId")]
    client_id: Option<String>,
    #[serde(rename = "x-ably-clientId")]
    ably_client_id: Option<String>,
}

/// An RSA or EC public key in PEM (RS256 / ES256 tokens are checked with it).
pub fn public_key(pem: &[u8]) -> Option<DecodingKey> {
    DecodingKey::from_rsa_pem(pem)
        .or_else(|_| DecodingKey::from_ec_pem(pem))
        .ok()
}

impl TokenKeys {
    pub fn load(
        config: &AuthConfig,
        keys: &[KeyConfig],
        capabilities: &HashMap<String, Arc<Capabilities>>,
    ) -> Result<TokenKeys, String> {
        let secrets = keys
            .iter()
            .map(|k| {
                let caps = Arc::clone(&capabilities[&k.name]);
                (
                    k.name.clone(),
                    (DecodingKey::from_secret(k.secret.as_bytes()), caps),
                )
            })
            .collect();
        let mut public = Vec::new();
        for path in &config.public_key_files {
            let pem = std::fs::read(path).map_err(|e| {
                format!(
                    "[auth] public_key_files: cannot read {}: {e}",
                    path.display()
                )
            })?;
            let key = public_key(&pem).ok_or_else(|| {
                format!(
                    "[auth] public_key_files: {} is neither an RSA nor an EC public key \
                         in PEM",
                    path.display()
                )
            })?;
            public.push(key);
        }
        let jwks = match &config.jwks_file {
            None => None,
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    format!("[auth] jwks_file: cannot read {}: {e}", path.display())
                })?;
                Some(serde_json::from_str(&text).map_err(|e| {
                    format!("[auth] jwks_file: {} is not a JWK set: {e}", path.display())
                })?)
            }
        };
        Ok(TokenKeys {
            secrets,
            public,
            jwks,
        })
    }

    pub fn verify(&self, token: &str) -> Result<Verified, ErrorInfo> {
        let header = header(token)?;
        if !matches!(
            header.alg,
            Algorithm::HS256 | Algorithm::RS256 | Algorithm::ES256
        ) {
            return Err(invalid(UNSUPPORTED));
        }
        let mut key = None;
        let candidates: Vec<(String, DecodingKey)> = match header.alg.family() {
            AlgorithmFamily::Hmac => {
                let kid = header.kid.as_deref().ok_or_else(|| {
                    invalid("an HS256 token names the key that signed it in its kid header")
                })?;
                let (secret, caps) = self
                    .secrets
                    .get(kid)
                    .ok_or_else(|| invalid("the token's kid names no key"))?;
                key = Some((kid.to_owned(), Arc::clone(caps)));
                vec![(format!("key:{kid}"), secret.clone())]
            }
            AlgorithmFamily::Rsa | AlgorithmFamily::Ec => {
                let from_jwks = header.kid.as_deref().and_then(|kid| {
                    let jwk = self.jwks.as_ref()?.find(kid)?;
                    Some((format!("jwk:{kid}"), DecodingKey::from_jwk(jwk).ok()?))
                });
                match from_jwks {
                    Some(key) => vec![key],
                    None => self
                        .public
                        .iter()
                        .enumerate()
                        .filter(|(_, k)| k.family() == header.alg.family())
                        .map(|(i, k)| (format!("pem:{i}"), k.clone()))
                        .collect(),
                }
            }
            _ => return Err(invalid(UNSUPPORTED)),
        };
        let mut validation = Validation::new(header.alg);
        validation.leeway = 0;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp"]);
        let mut last = invalid("no configured key verifies this token");
        for (signer, candidate) in candidates {
            match jsonwebtoken::decode::<Claims>(token, &candidate, &validation) {
                Ok(data) => return verified(data.claims, key, signer),
                Err(e) if *e.kind() == ErrorKind::ExpiredSignature => return Err(expired()),
                Err(e) if *e.kind() == ErrorKind::InvalidSignature => {}
                Err(e) => last = invalid(&format!("the token is not valid: {e}")),
            }
        }
        Err(last)
    }
}

/// The token's header: a token that has none is not a JWT.
pub fn header(token: &str) -> Result<jsonwebtoken::Header, ErrorInfo> {
    jsonwebtoken::decode_header(token).map_err(|_| invalid("the token is not a JWT"))
}

fn verified(
    claims: Claims,
    key: Option<(String, Arc<Capabilities>)>,
    signer: String,
) -> Result<Verified, ErrorInfo> {
    let claim = claims
        .capability
        .or(claims.ably_capability)
        .ok_or_else(|| invalid("the token carries no capability claim"))?;
    let capabilities = Capabilities::from_claim(&claim).map_err(|e| invalid(&e))?;
    Ok(Verified {
        capabilities,
        key,
        expires_at_ms: claims.exp.saturating_mul(1000),
        client_id: claims.client_id.or(claims.ably_client_id),
        signer,
    })
}

fn invalid(why: &str) -> ErrorInfo {
    ErrorInfo::new(codes::BAD_CREDENTIALS, why)
}

pub fn expired() -> ErrorInfo {
    ErrorInfo::new(
        codes::TOKEN_EXPIRED,
        "the token has expired; reconnect with a new one",
    )
}
