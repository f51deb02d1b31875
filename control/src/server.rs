//! Assembles a control process from its config: the engines (SQL, Redis or
//! in-process state, Kafka or in-process log), the selected services, and the
//! HTTP and gRPC listeners. [`start`] returns once everything is serving;
//! [`Running::wait`] returns after a graceful shutdown.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;

use gochat_proto::keys::Names;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::bus::kafka::{KafkaBus, KafkaInbox, KafkaSettings, ensure_topics};
use crate::bus::memory::MemoryBus;
use crate::bus::{Bus, BusError};
use crate::config::{ControlConfig, Service};
use crate::grpc_faces::{LogicGrpc, TaskGrpc};
use crate::logic::http::{ApiState, Readiness, router};
use crate::logic::{Logic, MessageWriter};
use crate::repo::cached::CachedRepo;
use crate::repo::grpc::{RepoClient, RepoServer};
use crate::repo::sql::SqlRepo;
use crate::repo::{Repo, RepoError};
use crate::state::memory::MemoryState;
use crate::state::redis::RedisState;
use crate::state::{StateError, StateStore};
use crate::task::TaskService;
use crate::task::providers::{LogProvider, PushProvider, WebhookProvider};

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
    /// Anything else at start.
    #[error("{0}")]
    Other(String),
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
    let services: BTreeSet<Service> = config.services.clone();
    let has = |s: Service| services.contains(&s);

    let (state, redis_conn): (Arc<dyn StateStore>, _) = match &config.redis {
        Some(r) => {
            let redis = RedisState::connect(&r.url, Names::new(r.key_prefix.clone())).await?;
            let conn = redis.connection();
            (
                Arc::new(redis),
                Some((conn, Names::new(r.key_prefix.clone()))),
            )
        }
        None => (Arc::new(MemoryState::new()), None),
    };

    let repo: Arc<dyn Repo> = if has(Service::Repo) {
        let sql: Arc<dyn Repo> = Arc::new(
            SqlRepo::connect(&config.database.url, config.database.max_connections).await?,
        );
        match redis_conn {
            Some((conn, names)) => Arc::new(CachedRepo::new(sql, conn, names)),
            None => sql,
        }
    } else {
        let endpoint = config
            .grpc
            .repo_endpoint
            .as_deref()
            .ok_or_else(|| StartError::Config("grpc.repo_endpoint".into()))?;
        Arc::new(RepoClient::connect_lazy(endpoint)?)
    };

    let mut tasks = JoinSet::new();
    let (bus, kafka, memory_bus, memory_inboxes): (Arc<dyn Bus>, _, _, _) = match &config.kafka {
        Some(k) => {
            let settings = KafkaSettings {
                brokers: k.brokers.clone(),
                names: Names::new(k.topic_prefix.clone()),
                idempotence: k.idempotence,
            };
            if k.create_topics {
                ensure_topics(&settings, &[]).await?;
            }
            let kafka = Arc::new(KafkaBus::new(&settings)?);
            (
                kafka.clone() as Arc<dyn Bus>,
                Some((kafka, settings)),
                None,
                None,
            )
        }
        None => {
            let (bus, inboxes) = MemoryBus::new();
            let bus = Arc::new(bus);
            (bus.clone() as Arc<dyn Bus>, None, Some(bus), Some(inboxes))
        }
    };
    let (mut upstream_inbox, mut task_inbox) = match memory_inboxes {
        Some(i) => (Some(i.upstream), Some(i.tasks)),
        None => (None, None),
    };

    let writer = Arc::new(MessageWriter::new(
        repo.clone(),
        state.clone(),
        bus.clone(),
        config.logic.clone(),
        config.node_id,
    ));
    let logic = if has(Service::Logic) {
        let logic = Arc::new(
            Logic::new(writer.clone(), &config.auth)
                .map_err(|e| StartError::Config(e.to_string()))?,
        );
        let token = shutdown.clone();
        match (&kafka, upstream_inbox.take()) {
            (Some((_, settings)), _) => {
                let inbox = KafkaInbox::subscribe(
                    settings,
                    &settings.names.logic_group(),
                    &settings.names.upstream_topic(),
                )?;
                tasks.spawn(crate::logic::consumer::run(logic.clone(), inbox, token));
            }
            (None, Some(inbox)) => {
                tasks.spawn(crate::logic::consumer::run(logic.clone(), inbox, token));
            }
            (None, None) => return Err(StartError::Config("no message bus configured".into())),
        }
        Some(logic)
    } else {
        None
    };

    let task = if has(Service::Task) {
        let push: Arc<dyn PushProvider> = match &config.task.webhook_url {
            Some(url) => Arc::new(
                WebhookProvider::new(url.clone()).map_err(|e| StartError::Other(e.to_string()))?,
            ),
            None => Arc::new(LogProvider),
        };
        let service = Arc::new(TaskService::new(
            repo.clone(),
            state.clone(),
            bus.clone(),
            writer.clone(),
            push,
            config.task.max_attempts,
            config.task.consume_in_flight,
        ));
        let token = shutdown.clone();
        match (&kafka, task_inbox.take()) {
            (Some((_, settings)), _) => {
                let inbox = KafkaInbox::subscribe(
                    settings,
                    &settings.names.task_group(),
                    &settings.names.task_topic(),
                )?;
                tasks.spawn(service.clone().run(inbox, token));
            }
            (None, Some(inbox)) => {
                tasks.spawn(service.clone().run(inbox, token));
            }
            (None, None) => return Err(StartError::Config("no message bus configured".into())),
        }
        Some(service)
    } else {
        None
    };

    let mut http_addr = None;
    if let Some(listener) = listeners.http {
        http_addr = Some(
            listener
                .local_addr()
                .map_err(|e| StartError::Other(e.to_string()))?,
        );
        let readiness = Arc::new(Readiness {
            repo: Some(repo.clone()),
            state: Some(state.clone()),
            bus: Some(bus.clone()),
        });
        let app = match &logic {
            Some(logic) => router(
                ApiState {
                    logic: logic.clone(),
                    readiness,
                    public_ws_url: config.http.public_ws_url.as_str().into(),
                },
                config.http.max_body_bytes,
                config.http.max_upload_bytes,
            ),
            None => crate::logic::http::ops_router(readiness),
        };
        let token = shutdown.clone();
        tasks.spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(token.cancelled_owned());
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "http server failed");
            }
        });
    }

    let mut grpc_addr = None;
    if let Some(listener) = listeners.grpc {
        grpc_addr = Some(
            listener
                .local_addr()
                .map_err(|e| StartError::Other(e.to_string()))?,
        );
        let mut routes = tonic::service::Routes::default();
        if has(Service::Repo) {
            routes = routes.add_service(RepoServer::service(repo.clone()));
        }
        if let Some(logic) = &logic {
            routes = routes.add_service(LogicGrpc::service(logic.clone()));
        }
        if let Some(task) = &task {
            routes = routes.add_service(TaskGrpc::service(task.clone(), bus.clone()));
        }
        let token = shutdown.clone();
        tasks.spawn(async move {
            let incoming = tokio_stream_of(listener);
            let serve = tonic::transport::Server::builder()
                .add_routes(routes)
                .serve_with_incoming_shutdown(incoming, token.cancelled_owned());
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "grpc server failed");
            }
        });
    }

    tracing::info!(?services, http = ?http_addr, grpc = ?grpc_addr, "control plane started");
    Ok(Running {
        http_addr,
        grpc_addr,
        memory_bus,
        state,
        repo,
        kafka: kafka.map(|(k, _)| k),
        tasks,
    })
}

fn tokio_stream_of(
    listener: TcpListener,
) -> impl futures::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures::stream::unfold(listener, |l| async move {
        let next = l.accept().await.map(|(s, _)| {
            let _ = s.set_nodelay(true);
            s
        });
        Some((next, l))
    })
}
