//! Shared fast state: the session registry, the seq allocator, token revocation
//! and send rate limits. Redis in production ([`redis::RedisState`]), in-process
//! maps in standalone mode ([`memory::MemoryState`]); both pass the same tests.
//!
//! The seq allocator is a cache of the durable high-water mark kept in SQL
//! (DESIGN.md §5.3): a missing counter (Redis restarted or flushed) answers
//! [`SeqAlloc::Unseeded`], the caller seeds it from SQL, and a seq found already
//! used at store time makes the caller [`StateStore::resync_seq`] and allocate
//! again. Each allocation is reserved under (sender, client_msg_id) until the
//! message is stored, so a redelivered send reuses its seq instead of leaving a gap.

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
}

/// Result alias for state calls.
pub type StateResult<T> = Result<T, StateError>;

/// What the seq allocator answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqAlloc {
    /// This seq is the sender's (new, or the reservation of an earlier attempt).
    Seq(i64),
    /// The counter is missing: seed it from the durable mark and ask again.
    Unseeded,
}

/// A device's route: the device id and where its connection lives.
pub type DeviceRoute = (String, SessionRoute);

/// Fast shared state.
#[async_trait]
pub trait StateStore: Send + Sync + 'static {
    /// Is the store reachable?
    async fn ping(&self) -> StateResult<()>;

    /// The seq for (sender, client_msg_id) in the conversation: its reservation if
    /// one exists, else the next value of the counter, reserved for it.
    async fn next_seq(
        &self,
        conversation_id: &str,
        from: Id,
        client_msg_id: &str,
    ) -> StateResult<SeqAlloc>;
    /// Starts a missing counter at the durable mark (no-op if it exists).
    async fn seed_seq(&self, conversation_id: &str, high_water: i64) -> StateResult<()>;
    /// Raises the counter to at least `high_water` and drops the sender's reservation,
    /// after a store found the reserved seq taken.
    async fn resync_seq(
        &self,
        conversation_id: &str,
        high_water: i64,
        from: Id,
        client_msg_id: &str,
    ) -> StateResult<()>;
    /// Drops the reservation once the message is stored.
    async fn release_seq(&self, from: Id, client_msg_id: &str) -> StateResult<()>;

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

    /// Revokes a token id until `ttl_secs` from now (the token's own expiry).
    async fn revoke_token(&self, jti: &str, ttl_secs: u64) -> StateResult<()>;
    /// Was the token id revoked?
    async fn is_revoked(&self, jti: &str) -> StateResult<bool>;

    /// Counts a send; false when the user is over `per_second` in this second.
    async fn allow_send(&self, user: Id, per_second: u32) -> StateResult<bool>;
}

#[cfg(test)]
pub(crate) mod contract {
    //! The state contract, run against each implementation.
    use super::*;

    pub async fn seq_allocation(store: &dyn StateStore, cid: &str) {
        assert_eq!(
            store.next_seq(cid, Id(1), "a").await.ok(),
            Some(SeqAlloc::Unseeded)
        );
        store.seed_seq(cid, 10).await.ok();
        store.seed_seq(cid, 3).await.ok();
        assert_eq!(
            store.next_seq(cid, Id(1), "a").await.ok(),
            Some(SeqAlloc::Seq(11))
        );
        // A retry of the same send gets its reservation back.
        assert_eq!(
            store.next_seq(cid, Id(1), "a").await.ok(),
            Some(SeqAlloc::Seq(11))
        );
        assert_eq!(
            store.next_seq(cid, Id(2), "a").await.ok(),
            Some(SeqAlloc::Seq(12))
        );
        store.release_seq(Id(1), "a").await.ok();
        // Seq 12 turned out taken up to 20: the next allocation moves past it.
        store.resync_seq(cid, 20, Id(2), "a").await.ok();
        assert_eq!(
            store.next_seq(cid, Id(2), "a").await.ok(),
            Some(SeqAlloc::Seq(21))
        );
        // Resync never lowers the counter.
        store.resync_seq(cid, 5, Id(3), "x").await.ok();
        assert_eq!(
            store.next_seq(cid, Id(3), "x").await.ok(),
            Some(SeqAlloc::Seq(22))
        );
    }

    pub async fn routes_and_revocation(store: &dyn StateStore, base: i64) {
        let (u1, u2) = (Id(base), Id(base + 1));
        let route = |conn_id, generation| SessionRoute {
            gateway_id: "gw1".into(),
            core: 1,
            conn_id,
            generation,
            seen_at: 0,
        };
        let change = |r| async move { store.register_route(u1, "web", &r, 60).await.ok() };
        assert_eq!(change(route(3, 1)).await, Some(RouteChange::Registered));
        assert_eq!(
            change(route(7, 2)).await,
            Some(RouteChange::Replaced(route(3, 1))),
            "the older login is replaced"
        );
        assert_eq!(
            change(route(7, 2)).await,
            Some(RouteChange::Registered),
            "a heartbeat replaces nothing"
        );
        assert_eq!(
            change(route(5, 1)).await,
            Some(RouteChange::Superseded),
            "an older login never wins"
        );
        store
            .register_route(u1, "phone", &route(9, 1), 60)
            .await
            .ok();
        let routes = store.routes(&[u1, u2]).await.unwrap_or_default();
        assert!(!routes.contains_key(&u2));
        let mut conns: Vec<u64> = routes[&u1].iter().map(|(_, r)| r.conn_id).collect();
        conns.sort_unstable();
        assert_eq!(
            conns,
            vec![7, 9],
            "the older generation does not replace the newer"
        );
        store.unregister_route(u1, "web", 5).await.ok();
        assert_eq!(
            store.routes(&[u1]).await.unwrap_or_default()[&u1].len(),
            2,
            "a stale conn id removes nothing"
        );
        store.unregister_route(u1, "web", 7).await.ok();
        assert_eq!(store.routes(&[u1]).await.unwrap_or_default()[&u1].len(), 1);

        let jti = format!("jti-{base}");
        assert!(!store.is_revoked(&jti).await.unwrap_or(true));
        store.revoke_token(&jti, 60).await.ok();
        assert!(store.is_revoked(&jti).await.unwrap_or(false));

        let allowed = futures::future::join_all((0..5).map(|_| store.allow_send(u2, 3))).await;
        let allowed = allowed
            .into_iter()
            .filter(|a| matches!(a, Ok(true)))
            .count();
        assert!(
            allowed <= 3,
            "{allowed} sends allowed within one second's limit of 3"
        );
    }
}
