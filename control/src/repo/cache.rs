//! [`RepoCache`]: cache-aside through Redis for the SQL repo (seed 003
//! §2.1.2–2.1.3), for the two hottest reads: user profiles
//! (`user_info:{id}`, a hash) and group membership (`group_members:{id}`, a hash
//! user_id -> "role:joined_at:muted_until", so a membership check is one HGET).
//!
//! It is part of [`SqlRepo`](super::sql::SqlRepo), not a wrapper around a
//! whole repo, so only the operations it serves mention it: reads try Redis,
//! fall back to SQL and fill the cache with a TTL; writes go to SQL first and
//! then delete the cache entry (deleting
//! after the write is what keeps a concurrent reader from caching stale rows for
//! longer than the TTL). Redis being down never fails a call: it only costs a
//! database read.

use std::collections::HashMap;

use gochat_proto::ids::Id;
use gochat_proto::keys::Names;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;

use super::{Member, User};

const USER_TTL_SECS: u64 = 30 * 60;
// Membership gates authorization, so a stale entry must not live long.
const MEMBERS_TTL_SECS: u64 = 60;

/// The Redis cache of the SQL repo; [`RepoCache::none`] caches nothing.
#[derive(Clone, Default)]
pub struct RepoCache {
    redis: Option<(ConnectionManager, Names)>,
}

impl std::fmt::Debug for RepoCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.redis.is_some() {
            "RepoCache(redis)"
        } else {
            "RepoCache(none)"
        })
    }
}

impl RepoCache {
    /// No cache: every read goes to SQL.
    pub fn none() -> Self {
        Self::default()
    }

    /// Cache in this Redis, keys under `names`' prefix.
    pub fn redis(redis: ConnectionManager, names: Names) -> Self {
        Self {
            redis: Some((redis, names)),
        }
    }

    /// A cached profile.
    pub async fn user(&self, user_id: i64) -> Option<User> {
        let (redis, names) = self.redis.as_ref()?;
        let mut conn = redis.clone();
        let map: HashMap<String, String> =
            conn.hgetall(names.user_info_key(Id(user_id))).await.ok()?;
        Some(User {
            user_id,
            username: map.get("username")?.clone(),
            nickname: map.get("nickname")?.clone(),
            avatar_url: map.get("avatar_url")?.clone(),
            created_at: map.get("created_at")?.parse().ok()?,
            // An entry written before these fields existed is a miss.
            friend_policy: map.get("friend_policy")?.parse().ok()?,
            last_seen: map.get("last_seen")?.parse().ok()?,
        })
    }

    /// Remembers a profile read from SQL.
    pub async fn fill_user(&self, user: &User) {
        let Some((redis, names)) = &self.redis else {
            return;
        };
        let key = names.user_info_key(Id(user.user_id));
        let created = user.created_at.to_string();
        let policy = user.friend_policy.to_string();
        let last_seen = user.last_seen.to_string();
        let fields = [
            ("username", user.username.as_str()),
            ("nickname", user.nickname.as_str()),
            ("avatar_url", user.avatar_url.as_str()),
            ("created_at", created.as_str()),
            ("friend_policy", policy.as_str()),
            ("last_seen", last_seen.as_str()),
        ];
        let mut conn = redis.clone();
        let result: redis::RedisResult<()> = redis::pipe()
            .hset_multiple(&key, &fields)
            .ignore()
            .expire(&key, USER_TTL_SECS as i64)
            .ignore()
            .query_async(&mut conn)
            .await;
        log_cache_error("fill user_info", result);
    }

    /// A group's cached members, in join order.
    pub async fn members(&self, group_id: i64) -> Option<Vec<Member>> {
        let (redis, names) = self.redis.as_ref()?;
        let mut conn = redis.clone();
        let map: HashMap<i64, String> = conn
            .hgetall(names.group_members_key(Id(group_id)))
            .await
            .ok()?;
        if map.is_empty() {
            return None;
        }
        // All or nothing: one unreadable entry (an older shape) is a miss,
        // not a member left out.
        let mut members: Vec<Member> = map
            .iter()
            .map(|(user, value)| parse_member(*user, value))
            .collect::<Option<_>>()?;
        members.sort_by_key(|m| (m.joined_at, m.user_id));
        Some(members)
    }

    /// Remembers a group's members read from SQL.
    pub async fn fill_members(&self, group_id: i64, members: &[Member]) {
        let Some((redis, names)) = &self.redis else {
            return;
        };
        if members.is_empty() {
            return;
        }
        let key = names.group_members_key(Id(group_id));
        let fields: Vec<(i64, String)> = members
            .iter()
            .map(|m| {
                let value = format!("{}:{}:{}", m.role, m.joined_at, m.muted_until);
                (m.user_id, value)
            })
            .collect();
        let mut conn = redis.clone();
        let result: redis::RedisResult<()> = redis::pipe()
            .hset_multiple(&key, &fields)
            .ignore()
            .expire(&key, MEMBERS_TTL_SECS as i64)
            .ignore()
            .query_async(&mut conn)
            .await;
        log_cache_error("fill group_members", result);
    }

    /// Forgets a profile after SQL changed it.
    pub async fn forget_user(&self, user_id: i64) {
        if let Some((_, names)) = &self.redis {
            self.forget(names.user_info_key(Id(user_id))).await;
        }
    }

    /// Forgets a group's members after SQL changed them.
    pub async fn forget_members(&self, group_id: i64) {
        if let Some((_, names)) = &self.redis {
            self.forget(names.group_members_key(Id(group_id))).await;
        }
    }

    async fn forget(&self, key: String) {
        let Some((redis, _)) = &self.redis else {
            return;
        };
        let mut conn = redis.clone();
        let result: redis::RedisResult<()> = conn.del(key).await;
        log_cache_error("invalidate", result);
    }
}

/// `role:joined_at:muted_until`; an entry in an older shape is a miss.
fn parse_member(user_id: i64, value: &str) -> Option<Member> {
    let mut parts = value.split(':');
    let member = Member {
        user_id,
        role: parts.next()?.parse().ok()?,
        joined_at: parts.next()?.parse().ok()?,
        muted_until: parts.next()?.parse().ok()?,
    };
    parts.next().is_none().then_some(member)
}

fn log_cache_error(what: &str, result: redis::RedisResult<()>) {
    if let Err(e) = result {
        tracing::warn!(error = %e, "redis cache {what} failed; serving from the database");
    }
}
