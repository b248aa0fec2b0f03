//! The HTTP client for upstream requests, with the target policy built in.

use std::sync::Arc;

use reqwest::redirect;

use super::target::{GuardedResolver, Refusal, TargetPolicy};
use crate::config::PollConfig;

/// Redirects followed before giving up.
const MAX_REDIRECTS: usize = 5;

/// A client that checks every DNS answer and redirect against `policy`, trusts the system
/// roots plus `[poll] extra_ca_files`, and ignores proxy environment variables (a proxy
/// would hide the real target from the address checks).
pub fn client(policy: Arc<TargetPolicy>, config: &PollConfig) -> Result<reqwest::Client, String> {
    let redirect_policy = Arc::clone(&policy);
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("streamgate/", env!("CARGO_PKG_VERSION")))
        .no_proxy()
        .dns_resolver(Arc::new(GuardedResolver(policy)))
        .redirect(redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                return attempt.error(Refusal(format!("more than {MAX_REDIRECTS} redirects")));
            }
            match redirect_policy.check(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(refusal) => attempt.error(refusal),
            }
        }));
    for path in &config.extra_ca_files {
        let pem = std::fs::read(path)
            .map_err(|e| format!("[poll] extra_ca_files: cannot read {}: {e}", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            format!(
                "[poll] extra_ca_files: {} is not PEM certificates: {e}",
                path.display()
            )
        })?;
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder
        .build()
        .map_err(|e| format!("cannot build the upstream HTTP client: {e}"))
}
