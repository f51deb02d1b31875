//! The control process's one typed config: a TOML file, then `GOCHAT_*`
//! environment overrides (`GOCHAT_SECTION__KEY=value`, e.g.
//! `GOCHAT_DATABASE__URL`), unknown keys refused, validated before anything binds.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

mod http;
mod task;
pub use http::{HttpConfig, TlsConfig};
pub use task::{ApnsConfig, FcmConfig, TaskConfig};

/// Why a config was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or an override could not be read.
    #[error(transparent)]
    Read(#[from] gochat_proto::settings::SettingsError),
    /// The TOML or an override does not fit the schema.
    #[error("invalid config: {0}")]
    Parse(String),
    /// The values are inconsistent or unsafe.
    #[error("invalid config: {0}")]
    Invalid(String),
}

/// A control-plane service.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Deserialize,
    Serialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    /// REST API and the message pipeline.
    Logic,
    /// SQL owner.
    Repo,
    /// Offline push, large-group fan-out.
    Task,
}

impl std::str::FromStr for Service {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "logic" => Ok(Service::Logic),
            "repo" => Ok(Service::Repo),
            "task" => Ok(Service::Task),
            other => Err(ConfigError::Invalid(format!(
                "unknown service {other:?} (logic, repo, task)"
            ))),
        }
    }
}

/// Parses `logic,repo,task`.
pub fn parse_services(list: &str) -> Result<BTreeSet<Service>, ConfigError> {
    list.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(str::parse)
        .collect()
}

/// The whole control-process config.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ControlConfig {
    /// Services hosted by this process.
    pub services: BTreeSet<Service>,
    /// Snowflake node id (0..1023), unique per logic process.
    pub node_id: u16,
    /// Added to `node_id`, so processes numbered alike in different roles
    /// never share an id: e.g. `node_id` from a StatefulSet's pod index,
    /// offset 0 for logic pods and 512 for task pods.
    pub node_id_offset: u16,
    /// Listeners.
    pub http: HttpConfig,
    /// gRPC listener and peers.
    pub grpc: GrpcConfig,
    /// SQL.
    pub database: DatabaseConfig,
    /// Redis (absent: in-process state, single process only).
    pub redis: Option<RedisConfig>,
    /// Kafka (absent: in-process log, single process only).
    pub kafka: Option<KafkaConfig>,
    /// Tokens and passwords.
    pub auth: AuthConfig,
    /// Business rules and limits.
    pub logic: LogicConfig,
    /// Task service.
    pub task: TaskConfig,
    /// Abuse limits of the REST API.
    pub limits: LimitsConfig,
    /// What uploads are taken.
    pub uploads: UploadsConfig,
    /// Traces (logic's span per traced send, repo's per traced call) and
    /// the log format.
    pub tracing: gochat_proto::trace::TracingConfig,
}

impl Default for ControlConfig {
    fn default() -> Self {
        Self {
            services: [Service::Logic, Service::Repo, Service::Task]
                .into_iter()
                .collect(),
            node_id: 1,
            node_id_offset: 0,
            http: HttpConfig::default(),
            grpc: GrpcConfig::default(),
            database: DatabaseConfig::default(),
            redis: None,
            kafka: None,
            auth: AuthConfig::default(),
            logic: LogicConfig::default(),
            task: TaskConfig::default(),
            limits: LimitsConfig::default(),
            uploads: UploadsConfig::default(),
            tracing: Default::default(),
        }
    }
}

/// Uploads (`POST /uploads`).
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct UploadsConfig {
    /// Content types taken (as the file name's extension says, without
    /// parameters); anything else gets 415 `unsupported_type`.
    pub allowed_types: Vec<String>,
    /// How long a signed `/media/` link works (seconds); links served in
    /// profiles and history are signed afresh each time.
    pub url_lifetime_secs: u64,
}

impl Default for UploadsConfig {
    fn default() -> Self {
        let types = [
            "image/png",
            "image/jpeg",
            "image/gif",
            "image/webp",
            "audio/mpeg",
            "audio/ogg",
            "audio/wav",
            "audio/mp4",
            "video/mp4",
            "video/webm",
            "video/quicktime",
            "application/pdf",
            "text/plain",
            "text/csv",
            "text/markdown",
            "application/zip",
            "application/gzip",
            "application/x-tar",
            "application/x-7z-compressed",
        ];
        Self {
            allowed_types: types.into_iter().map(String::from).collect(),
            url_lifetime_secs: 30 * 24 * 3600,
        }
    }
}

