//! The Redis cache against the read-then-fill race: a reader that missed
//! and read SQL before a change must not cache what it read after the
//! change's delete (docs: repo/cache.rs).

use anyhow::Result;
use gochat_control::repo::Member;
use gochat_control::repo::cache::{Lookup, RepoCache};
use gochat_proto::keys::Names;

use super::support;

async fn cache() -> Result<RepoCache> {
    let client = redis::Client::open(support::redis_url()?)?;
    let manager = redis::aio::ConnectionManager::new(client).await?;
    Ok(RepoCache::redis(manager, Names::new(support::unique("t"))))
}

fn member(user_id: i64, muted_until: i64) -> Member {
    Member {
        user_id,
        role: 0,
        joined_at: 1,
        muted_until,
    }
}

#[tokio::test]
async fn a_fill_from_rows_read_before_a_change_is_dropped() -> Result<()> {
    let cache = cache().await?;
    // A reader misses and reads the member, not muted yet...
    let Lookup::Miss(stale) = cache.members(9).await else {
        anyhow::bail!("a hit in an empty cache");
    };
    // ...a mute is written and the entry deleted...
    cache.forget_members(9).await;
    // ...then the reader's fill arrives: it must not land.
    cache.fill_members(9, &[member(5, 0)], stale).await;
    let Lookup::Miss(fresh) = cache.members(9).await else {
        anyhow::bail!("the stale fill was cached");
    };
    // A reader that missed after the change fills normally.
    cache
        .fill_members(9, &[member(5, 99), member(6, 0)], fresh)
        .await;
    match cache.members(9).await {
        Lookup::Hit(members) => assert_eq!(members, vec![member(5, 99), member(6, 0)]),
        Lookup::Miss(_) => anyhow::bail!("the fresh fill was dropped"),
    }
    // The same holds for profiles.
    let Lookup::Miss(stale) = cache.user(3).await else {
        anyhow::bail!("a hit in an empty cache");
    };
    cache.forget_user(3).await;
    let user = gochat_control::repo::User {
        user_id: 3,
        username: "u".into(),
        ..Default::default()
    };
    cache.fill_user(&user, stale).await;
    assert!(matches!(cache.user(3).await, Lookup::Miss(_)));
    Ok(())
}

/// A large group is filled whole (the script sets its fields in chunks).
#[tokio::test]
async fn a_large_group_fills_whole() -> Result<()> {
    let cache = cache().await?;
    let members: Vec<Member> = (1..=2500).map(|u| member(u, 0)).collect();
    let Lookup::Miss(ticket) = cache.members(1).await else {
        anyhow::bail!("a hit in an empty cache");
    };
    cache.fill_members(1, &members, ticket).await;
    match cache.members(1).await {
        Lookup::Hit(cached) => assert_eq!(cached.len(), 2500),
        Lookup::Miss(_) => anyhow::bail!("not cached"),
    }
    Ok(())
}
