//! Upstream TLS is verified: an untrusted certificate is an `error` event with status 2001,
//! and `[poll] extra_ca_files` makes a private CA trusted.

mod common;

use std::sync::Arc;

use common::Server;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

const BODY: &str = r#"{"secure":true}"#;

/// A private CA and a certificate it signed for 127.0.0.1.
fn pki() -> (String, CertificateDer<'static>, PrivateKeyDer<'static>) {
    let (ca, leaf, key) = common::tls::pair();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    (ca, leaf.der().clone(), key)
}

/// An HTTPS server answering every request with `BODY`.
async fn https_upstream(cert: CertificateDer<'static>, key: PrivateKeyDer<'static>) -> u16 {
    let _ = tokio_rustls::rustls::crypto::aws_lc_rs::default_provider().install_default();
    let config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A refused handshake is the point of one test: ignore it.
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                let mut request = vec![0u8; 4096];
                let _ = tls.read(&mut request).await;
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n{BODY}",
                    BODY.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    port
}

async fn first_event(server: &Server, port: u16) -> (String, Value) {
    let mut stream =
        common::SseStream::open(&server.url(&format!("/https://127.0.0.1:{port}/secure"))).await;
    let event = stream.next_event().await.expect("an event");
    (event.event, serde_json::from_str(&event.data).unwrap())
}

#[tokio::test]
async fn untrusted_certificates_are_errors_and_extra_cas_are_trusted() {
    let (ca_pem, cert, key) = pki();
    let port = https_upstream(cert, key).await;
    let base = "[poll]\nallowed_targets = [\"https://127.0.0.1:*/*\"]\ninterval_ms = 200\n\
                min_interval_ms = 100\n";

    let untrusting = Server::start(base);
    let (kind, data) = first_event(&untrusting, port).await;
    assert_eq!(kind, "error", "{data}");
    assert_eq!(data["status"], 2001, "{data}");
    assert_eq!(data["cause"], "tls", "{data}");

    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let trusting = Server::start(&format!(
        "{base}extra_ca_files = [{:?}]\n",
        ca_file.display().to_string()
    ));
    let (kind, data) = first_event(&trusting, port).await;
    assert_eq!(kind, "data", "{data}");
    assert_eq!(data, serde_json::json!({"secure": true}));
}
