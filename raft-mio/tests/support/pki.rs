//! A throwaway certificate authority for the TLS tests and the bench's `--tls`:
//! node certificates (naming `raft-node-ID`), and the wrong ones a test needs (from
//! another CA, naming another node). The including module has `node_dns_name` and
//! `TlsSettings` of `raft_mio::transport::tls` in scope (the crate's own unit tests
//! include this file too).

use super::{node_dns_name, TlsSettings};
use raft_core::NodeId;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// A CA that lives as long as the test.
pub struct TestPki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl TestPki {
    /// A new CA named `name`.
    pub fn new(name: &str) -> TestPki {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("a CA key");
        TestPki {
            ca: CertifiedIssuer::self_signed(params, key).expect("a self-signed CA"),
        }
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// A certificate (PEM) and key (PEM) naming node `id`.
    pub fn node_cert(&self, id: NodeId) -> (String, String) {
        let names = vec![node_dns_name(id), "localhost".to_string()];
        let mut params = CertificateParams::new(names).expect("node params");
        params
            .distinguished_name
            .push(DnType::CommonName, node_dns_name(id));
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate().expect("a node key");
        let cert = params
            .signed_by(&key, &self.ca)
            .expect("a node certificate");
        (cert.pem(), key.serialize_pem())
    }

    /// TLS settings for a node holding a certificate that names `cert_id`, trusting
    /// this CA.
    pub fn settings_for(&self, cert_id: NodeId) -> TlsSettings {
        let (cert, key) = self.node_cert(cert_id);
        TlsSettings::from_pem(self.ca_pem().as_bytes(), cert.as_bytes(), key.as_bytes())
            .expect("valid TLS settings")
    }
}
