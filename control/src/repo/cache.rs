//! [`RepoCache`]: cache-aside through Redis for the SQL repo (seed 003
//! §2.1.2–2.1.3), for the two hottest reads: user profiles
//! (`user_info:{id}`, a hash) and group membership (`group_members:{id}`, a hash
//! user_id -> "role:joined_at:muted_until", so a membership check is one HGET).
//!
//! It is part of [`SqlRepo`](super::sql::SqlRepo), not a wrapper around a
//! whole repo, so only the operations it serves mention it: reads try Redis,
//! fall back to SQL and fill the cache with a TTL; writes go to SQL first and
//! then delete the cache entry. Redis being down never fails a call: it
//! only costs a database read.
//!
//! Deleting after the write is not enough on its own: a reader that missed,
//! read SQL before the write and fills after the delete would cache the old
//! rows for a whole TTL (a muted member posting for a minute). So each
//! entry has a generation (`{key}:gen`, a random value renewed by every
//! delete); a miss reads it along with the entry, and the fill, a script,
//! writes only if the generation is still the one the miss saw.

use std::collections::HashMap;

use gochat_proto::ids::Id;
use gochat_proto::keys::Names;
use redis::aio::ConnectionManager;

use super::{Member, User};

const USER_TTL_SECS: u64 = 30 * 60;
// Membership gates authorization, so a stale entry must not live long.
const MEMBERS_TTL_SECS: u64 = 60;
/// A generation outlives any read that could still present it.
const GENERATION_TTL_SECS: u64 = 24 * 3600;

/// KEYS[1] the entry, KEYS[2] its generation; ARGV[1] the generation the
/// miss saw ('' for none), ARGV[2] the TTL, then field/value pairs.
const FILL_SCRIPT: &str = r"
local gen = redis.call('GET', KEYS[2]) or ''
if gen ~= ARGV[1] then return 0 end
local n = #ARGV
for i = 3, n, 2000 do
  redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 1999, n)))
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
";

static FILL: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(FILL_SCRIPT));

/// What a cache read found.
#[derive(Debug)]
pub enum Lookup<T> {
    /// The cached value.
    Hit(T),
    /// Not cached: read SQL, then fill with this ticket.
    Miss(FillTicket),
}

/// The generation a miss saw; a fill presenting an older one is dropped.
#[derive(Debug, Clone, Default)]
pub struct FillTicket(String);

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
    pub async fn user(&self, user_id: i64) -> Lookup<User> {
        let Some((_, names)) = &self.redis else {
            return Lookup::Miss(FillTicket::default());
        };
        let (map, ticket) = self.read(names.user_info_key(Id(user_id))).await;
        match user_of(user_id, &map) {
            Some(user) => Lookup::Hit(user),
            None => Lookup::Miss(ticket),
        }
    }

    /// The hash at `key` (empty on a miss or an error) and its generation.
    async fn read(&self, key: String) -> (HashMap<String, String>, FillTicket) {
        let Some((redis, _)) = &self.redis else {
            return (HashMap::new(), FillTicket::default());
        };
        let mut conn = redis.clone();
        let generation = generation_key(&key);
        let read: redis::RedisResult<(HashMap<String, String>, Option<String>)> = redis::pipe()
            .hgetall(&key)
            .get(&generation)
            .query_async(&mut conn)
            .await;
        match read {
            Ok((map, generation)) => (map, FillTicket(generation.unwrap_or_default())),
            // A fill needs a ticket that matches; this one never will.
            Err(_) => (HashMap::new(), FillTicket("unreadable".into())),
        }
    }

    /// Writes `fields` at `key` unless a delete came after the miss.
    async fn fill(&self, key: String, ticket: FillTicket, ttl: u64, fields: Vec<(String, String)>) {
        let Some((redis, _)) = &self.redis else {
            return;
        };
        let mut script = FILL.prepare_invoke();
        script
            .key(&key)
            .key(generation_key(&key))
            .arg(ticket.0)
            .arg(ttl);
        for (field, value) in &fields {
            script.arg(field).arg(value);
        }
        let mut conn = redis.clone();
        let result: redis::RedisResult<i64> = script.invoke_async(&mut conn).await;
        log_cache_error("fill", result.map(drop));
    }

    /// Remembers a profile read from SQL.
    pub async fn fill_user(&self, user: &User, ticket: FillTicket) {
        let Some((_, names)) = &self.redis else {
            return;
        };
        let fields = [
            ("username", user.username.clone()),
            ("nickname", user.nickname.clone()),
            ("avatar_url", user.avatar_url.clone()),
            ("created_at", user.created_at.to_string()),
            ("friend_policy", user.friend_policy.to_string()),
            ("last_seen", user.last_seen.to_string()),
        ];
        let fields = fields.into_iter().map(|(f, v)| (f.to_owned(), v)).collect();
        let key = names.user_info_key(Id(user.user_id));
        self.fill(key, ticket, USER_TTL_SECS, fields).await;
    }

    /// A group's cached members, in join order.
    pub async fn members(&self, group_id: i64) -> Lookup<Vec<Member>> {
        let Some((_, names)) = &self.redis else {
            return Lookup::Miss(FillTicket::default());
        };
        let (map, ticket) = self.read(names.group_members_key(Id(group_id))).await;
        // All or nothing: one unreadable entry (an older shape) is a miss,
        // not a member left out.
        let members: Option<Vec<Member>> = map
            .iter()
            .map(|(user, value)| parse_member(user.parse().ok()?, value))
            .collect();
        match members {
            Some(mut members) if !members.is_empty() => {
                members.sort_by_key(|m| (m.joined_at, m.user_id));
                Lookup::Hit(members)
            }
            _ => Lookup::Miss(ticket),
        }
    }

    /// Remembers a group's members read from SQL.
    pub async fn fill_members(&self, group_id: i64, members: &[Member], ticket: FillTicket) {
        let Some((_, names)) = &self.redis else {
            return;
        };
        if members.is_empty() {
            return;
        }
        let fields = members
            .iter()
            .map(|m| {
                let value = format!("{}:{}:{}", m.role, m.joined_at, m.muted_until);
                (m.user_id.to_string(), value)
            })
            .collect();
        let key = names.group_members_key(Id(group_id));
        self.fill(key, ticket, MEMBERS_TTL_SECS, fields).await;
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

    /// Deletes the entry and renews its generation, so a fill prepared
    /// before this (from rows read before the write) is dropped.
    async fn forget(&self, key: String) {
        let Some((redis, _)) = &self.redis else {
            return;
        };
        let generation = format!("{:016x}", rand::random::<u64>());
        let mut conn = redis.clone();
        let result: redis::RedisResult<()> = redis::pipe()
            .del(&key)
            .ignore()
            .set_ex(generation_key(&key), generation, GENERATION_TTL_SECS)
            .ignore()
            .query_async(&mut conn)
            .await;
        log_cache_error("invalidate", result);
    }
}

fn generation_key(key: &str) -> String {
    format!("{key}:gen")
}

/// A cached profile's fields; `None` if any is missing.
fn user_of(user_id: i64, map: &HashMap<String, String>) -> Option<User> {
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
        metrics::counter!("gochat_redis_errors_total", "user" => "cache").increment(1);
        tracing::warn!(error = %e, "redis cache {what} failed; serving from the database");
    }
}
