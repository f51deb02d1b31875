//! Adapters that let the edge run on the control plane's engines: the session
//! registry and gateway directory on the control plane's state store (Redis
//! or in-process) with kicks through its bus, a connection's groups from the
//! repo (in process or over gRPC), and — in standalone mode — core links on the
//! in-process log. They live here, in the binary, because the edge and the
//! control crates never depend on each other.

use gochat_control::grpc_metrics::Timed;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use gochat_edge::backend::{
    CoreLinks, Downstream, DownstreamItem, Registry, RegistryError, Upstream, UpstreamError,
};
use gochat_engines::bus::Bus;
use gochat_engines::bus::memory::{MemoryBus, Traced};
use gochat_engines::state::StateStore;
use gochat_proto::ids::Id;
use gochat_proto::kafka::{DownstreamKey, PresenceChange, Task, TaskRecord};
use gochat_proto::keys::{RouteChange, SessionRoute};
use gochat_proto::repo::repo_client::RepoClient;
use gochat_proto::trace::TraceParent;
use tokio::sync::mpsc;

/// The edge's registry on the control plane's state store and bus.
pub struct StateRegistry {
    /// Sessions, revocations and the gateway directory.
    pub state: Arc<dyn StateStore>,
    /// Where kicks go.
    pub bus: Arc<dyn Bus>,
    /// Where a new connection's groups are read.
    pub groups: Arc<dyn GroupSource>,
}

/// Who a user's groups are: the repo, in process (standalone) or over gRPC
/// (`gochat edge`).
#[async_trait]
pub trait GroupSource: Send + Sync + 'static {
    /// The ids of the groups `user` is a member of; `None` when there is no
    /// such user.
    async fn groups_of(&self, user: Id) -> Result<Option<Vec<i64>>, gochat_engines::BoxError>;
}

/// The repo service over gRPC: `gochat edge`'s way to a user's groups.
pub struct GrpcGroups(RepoClient<Timed<tonic::transport::Channel>>);

impl GrpcGroups {
    /// Dials `url` (e.g. `http://127.0.0.1:9002`, or several,
    /// comma-separated, each host resolved to all its addresses) lazily:
    /// the first lookup connects, lookups are balanced over the repo
    /// services found, a lost connection is re-dialled by the next.
    pub fn connect_lazy(url: &str) -> anyhow::Result<Self> {
        let timeout = Some(Duration::from_secs(5));
        let channel = gochat_control::repo::grpc::discovery::balanced_channel(url, timeout)?;
        Ok(Self(RepoClient::new(Timed::client(channel))))
    }
}

#[async_trait]
impl GroupSource for GrpcGroups {
    async fn groups_of(&self, user: Id) -> Result<Option<Vec<i64>>, gochat_engines::BoxError> {
        let request = || gochat_proto::repo::UserIdRequest { user_id: user.0 };
        match self.0.clone().get_user(request()).await {
            Err(status) if status.code() == tonic::Code::NotFound => return Ok(None),
            other => other?,
        };
        let groups = self.0.clone().list_user_groups(request()).await?;
        Ok(Some(
            groups
                .into_inner()
                .groups
                .into_iter()
                .map(|g| g.group_id)
                .collect(),
        ))
    }
}

fn registry_error(e: impl std::fmt::Display) -> RegistryError {
    RegistryError(e.to_string())
}

#[async_trait]
impl Registry for StateRegistry {
    async fn register(
        &self,
        user: Id,
        device_id: &str,
        route: &SessionRoute,
        ttl_secs: u64,
    ) -> Result<RouteChange, RegistryError> {
        self.state
            .register_route(user, device_id, route, ttl_secs)
            .await
            .map_err(registry_error)
    }
    async fn unregister(
        &self,
        user: Id,
        device_id: &str,
        conn_id: u64,
    ) -> Result<(), RegistryError> {
        self.state
            .unregister_route(user, device_id, conn_id)
            .await
            .map_err(registry_error)
    }
    async fn is_revoked(&self, jti: &str) -> Result<bool, RegistryError> {
        self.state.is_revoked(jti).await.map_err(registry_error)
    }
    async fn kick(&self, route: &SessionRoute, frame: Bytes) -> Result<(), RegistryError> {
        let key = DownstreamKey::kick(route.conn_id);
        self.bus
            .send_downstream(&route.gateway_id, route.core, &key, frame)
            .await
            .map_err(registry_error)
    }
    async fn presence_changed(&self, user: Id) -> Result<(), RegistryError> {
        let task = Task::Presence(PresenceChange { user_id: user });
        let id = format!("presence-{}", uuid::Uuid::new_v4().simple());
        self.bus
            .send_task(&TaskRecord::new(id, task))
            .await
            .map_err(registry_error)
    }
    async fn groups_of(&self, user: Id) -> Result<Option<Vec<i64>>, RegistryError> {
        self.groups.groups_of(user).await.map_err(registry_error)
    }
    async fn announce_gateway(
        &self,
        gateway_id: &str,
        cores: u32,
        ttl_secs: u64,
    ) -> Result<(), RegistryError> {
        self.state
            .announce_gateway(gateway_id, cores, ttl_secs)
            .await
            .map_err(registry_error)
    }

