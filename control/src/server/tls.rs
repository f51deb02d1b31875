//! HTTPS for the REST listener: rustls (ring) with the certificate chain
//! and key named in `http.tls`, read again on SIGHUP so a renewed
//! certificate is served without a restart (connections already open keep
//! theirs). A reload that fails keeps the certificate in use and logs why.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_util::sync::CancellationToken;

use crate::config::TlsConfig;

/// Why a certificate could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("tls: {0}")]
pub struct TlsError(String);

/// The certificate in use, replaced on reload.
#[derive(Debug)]
struct Reloadable {
    cert_file: PathBuf,
    key_file: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl Reloadable {
    fn load(cert_file: &PathBuf, key_file: &PathBuf) -> Result<Arc<CertifiedKey>, TlsError> {
        let read = |what: &str, path: &PathBuf, e: &dyn std::fmt::Display| {
            TlsError(format!("{what} {}: {e}", path.display()))
        };
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
            .map_err(|e| read("certificate", cert_file, &e))?
            .collect::<Result<_, _>>()
            .map_err(|e| read("certificate", cert_file, &e))?;
        if chain.is_empty() {
            return Err(TlsError(format!(
                "no certificate in {}",
                cert_file.display()
            )));
        }
        let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| read("key", key_file, &e))?;
        let provider = rustls::crypto::ring::default_provider();
        let certified =
            CertifiedKey::from_der(chain, key, &provider).map_err(|e| read("key", key_file, &e))?;
        Ok(Arc::new(certified))
    }

    fn reload(&self) {
        match Self::load(&self.cert_file, &self.key_file) {
            Ok(fresh) => {
                if let Ok(mut current) = self.current.write() {
                    *current = fresh;
                }
                tracing::info!(cert = %self.cert_file.display(), "tls certificate reloaded");
            }
            Err(e) => {
                tracing::error!(error = %e, "tls certificate not reloaded; keeping the old one")
            }
        }
    }
}

impl ResolvesServerCert for Reloadable {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| c.clone())
    }
}

/// The acceptor for `config`, reloading its certificate on SIGHUP until
/// `shutdown`.
pub fn acceptor(
    config: &TlsConfig,
    shutdown: CancellationToken,
) -> Result<tokio_rustls::TlsAcceptor, TlsError> {
    let first = Reloadable::load(&config.cert_file, &config.key_file)?;
    let resolver = Arc::new(Reloadable {
        cert_file: config.cert_file.clone(),
        key_file: config.key_file.clone(),
        current: RwLock::new(first),
    });
    let mut server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| TlsError(e.to_string()))?
    .with_no_client_auth()
    .with_cert_resolver(resolver.clone());
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(|e| TlsError(format!("SIGHUP handler: {e}")))?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                got = hangups.recv() => match got {
                    Some(()) => resolver.reload(),
                    None => return,
                },
            }
        }
    });
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(server)))
}
