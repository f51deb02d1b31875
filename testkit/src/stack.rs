//! Where the dev stack and a local cluster are: `deploy/dev-stack up` and
//! `deploy/cluster-up` write `KEY=value` env files; a variable of the same
//! name in the environment wins, so CI or a developer can point elsewhere.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The `KEY=value` lines of an env file.
pub fn read_env_file(path: &Path) -> Result<HashMap<String, String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(text
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect())
}

/// The dev stack's directory: `GOCHAT_STACK_DIR`, else `.dev-stack` at the
/// workspace root.
pub fn stack_dir() -> PathBuf {
    std::env::var("GOCHAT_STACK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.dev-stack"))
}

/// A dev-stack setting (e.g. `GOCHAT_TEST_MYSQL_URL`): the environment's,
/// else the stack's env file's.
pub fn stack_setting(name: &str) -> Result<String> {
    if let Ok(v) = std::env::var(name) {
        return Ok(v);
    }
    let file = stack_dir().join("env");
    let settings = read_env_file(&file).with_context(|| {
        format!("{name} is not set and the dev stack has no env file: run deploy/dev-stack up")
    })?;
    settings
        .get(name)
        .cloned()
        .with_context(|| format!("{name} missing from {}", file.display()))
}

/// A unique name for one test's database, topics and keys, so tests on one
/// dev stack run in parallel without seeing each other.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

/// The Kafka-protocol broker the dev stack installed (nisshi, or tansu it
/// was forked from), for tests that start a broker of their own.
pub fn broker_binary() -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(Path::new(&home).join(".cargo/bin"));
    }
    ["nisshi", "tansu"]
        .iter()
        .flat_map(|name| dirs.iter().map(move |dir| dir.join(name)))
        .find(|candidate| candidate.is_file())
        .context("no nisshi broker: run deploy/dev-stack up")
}