    async fn gateway_listed(&self, gateway_id: &str) -> Result<bool, RegistryError> {
        let gateways = self.state.gateways().await.map_err(registry_error)?;
        Ok(gateways.iter().any(|(id, _)| id == gateway_id))
    }
}

/// Standalone core links: the in-process log.
pub struct MemoryLinks {
    /// The control plane's in-process bus.
    pub bus: Arc<MemoryBus>,
    /// The embedded gateway's id.
    pub gateway_id: String,
}

impl CoreLinks for MemoryLinks {
    fn upstream(&self, _core: u32) -> Box<dyn Upstream> {
        Box::new(MemoryUpstream(self.bus.upstream_sender()))
    }
    fn downstream(&self, core: u32) -> Box<dyn Downstream> {
        Box::new(MemoryDownstream(
            self.bus.subscribe_downstream(&self.gateway_id, core),
        ))
    }
}

struct MemoryUpstream(mpsc::Sender<Traced>);

impl Upstream for MemoryUpstream {
    fn send(
        &self,
        _key: &str,
        record: Vec<u8>,
        trace: Option<&TraceParent>,
    ) -> Result<(), UpstreamError> {
        self.0
            .try_send((Bytes::from(record), trace.cloned()))
            .map_err(|e| UpstreamError::Unavailable(e.to_string()))
    }
    // The channel hands records over at once: nothing to wait for.
    fn flush(&self, _timeout: Duration) {}
}

struct MemoryDownstream(mpsc::Receiver<DownstreamItem>);

impl Downstream for MemoryDownstream {
    fn poll_batch(&mut self, cx: &mut Context<'_>, out: &mut Vec<DownstreamItem>) -> Poll<bool> {
        let mut got = false;
        loop {
            match self.0.poll_recv(cx) {
                Poll::Ready(Some(item)) => {
                    out.push(item);
                    got = true;
                }
                Poll::Ready(None) => return Poll::Ready(false),
                Poll::Pending if got => return Poll::Ready(true),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// Echo mode has no users, hence no groups.
struct NoGroups;

#[async_trait]
impl GroupSource for NoGroups {
    async fn groups_of(&self, _user: Id) -> Result<Option<Vec<i64>>, gochat_engines::BoxError> {
        Ok(Some(Vec::new()))
    }
}

/// The edge in protocol test mode (echo, no auth) on throwaway in-process
/// engines; Autobahn|Testsuite drives it.
pub struct EchoServer {
    edge: gochat_edge::RunningEdge,
    trigger: gochat_edge::ShutdownTrigger,
}

impl EchoServer {
    /// Drains and stops.
    pub async fn stop(mut self) {
        self.trigger.fire();
        let edge = self.edge;
        let _ = tokio::task::spawn_blocking(move || edge.join()).await;
    }
}

/// Starts the echo server on `listeners`, speaking `wss://` with `tls`,
/// its core on `driver`, coalescing its wake-ups under load or not.
pub fn echo_server(
    listeners: gochat_edge::EdgeListeners,
    tls: Option<gochat_proto::tls::ServerTls>,
    driver: gochat_edge::config::DriverChoice,
    coalesce: bool,
) -> anyhow::Result<EchoServer> {
    let mut config = gochat_edge::config::EdgeConfig {
        gateway_id: "echo".into(),
        cores: listeners.ws.len(),
        driver,
        coalesce,
        ..Default::default()
    };
    config.ws.addr = listeners.local_addr()?;
    config.ws.echo = true;
    config.ws.tls = tls;
    config.ws.path = "*".into();
    // Autobahn's limits cases send messages up to 16 MiB.
    config.ws.max_message_bytes = 32 * 1024 * 1024;
    config.ws.max_outbound_bytes = 64 * 1024 * 1024;
    config.auth.jwt_secret = "echo-mode-has-no-tokens-echo-mode-has-no-tokens".into();
    let (bus, _inboxes) = MemoryBus::new();
    let bus = Arc::new(bus);
    let links = Arc::new(MemoryLinks {
        bus: bus.clone(),
        gateway_id: "echo".into(),
    });
    let registry = Arc::new(StateRegistry {
        state: Arc::new(gochat_engines::state::memory::MemoryState::new()),
        bus,
        groups: Arc::new(NoGroups),
    });
    let (trigger, shutdown) = gochat_edge::Shutdown::new();
    let edge = gochat_edge::run(config, listeners, links, registry, shutdown)?;
    Ok(EchoServer { edge, trigger })
}
