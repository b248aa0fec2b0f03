//! The servers under test: loopback URLs only, and the bytes of the subscribe request.
//!
//! Only loopback targets are accepted: the tool opens tens of thousands of connections and
//! publishes as fast as asked, which must never be pointed at someone else's machine.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use bytes::Bytes;
use reqwest::Url;
use reqwest::header::{HeaderName, HeaderValue};

/// Parses `text` (the value of `--{flag}`) and checks that it is HTTP(S) to loopback.
pub fn loopback_url(flag: &str, text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("--{flag} {text:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "--{flag} {text:?}: only http:// and https:// URLs are supported (the targets are \
             local servers)"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "--{flag} {text:?}: credentials in the URL are not supported; send them in a header"
        ));
    }
    loopback_address(&url).map_err(|why| format!("--{flag} {text:?}: {why}"))?;
    Ok(url)
}

/// Where to connect for `url`, without DNS: `localhost` is taken as 127.0.0.1.
pub fn loopback_address(url: &Url) -> Result<SocketAddr, String> {
    let host = url.host_str().unwrap_or_default();
    let ip = if host.eq_ignore_ascii_case("localhost") {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .ok()
            .filter(IpAddr::is_loopback)
            .ok_or_else(|| {
                format!(
                    "host {host:?} is not loopback; only 127.0.0.0/8, ::1 and localhost \
                     may be targeted"
                )
            })?
    };
    let port = url.port_or_known_default().unwrap_or(80);
    Ok(SocketAddr::new(ip, port))
}

/// Parses a `Name: value` header given to `--{flag}`.
pub fn header(flag: &str, text: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("--{flag} {text:?}: expected 'Name: value'"))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| format!("--{flag} {text:?}: {:?} is not a header name", name.trim()))?;
    let value = HeaderValue::from_str(value.trim())
        .map_err(|_| format!("--{flag} {text:?}: the value holds a forbidden character"))?;
    Ok((name, value))
}

/// The address to connect to and the request every subscriber writes.
#[derive(Debug, Clone)]
pub struct SubscribeTarget {
    pub addr: SocketAddr,
    /// Over TLS (https://).
    pub tls: bool,
    /// The request as HTTP/1.1 bytes.
    pub request: Bytes,
    /// The same request, for HTTP/2.
    pub h2_request: axum::http::Request<()>,
}

impl SubscribeTarget {
    pub fn new(url: &Url, headers: &[(HeaderName, HeaderValue)]) -> Result<Self, String> {
        let addr = loopback_address(url)?;
        let mut target = url.path().to_owned();
        if let Some(query) = url.query() {
            target.push('?');
            target.push_str(query);
        }
        let host = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_owned(),
        };
        let mut request = format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n").into_bytes();
        for (name, value) in headers {
            request.extend_from_slice(name.as_str().as_bytes());
            request.extend_from_slice(b": ");
            request.extend_from_slice(value.as_bytes());
            request.extend_from_slice(b"\r\n");
        }
        request.extend_from_slice(b"\r\n");
        let mut h2_request = axum::http::Request::get(url.as_str());
        for (name, value) in headers {
            h2_request = h2_request.header(name, value);
        }
        Ok(SubscribeTarget {
            addr,
            tls: url.scheme() == "https",
            request: Bytes::from(request),
            h2_request: h2_request
                .body(())
                .map_err(|e| format!("{url}: cannot make an HTTP/2 request of it: {e}"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_is_accepted() {
        for ok in [
            "http://127.0.0.1:8080/sse",
            "http://127.9.8.7/x",
            "http://[::1]:1/",
            "http://LocalHost:5/",
        ] {
            assert!(loopback_url("u", ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://10.0.0.1/",
            "http://example.com/",
            "ftp://127.0.0.1/",
            "http://u:p@127.0.0.1/",
            "127.0.0.1:8080",
        ] {
            assert!(loopback_url("u", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_subscribe_request() {
        let url = loopback_url("u", "http://localhost:8080/sse?channels=a%2Cb").unwrap();
        let accept = header("h", "Accept: text/event-stream").unwrap();
        let target = SubscribeTarget::new(&url, &[accept]).unwrap();
        assert_eq!(target.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(
            &target.request[..],
            b"GET /sse?channels=a%2Cb HTTP/1.1\r\nHost: localhost:8080\r\n\
              accept: text/event-stream\r\n\r\n"
        );
        assert!(header("h", "no colon").is_err());
        assert!(header("h", "bad name: x").is_err());
    }
}
