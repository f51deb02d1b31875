//! The end-to-end scenarios against the local cluster (`deploy/cluster-up`):
//! MariaDB, Redis and the broker, one `gochat control`, two `gochat edge`
//! gateways as separate processes. Users on gateway 0 and gateway 1 talk
//! across Kafka.

mod scenarios;
mod support;

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};
use support::Target;

/// A cluster in its own directory and namespace, stopped when dropped.
struct Cluster {
    dir: PathBuf,
    target: Target,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(script("cluster-down"))
            .env("GOCHAT_CLUSTER_DIR", &self.dir)
            .status();
    }
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(name)
}

async fn cluster() -> Result<Cluster> {
    let dir =
        std::env::temp_dir().join(format!("gochat-cluster-{}", uuid::Uuid::new_v4().simple()));
    let up = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || {
            Command::new(script("cluster-up"))
                .env("GOCHAT_CLUSTER_DIR", &dir)
                .env("GOCHAT_BIN", env!("CARGO_BIN_EXE_gochat"))
                .output()
        })
        .await??
    };
    if !up.status.success() {
        bail!("cluster-up failed: {}", String::from_utf8_lossy(&up.stderr));
    }
    let text = std::fs::read_to_string(dir.join("env")).context("cluster env")?;
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(str::to_owned)
            .with_context(|| format!("{key} missing"))
    };
    let target = Target {
        http: value("HTTP")?,
        ws: vec![value("WS1")?, value("WS2")?],
        secret: value("SECRET")?,
        client: reqwest::Client::new(),
    };
    Ok(Cluster { dir, target })
}

macro_rules! scenario {
    ($($name:ident),*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() -> Result<()> {
            let cluster = cluster().await?;
            scenarios::$name(&cluster.target).await
        }
    )*};
}

scenario!(
    one_to_one_send_ack_deliver,
    resend_is_deduplicated,
    offline_then_pull,
    concurrent_senders_get_gap_free_seq,
    group_send_reaches_members_on_both_gateways,
    refused_upgrades,
    bad_frames_leave_others_untouched,
    second_login_of_a_device_kicks_the_first
);
