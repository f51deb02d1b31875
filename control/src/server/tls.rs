//! HTTPS for the REST listener: rustls with the certificate chain and key
//! named in `http.tls` ([`gochat_proto::tls`]), read again on SIGHUP so a
//! renewed certificate is served without a restart.

use tokio_util::sync::CancellationToken;

use crate::config::TlsConfig;
use gochat_proto::tls::ReloadingCert;
pub use gochat_proto::tls::TlsError;

/// The acceptor for `config`, reloading its certificate on SIGHUP until
/// `shutdown`.
pub fn acceptor(
    config: &TlsConfig,
    shutdown: CancellationToken,
) -> Result<tokio_rustls::TlsAcceptor, StartTlsError> {
    let cert = ReloadingCert::load(config)?;
    let server = cert.server_config(&[b"http/1.1"])?;
    let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(StartTlsError::Signal)?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                got = hangups.recv() => match got {
                    Some(()) => cert.reload(),
                    None => return,
                },
            }
        }
    });
    Ok(tokio_rustls::TlsAcceptor::from(server))
}

/// Why HTTPS could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartTlsError {
    /// The certificate or key cannot be used.
    #[error(transparent)]
    Certificate(#[from] TlsError),
    /// No SIGHUP handler (no reloads).
    #[error("tls: SIGHUP handler: {0}")]
    Signal(#[source] std::io::Error),
}
