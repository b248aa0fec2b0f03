//! Which upstream targets the gateway may request: URL patterns and address checks.
//!
//! The gateway must not become a way into the network it runs in (SSRF). A target must match
//! one of `[poll] allowed_targets` (URL globs, `*` matching any run of characters), and its
//! addresses must be public unless a pattern names the host literally (`http://127.0.0.1:*/*`
//! allows loopback, `https://*.example.com/*` does not allow a private address). The address
//! check runs on literal IPs, after DNS resolution, and on every redirect.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::glob;
use crate::wire::envelope::{ErrorInfo, codes};

/// Why a target was refused; the text is safe to show to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refusal {}

/// A refused target is the client's answer: 403.
impl From<Refusal> for ErrorInfo {
    fn from(refusal: Refusal) -> ErrorInfo {
        ErrorInfo::new(codes::FORBIDDEN, refusal.0)
    }
}

/// The allowed patterns: the config file's, fixed for the life of the process. The admin
/// API does not change them: what it adds is checked against them (see `catalog`), so it
/// cannot widen what the gateway may reach.
#[derive(Debug, Default)]
pub struct TargetPolicy {
    patterns: Vec<String>,
    /// Hosts a pattern names without a wildcard: their private addresses are allowed.
    explicit_hosts: HashSet<String>,
}

impl TargetPolicy {
    pub fn new(patterns: &[String]) -> Self {
        let explicit_hosts = patterns
            .iter()
            .filter_map(|p| pattern_host(p))
            .filter(|h| !h.contains('*'))
            .collect();
        TargetPolicy {
            patterns: patterns.to_vec(),
            explicit_hosts,
        }
    }

    /// Checks a URL before it is requested (also each redirect's URL).
    pub fn check(&self, url: &Url) -> Result<(), Refusal> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refusal(format!(
                "scheme {} is not http or https",
                url.scheme()
            )));
        }
        let text = url.as_str();
        if !self.patterns.iter().any(|p| glob::matches(p, text)) {
            return Err(Refusal(format!(
                "target {} is not allowed: it matches no [poll] allowed_targets pattern",
                redact(url)
            )));
        }
        let host = url.host_str().unwrap_or_default();
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(ip) = ip
            && !is_public(ip)
            && !self.explicit_hosts.contains(host)
        {
            return Err(Refusal(format!(
                "target address {ip} is private, loopback or link-local; allow it with a \
                 pattern that names it, e.g. \"http://{host}:*/*\""
            )));
        }
        Ok(())
    }

    fn allows_private(&self, host: &str) -> bool {
        self.explicit_hosts.contains(host)
    }
}

/// A DNS resolver that drops private addresses of hosts not named explicitly, so a public
/// name pointing at an internal address is refused too.
pub struct GuardedResolver(pub Arc<TargetPolicy>);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.0);
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = if policy.allows_private(&host) {
                addrs
            } else {
                addrs.into_iter().filter(|a| is_public(a.ip())).collect()
            };
            if allowed.is_empty() {
                return Err(Box::new(Refusal(format!(
                    "{host} resolves only to private, loopback or link-local addresses"
                )))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// The host of a pattern like `https://api.example.com/*` or `http://127.0.0.1:*/*`.
fn pattern_host(pattern: &str) -> Option<String> {
    let rest = pattern.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    let host = if let Some(v6) = authority.strip_prefix('[') {
        format!("[{}]", v6.split(']').next()?)
    } else {
        authority.split(':').next()?.to_owned()
    };
    Some(host.to_ascii_lowercase())
}

/// Public unicast: not loopback, private, link-local, shared (CGNAT), unspecified,
/// multicast, broadcast or documentation space (IPv4-mapped IPv6 judged as IPv4).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

/// A URL without its query and credentials, for messages: queries often carry secrets.
pub fn redact(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_classes() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn literal_private_addresses_need_an_explicit_pattern() {
        let wildcard = TargetPolicy::new(&["http://*/*".into()]);
        let url: Url = "http://127.0.0.1:9000/x".parse().unwrap();
        assert!(wildcard.check(&url).is_err());
        let explicit = TargetPolicy::new(&["http://127.0.0.1:*/*".into()]);
        assert!(explicit.check(&url).is_ok());
        let none = TargetPolicy::new(&[]);
        assert!(
            none.check(&"https://api.example.com/".parse().unwrap())
                .is_err()
        );
    }
}
