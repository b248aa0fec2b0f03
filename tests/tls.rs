//! TLS with HTTP/2 (`[server] tls_cert_file` / `tls_key_file`) over real sockets: streams
//! multiplexed over one HTTP/2 connection, HTTP/1.1 over TLS, the certificate read again on
//! SIGHUP and when its files change (a bad one kept out), the handshake's time limit, the
//! connection limit's answer over TLS, and a config that cannot serve refused.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::tls::{config as tls_config, issue};
use common::{Server, signal};
use reqwest::{Certificate, Version};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

/// A client that trusts only `ca`.
fn trusting(ca: &str) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .tls_certs_only([Certificate::from_pem(ca.as_bytes()).unwrap()])
}

/// Established TCP connections to `port` (the server's side of each), from /proc/net/tcp.
fn established_to(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields[1].rsplit(':').next().unwrap();
            u16::from_str_radix(local_port, 16).unwrap() == port && fields[3] == "01"
        })
        .count()
}

fn port_of(server: &Server) -> u16 {
    server.base.rsplit(':').next().unwrap().parse().unwrap()
}

/// Reads `stream` until an event whose data has `"data": want`.
async fn expect_message(stream: &mut reqwest::Response, want: &str) {
    let mut parser = streamgate::wire::sse_parser::SseParser::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .expect("the message arrives")
            .unwrap()
            .expect("the stream stays open");
        let mut frames = Vec::new();
        parser.feed(&chunk, &mut frames);
        for frame in frames {
            if let streamgate::wire::sse_parser::SseFrame::Event(event) = frame {
                let message: Value = serde_json::from_str(&event.data).unwrap();
                if message["data"] == want {
                    return;
                }
            }
        }
    }
}

