//! HTTP/1 message heads for the server's own connection loop (`server::http1`): parsing a
//! request head (with `httparse`, hyper's own parser) and writing a response head.

use axum::http::header::{CONNECTION, CONTENT_LENGTH, DATE, EXPECT, TRANSFER_ENCODING, UPGRADE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri, Version};
use bytes::BytesMut;

/// The HTTP/2 connection preface a client with prior knowledge starts with.
pub const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Header fields a request may have, as hyper allows.
const MAX_HEADERS: usize = 100;
/// The longest request target the `http` crate's `Uri` holds.
const MAX_URI: usize = u16::MAX as usize - 1;

/// What the bytes read so far hold.
// Returned once per request and matched at once: boxing the request would only add an
// allocation per request.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Parsed {
    /// Not a whole head yet.
    Partial,
    /// An HTTP/2 connection (prior knowledge): hyper serves it.
    Http2,
    /// A request head `len` bytes long.
    Request { len: usize, request: Request<()> },
    /// A head no server could answer: the status to close the connection with.
    Bad(StatusCode),
}

/// Parses the request head at the start of `buf`.
pub fn parse(buf: &[u8]) -> Parsed {
    let preface = buf.len().min(HTTP2_PREFACE.len());
    if buf[..preface] == HTTP2_PREFACE[..preface] {
        return if preface == HTTP2_PREFACE.len() {
            Parsed::Http2
        } else {
            Parsed::Partial
        };
    }
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut head = httparse::Request::new(&mut fields);
    let len = match head.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(httparse::Error::TooManyHeaders) => {
            return Parsed::Bad(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        }
        Err(_) => return Parsed::Bad(StatusCode::BAD_REQUEST),
    };
    if head.path.is_some_and(|path| path.len() > MAX_URI) {
        return Parsed::Bad(StatusCode::URI_TOO_LONG);
    }
    match request(&head) {
        Some(request) => Parsed::Request { len, request },
        None => Parsed::Bad(StatusCode::BAD_REQUEST),
    }
}

/// The parsed head as an `http` request, or None when a part is not valid HTTP.
fn request(head: &httparse::Request<'_, '_>) -> Option<Request<()>> {
    let method = Method::from_bytes(head.method?.as_bytes()).ok()?;
    let uri: Uri = head.path?.parse().ok()?;
    let version = match head.version? {
        0 => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let mut headers = HeaderMap::with_capacity(head.headers.len());
    for field in head.headers.iter() {
        let name = HeaderName::from_bytes(field.name.as_bytes()).ok()?;
        let value = HeaderValue::from_bytes(field.value).ok()?;
        headers.append(name, value);
    }
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = version;
    *request.headers_mut() = headers;
    Some(request)
}

/// Whether the server's own loop can answer `request`: one without a body, an upgrade or an
/// `Expect`. The others (publishes, mostly) go to hyper.
pub fn is_simple(request: &Request<()>) -> bool {
    let headers = request.headers();
    let no_body = !headers.contains_key(TRANSFER_ENCODING)
        && headers
            .get_all(CONTENT_LENGTH)
            .iter()
            .all(|length| length.as_bytes() == b"0");
    no_body
        && request.method() != Method::CONNECT
        && !headers.contains_key(UPGRADE)
        && !headers.contains_key(EXPECT)
}

/// Whether the client lets the connection stay open after this request: HTTP/1.1 without
/// `Connection: close`. HTTP/1.0 connections close after one response.
pub fn keeps_alive(version: Version, headers: &HeaderMap) -> bool {
    version == Version::HTTP_11 && !says_close(headers)
}

/// Whether `Connection` lists `close`.
pub fn says_close(headers: &HeaderMap) -> bool {
    headers.get_all(CONNECTION).iter().any(|value| {
        value
            .as_bytes()
            .split(|b| *b == b',')
            .any(|token| token.trim_ascii().eq_ignore_ascii_case(b"close"))
    })
}

/// How a response's body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body at all (HEAD, 1xx, 204, 304).
    None,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the connection closes (an HTTP/1.0 client, length unknown).
    Close,
}

/// Writes the status line and the header fields, with `Date` and the framing and
/// `Connection` fields the server owns.
pub fn write_response(
    out: &mut BytesMut,
    version: Version,
    status: StatusCode,
    headers: &HeaderMap,
    framing: Framing,
    length: Option<u64>,
    keep_alive: bool,
) {
    // An HTTP/1.0 client is answered in its own version, as hyper does.
    out.extend_from_slice(if version == Version::HTTP_10 {
        b"HTTP/1.0 "
    } else {
        b"HTTP/1.1 "
    });
    out.extend_from_slice(status.as_str().as_bytes());
    out.extend_from_slice(b" ");
    out.extend_from_slice(status.canonical_reason().unwrap_or("Unknown").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        if name == TRANSFER_ENCODING || name == CONTENT_LENGTH || name == CONNECTION {
            continue;
        }
        field(out, name.as_str().as_bytes(), value.as_bytes());
    }
    if !headers.contains_key(DATE) {
        field(
            out,
            b"date",
            httpdate::fmt_http_date(std::time::SystemTime::now()).as_bytes(),
        );
    }
    match (framing, length) {
        (Framing::Chunked, _) => field(out, b"transfer-encoding", b"chunked"),
        (_, Some(length)) => field(out, b"content-length", length.to_string().as_bytes()),
        _ => {}
    }
    if !keep_alive {
        field(out, b"connection", b"close");
    }
    out.extend_from_slice(b"\r\n");
}

