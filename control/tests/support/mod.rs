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
