//! What the edge needs from the rest of the system, as traits, so the same
//! cores run on Kafka + Redis (distributed: the edge's own [`crate::kafka`]
//! links, and a Redis-backed [`Registry`] supplied by the root binary) or on
//! in-process channels and maps supplied by the embedding process (standalone
//! mode, also wired in the root binary).
//!
//! [`Upstream`] and [`Downstream`] live on a worker core and never block it;
//! [`Registry`] runs on the edge's one side thread (session writes and
//! revocation checks are not on the per-message path).

use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use gochat_proto::ids::Id;
use gochat_proto::kafka::DownstreamKey;
use gochat_proto::keys::{RouteChange, SessionRoute};
use gochat_proto::trace::TraceParent;

/// A produce could not be queued.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The local queue is full or the log is unreachable: the client should retry.
    #[error("upstream unavailable: {0}")]
    Unavailable(String),
}

/// Where a core's client frames go. `send` queues and returns at once.
pub trait Upstream {
    /// Queues a record for `im-upstream-topic` under `key` (the sender's
    /// id), with the frame's trace when it is traced.
    fn send(
        &self,
        key: &str,
        record: Vec<u8>,
        trace: Option<&TraceParent>,
    ) -> Result<(), UpstreamError>;
    /// Waits (bounded) until queued records are delivered: the drain's last step.
    fn flush(&self, timeout: Duration);
}

/// A downstream record for a core: what to do, the frame, and the trace of
/// the message it belongs to (when traced).
pub type DownstreamItem = (DownstreamKey, Bytes, Option<TraceParent>);

/// Frames for one core's connections (the core's downstream partition).
pub trait Downstream {
    /// Moves every ready record into `out`; `Pending` registers the waker.
    /// `Ready(false)` means the source is closed.
    fn poll_batch(&mut self, cx: &mut Context<'_>, out: &mut Vec<DownstreamItem>) -> Poll<bool>;
}

/// Builds each core's links; called on the core's own thread.
pub trait CoreLinks: Send + Sync + 'static {
    /// The core's upstream producer.
    fn upstream(&self, core: u32) -> Box<dyn Upstream>;
    /// The core's downstream source.
    fn downstream(&self, core: u32) -> Box<dyn Downstream>;
    /// Whether the broker answers, for `/readyz` (blocking; called off the
    /// cores). Links without a broker (in process) always do.
    fn check_broker(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Why a registry call failed.
#[derive(Debug, thiserror::Error)]
#[error("session registry: {0}")]
pub struct RegistryError(pub String);

/// The session registry, the revocation list and the gateway directory
/// (Redis, or in-process maps), and where a connection's groups are read.
#[async_trait]
pub trait Registry: Send + Sync + 'static {
    /// Registers (or refreshes) a device's connection; says whether another
    /// connection of the device lost (replaced) or this one did (superseded).
    async fn register(
        &self,
        user: Id,
        device_id: &str,
        route: &SessionRoute,
        ttl_secs: u64,
    ) -> Result<RouteChange, RegistryError>;
    /// Removes a device's route if it still names this connection.
    async fn unregister(
        &self,
        user: Id,
        device_id: &str,
        conn_id: u64,
    ) -> Result<(), RegistryError>;
    /// Was this token id revoked (logout)?
    async fn is_revoked(&self, jti: &str) -> Result<bool, RegistryError>;
    /// Sends `frame` to a connection anywhere (its gateway and core) and closes it.
    async fn kick(&self, route: &SessionRoute, frame: Bytes) -> Result<(), RegistryError>;
    /// A connection of `user` opened or closed: their contacts may need telling.
    async fn presence_changed(&self, user: Id) -> Result<(), RegistryError>;
    /// The groups `user` is a member of (a new connection's rooms); `None`
    /// when there is no such user (a validly signed token naming nobody).
    async fn groups_of(&self, user: Id) -> Result<Option<Vec<i64>>, RegistryError>;
    /// This gateway is up with `cores` cores, for `ttl_secs` unless announced again.
    async fn announce_gateway(
        &self,
        gateway_id: &str,
        cores: u32,
        ttl_secs: u64,
    ) -> Result<(), RegistryError>;
    /// Is this gateway's announcement still there? `false` after it was
    /// announced means the registry lost its data (Redis restarted empty),
    /// and with it every session entry of the gateway. An in-process
    /// registry cannot lose it: the default says yes.
    async fn gateway_listed(&self, _gateway_id: &str) -> Result<bool, RegistryError> {
        Ok(true)
    }
}
