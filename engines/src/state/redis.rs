//! Redis-backed state (seed 003 §2.1.2 keys). Multi-step operations are Lua
//! scripts so each is atomic on the server, whatever the number of logic nodes.

use std::collections::HashMap;

use async_trait::async_trait;
use gochat_proto::ids::Id;
use gochat_proto::keys::{Names, RouteChange, SessionRoute};
use redis::Script;
use redis::aio::ConnectionManager;

use super::{DeviceRoute, SeqAlloc, StateError, StateResult, StateStore};

// How long a reservation outlives a crashed attempt; redelivery comes sooner.
const RESERVATION_TTL_SECS: u64 = 24 * 3600;

// KEYS: counter, reservation. Returns the reserved seq, or -1 when unseeded.
const NEXT_SEQ: &str = r#"
local reserved = redis.call('GET', KEYS[2])
if reserved then return tonumber(reserved) end
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local seq = redis.call('INCR', KEYS[1])
redis.call('SET', KEYS[2], seq, 'EX', ARGV[1])
return seq
"#;

// KEYS: counter, reservation. ARGV: high-water mark.
const RESYNC_SEQ: &str = r#"
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
redis.call('DEL', KEYS[2])
return 1
"#;

// KEYS: session hash. ARGV: device, route JSON, generation, ttl.
// Returns {0, ""} registered, {1, old route JSON} replaced, {2, ""} superseded.
const REGISTER: &str = r#"
local existing = redis.call('HGET', KEYS[1], ARGV[1])
if existing then
  local ok, old = pcall(cjson.decode, existing)
  if ok and tonumber(old['generation']) > tonumber(ARGV[3]) then return {2, ''} end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[4])
if existing then return {1, existing} end
return {0, ''}
"#;

// KEYS: session hash. ARGV: device, conn id.
const UNREGISTER: &str = r#"
local existing = redis.call('HGET', KEYS[1], ARGV[1])
if not existing then return 0 end
local ok, old = pcall(cjson.decode, existing)
if ok and tostring(old['conn_id']) == ARGV[2] then redis.call('HDEL', KEYS[1], ARGV[1]) return 1 end
return 0
"#;

/// State in Redis.
pub struct RedisState {
    conn: ConnectionManager,
    names: Names,
    next_seq: Script,
    resync_seq: Script,
    register: Script,
    unregister: Script,
}

impl RedisState {
    /// Connects (the manager reconnects by itself after a Redis restart).
    pub async fn connect(url: &str, names: Names) -> StateResult<Self> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        let conn = ConnectionManager::new(client).await.map_err(unavailable)?;
        Ok(Self::new(conn, names))
    }

    /// Wraps an existing connection manager.
    pub fn new(conn: ConnectionManager, names: Names) -> Self {
        Self {
            conn,
            names,
            next_seq: Script::new(NEXT_SEQ),
            resync_seq: Script::new(RESYNC_SEQ),
            register: Script::new(REGISTER),
            unregister: Script::new(UNREGISTER),
        }
    }

    /// The connection, for other Redis users (the repo cache).
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }
}

fn unavailable(e: redis::RedisError) -> StateError {
    StateError::Unavailable(Box::new(e))
}

