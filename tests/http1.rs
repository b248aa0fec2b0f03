//! The server's own HTTP/1 handling, byte by byte over raw sockets: keep-alive and
//! pipelining, HEAD, HTTP/1.0, chunked streams, bad heads, the hand-over of requests with a
//! body (and of HTTP/2) to hyper on the same connection, and a closed client ending its
//! stream at once.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Server, metric, publish};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One response as read off the wire.
#[derive(Debug)]
struct Response {
    status: u16,
    /// Header fields, names lowercased.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A raw connection that reads responses as they are framed.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// The version of the last status line read.
    version: String,
}

impl Conn {
    async fn open(server: &Server) -> Conn {
        let addr = server.base.trim_start_matches("http://");
        Conn {
            stream: TcpStream::connect(addr).await.unwrap(),
            buf: Vec::new(),
            version: String::new(),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Reads more bytes; false at the end of the connection.
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 8192];
        let n = tokio::time::timeout(Duration::from_secs(10), self.stream.read(&mut chunk))
            .await
            .expect("the server answers within 10 s")
            .unwrap_or(0);
        self.buf.extend_from_slice(&chunk[..n]);
        n > 0
    }

    async fn take_until(&mut self, end: &[u8]) -> Vec<u8> {
        loop {
            if let Some(at) = self.buf.windows(end.len()).position(|w| w == end) {
                let taken: Vec<u8> = self.buf.drain(..at + end.len()).collect();
                return taken[..at].to_vec();
            }
            assert!(self.fill().await, "connection closed before {end:?}");
        }
    }

