//! The REST listener: hyper's HTTP/1 under our own accept loop, because
//! `axum::serve` has no way to say what a hostile client must not be able
//! to do. A request's headers must arrive within
//! `http.header_read_timeout_secs`, so half-sent requests (slowloris) are
//! dropped instead of holding a file descriptor forever; at most
//! `http.max_connections` are open at once, and a connection past that gets
//! a 503 and is closed at once. A small reserve beyond the cap is served
//! only the operations endpoints, so a load balancer's health check still
//! gets an answer — the truth — while the API is full. Shutdown stops
//! accepting and lets open requests finish (a few seconds at most). With
//! `http.tls`, each connection's TLS handshake runs in its own task, within
//! the header timeout, so a stalled handshake holds nothing else up.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::StatusCode;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// Connections past the cap still served `/healthz`, `/readyz`, `/metrics`.
const RESERVE: usize = 32;
/// How long open requests may run on after shutdown starts.
const DRAIN: Duration = Duration::from_secs(5);

const FULL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 72\r\n\r\n{\"error\":{\"code\":\"internal\",\"message\":\"server busy; retry a bit later\"}}";

/// What the listener enforces.
pub(super) struct Limits {
    pub(super) max_connections: usize,
    pub(super) header_read_timeout: Duration,
    /// HTTPS, when configured.
    pub(super) tls: Option<tokio_rustls::TlsAcceptor>,
}

/// Serves `app` (and `ops` on the reserve) until `shutdown`.
pub(super) async fn serve(
    listener: TcpListener,
    app: Router,
    ops: Router,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let reserve = Arc::new(Semaphore::new(RESERVE));
    let ops = ops.fallback(|| async {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [("retry-after", "1")],
            axum::Json(serde_json::json!({"error":{"code":"internal","message":"server busy; retry a bit later"}})),
        )
    });
    let graceful = GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "http accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (permit, router, timeout) = match open.clone().try_acquire_owned() {
            Ok(permit) => (permit, app.clone(), limits.header_read_timeout),
            Err(_) => match reserve.clone().try_acquire_owned() {
                Ok(permit) => (permit, ops.clone(), Duration::from_secs(2)),
                Err(_) => {
                    metrics::counter!("gochat_http_refused_total").increment(1);
                    tokio::spawn(refuse(stream));
                    continue;
                }
            },
        };
        // The peer's address rides on each request (`ConnectInfo`), for the
        // per-address abuse limits.
        let router =
            router.map_request(move |mut request: hyper::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            });
        let watcher = graceful.watcher();
        let tls = limits.tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new()).header_read_timeout(timeout);
            let service = TowerToHyperService::new(router);
            let served = match tls {
                None => {
                    let connection = http.serve_connection(TokioIo::new(stream), service);
                    watcher.watch(connection).await
                }
                Some(tls) => match tokio::time::timeout(timeout, tls.accept(stream)).await {
                    Ok(Ok(stream)) => {
                        let connection = http.serve_connection(TokioIo::new(stream), service);
                        watcher.watch(connection).await
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "tls handshake failed");
                        return;
                    }
                    Err(_) => return,
                },
            };
            if let Err(e) = served {
                tracing::debug!(error = %e, "http connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("http connections still open after the drain; closing them");
    }
}

/// A 503 to a connection over the cap and the reserve, then close.
async fn refuse(mut stream: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(FULL)).await;
}
