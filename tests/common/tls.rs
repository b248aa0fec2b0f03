//! Certificates of a test's own: a CA and a leaf for 127.0.0.1 it signed.

use std::path::Path;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

/// A new CA's certificate (PEM), and a leaf for 127.0.0.1 it signed with its key.
pub fn pair() -> (String, rcgen::Certificate, KeyPair) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    (ca.pem(), leaf, key)
}

/// A new pair (see `pair`) written as `cert.pem` and `key.pem` in `dir` (replacing what was
/// there); the CA's certificate (PEM).
pub fn issue(dir: &Path) -> String {
    let (ca, leaf, key) = pair();
    std::fs::write(dir.join("cert.pem"), leaf.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    ca
}

/// A config serving TLS with the pair `issue` wrote in `dir`, then `extra`.
pub fn config(dir: &Path, extra: &str) -> String {
    format!(
        "[server]\ntls_cert_file = {:?}\ntls_key_file = {:?}\n{extra}",
        dir.join("cert.pem"),
        dir.join("key.pem")
    )
}
