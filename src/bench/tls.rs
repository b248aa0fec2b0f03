//! `--tls-ca`: the CA an `https://` server under test presents a certificate of, trusted
//! by the subscribers (over HTTP/1.1, or HTTP/2 with `--h2-streams`) and the publisher.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_rustls::TlsConnector;

/// The trusted CA, and the connector subscribers use.
#[derive(Clone)]
pub struct BenchTls {
    pem: Vec<u8>,
    pub connector: TlsConnector,
}

impl std::fmt::Debug for BenchTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BenchTls")
    }
}

impl BenchTls {
    /// Trusts the CA certificates in `file`, offering HTTP/2 by ALPN when `h2`, else
    /// HTTP/1.1.
    pub fn load(file: &Path, h2: bool) -> Result<BenchTls, String> {
        let what = |e: &dyn std::fmt::Display| format!("--tls-ca {}: {e}", file.display());
        let pem = std::fs::read(file).map_err(|e| what(&e))?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&pem) {
            roots
                .add(cert.map_err(|e| what(&e))?)
                .map_err(|e| what(&e))?;
        }
        if roots.is_empty() {
            return Err(what(&"no CERTIFICATE block in the file"));
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| what(&e))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![if h2 {
            b"h2".to_vec()
        } else {
            b"http/1.1".to_vec()
        }];
        Ok(BenchTls {
            pem,
            connector: TlsConnector::from(Arc::new(config)),
        })
    }

    /// The CA, for the publisher's client.
    pub fn certificate(&self) -> Result<reqwest::Certificate, String> {
        reqwest::Certificate::from_pem(&self.pem).map_err(|e| format!("--tls-ca: {e}"))
    }
}
