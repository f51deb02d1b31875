//! The edge's typed config: a TOML file, then `GOCHAT_EDGE_*` environment
//! overrides (`GOCHAT_EDGE_KEY`, `GOCHAT_EDGE_SECTION__KEY`), unknown keys
//! refused, validated before binding.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// Why a config was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or an override could not be read.
    #[error(transparent)]
    Read(#[from] gochat_proto::settings::SettingsError),
    /// TOML or an override does not fit the schema.
    #[error("invalid edge config: {0}")]
    Parse(String),
    /// Inconsistent or unsafe values.
    #[error("invalid edge config: {0}")]
    Invalid(String),
}

/// Which monoio driver the cores use.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema, Default,
)]
#[serde(rename_all = "snake_case")]
pub enum DriverChoice {
    /// io_uring when the kernel has it, else the legacy (epoll) driver, logged.
    #[default]
    Auto,
    /// io_uring only (fails to start without it).
    IoUring,
    /// The legacy epoll driver.
    Legacy,
}

/// The whole edge config.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct EdgeConfig {
    /// Names this gateway's downstream topic (`im-downstream-topic-{gateway_id}`).
    pub gateway_id: String,
    /// Worker cores (0 = one per CPU).
    pub cores: usize,
    /// Pin each worker to its CPU.
    pub pin_cores: bool,
    /// monoio driver: what a core waits on its epoll set and its timers
    /// with (sockets are in the core's own epoll set either way).
    pub driver: DriverChoice,
    /// Coalesce a busy core's wake-ups while that does not lower its
    /// throughput. A core whose sockets keep becoming readable within a
    /// millisecond of its last wait (for 10 ms) drains them at the runtime's
    /// next timer tick instead of arming a new wait, as long as each drain
    /// finds events and the frames it handles per 10 ms do not fall more
    /// than 15 % below the rate before; when they do (clients that wait for
    /// each answer), it stops and does not try again for 1 s, doubled after
    /// each such fall in a row up to 16 s. Many clients that pipeline frames
    /// then cost fewer wake-ups and ring entries per frame; a frame arriving
    /// while the core coalesces waits for the tick (up to 1 ms). Off: the
    /// wait is armed after every drain.
    pub coalesce: bool,
    /// WebSocket listener and limits.
    pub ws: WsConfig,
    /// Token checking.
    pub auth: EdgeAuthConfig,
    /// Kafka (absent: the embedding process supplies the log, as in standalone).
    pub kafka: Option<KafkaConfig>,
    /// Redis (absent: the embedding process supplies the registry).
    pub redis: Option<RedisConfig>,
    /// How long a session entry lives without a heartbeat.
    pub session_ttl_secs: u64,
    /// The control plane's gRPC address serving the repo (`http://host:port`,
    /// or several, comma-separated; each host resolved to all its addresses
    /// every 10 s, lookups balanced over them), where a new connection's
    /// groups (its rooms) are read. Absent: the embedding process supplies
    /// them, as in standalone.
    pub repo_url: Option<String>,
    /// Operations endpoints.
    pub ops: OpsConfig,
    /// Traces (a span per sampled client frame and per traced delivery)
    /// and the log format.
    pub tracing: gochat_proto::trace::TracingConfig,
}

/// Operations endpoints: `/metrics` (Prometheus), `/healthz`, `/readyz`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct OpsConfig {
    /// Where they are served, on a thread of their own (absent: not served;
    /// in standalone the control plane's `/metrics` includes the gateway's).
    pub addr: Option<SocketAddr>,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        Self {
            gateway_id: "gw1".into(),
            cores: 0,
            pin_cores: true,
            driver: DriverChoice::Auto,
            coalesce: true,
            ws: WsConfig::default(),
            auth: EdgeAuthConfig::default(),
            kafka: None,
            redis: None,
            session_ttl_secs: 120,
            repo_url: None,
            ops: OpsConfig::default(),
            tracing: Default::default(),
        }
    }
}

/// WebSocket listener and per-connection limits.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct WsConfig {
    /// Listen address.
    pub addr: SocketAddr,
    /// Upgrade path.
    pub path: String,
    /// Allowed `Origin`s (empty: any).
    pub allowed_origins: Vec<String>,
    /// Largest message (and frame); larger closes with 1009.
    pub max_message_bytes: usize,
    /// Time allowed to complete the upgrade.
    pub handshake_timeout_ms: u64,
    /// A connection silent this long is closed.
    pub heartbeat_timeout_secs: u64,
    /// Bytes queued for a connection before it counts as a slow reader (closed with 1013).
    pub max_outbound_bytes: usize,
    /// Client frames (send/read/typing) per connection per second.
    pub frames_per_second: u32,
    /// Open connections per client IP (0: no limit).
    pub max_connections_per_ip: usize,
    /// Sends a core has passed upstream and not yet seen answered (ack or
    /// error); beyond it a send is refused at once with `overloaded`
    /// (admission control: the queue behind the gateway stays short).
    pub max_unanswered_sends: usize,
    /// A send unanswered this long stops counting against the window (its
    /// answer may still come; the client resends meanwhile).
    pub send_answer_timeout_secs: u64,
    /// Protocol test mode (Autobahn|Testsuite): any path, no token, every
    /// message echoed back. Never enable it in production.
    pub echo: bool,
    /// `wss://`: the listener speaks TLS with this certificate (read again
    /// on SIGHUP); absent, plain `ws://` (behind a TLS-ending balancer).
    pub tls: Option<ServerTls>,
}