/// How often a client may knock (PROTOCOL v1.1 "Abuse limits"); 0 turns a
/// limit off. Counted per process: behind several logic processes a client
/// gets that many per process.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Failed logins of one username per `login_failure_window_secs`;
    /// past it the username's logins get 429 until the window allows one.
    pub login_failures_per_username: u32,
    /// The window of `login_failures_per_username`.
    pub login_failure_window_secs: u64,
    /// Logins from one client address per minute.
    pub logins_per_address_per_minute: u32,
    /// Registrations from one client address per minute.
    pub registrations_per_address_per_minute: u32,
    /// Every authenticated REST call of one user: a steady rate per second…
    pub rest_per_user_per_second: u32,
    /// …and the burst above it.
    pub rest_burst: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            login_failures_per_username: 10,
            login_failure_window_secs: 300,
            logins_per_address_per_minute: 60,
            registrations_per_address_per_minute: 60,
            rest_per_user_per_second: 20,
            rest_burst: 100,
        }
    }
}

/// gRPC.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcConfig {
    /// Listen address of this process's gRPC services.
    pub addr: SocketAddr,
    /// The repo service, when it is not in this process: `http://host:port`,
    /// or several, comma-separated. Each host is resolved to all its
    /// addresses (a Kubernetes headless Service: every ready repo pod) every
    /// 10 s, and calls are balanced over them.
    pub repo_endpoint: Option<String>,
}

impl Default for GrpcConfig {
    fn default() -> Self {
        Self {
            addr: ([127, 0, 0, 1], 9002).into(),
            repo_endpoint: None,
        }
    }
}

/// SQL.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `mysql://user:pass@host:port/db` or `sqlite://path`. TLS to MySQL
    /// or MariaDB is set in the URL: `?ssl-mode=VERIFY_IDENTITY` (or
    /// `REQUIRED`, `VERIFY_CA`; the default `PREFERRED` encrypts when the
    /// server offers it, unverified), `&ssl-ca=/path/ca.pem` to trust a
    /// private CA, `&ssl-cert=…&ssl-key=…` for a client certificate.
    pub url: String,
    /// Pool size (MySQL).
    pub max_connections: u32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://data/gochat.db".into(),
            max_connections: 32,
        }
    }
}

pub use gochat_proto::settings::{KafkaConfig, RedisConfig};

/// Tokens and passwords.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// HS256 secret, at least 32 bytes.
    pub jwt_secret: String,
    /// Token lifetime.
    pub token_ttl_secs: u64,
    /// Argon2id memory cost in KiB (OWASP minimum 19456).
    pub argon2_memory_kib: u32,
    /// Argon2id iterations.
    pub argon2_iterations: u32,
    /// Password hashes computed at once (0: one per CPU). Each holds
    /// `argon2_memory_kib` while it runs; logins and registrations beyond
    /// this wait their turn (a few seconds at most, then 429), so a flood of
    /// logins costs bounded memory.
    pub max_concurrent_hashes: usize,
    /// Usernames allowed to call `/admin/*`: safe only with
    /// `admin_password_file`, which makes the accounts before anyone can
    /// register those names (see `server/admins.rs`).
    pub admin_usernames: Vec<String>,
    /// User ids allowed to call `/admin/*` (cannot be taken by registering).
    pub admin_user_ids: Vec<i64>,
    /// Where the generated passwords of the `admin_usernames` accounts made
    /// at start are written (owner-only); unset: no accounts are made.
    pub admin_password_file: Option<PathBuf>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            jwt_secret: String::new(),
            token_ttl_secs: 7 * 24 * 3600,
            argon2_memory_kib: 19 * 1024,
            argon2_iterations: 2,
            max_concurrent_hashes: 0,
            admin_usernames: Vec::new(),
            admin_user_ids: Vec::new(),
            admin_password_file: None,
        }
    }
}

