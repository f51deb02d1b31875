//! Redis-backed state (seed 003 §2.1.2 keys). Multi-step operations are Lua
//! scripts so each is atomic on the server, whatever the number of logic nodes.

use std::collections::HashMap;

use async_trait::async_trait;
use gochat_proto::ids::Id;
use gochat_proto::keys::{Names, RouteChange, SessionRoute};
use gochat_proto::settings::RedisConfig;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ClientTlsConfig, Script, TlsCertificates};

use super::{DeviceRoute, StateError, StateResult, StateStore};

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
    register: Script,
    unregister: Script,
}

impl RedisState {
    /// Connects (the manager reconnects by itself after a Redis restart).
    pub async fn connect(config: &RedisConfig) -> StateResult<Self> {
        let settings = ConnectionManagerConfig::new().set_response_timeout(Some(
            std::time::Duration::from_millis(config.response_timeout_ms.max(1)),
        ));
        let conn = ConnectionManager::new_with_config(client(config)?, settings)
            .await
            .map_err(unavailable)?;
        Ok(Self::new(conn, Names::new(config.key_prefix.clone())))
    }

    /// Wraps an existing connection manager.
    pub fn new(conn: ConnectionManager, names: Names) -> Self {
        Self {
            conn,
            names,
            register: Script::new(REGISTER),
            unregister: Script::new(UNREGISTER),
        }
    }

    /// The connection, for other Redis users (the repo cache).
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }
}

/// A client for `config`: TLS when the URL is `rediss://`, trusting the CA
/// and presenting the client certificate of `[redis.tls]` when given.
pub fn client(config: &RedisConfig) -> StateResult<redis::Client> {
    let Some(tls) = &config.tls else {
        return redis::Client::open(config.url.as_str()).map_err(unavailable);
    };
    if !config.url.starts_with("rediss://") {
        return Err(StateError::Invalid(
            "[redis.tls] needs a rediss:// url (redis:// is never encrypted)".into(),
        ));
    }
    let read = |path: &std::path::Path| {
        std::fs::read(path)
            .map_err(|e| StateError::Invalid(format!("redis.tls: {}: {e}", path.display())))
    };
    let client_tls = match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => Some(ClientTlsConfig {
            client_cert: read(cert)?,
            client_key: read(key)?,
        }),
        (None, None) => None,
        _ => {
            return Err(StateError::Invalid(
                "redis.tls: cert_file and key_file go together".into(),
            ));
        }
    };
    let root_cert = tls.ca_file.as_deref().map(read).transpose()?;
    // The Redis client takes rustls's process-wide provider: make it ring,
    // the one every TLS client here uses (a provider installed first wins).
    let _ = rustls::crypto::ring::default_provider().install_default();
    redis::Client::build_with_tls(
        config.url.as_str(),
        TlsCertificates {
            client_tls,
            root_cert,
        },
    )
    .map_err(unavailable)
}

fn unavailable(e: redis::RedisError) -> StateError {
    metrics::counter!("gochat_redis_errors_total", "user" => "state").increment(1);
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
