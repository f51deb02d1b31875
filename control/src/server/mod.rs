//! Assembles a control process from its config: the [`Engines`] (SQL, Redis
//! or in-process state, Kafka or in-process log), the selected services
//! ([`start_logic`], [`start_task`]), and the HTTP and gRPC listeners
//! ([`serve_http`], [`serve_grpc`]). [`start`] returns once everything is serving;
//! [`Running::wait`] returns after a graceful shutdown.

mod admins;
mod engines;
mod http_listener;
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;

use crate::bus::BusError;
use crate::bus::kafka::KafkaBus;
use crate::bus::memory::MemoryBus;
use crate::config::{ControlConfig, Service};
use crate::grpc_faces::{LogicGrpc, TaskGrpc};
use crate::logic::http::{AbuseLimits, ApiState, Readiness, router};
use crate::logic::{Logic, MessageWriter, SendQueue};
use crate::repo::grpc::RepoServer;
use crate::repo::{Repo, RepoError};
use crate::state::{StateError, StateStore};
use crate::task::TaskService;
use crate::task::providers::Providers;
pub use engines::{Engines, Topic};

/// Why the process could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Config problem found late (e.g. a missing listener).
    #[error("config: {0}")]
    Config(String),
    /// SQL.
    #[error("database: {0}")]
    Repo(#[from] RepoError),
    /// Redis.
    #[error("redis: {0}")]
    State(#[from] StateError),
    /// Kafka.
    #[error("kafka: {0}")]
    Bus(#[from] BusError),
    /// A listener could not say where it is bound.
    #[error("listener: {0}")]
    Listener(#[source] std::io::Error),
    /// The push provider could not be set up.
    #[error("push provider: {0}")]
    Push(#[source] crate::task::TaskError),
}

/// Sockets bound by the caller (the binary, or a test on port 0).
#[derive(Debug, Default)]
pub struct ControlListeners {
    /// REST / health / metrics.
    pub http: Option<TcpListener>,
    /// gRPC services.
    pub grpc: Option<TcpListener>,
}

impl ControlListeners {
    /// Binds the configured addresses (the binary's path).
    pub async fn bind(config: &ControlConfig) -> std::io::Result<Self> {
        let grpc = if config.services.contains(&Service::Repo) || config.services.len() < 3 {
            Some(TcpListener::bind(config.grpc.addr).await?)
        } else {
            None
        };
        Ok(Self {
            http: Some(TcpListener::bind(config.http.addr).await?),
            grpc,
        })
    }
}

/// A started control process.
pub struct Running {
    /// Where REST listens.
    pub http_addr: Option<SocketAddr>,
    /// Where gRPC listens.
    pub grpc_addr: Option<SocketAddr>,
    /// The in-process log, in single-process mode (tests and standalone subscribe to it).
    pub memory_bus: Option<Arc<MemoryBus>>,
    /// The state store in use.
    pub state: Arc<dyn StateStore>,
    /// The repo in use.
    pub repo: Arc<dyn Repo>,
    kafka: Option<Arc<KafkaBus>>,
    tasks: JoinSet<()>,
}

impl Running {
    /// Waits for every server and consumer to stop (after the shutdown token fires).
    pub async fn wait(mut self) {
        while let Some(result) = self.tasks.join_next().await {
            if let Err(e) = result {
                tracing::error!(error = %e, "a control task panicked");
            }
        }
        if let Some(kafka) = &self.kafka {
            let kafka = kafka.clone();
            let _ = tokio::task::spawn_blocking(move || kafka.flush()).await;
        }
    }
}

/// Runs a control process until `shutdown` fires.
pub async fn run(
    config: ControlConfig,
    listeners: ControlListeners,
    shutdown: CancellationToken,
) -> Result<(), StartError> {
    start(config, listeners, shutdown).await?.wait().await;
    Ok(())
}

/// Starts everything the config selects.
pub async fn start(
    config: ControlConfig,
    listeners: ControlListeners,
    shutdown: CancellationToken,
) -> Result<Running, StartError> {
    config
        .validate()
        .map_err(|e| StartError::Config(e.to_string()))?;
    let mut engines = Engines::connect(&config).await?;
    if config.services.contains(&Service::Logic) {
        restore_revocations(&engines).await?;
        admins::ensure_admin_accounts(&config.auth, engines.repo.as_ref()).await?;
    }
    let mut tasks = JoinSet::new();
    // One writer per process: its snowflake ids are unique only if logic and
    // task in one process share it.
    let writer = Arc::new(MessageWriter::new(
        engines.repo.clone(),
        engines.state.clone(),
        engines.bus.clone(),
        config.logic.clone(),
        // Validated to be at most 1023.
        u16::try_from(config.snowflake_node()).unwrap_or(1023),
    ));
    let logic = if config.services.contains(&Service::Logic) {
        Some(start_logic(
            &config,
            &mut engines,
            &writer,
            &mut tasks,
            &shutdown,
        )?)
    } else {
        None
    };
    let task = if config.services.contains(&Service::Task) {
        Some(start_task(
            &config,
            &mut engines,
            writer,
            &mut tasks,
            &shutdown,
        )?)
    } else {
        None
    };
    let http_addr = match listeners.http {
        Some(listener) => {
            let app = http_app(&config, &engines, logic.as_ref());
            let ops = crate::logic::http::ops_router(readiness(&engines));
            Some(serve_http(
                listener, app, ops, &config, &mut tasks, &shutdown,
            )?)
        }
        None => None,
    };
    let grpc_addr = match listeners.grpc {
        Some(listener) => {
            let routes = grpc_routes(&config, &engines, logic.as_ref(), task.as_ref());
            Some(serve_grpc(listener, routes, &mut tasks, &shutdown)?)
        }
        None => None,
    };
    tracing::info!(services = ?config.services, http = ?http_addr, grpc = ?grpc_addr, "control plane started");
    Ok(Running {
        http_addr,
        grpc_addr,
        memory_bus: engines.memory_bus(),
        kafka: engines.kafka(),
        state: engines.state,
        repo: engines.repo,
        tasks,
    })
}

/// Refills the state store's revocation list from the durable one: an
/// in-process store starts empty at every start, and Redis may have lost
/// its data; a logged-out token must stay refused until it expires.
async fn restore_revocations(engines: &Engines) -> Result<(), StartError> {
    let now = gochat_proto::ids::now_millis();
    let revoked = engines.repo.revoked_tokens().await?;
    for (jti, expires_at) in &revoked {
        let ttl = u64::try_from((expires_at - now) / 1000).unwrap_or(0).max(1);
        engines.state.revoke_token(jti, ttl).await?;
    }
    if !revoked.is_empty() {
        tracing::info!(tokens = revoked.len(), "revocations restored");
    }
    Ok(())
}

/// A started logic service: its rules and its one send path.
struct LogicService {
    logic: Arc<Logic>,
    sends: SendQueue,
}

/// The logic service, its send loop and its upstream consumer.
fn start_logic(
    config: &ControlConfig,
    engines: &mut Engines,
    writer: &Arc<MessageWriter>,
    tasks: &mut JoinSet<()>,
    shutdown: &CancellationToken,
) -> Result<LogicService, StartError> {
    let logic = Arc::new(
        Logic::new(writer.clone(), &config.auth)
            .map_err(|e| StartError::Config(e.to_string()))?
            .with_uploads(&config.uploads, &config.auth),
    );
    let (sends, send_loop) = SendQueue::new(
        logic.clone(),
        config.logic.consume_in_flight,
        config.logic.max_waiting_sends,
    );
    tasks.spawn(send_loop.run(shutdown.clone()));
    let inbox = engines.inbox(Topic::Upstream)?;
    tasks.spawn(crate::logic::consumer::run(
        logic.clone(),
        sends.clone(),
        inbox,
        shutdown.clone(),
    ));
    Ok(LogicService { logic, sends })
}

/// The task service and its consumer.
fn start_task(
    config: &ControlConfig,
    engines: &mut Engines,
    writer: Arc<MessageWriter>,
    tasks: &mut JoinSet<()>,
    shutdown: &CancellationToken,
) -> Result<Arc<TaskService>, StartError> {
    let push = Arc::new(Providers::from_config(&config.task).map_err(StartError::Push)?);
    let service = Arc::new(TaskService::new(writer, push, &config.task));
    let inbox = engines.inbox(Topic::Tasks)?;
    tasks.spawn(service.clone().run(inbox, shutdown.clone()));
    Ok(service)
}

/// The REST API with logic; health, readiness and metrics without.
fn readiness(engines: &Engines) -> Arc<Readiness> {
    Arc::new(Readiness {
        repo: Some(engines.repo.clone()),
        state: Some(engines.state.clone()),
        bus: Some(engines.bus.clone()),
    })
}

fn http_app(config: &ControlConfig, engines: &Engines, logic: Option<&LogicService>) -> Router {
    let readiness = readiness(engines);
    match logic {
        Some(logic) => router(
            ApiState {
                logic: logic.logic.clone(),
                sends: logic.sends.clone(),
                readiness,
                public_ws_url: config.http.public_ws_url.as_str().into(),
                limits: Arc::new(AbuseLimits::new(
                    &config.limits,
                    config.http.trusted_proxies.clone(),
                )),
            },
            config.http.max_body_bytes,
            config.http.max_upload_bytes,
        ),
        None => crate::logic::http::ops_router(readiness),
    }
}

fn serve_http(
    listener: TcpListener,
    app: Router,
    ops: Router,
    config: &ControlConfig,
    tasks: &mut JoinSet<()>,
    shutdown: &CancellationToken,
) -> Result<SocketAddr, StartError> {
    let addr = listener.local_addr().map_err(StartError::Listener)?;
    let tls = match &config.http.tls {
        Some(tls) => Some(
            tls::acceptor(tls, shutdown.clone()).map_err(|e| StartError::Config(e.to_string()))?,
        ),
        None => None,
    };
    let limits = http_listener::Limits {
        max_connections: config.http.max_connections,
        header_read_timeout: std::time::Duration::from_secs(config.http.header_read_timeout_secs),
        tls,
    };
    tasks.spawn(http_listener::serve(
        listener,
        app,
        ops,
        limits,
        shutdown.clone(),
    ));
    Ok(addr)
}

/// The gRPC server's HTTP/2 connection window (see the server below).
const GRPC_CONNECTION_WINDOW: u32 = 8 * 1024 * 1024;

/// The gRPC faces of the services this process runs.
fn grpc_routes(
    config: &ControlConfig,
    engines: &Engines,
    logic: Option<&LogicService>,
    task: Option<&Arc<TaskService>>,
) -> Routes {
    let mut routes = Routes::default();
    if config.services.contains(&Service::Repo) {
        routes = routes.add_service(RepoServer::service(engines.repo.clone()));
    }
    if let Some(logic) = logic {
        routes = routes.add_service(LogicGrpc::service(logic.logic.clone(), logic.sends.clone()));
    }
    if let Some(task) = task {
        routes = routes.add_service(TaskGrpc::service(task.clone(), engines.bus.clone()));
    }
    routes
}

fn serve_grpc(
    listener: TcpListener,
    routes: Routes,
    tasks: &mut JoinSet<()>,
    shutdown: &CancellationToken,
) -> Result<SocketAddr, StartError> {
    let addr = listener.local_addr().map_err(StartError::Listener)?;
    let token = shutdown.clone();
    tasks.spawn(async move {
        // Small request/reply calls: Nagle's delay would only add latency.
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        // h2 lets unread small DATA frames (a unary call's request) use up
        // half the connection window's worth of budget before it sends
        // GOAWAY (ENHANCE_YOUR_CALM) and fails every call in flight; with
        // the default 64 KiB window that was ~140 calls, which a gateway's
        // burst of upgrades (a group lookup each) exceeded while the repo
        // was busy. A larger window raises the budget with it.
        let serve = tonic::transport::Server::builder()
            .initial_connection_window_size(GRPC_CONNECTION_WINDOW)
            .layer(tower::layer::layer_fn(crate::grpc_metrics::Timed::server))
            .add_routes(routes)
            .serve_with_incoming_shutdown(incoming, token.cancelled_owned());
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "grpc server failed");
        }
    });
    Ok(addr)
}
