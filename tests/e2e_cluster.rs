//! The end-to-end scenarios against the local cluster (`deploy/cluster-up`):
//! MariaDB, Redis and the broker, one `gochat control`, two `gochat edge`
//! gateways as separate processes. Users on gateway 0 and gateway 1 talk
//! across Kafka.

#[macro_use]
mod scenarios;
mod support;

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};
use gochat_testkit::stack::read_env_file;
use serde_json::json;
use support::{Ended, Rest, Target};

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
                // Groups of 4 or more use the group rooms, smaller ones the
                // per-connection path: the scenarios cover both.
                .env("GOCHAT_CLUSTER_LARGE_GROUP_THRESHOLD", "4")
                .output()
        })
        .await??
    };
    if !up.status.success() {
        bail!("cluster-up failed: {}", String::from_utf8_lossy(&up.stderr));
    }
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

every_scenario!(scenario);

impl Cluster {
    /// The pid of a process cluster-up started (`control`, `edge1`, `edge2`).
    fn pid(&self, name: &str) -> Result<i32> {
        let pids = std::fs::read_to_string(self.dir.join("pids"))?;
        pids.lines()
            .find_map(|l| l.strip_suffix(&format!(" {name}")))
            .context("no such process")?
            .parse()
            .context("pid")
    }
}

/// SIGTERM on a gateway process: its connections get 1013 with a reconnect
/// hint, its sessions are deregistered (a message to the drained user is then
/// stored for a pull, not pushed into the void), the process exits cleanly,
/// and every message it acked is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_a_gateway_and_loses_no_acked_message() -> Result<()> {
    let cluster = cluster().await?;
    let target = &cluster.target;
    let alice = target.user("alice").await?;
    let bob = target.user("bob").await?;
    let mut a = target.connect(&alice, 0).await?;
    let mut b = target.connect(&bob, 1).await?;
    for i in 0..40 {
        a.send(json!({"type":"send","client_msg_id":format!("t{i}"),"to_user_id":bob.id,"content":format!("n{i}")})).await?;
    }
    let mut acked = vec![a.next_of("ack").await?];
    let edge = cluster.pid("edge1")?;
    let status = Command::new("kill")
        .args(["-TERM", &edge.to_string()])
        .status()?;
    assert!(status.success(), "kill -TERM {edge}");
    let (rest, ended) = a.rest().await?;
    acked.extend(rest.into_iter().filter(|f| f["type"] == "ack"));
    assert_eq!(
        ended,
        Ended::Closed(1013),
        "a draining gateway asks to reconnect"
    );
    // The process finishes its drain and exits by itself.
    let mut exited = false;
    for _ in 0..100 {
        if Command::new("kill")
            .args(["-0", &edge.to_string()])
            .status()?
            .success()
        {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        } else {
            exited = true;
            break;
        }
    }
    assert!(exited, "edge1 still running 10 s after SIGTERM");

    target.assert_acked_stored(&bob, &acked).await?;
    // Alice's session is gone: bob's reply is acked and waits for her pull.
    b.send(json!({"type":"send","client_msg_id":"reply","to_user_id":alice.id,"content":"back?"}))
        .await?;
    let reply = b.next_of("ack").await?;
    let cid = reply["conversation_id"].as_str().context("cid")?;
    let waiting = target.pull_all(&alice, cid).await?;
    assert!(
        waiting
            .iter()
            .any(|m| m["message_id"] == reply["message_id"])
    );
    Ok(())
}