#[async_trait]
impl StateStore for RedisState {
    async fn ping(&self) -> StateResult<()> {
        let mut conn = self.conn.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn next_seq(
        &self,
        conversation_id: &str,
        from: Id,
        client_msg_id: &str,
    ) -> StateResult<SeqAlloc> {
        let mut conn = self.conn.clone();
        let seq: i64 = self
            .next_seq
            .key(self.names.seq_key(conversation_id))
            .key(self.names.dedup_key(from, client_msg_id))
            .arg(RESERVATION_TTL_SECS)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(if seq < 0 {
            SeqAlloc::Unseeded
        } else {
            SeqAlloc::Seq(seq)
        })
    }

    async fn seed_seq(&self, conversation_id: &str, high_water: i64) -> StateResult<()> {
        let mut conn = self.conn.clone();
        redis::cmd("SET")
            .arg(self.names.seq_key(conversation_id))
            .arg(high_water)
            .arg("NX")
            .query_async::<()>(&mut conn)
            .await
            .map_err(unavailable)
    }

    async fn resync_seq(
        &self,
        conversation_id: &str,
        high_water: i64,
        from: Id,
        client_msg_id: &str,
    ) -> StateResult<()> {
        let mut conn = self.conn.clone();
        self.resync_seq
            .key(self.names.seq_key(conversation_id))
            .key(self.names.dedup_key(from, client_msg_id))
            .arg(high_water)
            .invoke_async::<i64>(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn release_seq(&self, from: Id, client_msg_id: &str) -> StateResult<()> {
        let mut conn = self.conn.clone();
        redis::cmd("DEL")
            .arg(self.names.dedup_key(from, client_msg_id))
            .query_async::<()>(&mut conn)
            .await
            .map_err(unavailable)
    }

    async fn routes(&self, users: &[Id]) -> StateResult<HashMap<Id, Vec<DeviceRoute>>> {
        if users.is_empty() {
            return Ok(HashMap::new());
        }
        let mut pipe = redis::pipe();
        for user in users {
            pipe.hgetall(self.names.session_key(*user));
        }
        let mut conn = self.conn.clone();
        let maps: Vec<HashMap<String, String>> =
            pipe.query_async(&mut conn).await.map_err(unavailable)?;
        Ok(users
            .iter()
            .zip(maps)
            .filter_map(|(user, devices)| {
                let live: Vec<DeviceRoute> = devices
                    .into_iter()
                    .filter_map(|(device, json)| {
                        serde_json::from_str(&json).ok().map(|r| (device, r))
                    })
                    .collect();
                (!live.is_empty()).then_some((*user, live))
            })
            .collect())
    }

    async fn register_route(
        &self,
        user: Id,
        device_id: &str,
        route: &SessionRoute,
        ttl_secs: u64,
    ) -> StateResult<RouteChange> {
        let json =
            serde_json::to_string(route).map_err(|e| StateError::Unavailable(Box::new(e)))?;
        let mut conn = self.conn.clone();
        let (code, old): (i64, String) = self
            .register
            .key(self.names.session_key(user))
            .arg(device_id)
            .arg(json)
            .arg(route.generation)
            .arg(ttl_secs.max(1))
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(match (code, serde_json::from_str::<SessionRoute>(&old)) {
            (2, _) => RouteChange::Superseded,
            (1, Ok(old))
                if (old.gateway_id.as_str(), old.core, old.conn_id)
                    != (route.gateway_id.as_str(), route.core, route.conn_id) =>
            {
                RouteChange::Replaced(old)
            }
            _ => RouteChange::Registered,
        })
    }

    async fn unregister_route(&self, user: Id, device_id: &str, conn_id: u64) -> StateResult<()> {
        let mut conn = self.conn.clone();
        self.unregister
            .key(self.names.session_key(user))
            .arg(device_id)
            .arg(conn_id.to_string())
            .invoke_async::<i64>(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn revoke_token(&self, jti: &str, ttl_secs: u64) -> StateResult<()> {
        let mut conn = self.conn.clone();
        redis::cmd("SET")
            .arg(self.names.revoked_key(jti))
            .arg(1)
            .arg("EX")
            .arg(ttl_secs.max(1))
            .query_async::<()>(&mut conn)
            .await
            .map_err(unavailable)
    }

    async fn is_revoked(&self, jti: &str) -> StateResult<bool> {
        let mut conn = self.conn.clone();
        let n: i64 = redis::cmd("EXISTS")
            .arg(self.names.revoked_key(jti))
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(n > 0)
    }

    async fn allow_send(&self, user: Id, per_second: u32) -> StateResult<bool> {
        let key = self
            .names
            .rate_key(user, gochat_proto::ids::now_millis() / 1000);
        let mut conn = self.conn.clone();
        let (count,): (u64,) = redis::pipe()
            .incr(&key, 1)
            .expire(&key, 2)
            .ignore()
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(count <= u64::from(per_second))
    }
}
