//! The state contract (seq allocation, routes, revocation, rate limits) on Redis;
//! the in-process store runs the same contract in its unit tests.

mod support;

use anyhow::Result;
use gochat_control::state::redis::RedisState;
use gochat_control::state::{SeqAlloc, StateStore};
use gochat_proto::ids::Id;
use gochat_proto::keys::{Names, RouteChange, SessionRoute};

async fn store() -> Result<RedisState> {
    Ok(RedisState::connect(
        &support::redis_url()?,
        Names::new(support::unique("st") + ":"),
    )
    .await?)
}

#[tokio::test]
async fn redis_seq_allocation_reserves_and_resyncs() -> Result<()> {
    let s = store().await?;
    assert_eq!(s.next_seq("c", Id(1), "a").await?, SeqAlloc::Unseeded);
    s.seed_seq("c", 10).await?;
    s.seed_seq("c", 3).await?;
    assert_eq!(s.next_seq("c", Id(1), "a").await?, SeqAlloc::Seq(11));
    assert_eq!(
        s.next_seq("c", Id(1), "a").await?,
        SeqAlloc::Seq(11),
        "a retry gets its reservation"
    );
    assert_eq!(s.next_seq("c", Id(2), "a").await?, SeqAlloc::Seq(12));
    s.resync_seq("c", 20, Id(2), "a").await?;
    assert_eq!(s.next_seq("c", Id(2), "a").await?, SeqAlloc::Seq(21));
    s.resync_seq("c", 5, Id(3), "x").await?;
    assert_eq!(
        s.next_seq("c", Id(3), "x").await?,
        SeqAlloc::Seq(22),
        "resync never lowers"
    );
    Ok(())
}

#[tokio::test]
async fn redis_routes_fence_generations_and_tokens_revoke() -> Result<()> {
    let s = store().await?;
    let route = |conn_id, generation| SessionRoute {
        gateway_id: "gw".into(),
        core: 0,
        conn_id,
        generation,
        seen_at: 0,
    };
    let s = &s;
    let web = |r: SessionRoute| async move { s.register_route(Id(1), "web", &r, 60).await };
    assert_eq!(web(route(3, 1)).await?, RouteChange::Registered);
    assert_eq!(
        web(route(7, 2)).await?,
        RouteChange::Replaced(route(3, 1)),
        "the older login is replaced"
    );
    assert_eq!(
        web(route(7, 2)).await?,
        RouteChange::Registered,
        "a heartbeat replaces nothing"
    );
    assert_eq!(
        web(route(5, 1)).await?,
        RouteChange::Superseded,
        "an older login never wins"
    );
    s.register_route(Id(1), "phone", &route(9, 1), 60).await?;
    let routes = s.routes(&[Id(1), Id(2)]).await?;
    assert!(!routes.contains_key(&Id(2)));
    let mut conns: Vec<u64> = routes[&Id(1)].iter().map(|(_, r)| r.conn_id).collect();
    conns.sort_unstable();
    assert_eq!(
        conns,
        vec![7, 9],
        "an older generation never replaces a newer one"
    );
    s.unregister_route(Id(1), "web", 5).await?;
    assert_eq!(
        s.routes(&[Id(1)]).await?[&Id(1)].len(),
        2,
        "a stale connection removes nothing"
    );
    s.unregister_route(Id(1), "web", 7).await?;
    assert_eq!(s.routes(&[Id(1)]).await?[&Id(1)].len(), 1);
    assert!(!s.is_revoked("j1").await?);
    s.revoke_token("j1", 60).await?;
    assert!(s.is_revoked("j1").await?);
    let mut allowed = 0;
    for _ in 0..5 {
        if s.allow_send(Id(3), 3).await? {
            allowed += 1;
        }
    }
    assert!((1..=3).contains(&allowed), "{allowed}");
    Ok(())
}
