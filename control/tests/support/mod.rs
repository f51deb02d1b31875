//! The control plane's test harness: a control process on port 0 on the
//! embedded engines or on the dev stack, with fresh databases and namespaces
//! so tests run in parallel. The REST client and the dev-stack reader come
//! from the shared test kit.
#![allow(dead_code, missing_docs, unused_macros)]

use std::ops::Deref;

use anyhow::{Context, Result};
pub use gochat_testkit::rest::Rest;
/// A registered, logged-in user of a test server.
pub type TestUser = gochat_testkit::rest::User;
pub use gochat_testkit::stack::{stack_setting, unique};

/// A new, empty MariaDB database; returns its URL.
pub async fn fresh_mysql() -> Result<String> {
    let base = stack_setting("GOCHAT_TEST_MYSQL_URL")?;
    let name = unique("gochat_t_");
    use sqlx::Connection;
    let mut conn = sqlx::MySqlConnection::connect(&base)
        .await
        .context("connect to MariaDB")?;
    sqlx::Executor::execute(
        &mut conn,
        format!("CREATE DATABASE {name} CHARACTER SET utf8mb4").as_str(),
    )
    .await?;
    Ok(format!("{}/{name}", base.trim_end_matches('/')))
}

/// A new SQLite file in a temp dir; returns its URL (the dir lives as long as the process).
pub fn fresh_sqlite() -> String {
    let dir = std::env::temp_dir().join(unique("gochat-test-"));
    let _ = std::fs::create_dir_all(&dir);
    format!("sqlite://{}", dir.join("gochat.db").display())
}

pub fn redis_url() -> Result<String> {
    stack_setting("GOCHAT_TEST_REDIS_URL")
}

pub fn kafka_brokers() -> Result<String> {
    stack_setting("GOCHAT_TEST_KAFKA_BROKERS")
}

use gochat_control::config::{AuthConfig, ControlConfig, KafkaConfig, LimitsConfig, RedisConfig};
use gochat_control::{ControlListeners, Running, start};
use tokio_util::sync::CancellationToken;

/// Runs each named scenario `fn(TestServer) -> Result<()>` as two tests, on
/// the embedded engines (`embedded::name`) and on the dev stack (`real::name`).
macro_rules! on_both {
    ($($name:ident),*) => {
        mod embedded {
            use super::*;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() -> Result<()> { super::$name(start_server(Backend::Embedded).await?).await })*
        }
        mod real {
            use super::*;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() -> Result<()> { super::$name(start_server(Backend::Real).await?).await })*
        }
    };
}

/// The 1:1 conversation id of two users given as decimal strings.
pub fn cid(a: &str, b: &str) -> String {
    gochat_proto::ids::single_conversation_id(
        gochat_proto::ids::Id(a.parse().unwrap_or(0)),
        gochat_proto::ids::Id(b.parse().unwrap_or(0)),
    )
}

/// Which engines a test server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite, in-process state and log (standalone's engines).
    Embedded,
    /// MariaDB, Redis and the Kafka-protocol broker of the dev stack.
    Real,
}

/// A control process on port 0, stopped when dropped; its REST API through
/// [`Rest`] (`s.user(..)`, `s.get(..)`, `s.post(..)`, `s.base`, `s.http`).
pub struct TestServer {
    pub rest: Rest,
    pub running: Option<Running>,
    pub config: ControlConfig,
    shutdown: CancellationToken,
}

impl Deref for TestServer {
    type Target = Rest;
    fn deref(&self) -> &Rest {
        &self.rest
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub const SECRET: &str = "test-secret-test-secret-test-secret-0123";

/// A config for `backend` with fresh databases and namespaces.
pub async fn test_config(backend: Backend) -> Result<ControlConfig> {
    let mut config = ControlConfig {
        auth: AuthConfig {
            jwt_secret: SECRET.into(),
            argon2_memory_kib: 1024,
            argon2_iterations: 1,
            admin_usernames: vec!["admin".into()],
            ..AuthConfig::default()
        },
        ..ControlConfig::default()
    };
    config.logic.sends_per_second = 100_000;
    // Tests make users and calls faster than any person: the abuse limits
    // are off here and tested on their own (tests/abuse.rs).
    config.limits = LimitsConfig {
        login_failures_per_username: 0,
        logins_per_address_per_minute: 0,
        registrations_per_address_per_minute: 0,
        rest_per_user_per_second: 0,
        ..LimitsConfig::default()
    };
    config.logic.media_dir = std::env::temp_dir().join(unique("gochat-media-"));
    match backend {
        Backend::Embedded => config.database.url = fresh_sqlite(),
        Backend::Real => {
            config.database.url = fresh_mysql().await?;
            config.redis = Some(RedisConfig {
                key_prefix: unique("t") + ":",
                ..RedisConfig::at(redis_url()?)
            });
            config.kafka = Some(KafkaConfig {
                brokers: kafka_brokers()?,
                topic_prefix: unique("t") + "-",
                create_topics: true,
                idempotence: true,
                tls: None,
            });
        }
    }
    Ok(config)
}

/// Starts a control process with all services on port 0.
pub async fn start_server(backend: Backend) -> Result<TestServer> {
    start_with(test_config(backend).await?).await
}

/// Starts a control process from `config` on port 0.
pub async fn start_with(config: ControlConfig) -> Result<TestServer> {
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let shutdown = CancellationToken::new();
    let running = start(
        config.clone(),
        ControlListeners {
            http: Some(http),
            grpc: Some(grpc),
        },
        shutdown.clone(),
    )
    .await?;
    let base = format!("http://{}", running.http_addr.context("http address")?);
    Ok(TestServer {
        rest: Rest::new(base),
        running: Some(running),
        config,
        shutdown,
    })
}
