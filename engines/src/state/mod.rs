//! Shared fast state: the session registry, the gateway directory, token
//! revocation and rate limits. Redis in production ([`redis::RedisState`]),
//! in-process maps in standalone mode ([`memory::MemoryState`]); both pass
//! the same tests.
//!
//! Seqs are not here: they are allocated in the SQL transaction that stores
//! their messages (docs/design.md §5.3), so nothing in this state can leave a
//! gap or fill one in late.

pub mod memory;
pub mod redis;

use std::collections::HashMap;

use async_trait::async_trait;
use gochat_proto::ids::Id;
use gochat_proto::keys::{RouteChange, SessionRoute};

/// Why a state call failed. State is a cache or a registry: callers decide
/// whether to fail the request (seq) or carry on without (presence).
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Redis is unreachable or answered with an error.
    #[error("state store unavailable: {0}")]
    Unavailable(#[source] crate::BoxError),
    /// The configuration cannot work (never retried: fix the config).
    #[error("state store misconfigured: {0}")]
    Invalid(String),
}

/// Result alias for state calls.
pub type StateResult<T> = Result<T, StateError>;

/// A device's route: the device id and where its connection lives.
pub type DeviceRoute = (String, SessionRoute);

/// Fast shared state.
#[async_trait]
pub trait StateStore: Send + Sync + 'static {
    /// Is the store reachable?
    async fn ping(&self) -> StateResult<()>;

    /// Every live device route of each user (users with none are absent).
    async fn routes(&self, users: &[Id]) -> StateResult<HashMap<Id, Vec<DeviceRoute>>>;
    /// Does the user have a live connection anywhere?
    async fn is_online(&self, user: Id) -> StateResult<bool> {
        let routes = self.routes(&[user]).await?;
        Ok(routes.get(&user).is_some_and(|devices| !devices.is_empty()))
    }
    /// Registers a device's connection; a newer generation replaces an older one
    /// and an older one is refused (the newest login of a device wins; the loser
    /// is closed quietly by the caller).
    async fn register_route(
        &self,
        user: Id,
        device_id: &str,
        route: &SessionRoute,
        ttl_secs: u64,
    ) -> StateResult<RouteChange>;
    /// Removes a device's route if it still names this connection.
    async fn unregister_route(&self, user: Id, device_id: &str, conn_id: u64) -> StateResult<()>;

    /// A gateway is up with `cores` worker cores (its downstream partitions),
    /// for `ttl_secs` unless announced again.
    async fn announce_gateway(
        &self,
        gateway_id: &str,
        cores: u32,
        ttl_secs: u64,
    ) -> StateResult<()>;
    /// The gateways announced and not expired, with their core counts, by id.
    async fn gateways(&self) -> StateResult<Vec<(String, u32)>>;

    /// Revokes a token id until `ttl_secs` from now (the token's own expiry).
    async fn revoke_token(&self, jti: &str, ttl_secs: u64) -> StateResult<()>;
    /// Was the token id revoked?
    async fn is_revoked(&self, jti: &str) -> StateResult<bool>;

    /// Counts a send; false when the user is over `per_second` in this second.
    async fn allow_send(&self, user: Id, per_second: u32) -> StateResult<bool> {
        self.allow(&format!("send:{user}"), per_second, 1).await
    }
    /// Counts one use of the budget `name`; false when it was used `limit`
    /// times already in this window of `window_secs` (fixed windows).
    async fn allow(&self, name: &str, limit: u32, window_secs: u64) -> StateResult<bool>;
}
