//! Server certificates for the listeners that speak TLS (the REST API's
//! `https://`, the gateway's `wss://`): the configured chain and key, read
//! again on [`ReloadingCert::reload`] (each binary calls it on SIGHUP), so a
//! renewed certificate is served without a restart; connections already
//! open keep theirs, and a reload that fails keeps the certificate in use.
//! And the client side their clients (the load generator, the tests) use:
//! [`client_config`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use serde::{Deserialize, Serialize};

/// A listener's certificate files (PEM).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerTls {
    /// The certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// Its private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

/// Why a certificate could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("tls: {0}")]
pub struct TlsError(String);

/// The certificate in use, replaced on reload.
#[derive(Debug)]
pub struct ReloadingCert {
    files: ServerTls,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ReloadingCert {
    /// Reads the files; fails when they cannot be used.
    pub fn load(files: &ServerTls) -> Result<Arc<Self>, TlsError> {
        Ok(Arc::new(Self {
            current: RwLock::new(read(files)?),
            files: files.clone(),
        }))
    }

    /// Reads the files again; on failure, keeps serving the old certificate.
    pub fn reload(&self) {
        match read(&self.files) {
            Ok(fresh) => {
                if let Ok(mut current) = self.current.write() {
                    *current = fresh;
                }
                tracing::info!(cert = %self.files.cert_file.display(), "tls certificate reloaded");
            }
            Err(e) => {
                tracing::error!(error = %e, "tls certificate not reloaded; keeping the old one")
            }
        }
    }

    /// A rustls server (ring, TLS 1.2 and 1.3, no client certificates)
    /// presenting this certificate and offering `alpn`.
    pub fn server_config(
        self: &Arc<Self>,
        alpn: &[&[u8]],
    ) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let mut server = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(self.clone());
        server.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(server))
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| c.clone())
    }
}

fn read(files: &ServerTls) -> Result<Arc<CertifiedKey>, TlsError> {
    let failed = |what: &str, path: &PathBuf, e: &dyn std::fmt::Display| {
        TlsError(format!("{what} {}: {e}", path.display()))
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert_file)
        .map_err(|e| failed("certificate", &files.cert_file, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| failed("certificate", &files.cert_file, &e))?;
    if chain.is_empty() {
        return Err(TlsError(format!(
            "no certificate in {}",
            files.cert_file.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key_file)
        .map_err(|e| failed("key", &files.key_file, &e))?;
    let provider = rustls::crypto::ring::default_provider();
    let certified = CertifiedKey::from_der(chain, key, &provider)
        .map_err(|e| failed("key", &files.key_file, &e))?;
    Ok(Arc::new(certified))
}

/// A rustls client (ring) trusting the system's roots, with `system_roots`,
/// and the CA certificates (PEM) in `extra_ca`.
pub fn client_config(
    system_roots: bool,
    extra_ca: Option<&Path>,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    if system_roots {
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    }
    if let Some(path) = extra_ca {
        let failed = |e: &dyn std::fmt::Display| TlsError(format!("CA {}: {e}", path.display()));
        for cert in CertificateDer::pem_file_iter(path).map_err(|e| failed(&e))? {
            roots
                .add(cert.map_err(|e| failed(&e))?)
                .map_err(|e| failed(&e))?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| TlsError(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}
