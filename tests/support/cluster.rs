//! The local cluster (`deploy/cluster-up`) as a test fixture: its own
//! directory, namespace and processes, stopped when dropped.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};
use gochat_testkit::stack::read_env_file;

use super::{Rest, Target};

/// A cluster in its own directory and namespace, stopped when dropped.
pub struct Cluster {
    pub dir: PathBuf,
    pub target: Target,
    /// REST URLs of the extra logic-only processes (`GOCHAT_CLUSTER_LOGICS`).
    pub logics: Vec<String>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(script("cluster-down"))
            .env("GOCHAT_CLUSTER_DIR", &self.dir)
            .status();
    }
}

pub fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(name)
}

pub async fn cluster() -> Result<Cluster> {
    cluster_with(&[]).await
}

/// A cluster with more `cluster-up` settings (`GOCHAT_CLUSTER_*`).
pub async fn cluster_with(settings: &[(&str, &str)]) -> Result<Cluster> {
    let settings: Vec<(String, String)> = settings
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    // cluster-up picks its ports before its servers bind them; in the rare
    // case a parallel test took one in between, a fresh start picks anew.
    let mut attempts = 3;
    let dir = loop {
        attempts -= 1;
        let dir =
            std::env::temp_dir().join(format!("gochat-cluster-{}", uuid::Uuid::new_v4().simple()));
        let up = cluster_up(&dir, settings.clone()).await?;
        if up.status.success() {
            break dir;
        }
        let stderr = String::from_utf8_lossy(&up.stderr);
        if attempts == 0 || !stderr.contains("Address already in use") {
            bail!("cluster-up failed: {stderr}");
        }
        let _ = Command::new(script("cluster-down"))
            .env("GOCHAT_CLUSTER_DIR", &dir)
            .status();
    };
    let env = read_env_file(&dir.join("env")).context("cluster env")?;
    let value = |key: &str| {
        env.get(key)
            .cloned()
            .with_context(|| format!("{key} missing"))
    };
    let target = Target {
        rest: Rest::new(value("HTTP")?),
        ws: vec![value("WS1")?, value("WS2")?],
        secret: value("SECRET")?,
        tls: None,
    };
    let logics = value("LOGICS")?
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    Ok(Cluster {
        dir,
        target,
        logics,
    })
}

impl Cluster {
    /// The pid of a process cluster-up started (`control`, `edge1`, `edge2`).
    pub fn pid(&self, name: &str) -> Result<i32> {
        let pids = std::fs::read_to_string(self.dir.join("pids"))?;
        pids.lines()
            .find_map(|l| l.strip_suffix(&format!(" {name}")))
            .context("no such process")?
            .parse()
            .context("pid")
    }
}

async fn cluster_up(
    dir: &std::path::Path,
    settings: Vec<(String, String)>,
) -> Result<std::process::Output> {
    let dir = dir.to_owned();
    Ok(tokio::task::spawn_blocking(move || {
        Command::new(script("cluster-up"))
            .envs(settings)
            .env("GOCHAT_CLUSTER_DIR", &dir)
            .env("GOCHAT_BIN", env!("CARGO_BIN_EXE_gochat"))
            // Groups of 4 or more use the group rooms, smaller ones the
            // per-connection path: the scenarios cover both.
            .env("GOCHAT_CLUSTER_CONTROL__LOGIC__LARGE_GROUP_THRESHOLD", "4")
            // Cheap password hashing: the large-group test registers
            // 2,000 users (the hash's cost is not under test here).
            .env("GOCHAT_CLUSTER_CONTROL__AUTH__ARGON2_MEMORY_KIB", "1024")
            .env("GOCHAT_CLUSTER_CONTROL__AUTH__ARGON2_ITERATIONS", "1")
            // One cluster serves every scenario's users, all from
            // 127.0.0.1: more than a minute's worth per address.
            .env(
                "GOCHAT_CLUSTER_CONTROL__LIMITS__REGISTRATIONS_PER_ADDRESS_PER_MINUTE",
                "0",
            )
            .env(
                "GOCHAT_CLUSTER_CONTROL__LIMITS__LOGINS_PER_ADDRESS_PER_MINUTE",
                "0",
            )
            .output()
    })
    .await??)
}
