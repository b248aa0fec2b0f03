//! Certificates for a gateway serving TLS: a CA of the test's own and a leaf it signed.

use std::path::Path;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

/// A new CA (its PEM) and a leaf for 127.0.0.1 it signed, written as `cert.pem` and
/// `key.pem` in `dir` (replacing what was there).
pub fn issue(dir: &Path) -> String {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    std::fs::write(dir.join("cert.pem"), leaf.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    ca.pem()
}

/// A config serving TLS with the pair `issue` wrote in `dir`, then `extra`.
pub fn config(dir: &Path, extra: &str) -> String {
    format!(
        "[server]\ntls_cert_file = {:?}\ntls_key_file = {:?}\n{extra}",
        dir.join("cert.pem"),
        dir.join("key.pem")
    )
}