fn field(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// The line that starts a chunk of `len` bytes, in a stack buffer.
pub struct ChunkSize {
    bytes: [u8; 18],
    len: u8,
}

impl ChunkSize {
    pub fn new(len: usize) -> ChunkSize {
        let mut bytes = [0u8; 18];
        let digits = format_hex(len, &mut bytes);
        bytes[digits] = b'\r';
        bytes[digits + 1] = b'\n';
        ChunkSize {
            bytes,
            len: (digits + 2) as u8,
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// Writes `n` in hexadecimal at the start of `out`; returns the digits written.
fn format_hex(n: usize, out: &mut [u8; 18]) -> usize {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let width = (usize::BITS - n.leading_zeros()).div_ceil(4).max(1) as usize;
    for (i, slot) in out[..width].iter_mut().enumerate() {
        let shift = 4 * (width - 1 - i);
        *slot = DIGITS[(n >> shift) & 0xf];
    }
    width
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(head: &[u8]) -> Request<()> {
        match parse(head) {
            Parsed::Request { len, request } => {
                assert_eq!(len, head.len());
                request
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_a_request_head_and_waits_for_the_rest() {
        let head = b"GET /sse?channels=a HTTP/1.1\r\nHost: x\r\nX-Two: 1\r\nX-Two: 2\r\n\r\n";
        let request = parsed(head);
        assert_eq!(request.method(), Method::GET);
        assert_eq!(request.uri(), "/sse?channels=a");
        assert_eq!(request.version(), Version::HTTP_11);
        assert_eq!(request.headers().get_all("x-two").iter().count(), 2);
        assert!(matches!(parse(&head[..20]), Parsed::Partial));
        assert!(matches!(parse(b"PRI * HTTP/2"), Parsed::Partial));
        assert!(matches!(parse(HTTP2_PREFACE), Parsed::Http2));
        assert!(matches!(
            parse(b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n"),
            Parsed::Bad(StatusCode::BAD_REQUEST)
        ));
    }

    #[test]
    fn non_utf8_header_values_are_kept_as_bytes() {
        let request = parsed(b"GET / HTTP/1.1\r\nLast-Event-ID: \xc3\xa9\r\n\r\n");
        assert_eq!(
            request.headers()["last-event-id"].as_bytes(),
            "é".as_bytes()
        );
    }

    #[test]
    fn too_many_fields_is_431() {
        let mut head = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            head.extend_from_slice(format!("x-{i}: v\r\n").as_bytes());
        }
        head.extend_from_slice(b"\r\n");
        assert!(matches!(
            parse(&head),
            Parsed::Bad(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        ));
    }

    #[test]
    fn requests_with_a_body_or_an_upgrade_are_not_simple() {
        let simple = |head: &[u8]| is_simple(&parsed(head));
        assert!(simple(b"GET / HTTP/1.1\r\n\r\n"));
        assert!(simple(b"DELETE /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n"));
        assert!(!simple(b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n"));
        assert!(!simple(
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        ));
        assert!(!simple(
            b"GET / HTTP/1.1\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n"
        ));
    }

    #[test]
    fn keep_alive_follows_version_and_connection() {
        let h = |head: &[u8]| {
            let r = parsed(head);
            keeps_alive(r.version(), r.headers())
        };
        assert!(h(b"GET / HTTP/1.1\r\n\r\n"));
        assert!(!h(b"GET / HTTP/1.1\r\nConnection: TE, Close\r\n\r\n"));
        assert!(!h(b"GET / HTTP/1.0\r\n\r\n"));
    }

    #[test]
    fn chunk_sizes_are_lowercase_hex() {
        assert_eq!(ChunkSize::new(0).as_bytes(), b"0\r\n");
        assert_eq!(ChunkSize::new(255).as_bytes(), b"ff\r\n");
        assert_eq!(ChunkSize::new(65536).as_bytes(), b"10000\r\n");
        let max = ChunkSize::new(usize::MAX);
        assert_eq!(max.as_bytes().len(), usize::BITS as usize / 4 + 2);
    }

    #[test]
    fn response_heads_own_their_framing_fields() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_LENGTH, HeaderValue::from_static("99"));
        headers.insert("content-type", HeaderValue::from_static("text/plain"));
        let mut out = BytesMut::new();
        write_response(
            &mut out,
            Version::HTTP_11,
            StatusCode::OK,
            &headers,
            Framing::Length(5),
            Some(5),
            false,
        );
        let text = String::from_utf8(out.to_vec()).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("content-length: 5\r\n"), "{text}");
        assert!(!text.contains("99"), "{text}");
        assert!(text.contains("connection: close\r\n"), "{text}");
        assert!(text.contains("date: "), "{text}");
        assert!(text.ends_with("\r\n\r\n"), "{text}");
    }
}
