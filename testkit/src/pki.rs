//! A throwaway certificate authority for TLS tests: a CA, a server
//! certificate for `localhost` and `127.0.0.1`, and a client certificate,
//! all signed by the CA and written as PEM files, so a test can start a real
//! server (Redis, MariaDB, a fake HTTPS service) with TLS on and point a
//! client at it the way an operator would, by file paths.

use std::path::{Path, PathBuf};

use anyhow::Result;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa, KeyPair,
};

/// The PEM files of one test PKI.
#[derive(Debug, Clone)]
pub struct TestPki {
    /// The CA certificate: what clients and servers trust.
    pub ca_file: PathBuf,
    /// The server's certificate (`localhost`, `127.0.0.1`).
    pub server_cert: PathBuf,
    /// The server certificate's key.
    pub server_key: PathBuf,
    /// A client certificate (for mutual TLS).
    pub client_cert: PathBuf,
    /// The client certificate's key.
    pub client_key: PathBuf,
}

impl TestPki {
    /// Generates the CA and both certificates into `dir`.
    pub fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "gochat test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
        let pki = Self {
            ca_file: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server-key.pem"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client-key.pem"),
        };
        std::fs::write(&pki.ca_file, ca.pem())?;
        let leaf = |names: Vec<String>, usage: ExtendedKeyUsagePurpose, cert: &Path, key: &Path| {
            let mut params = CertificateParams::new(names)?;
            params.extended_key_usages = vec![usage];
            let key_pair = KeyPair::generate()?;
            let signed = params.signed_by(&key_pair, &ca)?;
            std::fs::write(cert, signed.pem())?;
            std::fs::write(key, key_pair.serialize_pem())?;
            anyhow::Ok(())
        };
        leaf(
            vec!["localhost".into(), "127.0.0.1".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
            &pki.server_cert,
            &pki.server_key,
        )?;
        leaf(
            vec!["gochat-test-client".into()],
            ExtendedKeyUsagePurpose::ClientAuth,
            &pki.client_cert,
            &pki.client_key,
        )?;
        Ok(pki)
    }
}
