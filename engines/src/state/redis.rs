//! Redis-backed state (seed 003 §2.1.2 keys). Multi-step operations are Lua
//! scripts so each is atomic on the server, whatever the number of logic nodes.

use std::collections::HashMap;

use async_trait::async_trait;
use gochat_proto::ids::Id;
use gochat_proto::keys::{Names, RouteChange, SessionRoute};
use redis::Script;
use redis::aio::ConnectionManager;

use super::{DeviceRoute, SeqAlloc, SeqRequest, StateError, StateResult, StateStore};

// How long a reservation outlives a crashed attempt; redelivery comes sooner.
const RESERVATION_TTL_SECS: u64 = 24 * 3600;

// Seqs for many sends in one round trip, in the order given: a send's
// reservation if it has one, -1 when the conversation's counter is missing
// (seed it from the durable mark), else the next value, reserved for it.
// KEYS: counter 1, reservation 1, counter 2, reservation 2, ... ARGV: reservation TTL.
// (All keys in one call: a Redis Cluster would need them in one slot; GoChat's
// state Redis is a single primary.)
const NEXT_SEQS: &str = r#"
local out = {}
for i = 1, #KEYS, 2 do
  local reserved = redis.call('GET', KEYS[i + 1])
  if reserved then
    out[#out + 1] = tonumber(reserved)
  elseif redis.call('EXISTS', KEYS[i]) == 0 then
    out[#out + 1] = -1
  else
    local seq = redis.call('INCR', KEYS[i])
    redis.call('SET', KEYS[i + 1], seq, 'EX', ARGV[1])
    out[#out + 1] = seq
  end
end
return out
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
// The id is matched in the JSON text: cjson reads numbers as doubles, and a
// connection id (64 bits) does not survive that.
const UNREGISTER: &str = r#"
local existing = redis.call('HGET', KEYS[1], ARGV[1])
if not existing then return 0 end
if string.find(existing, '"conn_id":' .. ARGV[2] .. '[,}]') then redis.call('HDEL', KEYS[1], ARGV[1]) return 1 end
return 0
"#;

/// State in Redis.
pub struct RedisState {
    conn: ConnectionManager,
    names: Names,
    next_seqs: Script,
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
            next_seqs: Script::new(NEXT_SEQS),
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
        let send = SeqRequest {
            conversation_id,
            from,
            client_msg_id,
        };
        let mut seqs = self.next_seqs(&[send]).await?;
        seqs.pop()
            .ok_or_else(|| StateError::Unavailable("no seq answered".into()))
    }

    async fn next_seqs(&self, sends: &[SeqRequest<'_>]) -> StateResult<Vec<SeqAlloc>> {
        if sends.is_empty() {
            return Ok(Vec::new());
        }
        let mut invocation = self.next_seqs.prepare_invoke();
        for s in sends {
            invocation
                .key(self.names.seq_key(s.conversation_id))
                .key(self.names.dedup_key(s.from, s.client_msg_id));
        }
        let mut conn = self.conn.clone();
        let seqs: Vec<i64> = invocation
            .arg(RESERVATION_TTL_SECS)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        if seqs.len() != sends.len() {
            return Err(StateError::Unavailable(
                format!("{} seqs for {} sends", seqs.len(), sends.len()).into(),
            ));
        }
        Ok(seqs
            .into_iter()
            .map(|seq| {
                if seq < 0 {
                    SeqAlloc::Unseeded
                } else {
                    SeqAlloc::Seq(seq)
                }
            })
            .collect())
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

    async fn release_seqs(&self, sends: &[(Id, &str)]) -> StateResult<()> {
        if sends.is_empty() {
            return Ok(());
        }
        let mut del = redis::cmd("DEL");
        for (from, client_msg_id) in sends {
            del.arg(self.names.dedup_key(*from, client_msg_id));
        }
        let mut conn = self.conn.clone();
        del.query_async::<()>(&mut conn).await.map_err(unavailable)
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

    async fn announce_gateway(
        &self,
        gateway_id: &str,
        cores: u32,
        ttl_secs: u64,
    ) -> StateResult<()> {
        let expires = gochat_proto::ids::now_millis()
            + i64::try_from(ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX / 2);
        let mut conn = self.conn.clone();
        redis::cmd("HSET")
            .arg(self.names.gateways_key())
            .arg(gateway_id)
            .arg(format!("{cores}:{expires}"))
            .query_async::<()>(&mut conn)
            .await
            .map_err(unavailable)
    }

    async fn gateways(&self) -> StateResult<Vec<(String, u32)>> {
        let mut conn = self.conn.clone();
        let all: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.names.gateways_key())
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let now = gochat_proto::ids::now_millis();
        let mut live: Vec<(String, u32)> = all
            .into_iter()
            .filter_map(|(id, value)| {
                let (cores, expires) = value.split_once(':')?;
                let expires: i64 = expires.parse().ok()?;
                (expires > now).then_some((id, cores.parse().ok()?))
            })
            .collect();
        live.sort();
        Ok(live)
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

    async fn allow(&self, name: &str, limit: u32, window_secs: u64) -> StateResult<bool> {
        let window_secs = window_secs.max(1);
        let window =
            gochat_proto::ids::now_millis() / 1000 / i64::try_from(window_secs).unwrap_or(1);
        let key = self.names.limit_key(name, window);
        let mut conn = self.conn.clone();
        let (count,): (u64,) = redis::pipe()
            .incr(&key, 1)
            .expire(&key, i64::try_from(window_secs * 2).unwrap_or(i64::MAX))
            .ignore()
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(count <= u64::from(limit))
    }
}