#[tokio::test]
async fn many_streams_share_one_http2_connection() {
    let certs = tempfile::tempdir().unwrap();
    let ca = issue(certs.path());
    let server = Server::start(&tls_config(certs.path(), ""));
    assert!(server.base.starts_with("https://"), "{}", server.base);
    let client = trusting(&ca).build().unwrap();
    let health = client.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(health.version(), Version::HTTP_2);
    // More than the six a browser opens per origin over HTTP/1.1.
    let mut streams = Vec::new();
    for i in 0..10 {
        let stream = client
            .get(server.url(&format!("/sse?channels=room-{i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(stream.status(), 200);
        assert_eq!(stream.version(), Version::HTTP_2);
        streams.push(stream);
    }
    for i in 0..10 {
        let published = client
            .post(server.url(&format!("/channels/room-{i}/messages")))
            .json(&json!({"data": format!("to {i}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(published.status(), 201);
    }
    for (i, stream) in streams.iter_mut().enumerate() {
        expect_message(stream, &format!("to {i}")).await;
    }
    assert_eq!(
        established_to(port_of(&server)),
        1,
        "one connection for all"
    );
}

#[tokio::test]
async fn http1_over_tls_streams_too() {
    let certs = tempfile::tempdir().unwrap();
    let ca = issue(certs.path());
    let server = Server::start(&tls_config(certs.path(), ""));
    let client = trusting(&ca).http1_only().build().unwrap();
    let mut stream = client
        .get(server.url("/sse?channels=old"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.version(), Version::HTTP_11);
    let published = client
        .post(server.url("/channels/old/messages"))
        .json(&json!({"data": "over TLS"}))
        .send()
        .await
        .unwrap();
    assert_eq!(published.status(), 201);
    expect_message(&mut stream, "over TLS").await;
    // Plain HTTP on the TLS port is refused.
    let plain = server.base.replace("https://", "http://");
    assert!(
        common::client()
            .get(format!("{plain}/healthz"))
            .send()
            .await
            .is_err()
    );
}

/// Whether a fresh client trusting only `ca` gets an answer.
async fn trusted_by(server: &Server, ca: &str) -> bool {
    let client = trusting(ca).build().unwrap();
    client.get(server.url("/healthz")).send().await.is_ok()
}

async fn until_trusted_by(server: &Server, ca: &str, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if trusted_by(server, ca).await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

#[tokio::test]
async fn the_certificate_is_read_again_on_sighup_and_when_its_files_change() {
    let certs = tempfile::tempdir().unwrap();
    let first = issue(certs.path());
    let server = Server::start_logged(&tls_config(certs.path(), ""));
    assert!(trusted_by(&server, &first).await);
    // A stream open across the renewal keeps its connection.
    let client = trusting(&first).build().unwrap();
    let mut kept = client
        .get(server.url("/sse?channels=kept"))
        .send()
        .await
        .unwrap();

    let second = issue(certs.path());
    signal(&server, "HUP");
    assert!(
        until_trusted_by(&server, &second, Duration::from_secs(5)).await,
        "SIGHUP loads the new pair"
    );
    assert!(!trusted_by(&server, &first).await);

    // A pair that cannot be used is logged and kept out.
    std::fs::write(certs.path().join("cert.pem"), "not a certificate").unwrap();
    signal(&server, "HUP");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(trusted_by(&server, &second).await, "the good pair stays");
    let logs = server.logs();
    assert!(logs.contains("cannot be used"), "{logs}");

    // Without a signal, a change of the files is seen within seconds.
    let third = issue(certs.path());
    assert!(
        until_trusted_by(&server, &third, Duration::from_secs(12)).await,
        "a change of the files loads the new pair"
    );

    let published = client
        .post(server.url("/channels/kept/messages"))
        .json(&json!({"data": "still here"}))
        .send()
        .await
        .unwrap();
    assert_eq!(published.status(), 201);
    expect_message(&mut kept, "still here").await;
}

#[tokio::test]
async fn a_client_silent_through_the_handshake_loses_its_slot() {
    let certs = tempfile::tempdir().unwrap();
    let ca = issue(certs.path());
    let server = Server::start(&tls_config(
        certs.path(),
        "[limits]\nmax_connections = 1\nread_timeout_ms = 500\n",
    ));
    let address = server.base.trim_start_matches("https://").to_owned();
    let mut silent = tokio::net::TcpStream::connect(&address).await.unwrap();
    let mut byte = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut byte)).await;
    assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "{closed:?}");
    assert!(trusted_by(&server, &ca).await, "the slot is free again");
}

/// A TLS connection to `server` offering `alpn`, handshake done.
async fn handshaken(
    server: &Server,
    ca: &str,
    alpn: &[u8],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.as_bytes()).unwrap())
        .unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let address = server.base.trim_start_matches("https://").to_owned();
    let tcp = tokio::net::TcpStream::connect(&address).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    connector.connect(name, tcp).await.unwrap()
}

/// Waits until no client connection to `server` is open.
async fn until_no_connection(server: &Server) {
    for _ in 0..100 {
        if established_to(port_of(server)) == 0 {
            // Its slot is given back as its task ends, just after the socket closes.
            tokio::time::sleep(Duration::from_millis(100)).await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("connections to the server stay open");
}

#[tokio::test]
async fn a_client_silent_after_the_handshake_loses_its_slot_too() {
    let certs = tempfile::tempdir().unwrap();
    let ca = issue(certs.path());
    let server = Server::start(&tls_config(
        certs.path(),
        "[limits]\nmax_connections = 1\nread_timeout_ms = 500\n",
    ));
    for alpn in [&b"h2"[..], b"http/1.1"] {
        // The one slot is free (the last check's connection gone), or this connection would
        // be the one refused.
        until_no_connection(&server).await;
        let mut silent = handshaken(&server, &ca, alpn).await;
        // HTTP/2 sends its settings first; then the connection ends, whatever was sent.
        let mut buffer = [0u8; 1024];
        let closed = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match silent.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "{alpn:?}: still open after 5 s");
        until_no_connection(&server).await;
        let health = trusting(&ca)
            .build()
            .unwrap()
            .get(server.url("/healthz"))
            .send();
        assert_eq!(
            health.await.unwrap().status(),
            200,
            "{alpn:?}: the slot is free again"
        );
    }
}

#[tokio::test]
async fn a_connection_over_the_limit_is_told_so_over_tls() {
    let certs = tempfile::tempdir().unwrap();
    let ca = issue(certs.path());
    let server = Server::start(&tls_config(certs.path(), "[limits]\nmax_connections = 1\n"));
    let holder = trusting(&ca).build().unwrap();
    let _held = holder
        .get(server.url("/sse?channels=held"))
        .send()
        .await
        .unwrap();
    for client in [
        trusting(&ca).build().unwrap(),
        trusting(&ca).http1_only().build().unwrap(),
    ] {
        let refused = client.get(server.url("/healthz")).send().await.unwrap();
        assert_eq!(refused.headers()["retry-after"], "1");
        common::expect_error(refused, 503, 50301).await;
    }
}

fn check_config(config: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let file: PathBuf = dir.path().join("streamgate.toml");
    std::fs::write(&file, config).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_streamgate"))
        .arg("check-config")
        .arg(&file)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_config_whose_certificate_cannot_serve_is_refused() {
    let certs = tempfile::tempdir().unwrap();
    issue(certs.path());
    assert_eq!(
        check_config(&tls_config(certs.path(), "")),
        (true, String::new())
    );
    let (ok, error) = check_config(&format!(
        "[server]\ntls_cert_file = {:?}\n",
        certs.path().join("cert.pem")
    ));
    assert!(!ok && error.contains("go together"), "{error}");
    let (ok, error) = check_config(&tls_config(Path::new("/nowhere"), ""));
    assert!(!ok && error.contains("cannot be read"), "{error}");
    // A key that is not the certificate's.
    let other = tempfile::tempdir().unwrap();
    issue(other.path());
    std::fs::copy(other.path().join("key.pem"), certs.path().join("key.pem")).unwrap();
    let (ok, error) = check_config(&tls_config(certs.path(), ""));
    assert!(
        !ok && error.contains("does not go with the certificate"),
        "{error}"
    );
}