impl Default for WsConfig {
    fn default() -> Self {
        Self {
            addr: ([127, 0, 0, 1], 8090).into(),
            path: "/ws".into(),
            allowed_origins: Vec::new(),
            max_message_bytes: 64 * 1024,
            handshake_timeout_ms: 10_000,
            heartbeat_timeout_secs: 90,
            max_outbound_bytes: 1024 * 1024,
            frames_per_second: 30,
            max_connections_per_ip: 0,
            max_unanswered_sends: 512,
            send_answer_timeout_secs: 10,
            echo: false,
            tls: None,
        }
    }
}

/// Token checking.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields, default)]
pub struct EdgeAuthConfig {
    /// The HS256 secret the control plane signs with (at least 32 bytes).
    pub jwt_secret: String,
}

pub use gochat_proto::settings::{KafkaConfig, RedisConfig};
use gochat_proto::tls::ServerTls;

impl EdgeConfig {
    /// Reads an optional TOML file and applies `GOCHAT_EDGE_*` overrides from `env`.
    pub fn load(
        path: Option<&std::path::Path>,
        env: impl Iterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        Self::from_table(gochat_proto::settings::load(path, &Self::ENV, env)?)
    }

    /// The variables that override a gateway config: `GOCHAT_EDGE_SECTION__KEY`
    /// and the top-level keys by name (`GOCHAT_EDGE_CORES`).
    pub const ENV: gochat_proto::settings::EnvRule<'static> = gochat_proto::settings::EnvRule {
        prefix: "GOCHAT_EDGE_",
        top_level: &[
            "gateway_id",
            "cores",
            "pin_cores",
            "driver",
            "coalesce",
            "session_ttl_secs",
            "repo_url",
        ],
        others: &[],
    };

    /// The config a table (a file with its overrides) describes, validated.
    pub fn from_table(table: toml::Table) -> Result<Self, ConfigError> {
        let config: Self = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Parse(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks everything that can be checked before binding.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: &str| Err(ConfigError::Invalid(m.to_owned()));
        if self.gateway_id.is_empty()
            || !self
                .gateway_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return invalid("gateway_id: letters, digits, '-' and '_' (it names a Kafka topic)");
        }
        if self.auth.jwt_secret.len() < 32 {
            return Err(ConfigError::Invalid(format!(
                "auth.jwt_secret is {} bytes; at least 32 are required (set GOCHAT_EDGE_AUTH__JWT_SECRET)",
                self.auth.jwt_secret.len()
            )));
        }
        if self.kafka.is_some() != self.redis.is_some() {
            return invalid("[kafka] and [redis] go together (or neither, when embedded)");
        }
        if !self.ws.path.starts_with('/') && self.ws.path != "*" {
            return invalid("ws.path must start with '/'");
        }
        if self.ws.max_message_bytes < 1024
            || self.ws.max_outbound_bytes < self.ws.max_message_bytes
        {
            return invalid(
                "ws.max_message_bytes >= 1024 and ws.max_outbound_bytes >= ws.max_message_bytes",
            );
        }
        if self.ws.heartbeat_timeout_secs == 0
            || self.ws.frames_per_second == 0
            || self.session_ttl_secs == 0
            || self.ws.max_unanswered_sends == 0
            || self.ws.send_answer_timeout_secs == 0
        {
            return invalid(
                "ws.heartbeat_timeout_secs, ws.frames_per_second, ws.max_unanswered_sends, \
                 ws.send_answer_timeout_secs and session_ttl_secs must be positive",
            );
        }
        if let Some(problem) = self.tracing.problem() {
            return Err(ConfigError::Invalid(problem));
        }
        Ok(())
    }

    /// The number of worker cores to start.
    pub fn core_count(&self) -> usize {
        if self.cores > 0 {
            self.cores
        } else {
            std::thread::available_parallelism()
                .map(usize::from)
                .unwrap_or(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn secrets_and_keys_are_checked() {
        let secret = (
            "GOCHAT_EDGE_AUTH__JWT_SECRET",
            "0123456789abcdef0123456789abcdef",
        );
        let config = EdgeConfig::load(
            None,
            env(&[
                secret,
                ("GOCHAT_EDGE_WS__MAX_MESSAGE_BYTES", "4096"),
                ("GOCHAT_DATABASE__URL", "x"),
            ]),
        )
        .expect("valid");
        assert_eq!(config.ws.max_message_bytes, 4096);
        assert!(EdgeConfig::load(None, env(&[("GOCHAT_EDGE_AUTH__JWT_SECRET", "short")])).is_err());
        assert!(EdgeConfig::load(None, env(&[secret, ("GOCHAT_EDGE_WS__BOGUS", "1")])).is_err());
        assert!(EdgeConfig::load(None, env(&[secret, ("GOCHAT_EDGE_GATEWAY_ID", "a/b")])).is_err());
    }
}