    async fn take(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            assert!(self.fill().await, "connection closed early");
        }
        self.buf.drain(..n).collect()
    }

    /// Reads a response head.
    async fn head(&mut self) -> (u16, Vec<(String, String)>) {
        let head = String::from_utf8(self.take_until(b"\r\n\r\n").await).unwrap();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        assert!(status_line.starts_with("HTTP/1."), "{status_line}");
        self.version = status_line[..8].to_string();
        let status = status_line[9..12].parse().unwrap();
        let headers = lines
            .map(|line| {
                let (name, value) = line.split_once(": ").unwrap();
                (name.to_ascii_lowercase(), value.to_string())
            })
            .collect();
        (status, headers)
    }

    /// Reads one chunk of a chunked body; None at the last (empty) chunk.
    async fn chunk(&mut self) -> Option<Vec<u8>> {
        let size = String::from_utf8(self.take_until(b"\r\n").await).unwrap();
        let size = usize::from_str_radix(&size, 16).unwrap();
        let data = self.take(size).await;
        assert_eq!(self.take(2).await, b"\r\n", "a chunk ends with CRLF");
        (size > 0).then_some(data)
    }

    /// Reads a whole response, however its body is framed. `head_only` for HEAD.
    async fn response(&mut self, head_only: bool) -> Response {
        let (status, headers) = self.head().await;
        let mut response = Response {
            status,
            headers,
            body: Vec::new(),
        };
        if head_only {
            return response;
        }
        if response.header("transfer-encoding") == Some("chunked") {
            while let Some(data) = self.chunk().await {
                response.body.extend(data);
            }
        } else if let Some(length) = response.header("content-length") {
            response.body = self.take(length.parse().unwrap()).await;
        } else {
            while self.fill().await {}
            response.body = std::mem::take(&mut self.buf);
        }
        response
    }

    /// Whether the server closed the connection (within a few seconds).
    async fn closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(
            tokio::time::timeout(Duration::from_secs(5), self.stream.read(&mut byte)).await,
            Ok(Ok(0) | Err(_))
        )
    }
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_on_one_connection() {
    let server = Server::start("");
    let mut conn = Conn::open(&server).await;
    conn.send(
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n\
          HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n\
          HEAD /sse?channels=h HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /nope HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    let first = conn.response(false).await;
    assert_eq!((first.status, first.body.as_slice()), (200, &b"ok\n"[..]));
    assert!(first.header("date").is_some(), "{first:?}");
    let head = conn.response(true).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("3"), "{head:?}");
    // A stream's length is not known: a HEAD answer must not claim one.
    let stream_head = conn.response(true).await;
    assert_eq!(stream_head.status, 200);
    assert_eq!(
        stream_head.header("content-length"),
        None,
        "{stream_head:?}"
    );
    let missing = conn.response(false).await;
    assert_eq!(missing.status, 404);
    // Still open: one more request on the same connection.
    conn.send(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(conn.response(false).await.status, 200);
    conn.send(b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n")
        .await;
    let last = conn.response(false).await;
    assert_eq!(last.header("connection"), Some("close"));
    assert!(conn.closed().await, "closed after Connection: close");
}

#[tokio::test]
async fn an_sse_stream_is_chunked_and_a_closed_client_ends_it_at_once() {
    let server = Server::start("");
    let mut conn = Conn::open(&server).await;
    conn.send(b"GET /sse?channels=raw HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let (status, headers) = conn.head().await;
    assert_eq!(status, 200);
    assert!(headers.contains(&("transfer-encoding".into(), "chunked".into())));
    assert!(
        headers.contains(&(
            "content-type".into(),
            "text/event-stream; charset=utf-8".into()
        )),
        "{headers:?}"
    );
    publish(&server, "raw", json!({"data": "one"})).await;
    let mut text = String::new();
    while !text.contains("\"one\"") {
        let chunk = conn.chunk().await.expect("the stream goes on");
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(text.contains("event: message"), "{text}");
    assert_eq!(metric(&server, "streamgate_connections").await, 1.0);
    drop(conn);
    // No publish, no keepalive due: only watching the socket notices the close.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while metric(&server, "streamgate_connections").await != 0.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stream of a closed client is still open"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn http_1_0_gets_a_body_delimited_by_the_close() {
    let server = Server::start("");
    let mut conn = Conn::open(&server).await;
    conn.send(b"GET /healthz HTTP/1.0\r\n\r\n").await;
    let response = conn.response(false).await;
    assert_eq!(response.body, b"ok\n");
    assert_eq!(conn.version, "HTTP/1.0");
    assert_eq!(response.header("connection"), Some("close"));
    assert!(conn.closed().await);

    // A stream over HTTP/1.0: no chunked coding (1.0 has none), ends with the connection.
    publish(&server, "old", json!({"data": "kept"})).await;
    let mut conn = Conn::open(&server).await;
    conn.send(b"GET /sse?channels=old&rewind=1 HTTP/1.0\r\n\r\n")
        .await;
    let (status, headers) = conn.head().await;
    assert_eq!(status, 200);
    assert!(
        !headers.iter().any(|(n, _)| n == "transfer-encoding"),
        "{headers:?}"
    );
    while !String::from_utf8_lossy(&conn.buf).contains("\"kept\"") {
        assert!(conn.fill().await);
    }
    assert!(String::from_utf8_lossy(&conn.buf).starts_with("id: "));
}

#[tokio::test]
async fn bad_and_oversized_heads_are_refused_and_closed() {
    let server = Server::start("");
    let mut conn = Conn::open(&server).await;
    conn.send(b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n").await;
    assert_eq!(conn.response(false).await.status, 400);
    assert!(conn.closed().await);

    let mut conn = Conn::open(&server).await;
    let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(70_000));
    conn.send(long.as_bytes()).await;
    assert_eq!(conn.response(false).await.status, 414);
    assert!(conn.closed().await);

    let mut conn = Conn::open(&server).await;
    conn.send(b"GET /healthz HTTP/1.1\r\n").await;
    let filler = format!("x-filler: {}\r\n", "a".repeat(8000));
    // Far past the gateway's own limit (its JSON 431 is tests/limits.rs): the read stops.
    for _ in 0..80 {
        if conn.stream.write_all(filler.as_bytes()).await.is_err() {
            break;
        }
    }
    let response = conn.response(false).await;
    assert_eq!(response.status, 431);
    assert!(conn.closed().await);

    // The server is unharmed.
    let mut conn = Conn::open(&server).await;
    conn.send(b"GET /healthz HTTP/1.1\r\n\r\n").await;
    assert_eq!(conn.response(false).await.status, 200);
}

#[tokio::test]
async fn a_request_with_a_body_is_served_on_the_same_connection_and_after() {
    let server = Server::start("");
    let mut conn = Conn::open(&server).await;
    // A GET, then a publish with a body and another GET, all written at once.
    let body = r#"{"data":"via the same connection"}"#;
    let publish = format!(
        "POST /channels/same/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut bytes = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    bytes.extend_from_slice(publish.as_bytes());
    bytes.extend_from_slice(b"GET /channels/same/messages HTTP/1.1\r\nHost: x\r\n\r\n");
    conn.send(&bytes).await;
    assert_eq!(conn.response(false).await.status, 200);
    let published = conn.response(false).await;
    assert_eq!(published.status, 201, "{published:?}");
    let history = conn.response(false).await;
    assert_eq!(history.status, 200);
    let history: serde_json::Value = serde_json::from_slice(&history.body).unwrap();
    assert_eq!(history[0]["data"], "via the same connection", "{history}");
    // And a stream after that, on the same connection still.
    conn.send(b"GET /sse?channels=same&rewind=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let (status, _) = conn.head().await;
    assert_eq!(status, 200);
    let first = conn.chunk().await.unwrap();
    assert!(
        String::from_utf8_lossy(&first).contains("via the same connection"),
        "{first:?}"
    );
}

#[tokio::test]
async fn http2_with_prior_knowledge_still_works() {
    let server = Server::start("");
    publish(&server, "h2", json!({"data": "over h2"})).await;
    let out = Command::new("curl")
        .args(["-sS", "--http2-prior-knowledge", "-w", "\n%{http_version}"])
        .arg(server.url("/channels/h2/messages"))
        .output()
        .expect("curl runs (Debian package curl)");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("over h2"), "{text}");
    assert!(text.ends_with("\n2"), "{text}");
}

#[tokio::test]
async fn a_client_that_leaves_before_the_answer_drops_the_request() {
    // An upstream that accepts and never answers: the passthrough handler waits on it.
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = Server::start(&format!(
        "[[relay]]\nname = \"mute\"\nlisten_path = \"/mute\"\n\
         upstream = \"http://{}/up\"\nmode = \"passthrough\"\n",
        upstream.local_addr().unwrap()
    ));
    let mut conn = Conn::open(&server).await;
    conn.send(b"GET /mute/feed HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let (mut upstream_side, _) = tokio::time::timeout(Duration::from_secs(10), upstream.accept())
        .await
        .expect("the gateway calls the upstream")
        .unwrap();
    drop(conn);
    // The gateway drops the waiting request, and with it the upstream connection.
    let mut sink = vec![0u8; 4096];
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match upstream_side.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the upstream connection outlived its client"
    );
}

#[tokio::test]
async fn requests_sent_before_a_half_close_are_still_answered() {
    // An upstream that answers after a pause, behind a passthrough relay: the first request
    // is still being worked on when the client's end has closed.
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = upstream.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = upstream.accept().await.unwrap();
        let mut head = vec![0u8; 4096];
        let _ = socket.read(&mut head).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = socket
            .write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 4\r\n\r\nlate",
            )
            .await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    let server = Server::start(&format!(
        "[[relay]]\nname = \"slow\"\nlisten_path = \"/slow\"\n\
         upstream = \"http://{addr}/up\"\nmode = \"passthrough\"\n"
    ));
    let mut conn = Conn::open(&server).await;
    conn.send(
        b"GET /slow/x HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    conn.stream.shutdown().await.unwrap();
    // The first is answered although the client's end closed while it was worked on (the
    // last may be dropped at the end of its input, as hyper does without half-close).
    let first = conn.response(false).await;
    assert_eq!((first.status, first.body.as_slice()), (200, &b"late"[..]));
}

#[tokio::test]
async fn a_stream_with_a_large_pipelined_rest_still_streams() {
    let server = Server::start("");
    let mut conn = Conn::open(&server).await;
    let mut bytes = b"GET /sse?channels=rest HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    for _ in 0..100 {
        bytes.extend_from_slice(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    }
    conn.send(&bytes).await;
    let (status, _) = conn.head().await;
    assert_eq!(status, 200);
    publish(&server, "rest", json!({"data": "through"})).await;
    let mut text = String::new();
    while !text.contains("\"through\"") {
        let chunk = conn.chunk().await.expect("the stream goes on");
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}
