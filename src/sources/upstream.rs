//! The HTTP client for upstream requests, with the target policy built in.
//!
//! Every request the gateway sends upstream (polls, relays, passthrough) goes through
//! `Upstream::request`, which checks the URL against the policy as it is sent, not only when a
//! client first asked for the stream: a stream may come back from a journal written under a
//! wider policy, from another node, or with a lease taken over, and none of those may reach a
//! target this process's policy refuses.

use std::sync::Arc;

use reqwest::{Method, RequestBuilder, Url, redirect};

use super::target::{GuardedResolver, Refusal, TargetPolicy};
use crate::config::PollConfig;

/// Redirects followed before giving up.
const MAX_REDIRECTS: usize = 5;

/// The upstream client and the policy its every request is held to.
#[derive(Clone)]
pub struct Upstream {
    client: reqwest::Client,
    policy: Arc<TargetPolicy>,
}

impl Upstream {
    /// A client that checks every URL, DNS answer and redirect against `policy`, trusts the
    /// system roots plus `[poll] extra_ca_files`, and ignores proxy environment variables (a
    /// proxy would hide the real target from the address checks).
    pub fn new(policy: Arc<TargetPolicy>, config: &PollConfig) -> Result<Upstream, String> {
        let redirect_policy = Arc::clone(&policy);
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("streamgate/", env!("CARGO_PKG_VERSION")))
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver(Arc::clone(&policy))))
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
            let pem = std::fs::read(path).map_err(|e| {
                format!("[poll] extra_ca_files: cannot read {}: {e}", path.display())
            })?;
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
        let client = builder
            .build()
            .map_err(|e| format!("cannot build the upstream HTTP client: {e}"))?;
        Ok(Upstream { client, policy })
    }

    /// A request to `url`, if the policy allows it.
    pub fn request(&self, method: Method, url: Url) -> Result<RequestBuilder, Refusal> {
        self.policy.check(&url)?;
        Ok(self.client.request(method, url))
    }

    /// What targets may be: the config file's patterns, fixed for the process's life.
    pub fn policy(&self) -> &TargetPolicy {
        &self.policy
    }
}