/// Business rules and limits.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LogicConfig {
    /// 1:1 chat only between friends.
    pub require_friendship: bool,
    /// Groups from this size on go through the edge's group rooms (one
    /// record per gateway core, no member list per message) and push only
    /// to mentioned members (docs/design.md §7).
    pub large_group_threshold: usize,
    /// Largest message content.
    pub max_content_bytes: usize,
    /// Sends per user per second.
    pub sends_per_second: u32,
    /// How long after sending a text message its sender may edit it
    /// (PROTOCOL.md's `messages.edit_window_s`).
    pub edit_window_s: u64,
    /// How long after sending a message its sender may recall it (a group's
    /// owner and admins may recall their members' messages at any time).
    pub recall_window_s: u64,
    /// Read receipts name their readers only in groups up to this size
    /// (PROTOCOL.md's `groups.receipt_list_max`); larger ones get the count.
    pub receipt_list_max: usize,
    /// `@all` offline-push fan-outs per large group per minute; beyond it an
    /// `@all` message is still delivered to everyone online, but pushes only
    /// to the members it names (0: `@all` never pushes in a large group).
    pub mention_all_per_minute: u32,
    /// Where uploads are stored (served at `/media/`).
    pub media_dir: PathBuf,
    /// Upstream records handled at once: the most one batch (one group
    /// commit) takes; a batch is whatever the log has ready, up to this.
    pub consume_in_flight: usize,
    /// Sends held by the send queue (waiting or being committed) from which
    /// on a REST or gRPC send is refused with 503 `overloaded` rather than
    /// queued (admission control; docs/design.md).
    pub max_waiting_sends: usize,
}

impl Default for LogicConfig {
    fn default() -> Self {
        Self {
            require_friendship: false,
            large_group_threshold: 500,
            max_content_bytes: 16 * 1024,
            sends_per_second: 20,
            edit_window_s: 86_400,
            recall_window_s: 120,
            receipt_list_max: 500,
            mention_all_per_minute: 1,
            media_dir: PathBuf::from("data/media"),
            consume_in_flight: 128,
            max_waiting_sends: 1024,
        }
    }
}

