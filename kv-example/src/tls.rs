//! TLS for a node: one certificate (from the operator's CA) serves both the raft
//! port, where peers authenticate each other with it (raft-mio's mutual TLS, the
//! node id bound to the name `raft-node-ID`), and the HTTPS front end, where
//! clients check it against the same CA (no client certificates there).
//!
//! `kv-example --tls` makes a throwaway CA and node certificates in `DATA/tls/`
//! ([`LocalCa`]), so a local cluster runs with TLS in one command.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use raft_core::NodeId;
use raft_mio::transport::tls::{crypto_provider, identity_from_pem, node_dns_name, TlsSettings};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::ServerConfig;

/// A node's TLS configuration.
#[derive(Clone, Debug)]
pub struct NodeTls {
    /// Between peers (mutual).
    pub peers: TlsSettings,
    /// For the HTTPS front end.
    pub https: Arc<ServerConfig>,
}

/// The three PEM files a node is given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The node's certificate chain (it must name `raft-node-ID`).
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
    /// The CA that issued every member's certificate.
    pub ca: PathBuf,
}

impl TlsFiles {
    /// Node `id`'s files in a [`LocalCa`]'s directory.
    pub fn in_dir(dir: &Path, id: u64) -> TlsFiles {
        TlsFiles {
            cert: dir.join(format!("node{id}.pem")),
            key: dir.join(format!("node{id}.key")),
            ca: dir.join("ca.pem"),
        }
    }

