//! TLS: `[server] tls_cert_file` / `tls_key_file`, offering HTTP/2 and HTTP/1.1 by ALPN (a
//! browser multiplexes any number of EventSources over one HTTP/2 connection; over HTTP/1.1
//! it opens six per origin at most).
//!
//! The pair is read again on SIGHUP and whenever either file's content changes (checked
//! every few seconds: a renewed certificate, a symlink swapped by a secret manager). New
//! handshakes use the new pair; connections already open keep theirs. A pair that cannot be
//! used (unreadable, not PEM, a key that is not the certificate's) is logged and the
//! previous one kept: a half-written renewal is picked up once it is whole.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

/// How often the files are compared with what was loaded.
const CHECK_EVERY: Duration = Duration::from_secs(5);

/// The certificate in use, and where it comes from.
#[derive(Debug)]
pub struct Certs {
    cert_file: PathBuf,
    key_file: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    /// The files' contents last read, so an unchanged or still-bad pair is not read again
    /// into a certificate (nor logged) at every check.
    seen: Mutex<(Vec<u8>, Vec<u8>)>,
    /// Why the files could not be read at the last check: logged once, not at every check.
    unreadable: Mutex<Option<String>>,
}

impl Certs {
    /// Loads the pair: `Err` says what is wrong with it (the server does not start).
    pub fn load(cert_file: &Path, key_file: &Path) -> Result<Arc<Certs>, String> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let (cert, key) = read(cert_file, key_file)?;
        let certified = certified(&cert, &key, &provider)
            .map_err(|e| format!("[server] tls_cert_file / tls_key_file: {e}"))?;
        Ok(Arc::new(Certs {
            cert_file: cert_file.to_owned(),
            key_file: key_file.to_owned(),
            provider,
            current: RwLock::new(Arc::new(certified)),
            seen: Mutex::new((cert, key)),
            unreadable: Mutex::new(None),
        }))
    }

    /// Takes the pair in the files if they changed since last read (or whenever `asked`),
    /// and are usable; otherwise says why not and keeps the current one.
    fn reload(&self, asked: bool) {
        let read = read(&self.cert_file, &self.key_file);
        let mut unreadable = self.unreadable.lock().unwrap_or_else(|e| e.into_inner());
        let (cert, key) = match read {
            Ok(pair) => {
                *unreadable = None;
                pair
            }
            Err(e) => {
                if asked || unreadable.as_ref() != Some(&e) {
                    tracing::error!("{e}; keeping the certificate in use");
                }
                *unreadable = Some(e);
                return;
            }
        };
        drop(unreadable);
        {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            if !asked && seen.0 == cert && seen.1 == key {
                return;
            }
            *seen = (cert.clone(), key.clone());
        }
        match certified(&cert, &key, &self.provider) {
            Ok(certified) => {
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(certified);
                tracing::info!(
                    "TLS certificate loaded again from {}",
                    self.cert_file.display()
                );
            }
            Err(e) => tracing::error!(
                "the TLS certificate in {} and key in {} cannot be used: {e}; keeping the \
                 certificate in use",
                self.cert_file.display(),
                self.key_file.display()
            ),
        }
    }

    /// Accepts TLS connections with the current pair, offering HTTP/2 first.
    pub fn acceptor(self: &Arc<Self>) -> TlsAcceptor {
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_safe_default_protocol_versions()
            .expect("the default provider supports the default versions")
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(self) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        TlsAcceptor::from(Arc::new(config))
    }

    /// Reads the pair again on SIGHUP (whatever changed) and whenever the files change.
    pub async fn watch(self: Arc<Self>) {
        let mut checks = tokio::time::interval(CHECK_EVERY);
        checks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut hangups = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::hangup(),
        ) {
            Ok(hangups) => Some(hangups),
            Err(e) => {
                tracing::warn!(
                    "SIGHUP cannot be heard ({e}); certificate files are still checked every {CHECK_EVERY:?}"
                );
                None
            }
        };
        loop {
            let asked = tokio::select! {
                _ = checks.tick() => false,
                Some(()) = async { hangups.as_mut()?.recv().await } => true,
            };
            self.reload(asked);
        }
    }
}

impl ResolvesServerCert for Certs {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self.current.read().unwrap_or_else(|e| e.into_inner()),
        ))
    }
}

fn read(cert_file: &Path, key_file: &Path) -> Result<(Vec<u8>, Vec<u8>), String> {
    let read = |file: &Path, what: &str| {
        std::fs::read(file)
            .map_err(|e| format!("[server] {what} {} cannot be read: {e}", file.display()))
    };
    Ok((
        read(cert_file, "tls_cert_file")?,
        read(key_file, "tls_key_file")?,
    ))
}

/// The chain in `cert` (PEM, leaf first) with the private key in `key` (PEM: PKCS#8,
/// PKCS#1 or SEC1), checked to belong together.
fn certified(cert: &[u8], key: &[u8], provider: &CryptoProvider) -> Result<CertifiedKey, String> {
    let chain = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the certificate file is not PEM: {e}"))?;
    if chain.is_empty() {
        return Err("the certificate file holds no CERTIFICATE block".into());
    }
    let key = PrivateKeyDer::from_pem_slice(key)
        .map_err(|e| format!("the key file holds no private key in PEM: {e}"))?;
    CertifiedKey::from_der(chain, key, provider)
        .map_err(|e| format!("the key does not go with the certificate: {e}"))
}
