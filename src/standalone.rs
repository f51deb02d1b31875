//! Standalone mode: the edge cores and every control service in one process,
//! on the embedded engines (SQLite in the data dir, in-process state and log,
//! local media dir) — no external service. Same business logic as the
//! distributed mode: only the engines differ.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use gochat_control::{ControlListeners, Running};
use gochat_edge::{EdgeListeners, RunningEdge, Shutdown, ShutdownTrigger};
use tokio_util::sync::CancellationToken;

use crate::links::{GroupSource, MemoryLinks, StateRegistry};
pub use crate::standalone_config::{Flags, GATEWAY_ID, StandaloneConfig};

/// The embedded control plane's repo: where a connection's groups are read.
struct RepoGroups(Arc<dyn gochat_control::repo::Repo>);

#[async_trait::async_trait]
impl GroupSource for RepoGroups {
    async fn groups_of(
        &self,
        user: gochat_proto::ids::Id,
    ) -> Result<Option<Vec<i64>>, gochat_engines::BoxError> {
        match self.0.get_user(user.0).await {
            Err(gochat_control::repo::RepoError::NotFound(_)) => return Ok(None),
            other => other?,
        };
        let groups = self.0.list_user_groups(user.0).await?;
        Ok(Some(groups.into_iter().map(|g| g.group_id).collect()))
    }
}

/// A running standalone process.
pub struct Standalone {
    /// REST API and web client.
    pub http_addr: SocketAddr,
    /// WebSocket.
    pub ws_addr: SocketAddr,
    control: Running,
    edge: RunningEdge,
    edge_trigger: ShutdownTrigger,
    control_token: CancellationToken,
}

impl Standalone {
    /// Reads the gateway's `wss://` certificate again (on SIGHUP).
    pub fn reload_tls(&self) {
        self.edge.reload_tls();
    }

    /// Drains the edge (connections get 1013 with a reconnect hint and are
    /// deregistered), then stops the control services.
    pub async fn shutdown(mut self) {
        self.edge_trigger.fire();
        let edge = self.edge;
        let _ = tokio::task::spawn_blocking(move || edge.join()).await;
        self.control_token.cancel();
        self.control.wait().await;
    }
}

/// The secret tokens are signed with: generated once, kept in the data dir.
pub fn jwt_secret(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join("jwt_secret");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim().to_owned();
        if existing.len() >= 32 {
            return Ok(existing);
        }
    }
    let secret = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    std::fs::write(&path, &secret).with_context(|| format!("writing {}", path.display()))?;
    Ok(secret)
}

/// `http://host:port` for the address, and its `localhost` spelling on loopback.
fn own_origins(http_addr: SocketAddr) -> Vec<String> {
    let mut origins = vec![format!("http://{http_addr}")];
    if http_addr.ip().is_loopback() || http_addr.ip().is_unspecified() {
        origins.push(format!("http://localhost:{}", http_addr.port()));
        origins.push(format!("http://127.0.0.1:{}", http_addr.port()));
    }
    origins
}

/// Starts everything on listeners the caller bound (port 0 in tests).
pub async fn start(
    config: StandaloneConfig,
    http: tokio::net::TcpListener,
    ws: EdgeListeners,
) -> anyhow::Result<Standalone> {
    let StandaloneConfig {
        data_dir,
        control: mut control_config,
        edge: mut edge_config,
    } = config;
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let ws_addr = ws.local_addr()?;
    if control_config.http.public_ws_url.is_empty() {
        // The browser reaches the edge by the name it reached this page by,
        // over TLS when the gateway speaks it (a page on https:// may not
        // open a ws:// socket).
        let scheme = if edge_config.ws.tls.is_some() {
            "wss"
        } else {
            "ws"
        };
        control_config.http.public_ws_url = format!("{scheme}://{{host}}:{}/ws", ws_addr.port());
    }
    let password_file = control_config.auth.admin_password_file.clone();
    let had_admin = password_file.as_ref().is_some_and(|f| f.exists());
    let control_token = CancellationToken::new();
    let control = gochat_control::start(
        control_config,
        ControlListeners {
            http: Some(http),
            grpc: None,
        },
        control_token.clone(),
    )
    .await?;
    if let Some(file) = password_file.filter(|_| !had_admin)
        && let Ok(written) = std::fs::read_to_string(&file)
    {
        // Printed this once; afterwards only the owner-only file has it.
        println!(
            "admin account created (kept in {}):\n{written}",
            file.display()
        );
    }
    let http_addr = control.http_addr.context("http address")?;
    let bus = control
        .memory_bus
        .clone()
        .context("standalone runs on the in-process log")?;
    let links = Arc::new(MemoryLinks {
        bus: bus.clone(),
        gateway_id: edge_config.gateway_id.clone(),
    });
    let registry = Arc::new(StateRegistry {
        state: control.state.clone(),
        bus,
        groups: Arc::new(RepoGroups(control.repo.clone())),
    });
    let (edge_trigger, shutdown) = Shutdown::new();
    // Browsers may connect from the product's own web origin.
    edge_config
        .ws
        .allowed_origins
        .extend(own_origins(http_addr));
    let edge = gochat_edge::run(edge_config, ws, links, registry, shutdown)?;
    Ok(Standalone {
        http_addr,
        ws_addr,
        control,
        edge,
        edge_trigger,
        control_token,
    })
}
