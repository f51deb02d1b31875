//! The HTTPS client the push providers share (webhook, APNs, FCM): rustls
//! on ring with the system's root certificates (plus an optional extra CA),
//! HTTP/2 when the server offers it (APNs requires it), pooled connections,
//! and a deadline on every exchange so a stalled provider fails the task
//! instead of holding its lane. Plain `http://` is allowed too, for a
//! webhook inside the operator's network.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Request, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::push_error;
use crate::task::TaskError;

/// Provider answers are small JSON documents; a larger one is not read.
const MAX_REPLY_BYTES: usize = 64 * 1024;

/// What a provider answered.
#[derive(Debug)]
pub struct Reply {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body, as sent.
    pub body: Bytes,
}

/// A pooled HTTPS client.
pub struct HttpsClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl HttpsClient {
    /// A client trusting the system's roots and those in `extra_ca` (PEM).
    /// With `need_roots`, having none at all stops the start (no `https://`
    /// exchange could succeed); a plain-HTTP webhook alone needs none.
    pub fn new(
        extra_ca: Option<&Path>,
        timeout: Duration,
        need_roots: bool,
    ) -> Result<Arc<Self>, TaskError> {
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for error in &native.errors {
            tracing::warn!(%error, "a system root certificate could not be loaded");
        }
        roots.add_parsable_certificates(native.certs);
        if let Some(path) = extra_ca {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| push_error(format!("{}: {e}", path.display())))?;
            for cert in certs {
                let cert = cert.map_err(|e| push_error(format!("{}: {e}", path.display())))?;
                roots.add(cert).map_err(|e| push_error(e.to_string()))?;
            }
        }
        if roots.is_empty() && need_roots {
            return Err(push_error(
                "no trusted root certificates: install the system's CA bundle or set task.push_ca_file"
                    .into(),
            ));
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| push_error(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_all_versions()
            .build();
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(300))
            .build(connector);
        Ok(Arc::new(Self { client, timeout }))
    }

    /// Sends `request` and reads the answer, within the deadline.
    pub async fn send(&self, request: Request<Full<Bytes>>) -> Result<Reply, TaskError> {
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| TaskError::Push(Box::new(e)))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_REPLY_BYTES)
                .collect()
                .await
                .map_err(TaskError::Push)?
                .to_bytes();
            Ok(Reply { status, body })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| push_error(format!("no answer within {:?}", self.timeout)))?
    }
}
