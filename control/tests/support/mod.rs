//! Shared test helpers: where the dev stack is (`deploy/dev-stack up` writes
//! `.dev-stack/env`), fresh databases and namespaces so tests run in parallel.
#![allow(dead_code, missing_docs)]

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

/// A setting from the environment, else from `.dev-stack/env` at the workspace root.
pub fn stack_setting(name: &str) -> Result<String> {
    if let Ok(v) = std::env::var(name) {
        return Ok(v);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = std::env::var("GOCHAT_STACK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join(".dev-stack"));
    let text = std::fs::read_to_string(dir.join("env")).with_context(|| {
        format!(
            "{name} is not set and {} has no env file: run deploy/dev-stack up",
            dir.display()
        )
    })?;
    for line in text.lines() {
        if let Some((k, v)) = line.split_once('=')
            && k == name
        {
            return Ok(v.to_owned());
        }
    }
    bail!("{name} missing from the dev-stack env file")
}

/// A unique name for this test's database, topics and keys.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

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

use gochat_control::config::{AuthConfig, ControlConfig, KafkaConfig, RedisConfig};
use gochat_control::{ControlListeners, Running, start};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// Which engines a test server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite, in-process state and log (standalone's engines).
    Embedded,
    /// MariaDB, Redis and the Kafka-protocol broker of the dev stack.
    Real,
}

/// A control process on port 0, stopped when dropped.
pub struct TestServer {
    pub base: String,
    pub http: reqwest::Client,
    pub running: Option<Running>,
    pub config: ControlConfig,
    shutdown: CancellationToken,
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
    config.logic.media_dir = std::env::temp_dir().join(unique("gochat-media-"));
    match backend {
        Backend::Embedded => config.database.url = fresh_sqlite(),
        Backend::Real => {
            config.database.url = fresh_mysql().await?;
            config.redis = Some(RedisConfig {
                url: redis_url()?,
                key_prefix: unique("t") + ":",
            });
            config.kafka = Some(KafkaConfig {
                brokers: kafka_brokers()?,
                topic_prefix: unique("t") + "-",
                create_topics: true,
                idempotence: true,
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
        base,
        http: reqwest::Client::new(),
        running: Some(running),
        config,
        shutdown,
    })
}

/// A registered and logged-in user.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: String,
    pub token: String,
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    /// Registers `name` (password "password123") and logs in.
    pub async fn user(&self, name: &str) -> Result<TestUser> {
        let r = self
            .http
            .post(self.url("/auth/register"))
            .json(&json!({"username": name, "password": "password123"}))
            .send()
            .await?;
        anyhow::ensure!(r.status() == 201, "register {name}: {}", r.status());
        let r: Value = self
            .http
            .post(self.url("/auth/login"))
            .json(&json!({"username": name, "password": "password123"}))
            .send()
            .await?
            .json()
            .await?;
        Ok(TestUser {
            id: r["user_id"].as_str().context("user_id")?.to_owned(),
            token: r["token"].as_str().context("token")?.to_owned(),
        })
    }

    pub async fn get(&self, user: &TestUser, path: &str) -> Result<(u16, Value)> {
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(&user.token)
            .send()
            .await?;
        let status = r.status().as_u16();
        Ok((status, r.json().await.unwrap_or(Value::Null)))
    }

    pub async fn post(&self, user: &TestUser, path: &str, body: Value) -> Result<(u16, Value)> {
        let r = self
            .http
            .post(self.url(path))
            .bearer_auth(&user.token)
            .json(&body)
            .send()
            .await?;
        let status = r.status().as_u16();
        Ok((status, r.json().await.unwrap_or(Value::Null)))
    }

    /// `POST /messages` from `user`.
    pub async fn send(&self, user: &TestUser, body: Value) -> Result<(u16, Value)> {
        self.post(user, "/messages", body).await
    }
}