impl ControlConfig {
    /// The variables that override a control config: `GOCHAT_SECTION__KEY`,
    /// and `GOCHAT_SERVICES` / `GOCHAT_NODE_ID`. The gateway's variables
    /// share the prefix; nothing else needs naming here (see
    /// gochat_proto::settings for why the rule cannot break).
    pub const ENV: gochat_proto::settings::EnvRule<'static> = gochat_proto::settings::EnvRule {
        prefix: "GOCHAT_",
        top_level: &["services", "node_id", "node_id_offset"],
        others: &["GOCHAT_EDGE_"],
    };

    /// Reads a TOML file (optional) and applies `GOCHAT_*` overrides from `env`.
    pub fn load(
        path: Option<&std::path::Path>,
        env: impl Iterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        Self::from_table(gochat_proto::settings::load(path, &Self::ENV, env)?)
    }

    /// The config a table (a file with its overrides) describes, validated.
    pub fn from_table(mut table: toml::Table) -> Result<Self, ConfigError> {
        // `services` may be given as a comma list (GOCHAT_SERVICES=logic,task).
        if let Some(toml::Value::String(list)) = table.get("services") {
            let items = list
                .split(',')
                .map(|p| toml::Value::String(p.trim().into()))
                .collect();
            table.insert("services".into(), toml::Value::Array(items));
        }
        let config: Self = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Parse(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// The message-id node of this process: `node_id + node_id_offset`.
    pub fn snowflake_node(&self) -> u32 {
        u32::from(self.node_id) + u32::from(self.node_id_offset)
    }

    /// Checks everything that can be checked before binding.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if self.services.is_empty() {
            return invalid("no services selected (logic, repo, task)".into());
        }
        if let Some(problem) = self.tracing.problem() {
            return invalid(problem);
        }
        if self.snowflake_node() > 1023 {
            return invalid(format!(
                "node_id {} + node_id_offset {} is above 1023",
                self.node_id, self.node_id_offset
            ));
        }
        if self.services.contains(&Service::Logic) && self.auth.jwt_secret.len() < 32 {
            return invalid(format!(
                "auth.jwt_secret is {} bytes; at least 32 are required (set GOCHAT_AUTH__JWT_SECRET)",
                self.auth.jwt_secret.len()
            ));
        }
        if self.http.max_connections == 0 || self.http.header_read_timeout_secs == 0 {
            return invalid(
                "http.max_connections and http.header_read_timeout_secs must be positive".into(),
            );
        }
        let needs_repo =
            self.services.contains(&Service::Logic) || self.services.contains(&Service::Task);
        if needs_repo
            && !self.services.contains(&Service::Repo)
            && self.grpc.repo_endpoint.is_none()
        {
            return invalid("logic/task without a local repo need grpc.repo_endpoint".into());
        }
        let split = self.services.len() < 3;
        if split && (self.redis.is_none() || self.kafka.is_none()) && needs_repo {
            return invalid("services split across processes need [redis] and [kafka]".into());
        }
        if let Err(e) = crate::repo::sql::Dialect::of_url(&self.database.url)
            && self.services.contains(&Service::Repo)
        {
            return invalid(e.to_string());
        }
        if self.logic.max_waiting_sends == 0 {
            return invalid("logic.max_waiting_sends must be at least 1".into());
        }
        if self.logic.consume_in_flight == 0 || self.task.consume_in_flight == 0 {
            return invalid("consume_in_flight must be at least 1".into());
        }
        if self.logic.sends_per_second == 0 || self.logic.max_content_bytes == 0 {
            return invalid(
                "logic.sends_per_second and logic.max_content_bytes must be positive".into(),
            );
        }
        if self.task.max_attempts == 0 {
            return invalid("task.max_attempts must be at least 1".into());
        }
        Ok(())
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

    const SECRET: (&str, &str) = (
        "GOCHAT_AUTH__JWT_SECRET",
        "0123456789abcdef0123456789abcdef",
    );

    #[test]
    fn env_overrides_apply() {
        let config = ControlConfig::load(
            None,
            env(&[
                SECRET,
                ("GOCHAT_DATABASE__URL", "sqlite://x.db"),
                ("GOCHAT_LOGIC__SENDS_PER_SECOND", "5"),
                ("GOCHAT_TEST_MYSQL_URL", "ignored"),
            ]),
        )
        .expect("valid");
        assert_eq!(config.database.url, "sqlite://x.db");
        assert_eq!(config.logic.sends_per_second, 5);
    }

    #[test]
    fn the_node_id_offset_adds_up_to_at_most_1023() {
        let node = |id: &str, offset: &str| {
            ControlConfig::load(
                None,
                env(&[
                    SECRET,
                    ("GOCHAT_NODE_ID", id),
                    ("GOCHAT_NODE_ID_OFFSET", offset),
                ]),
            )
            .map(|c| c.snowflake_node())
        };
        assert_eq!(node("3", "512").ok(), Some(515));
        assert!(node("600", "512").is_err());
    }

    #[test]
    fn short_secrets_are_refused() {
        let err = ControlConfig::load(None, env(&[("GOCHAT_AUTH__JWT_SECRET", "short")]))
            .expect_err("weak");
        assert!(err.to_string().contains("at least 32"), "{err}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(ControlConfig::load(None, env(&[SECRET, ("GOCHAT_DATABASE__URLL", "x")])).is_err());
        assert!(ControlConfig::load(None, env(&[SECRET, ("GOCHAT_BOGUS__KEY", "1")])).is_err());
    }

    #[test]
    fn the_scripts_variables_never_stop_a_start() {
        let scripts = [
            ("GOCHAT_AUTOBAHN_DIR", "/tmp/a"),
            ("GOCHAT_STACK_DIR", "/tmp/s"),
            ("GOCHAT_BIN", "/tmp/gochat"),
            ("GOCHAT_EDGE_KAFKA__BROKERS", "127.0.0.1:9092"),
        ];
        let env_vars = std::iter::once(SECRET).chain(scripts);
        let config = ControlConfig::load(None, env(&env_vars.collect::<Vec<_>>()));
        assert!(config.is_ok(), "{:?}", config.err());
    }

    #[test]
    fn split_services_need_shared_infrastructure() {
        let err = ControlConfig::load(None, env(&[SECRET, ("GOCHAT_SERVICES", "logic")]))
            .expect_err("no repo");
        assert!(err.to_string().contains("repo_endpoint"), "{err}");
        assert_eq!(parse_services("logic, task").ok().map(|s| s.len()), Some(2));
        assert!(parse_services("logic,gateway").is_err());
    }
}
