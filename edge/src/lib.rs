//! gochat-edge: the data plane (docs/design.md §3), a thread-per-core io_uring
//! WebSocket gateway on monoio.
//!
//! - [`ws`]: the upgrade handshake and the frame codec, socket-free.
//! - `core` (internal): a worker core — listener, connection table, heartbeat
//!   wheel, the connection task, downstream dispatch, drain.
//! - [`backend`]: what the edge needs from the rest (upstream producer,
//!   downstream source, session registry), as traits.
//! - [`kafka`]: the per-core Kafka links (producer, assigned downstream partition).
//! - `registry` (internal): the side thread for registry I/O.
//! - [`config`], [`auth`]: typed config, local token checks.
//!
//! [`run`] starts the cores and the side thread on listeners the caller bound;
//! the edge never depends on the control plane: they meet in `gochat-proto`.

pub mod auth;
pub mod backend;
pub mod config;
mod core;
pub mod kafka;
mod ops;
mod registry;
pub mod ws;

use std::sync::Arc;

use backend::{CoreLinks, Registry};
use config::{DriverChoice, EdgeConfig};
pub use core::{Shutdown, ShutdownTrigger};
use gochat_proto::tls::ReloadingCert;

/// One `SO_REUSEPORT` listener per core, all on the same address, and the
/// operations endpoints' listener, if they are served.
pub struct EdgeListeners {
    /// WebSocket, one per core.
    pub ws: Vec<std::net::TcpListener>,
    /// `/metrics`, `/healthz`, `/readyz`.
    pub ops: Option<std::net::TcpListener>,
}

impl EdgeListeners {
    /// Binds `cores` listeners on `addr` (port 0 picks one port for all).
    pub fn bind(addr: std::net::SocketAddr, cores: usize) -> std::io::Result<Self> {
        let mut listeners = Vec::with_capacity(cores);
        let mut addr = addr;
        for _ in 0..cores.max(1) {
            let socket = socket2::Socket::new(
                socket2::Domain::for_address(addr),
                socket2::Type::STREAM,
                None,
            )?;
            socket.set_reuse_address(true)?;
            socket.set_reuse_port(true)?;
            socket.set_nonblocking(true)?;
            socket.bind(&addr.into())?;
            socket.listen(4096)?;
            let listener: std::net::TcpListener = socket.into();
            addr = listener.local_addr()?;
            listeners.push(listener);
        }
        Ok(Self {
            ws: listeners,
            ops: None,
        })
    }

    /// Also binds the operations endpoints on `addr`.
    pub fn with_ops(mut self, addr: std::net::SocketAddr) -> std::io::Result<Self> {
        self.ops = Some(std::net::TcpListener::bind(addr)?);
        Ok(self)
    }

    /// The address every core listens on.
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.ws
            .first()
            .ok_or_else(|| std::io::Error::other("no listener"))?
            .local_addr()
    }
}

/// Why the edge could not start.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    /// Bad config.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// Threads, runtimes or sockets.
    #[error("edge start: {0}")]
    Io(#[from] std::io::Error),
    /// The `wss://` certificate cannot be used.
    #[error("edge start: {0}")]
    Tls(gochat_proto::tls::TlsError),
}

/// A started edge: join it after firing the shutdown trigger.
pub struct RunningEdge {
    cores: Vec<std::thread::JoinHandle<()>>,
    registry: std::thread::JoinHandle<()>,
    registry_handle: registry::RegistryHandle,
    /// Where the operations endpoints listen, if they are served.
    pub ops_addr: Option<std::net::SocketAddr>,
    /// The `wss://` certificate, when TLS is on.
    tls: Option<Arc<ReloadingCert>>,
}

impl RunningEdge {
    /// Reads the `wss://` certificate files again (the binaries call this on
    /// SIGHUP); new connections get the new certificate, a failed read
    /// keeps the old one.
    pub fn reload_tls(&self) {
        if let Some(tls) = &self.tls {
            tls.reload();
        }
    }

    /// Waits for every core to drain, then for the side thread to finish its
    /// queue (the drained connections' deregistrations).
    pub fn join(self) {
        for core in self.cores {
            let _ = core.join();
        }
        self.registry_handle.stop();
        let _ = self.registry.join();
    }
}

