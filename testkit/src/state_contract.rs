//! The contract every state store keeps, run against each implementation
//! (in-process in `engines/tests`, Redis there and in the control plane's
//! suites): one set of assertions, so the engines cannot drift apart.

use gochat_engines::state::StateStore;
use gochat_proto::ids::Id;
use gochat_proto::keys::{RouteChange, SessionRoute};

/// The session registry (newest login wins both ways, stale ids remove
/// nothing), token revocation and the send rate limit.
pub async fn routes_and_revocation(store: &dyn StateStore, base: i64) {
    let (u1, u2) = (Id(base), Id(base + 1));
    let route = |conn_id, generation| SessionRoute {
        gateway_id: "gw1".into(),
        core: 1,
        conn_id,
        generation,
        seen_at: 0,
        // Kept with the route (a logout finds its token's connections by it).
        token: conn_id.wrapping_mul(11),
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
    assert!(
        routes[&u1]
            .iter()
            .all(|(_, r)| r.token == r.conn_id.wrapping_mul(11)),
        "each route keeps its token tag"
    );
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
    // Connection ids use all 64 bits (an accept clock in the top 32): one
    // that a double cannot hold is still matched exactly.
    let big = (1u64 << 63) + 12_345;
    store
        .register_route(u1, "big", &route(big, 9), 60)
        .await
        .ok();
    store.unregister_route(u1, "big", big + 1).await.ok();
    assert_eq!(
        store.routes(&[u1]).await.unwrap_or_default()[&u1].len(),
        2,
        "a neighbouring 64-bit id removes nothing"
    );
    store.unregister_route(u1, "big", big).await.ok();
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

/// The gateway directory: announced gateways with their cores, a later
/// announcement replaces the earlier, an expired one is gone.
pub async fn gateway_directory(store: &dyn StateStore) {
    assert_eq!(store.gateways().await.ok(), Some(vec![]));
    store.announce_gateway("gw-b", 4, 60).await.ok();
    store.announce_gateway("gw-a", 2, 60).await.ok();
    store.announce_gateway("gw-a", 3, 60).await.ok();
    store.announce_gateway("gw-gone", 1, 0).await.ok();
    assert_eq!(
        store.gateways().await.ok(),
        Some(vec![("gw-a".to_owned(), 3), ("gw-b".to_owned(), 4)])
    );
}

/// Named budgets: `limit` uses per window, then refusals; budgets apart.
pub async fn named_budgets(store: &dyn StateStore, base: &str) {
    let name = format!("{base}-a");
    for _ in 0..2 {
        assert_eq!(store.allow(&name, 2, 3600).await.ok(), Some(true));
    }
    assert_eq!(store.allow(&name, 2, 3600).await.ok(), Some(false));
    assert_eq!(
        store.allow(&format!("{base}-b"), 2, 3600).await.ok(),
        Some(true)
    );
}