    /// The `kv-example node` flags that name these files.
    pub fn node_flags(&self) -> Vec<String> {
        let flag = |name: &str, path: &Path| [name.to_string(), path.display().to_string()];
        [
            flag("--tls-cert", &self.cert),
            flag("--tls-key", &self.key),
            flag("--tls-ca", &self.ca),
        ]
        .concat()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

impl NodeTls {
    /// Loads the files; the error names the file at fault.
    pub fn load(files: &TlsFiles) -> Result<NodeTls, String> {
        let (cert, key, ca) = (read(&files.cert)?, read(&files.key)?, read(&files.ca)?);
        let peers = TlsSettings::from_pem(&ca, &cert, &key).map_err(|e| e.to_string())?;
        let (chain, key) = identity_from_pem(&cert, &key).map_err(|e| e.to_string())?;
        let https = ServerConfig::builder_with_provider(crypto_provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| format!("{}: {e}", files.cert.display()))?;
        Ok(NodeTls {
            peers,
            https: Arc::new(https),
        })
    }
}

/// A throwaway CA in a directory (`ca.pem`, `ca.key`), and the node certificates it
/// issued there (`nodeN.pem`, `nodeN.key`). Made once, reused by later runs on the
/// same data directory. For local clusters and tests only: the CA key sits next to
/// the data.
#[derive(Debug)]
pub struct LocalCa {
    dir: PathBuf,
    issuer: Issuer<'static, KeyPair>,
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("no names to check");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "kv-example throwaway CA");
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

fn write(path: &Path, contents: &str) -> Result<(), String> {
    fs::write(path, contents).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

impl LocalCa {
    /// The CA in `dir`, made there first if it is not.
    pub fn open_or_create(dir: &Path) -> Result<LocalCa, String> {
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let cert_path = TlsFiles::in_dir(dir, 0).ca;
        let key_path = dir.join("ca.key");
        let key = if key_path.exists() && cert_path.exists() {
            let pem = String::from_utf8_lossy(&read(&key_path)?).into_owned();
            KeyPair::from_pem(&pem).map_err(|e| format!("{}: {e}", key_path.display()))?
        } else {
            let key = KeyPair::generate().map_err(|e| format!("cannot make a CA key: {e}"))?;
            let cert = ca_params()
                .self_signed(&key)
                .map_err(|e| format!("cannot make the CA certificate: {e}"))?;
            write(&key_path, &key.serialize_pem())?;
            write(&cert_path, &cert.pem())?;
            key
        };
        // The issuer needs the CA's name, key usages and key, all fixed above.
        Ok(LocalCa {
            dir: dir.to_path_buf(),
            issuer: Issuer::new(ca_params(), key),
        })
    }

    /// The files of node `id`, issuing its certificate first if there is none: it
    /// names `raft-node-ID` (for its peers) and `hosts` (IP addresses or DNS names,
    /// for HTTPS clients).
    pub fn node_files(&self, id: u64, hosts: &[String]) -> Result<TlsFiles, String> {
        let files = TlsFiles::in_dir(&self.dir, id);
        if files.cert.exists() && files.key.exists() {
            return Ok(files);
        }
        let mut names = vec![node_dns_name(NodeId(id)), "localhost".to_string()];
        names.extend(
            hosts
                .iter()
                .filter(|h| !names.contains(h))
                .cloned()
                .collect::<Vec<_>>(),
        );
        let mut params =
            CertificateParams::new(names).map_err(|e| format!("node {id}'s names: {e}"))?;
        params
            .distinguished_name
            .push(DnType::CommonName, node_dns_name(NodeId(id)));
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate().map_err(|e| format!("cannot make a key: {e}"))?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| format!("cannot issue node {id}'s certificate: {e}"))?;
        write(&files.key, &key.serialize_pem())?;
        write(&files.cert, &cert.pem())?;
        Ok(files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a TLS handshake in memory: `client` dials node `server_id`, served by
    /// `server`; rustls's verdict.
    fn handshake(client: &TlsSettings, server: &TlsSettings, server_id: u64) -> Result<(), String> {
        let name = raft_mio::transport::tls::node_server_name(NodeId(server_id));
        let mut c = rustls::ClientConnection::new(client.client.clone(), name).unwrap();
        let mut s = rustls::ServerConnection::new(server.server.clone()).unwrap();
        for _ in 0..10 {
            let mut bytes = Vec::new();
            while c.wants_write() {
                c.write_tls(&mut bytes).unwrap();
            }
            s.read_tls(&mut bytes.as_slice()).unwrap();
            s.process_new_packets().map_err(|e| e.to_string())?;
            bytes.clear();
            while s.wants_write() {
                s.write_tls(&mut bytes).unwrap();
            }
            c.read_tls(&mut bytes.as_slice()).unwrap();
            c.process_new_packets().map_err(|e| e.to_string())?;
            if !c.is_handshaking() && !s.is_handshaking() {
                return Ok(());
            }
        }
        Err("the handshake did not finish".into())
    }

    #[test]
    fn a_local_ca_issues_certificates_that_authenticate_across_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let ca = LocalCa::open_or_create(dir.path()).unwrap();
        let one = NodeTls::load(&ca.node_files(1, &["127.0.0.1".into()]).unwrap()).unwrap();
        let ca_pem = fs::read(dir.path().join("ca.pem")).unwrap();
        // A second run reuses the CA and issues the next node under it.
        let again = LocalCa::open_or_create(dir.path()).unwrap();
        let files = again.node_files(2, &["127.0.0.1".into()]).unwrap();
        assert_eq!(fs::read(&files.ca).unwrap(), ca_pem);
        let two = NodeTls::load(&files).unwrap();
        assert_eq!(handshake(&two.peers, &one.peers, 1), Ok(()));
        // Node 2 dialing "node 3" at node 1's address is refused by name.
        let refused = handshake(&two.peers, &one.peers, 3).unwrap_err();
        assert!(refused.contains("raft-node-3"), "{refused}");
    }

    #[test]
    fn a_missing_file_is_named() {
        let files = TlsFiles {
            cert: "/nonexistent/node1.pem".into(),
            key: "/nonexistent/node1.key".into(),
            ca: "/nonexistent/ca.pem".into(),
        };
        let err = NodeTls::load(&files).unwrap_err();
        assert!(err.contains("/nonexistent/node1.pem"), "{err}");
    }
}