/// Starts one worker thread per listener and the registry side thread.
pub fn run(
    config: EdgeConfig,
    listeners: EdgeListeners,
    links: Arc<dyn CoreLinks>,
    registry: Arc<dyn Registry>,
    shutdown: Shutdown,
) -> Result<RunningEdge, EdgeError> {
    config.validate()?;
    let announcement = (!config.ws.echo).then(|| registry::Announcement {
        gateway_id: config.gateway_id.clone(),
        cores: u32::try_from(listeners.ws.len()).unwrap_or(u32::MAX),
    });
    // Before any core registers its counters with it.
    let _ = ops::recorder();
    let ops_addr = match listeners.ops {
        Some(listener) => {
            let addr = listener.local_addr()?;
            let check = ready_check(registry.clone(), links.clone(), shutdown.clone());
            ops::serve(listener, check)?;
            Some(addr)
        }
        None => None,
    };
    let (handle, registry_thread) =
        registry::spawn(registry, config.session_ttl_secs, announcement)?;
    let cert = match &config.ws.tls {
        Some(files) => Some(ReloadingCert::load(files).map_err(EdgeError::Tls)?),
        None => None,
    };
    let tls = match &cert {
        Some(cert) => Some(cert.server_config(&[b"http/1.1"]).map_err(EdgeError::Tls)?),
        None => None,
    };
    let shared = Arc::new(core::Shared {
        verifier: auth::TokenVerifier::new(&config.auth.jwt_secret),
        // The embedding binary installs the exporter; without one the
        // cores make no spans at all.
        tracer: config
            .tracing
            .enabled()
            .then(|| opentelemetry::global::tracer("gochat-edge")),
        config,
        tls,
    });
    let uring = monoio::utils::detect_uring();
    let driver = match shared.config.driver {
        DriverChoice::Auto if uring => "io_uring",
        DriverChoice::Auto => {
            tracing::warn!(
                "io_uring is not available on this kernel: falling back to the legacy epoll driver"
            );
            "legacy"
        }
        DriverChoice::IoUring if !uring => {
            return Err(EdgeError::Io(std::io::Error::other(
                "io_uring requested but not available",
            )));
        }
        DriverChoice::IoUring => "io_uring",
        DriverChoice::Legacy => "legacy",
    };
    let cpus = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1);
    let mut cores = Vec::with_capacity(listeners.ws.len());
    for (index, listener) in listeners.ws.into_iter().enumerate() {
        let (shared, links, handle, shutdown) = (
            shared.clone(),
            links.clone(),
            handle.clone(),
            shutdown.clone(),
        );
        let index = u32::try_from(index)
            .ok()
            .filter(|i| *i < 256)
            .ok_or_else(|| std::io::Error::other("at most 256 cores"))?;
        let pin = shared.config.pin_cores;
        let thread = std::thread::Builder::new()
            .name(format!("edge-core-{index}"))
            .spawn(move || {
                if pin && monoio::utils::bind_to_cpu_set([index as usize % cpus]).is_err() {
                    tracing::warn!(core = index, "could not pin the core's thread");
                }
                let work = move || core::run_core(index, listener, shared, links, handle, shutdown);
                let result = match driver {
                    "io_uring" => monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
                        .enable_timer()
                        .with_entries(4096)
                        .build()
                        .and_then(|mut rt| rt.block_on(work())),
                    _ => monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                        .enable_timer()
                        .build()
                        .and_then(|mut rt| rt.block_on(work())),
                };
                if let Err(e) = result {
                    tracing::error!(core = index, error = %e, "edge core stopped with an error");
                }
            })?;
        cores.push(thread);
    }
    tracing::info!(gateway = %shared.config.gateway_id, cores = cores.len(), driver, "edge started");
    Ok(RunningEdge {
        cores,
        registry: registry_thread,
        registry_handle: handle,
        ops_addr,
        tls: cert,
    })
}

/// `/readyz`: not draining, the registry answers, the broker answers.
fn ready_check(
    registry: Arc<dyn Registry>,
    links: Arc<dyn CoreLinks>,
    shutdown: Shutdown,
) -> ops::ReadyCheck {
    Arc::new(move || {
        let (registry, links, shutdown) = (registry.clone(), links.clone(), shutdown.clone());
        Box::pin(async move {
            if shutdown.fired() {
                return Err("draining".into());
            }
            registry
                .is_revoked("readiness-probe")
                .await
                .map_err(|e| format!("registry: {e}"))?;
            tokio::task::spawn_blocking(move || links.check_broker())
                .await
                .map_err(|e| format!("broker check: {e}"))?
                .map_err(|e| format!("broker: {e}"))
        })
    })
}
