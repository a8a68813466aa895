//! Mutually authenticated TLS between peers: who may speak, and as whom.
//!
//! Every node holds a certificate issued by the cluster's CA (the operator's) whose
//! subject alternative names include the DNS name [`node_dns_name`]`(id)`,
//! `raft-node-ID`. Both ends of a peer connection present their certificates and
//! check the other's chain against the CA (TLS 1.3, client authentication required).
//! Then the names bind the chain to a node id:
//! - the dialer asks for the server name `raft-node-ID` of the node it dials, so
//!   rustls's own server-name check refuses any other node's certificate;
//! - the acceptor checks, once the dialer's hello names the node it claims to be,
//!   that the dialer's certificate names that node
//!   ([`certificate_names_node`]), before a single frame is read. Every frame's
//!   sender must then equal the hello's, so a certificate for node 2 can never carry
//!   a message from node 3.
//!
//! The IP addresses and host names in a certificate are not checked: a node is who
//! its certificate says, wherever it runs. TLS is off unless [`TlsSettings`] are
//! configured ([`RaftConfig::tls`](crate::RaftConfig::tls)).

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use raft_core::NodeId;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// The DNS name (a subject alternative name) that a certificate must hold to speak
/// as node `id`.
pub fn node_dns_name(id: NodeId) -> String {
    format!("raft-node-{}", id.0)
}

/// The server name the dialer of node `id` asks for.
pub fn node_server_name(id: NodeId) -> ServerName<'static> {
    ServerName::try_from(node_dns_name(id)).expect("raft-node-N is a valid DNS name")
}

/// Whether `cert` (an end-entity certificate whose chain rustls already verified)
/// names node `id`.
pub fn certificate_names_node(cert: &CertificateDer<'_>, id: NodeId) -> bool {
    let Ok(cert) = webpki::EndEntityCert::try_from(cert) else {
        return false;
    };
    cert.verify_is_valid_for_subject_name(&node_server_name(id))
        .is_ok()
}

/// The TLS configuration of one node: its certificate and key, and the CA that
/// issued every member's.
#[derive(Clone)]
pub struct TlsSettings {
    /// The dialer's side: presents this node's certificate, trusts the CA.
    pub client: Arc<ClientConfig>,
    /// The acceptor's side: presents this node's certificate, requires one from the
    /// CA of every dialer.
    pub server: Arc<ServerConfig>,
}

impl fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TlsSettings { mutual TLS 1.3 }")
    }
}

/// Why TLS settings could not be built, with the file or item at fault.
#[derive(Debug)]
pub struct TlsError {
    /// What was being loaded.
    pub what: String,
    /// Why it failed.
    pub reason: String,
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TLS: cannot load {}: {}", self.what, self.reason)
    }
}

impl std::error::Error for TlsError {}

fn tls_error(what: impl Into<String>, reason: impl fmt::Display) -> TlsError {
    TlsError {
        what: what.into(),
        reason: reason.to_string(),
    }
}

/// The CA certificates of a PEM bundle, as a root store.
pub fn root_store_from_pem(ca_pem: &[u8]) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        let cert = cert.map_err(|e| tls_error("the CA bundle", e))?;
        roots
            .add(cert)
            .map_err(|e| tls_error("a CA certificate", e))?;
    }
    if roots.is_empty() {
        return Err(tls_error("the CA bundle", "it holds no certificate"));
    }
    Ok(roots)
}

/// A certificate chain (end entity first) and its private key, from PEM.
pub fn identity_from_pem(
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| tls_error("the certificate", e))?;
    if chain.is_empty() {
        return Err(tls_error("the certificate", "it holds no certificate"));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| tls_error("the key", e))?;
    Ok((chain, key))
}

/// The crypto provider every TLS configuration here uses (ring; TLS 1.3 only).
pub fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TlsSettings {
    /// Settings from PEM bytes: the CA bundle, this node's certificate chain and its
    /// private key. The certificate should name this node
    /// ([`node_dns_name`]); peers refuse it otherwise.
    pub fn from_pem(ca_pem: &[u8], cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, TlsError> {
        let roots = Arc::new(root_store_from_pem(ca_pem)?);
        let (chain, key) = identity_from_pem(cert_pem, key_pem)?;
        let provider = crypto_provider();
        let versions = &[&rustls::version::TLS13];
        let client = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(versions)
            .map_err(|e| tls_error("the client configuration", e))?
            .with_root_certificates(Arc::clone(&roots))
            .with_client_auth_cert(chain.clone(), key.clone_key())
            .map_err(|e| tls_error("the certificate and key", e))?;
        let verifier = WebPkiClientVerifier::builder_with_provider(roots, Arc::clone(&provider))
            .build()
            .map_err(|e| tls_error("the client verifier", e))?;
        let mut server = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .map_err(|e| tls_error("the server configuration", e))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .map_err(|e| tls_error("the certificate and key", e))?;
        // A dialer never resumes (each connection is long-lived) and never reads on
        // its one-way connection: tickets would only be bytes for it to discard.
        server.send_tls13_tickets = 0;
        Ok(TlsSettings {
            client: Arc::new(client),
            server: Arc::new(server),
        })
    }

    /// Settings from PEM files (see [`from_pem`](Self::from_pem)).
    pub fn from_pem_files(ca: &Path, cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let read =
            |path: &Path| std::fs::read(path).map_err(|e| tls_error(path.display().to_string(), e));
        TlsSettings::from_pem(&read(ca)?, &read(cert)?, &read(key)?)
    }
}
