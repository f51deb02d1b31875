//! The REST listener's settings, HTTPS included.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// HTTP (REST, web client, health, metrics).
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Listen address.
    pub addr: SocketAddr,
    /// Largest JSON body accepted.
    pub max_body_bytes: usize,
    /// Largest upload accepted.
    pub max_upload_bytes: usize,
    /// Where the web client opens its WebSocket (an edge, or a load balancer
    /// in front of the edges); `{host}` stands for the name the page came from.
    pub public_ws_url: String,
    /// Open REST connections at most; past it a connection gets 503 at once
    /// (a small reserve beyond it still answers `/healthz`, `/readyz` and
    /// `/metrics`, so probes see the truth).
    pub max_connections: usize,
    /// A request's headers must arrive within this many seconds (a half-sent
    /// request is dropped, not kept); also how long an idle keep-alive
    /// connection waits for its next request.
    pub header_read_timeout_secs: u64,
    /// Proxies whose `X-Forwarded-For` names the client (its last address
    /// not itself a trusted proxy); from anyone else the header is ignored
    /// and the peer address is the client's.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// HTTPS: absent, the listener speaks plain HTTP (behind a TLS-ending
    /// load balancer).
    pub tls: Option<TlsConfig>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            addr: ([127, 0, 0, 1], 8080).into(),
            max_body_bytes: 256 * 1024,
            max_upload_bytes: 20 * 1024 * 1024,
            public_ws_url: "ws://{host}:8090/ws".into(),
            max_connections: 8192,
            header_read_timeout_secs: 10,
            trusted_proxies: Vec::new(),
            tls: None,
        }
    }
}

/// A certificate and its key, PEM files read at start and again on SIGHUP.
/// The REST listener's certificate files (shared with the gateway's).
pub use gochat_proto::tls::ServerTls as TlsConfig;
