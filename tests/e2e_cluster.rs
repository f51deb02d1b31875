//! The end-to-end scenarios against the local cluster (`deploy/cluster-up`):
//! MariaDB, Redis and the broker, one `gochat control`, two `gochat edge`
//! gateways as separate processes. Users on gateway 0 and gateway 1 talk
//! across Kafka.

#[macro_use]
mod scenarios;
mod support;

use std::process::Command;

use anyhow::{Context, Result};
use gochat_testkit::stack::read_env_file;
use serde_json::json;
use support::cluster::{cluster, cluster_with, script};
use support::{Ended, Scrape};

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

/// Cluster only: the point is members on two real gateways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_group_delivers_exactly_once_in_order() -> Result<()> {
    let cluster = cluster().await?;
    scenarios::large_group_delivers_exactly_once_in_order(&cluster.target).await
}

/// How many upstream records a control process's logic consumer handled.
async fn upstream_records_handled(base: &str) -> Result<f64> {
    let text = reqwest::get(format!("{base}/metrics"))
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .find(|l| l.starts_with("gochat_consume_batch_records_count{what=\"upstream\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0))
}

/// Two logic processes share the upstream (its partitions split between
/// them, keyed by sender), nine members of one group send at once from both
/// gateways, in rounds until both processes have handled sends: every send
/// gets its own seq and the group's timeline is gap-free. (Order across the
/// two is kept by the seq allocator — one Redis script per batch over the
/// durable high-water mark — and `UNIQUE (conversation_id, seq_id)`; pushes
/// from the two may interleave, and clients order by seq.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_logic_processes_keep_seq_gap_free() -> Result<()> {
    let cluster = cluster_with(&[("GOCHAT_CLUSTER_LOGICS", "2")]).await?;
    let t = &cluster.target;
    let mut members = Vec::new();
    for i in 0..9 {
        members.push(t.user(&format!("two{i}")).await?);
    }
    let ids: Vec<&str> = members[1..].iter().map(|m| m.id.as_str()).collect();
    let (_, group) = t
        .post(
            &members[0],
            "/groups",
            json!({"name":"two","member_ids":ids}),
        )
        .await?;
    let gid = group["group_id"].as_str().context("gid")?.to_owned();
    let mut clients = Vec::new();
    for (i, m) in members.iter().enumerate() {
        clients.push(t.connect(m, i % 2).await?);
    }
    let bases: Vec<String> = std::iter::once(t.rest.base.clone())
        .chain(cluster.logics.iter().cloned())
        .collect();
    anyhow::ensure!(bases.len() == 2, "two logic processes: {bases:?}");
    let mut seqs = std::collections::BTreeSet::new();
    let mut sent = 0;
    for round in 0..40 {
        let sends = clients.iter_mut().enumerate().map(|(n, c)| {
            let gid = gid.clone();
            async move {
                for i in 0..3 {
                    c.send(json!({"type":"send","client_msg_id":format!("r{round}-{i}"),"group_id":gid,"content":format!("{n}")}))
                        .await?;
                }
                let mut got = Vec::new();
                while got.len() < 3 {
                    let frame = c.next().await?;
                    anyhow::ensure!(frame["type"] != "error", "refused: {frame}");
                    if frame["type"] == "ack" {
                        got.push(frame["seq_id"].as_i64().unwrap_or(-1));
                    }
                }
                anyhow::Ok(got)
            }
        });
        for got in futures::future::try_join_all(sends).await? {
            for s in got {
                assert!(seqs.insert(s), "seq {s} given to two sends");
            }
        }
        sent += clients.len() * 3;
        let mut busy = 0;
        for base in &bases {
            if upstream_records_handled(base).await? > 0.0 {
                busy += 1;
            }
        }
        if busy == 2 && round >= 2 {
            break;
        }
        // Under the per-user send rate.
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    }
    for base in &bases {
        anyhow::ensure!(
            upstream_records_handled(base).await? > 0.0,
            "{base} never handled a send: the partitions were not shared"
        );
    }
    assert_eq!(seqs.len(), sent);
    let stored: Vec<i64> = t
        .pull_all(&members[0], &format!("g{gid}"))
        .await?
        .iter()
        .filter_map(|m| m["seq_id"].as_i64())
        .collect();
    assert_eq!(
        stored,
        (1..=stored.len() as i64).collect::<Vec<_>>(),
        "gap-free"
    );
    assert!(seqs.iter().all(|s| stored.contains(s)));
    Ok(())
}

/// kill -9 of the control process while a stream of sends is being
/// committed, then a restart: the uncommitted upstream records are consumed
/// again; every send ends up acked, stored exactly once, with the seq and id
/// its first ack named, and the conversation's seq is gap-free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_batch_loses_and_duplicates_nothing() -> Result<()> {
    let cluster =
        cluster_with(&[("GOCHAT_CLUSTER_CONTROL__LOGIC__SENDS_PER_SECOND", "100000")]).await?;
    let t = &cluster.target;
    let bob = t.user("bob").await?;
    // 16 senders, 25 sends each at once (under the edge's per-connection
    // frame rate), on both gateways.
    const SENDERS: usize = 16;
    const EACH: usize = 25;
    let mut senders = Vec::new();
    for n in 0..SENDERS {
        let user = t.user(&format!("sender{n}")).await?;
        let client = t.connect(&user, n % 2).await?;
        senders.push((user, client));
    }
    for (_, client) in senders.iter_mut() {
        for i in 0..EACH {
            client
                .send(json!({"type":"send","client_msg_id":format!("k{i}"),"to_user_id":bob.id,"content":format!("n{i}")}))
                .await?;
        }
    }
    let mut acks: Vec<std::collections::HashMap<String, serde_json::Value>> =
        vec![Default::default(); SENDERS];
    let total = |acks: &[std::collections::HashMap<String, serde_json::Value>]| {
        acks.iter().map(|a| a.len()).sum::<usize>()
    };
    // Kill once some sends are acked and the rest are in flight.
    let first = senders[0].1.next_of("ack").await?;
    acks[0].insert(
        first["client_msg_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        first,
    );
    let control = cluster.pid("control")?;
    assert!(
        Command::new("kill")
            .args(["-KILL", &control.to_string()])
            .status()?
            .success()
    );
    let restarted = Command::new(script("cluster-restart"))
        .arg("control")
        .env("GOCHAT_CLUSTER_DIR", &cluster.dir)
        .status()?;
    assert!(restarted.success(), "cluster-restart control");
    // The edges keep the connections; the restarted logic answers the
    // redelivered records on them (a redelivered stored send acks again).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    while total(&acks) < SENDERS * EACH && std::time::Instant::now() < deadline {
        for (n, (_, client)) in senders.iter_mut().enumerate() {
            while acks[n].len() < EACH {
                let Ok(frame) = client.next().await else {
                    break;
                };
                anyhow::ensure!(frame["type"] != "error", "refused: {frame}");
                if frame["type"] != "ack" {
                    continue;
                }
                let cmid = frame["client_msg_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                match acks[n].get(&cmid) {
                    Some(first) => {
                        assert_eq!(first, &frame, "a second ack names the same seq and id")
                    }
                    None => {
                        acks[n].insert(cmid, frame);
                    }
                }
            }
        }
    }
    assert_eq!(
        total(&acks),
        SENDERS * EACH,
        "every send acked after the restart"
    );
    // Every ack may have come before the kill took effect (a fast box), and
    // the restarted process may still be starting: pull once it serves.
    let serving = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !matches!(t.get(&bob, "/conversations").await, Ok((200, _))) {
        anyhow::ensure!(
            std::time::Instant::now() < serving,
            "control never served again"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    for (n, (_, _)) in senders.iter().enumerate() {
        let cid = acks[n]["k0"]["conversation_id"]
            .as_str()
            .context("cid")?
            .to_owned();
        let stored = t.pull_all(&bob, &cid).await?;
        assert_eq!(stored.len(), EACH, "stored exactly once each");
        let seqs: Vec<i64> = stored.iter().filter_map(|m| m["seq_id"].as_i64()).collect();
        assert_eq!(seqs, (1..=EACH as i64).collect::<Vec<_>>(), "gap-free");
        for m in &stored {
            let ack = &acks[n][m["client_msg_id"].as_str().unwrap_or_default()];
            assert_eq!(
                (&m["seq_id"], &m["message_id"]),
                (&ack["seq_id"], &ack["message_id"])
            );
        }
    }
    Ok(())
}

/// A gateway's operations endpoints: alive, ready, and metrics that move
/// when traffic flows (upgrades by outcome, frames and bytes, connections,
/// closes), and the size of a connection's task, within its budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateways_serve_health_readiness_and_moving_metrics() -> Result<()> {
    let cluster = cluster().await?;
    let env = read_env_file(&cluster.dir.join("env")).context("cluster env")?;
    let ops = env.get("OPS1").context("OPS1")?.clone();
    for (path, body) in [("healthz", "ok"), ("readyz", "ready")] {
        let response = reqwest::get(format!("{ops}/{path}")).await?;
        assert_eq!(response.status(), 200, "/{path}");
        assert_eq!(response.text().await?, body);
    }
    let before = Scrape::of(&ops).await?;
    let count = |s: &Scrape, name: &str, labels: &[&str]| s.sum(name, labels).unwrap_or(0.0);
    let t = &cluster.target;
    let alice = t
        .user(&format!(
            "ops-a{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ))
        .await?;
    let bob = t
        .user(&format!(
            "ops-b{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ))
        .await?;
    let mut a = t.connect(&alice, 0).await?;
    let mut b = t.connect(&bob, 0).await?;
    a.send(json!({"type":"send","client_msg_id":"ops1","to_user_id":bob.id,"message_type":"text","content":"metrics"}))
        .await?;
    a.next_of("ack").await?;
    b.next_of("message").await?;
    let refused = support::upgrade_status(&format!("{}?token=not-a-token", t.ws[0]), None).await?;
    assert_eq!(refused, Some(401));
    let during = Scrape::of(&ops).await?;
    let ok = r#"outcome="ok""#;
    assert!(
        count(&during, "gochat_edge_upgrades_total", &[ok])
            >= count(&before, "gochat_edge_upgrades_total", &[ok]) + 2.0
    );
    assert!(count(&during, "gochat_edge_upgrades_total", &[r#"outcome="401""#]) >= 1.0);
    assert!(count(&during, "gochat_edge_connections", &[]) >= 2.0);
    // Per-frame counts are published once a second (edge/src/ops.rs).
    let moved = |scrape: &Scrape| {
        [
            "gochat_edge_frames_in_total",
            "gochat_edge_frames_out_total",
            "gochat_edge_bytes_in_total",
            "gochat_edge_bytes_out_total",
        ]
        .into_iter()
        .filter(|name| count(scrape, name, &[]) <= count(&before, name, &[]))
        .collect::<Vec<_>>()
    };
    let mut still = moved(&during);
    for _ in 0..30 {
        if still.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        still = moved(&Scrape::of(&ops).await?);
    }
    assert!(still.is_empty(), "{still:?} did not move");
    assert!(
        during
            .sum("gochat_edge_outbox_high_water_bytes", &[])
            .is_some()
    );
    assert_eq!(during.sum("gochat_edge_ready", &[]), Some(1.0));
    // What every idle connection's task costs for its life, per core (a
    // core that accepted nothing yet shows 0): within 400 bytes, what the
    // 1 KiB budget per connection leaves it (312 in a test build when the
    // bound was set; benches/README.md).
    let task = ["core=\"0\"", "core=\"1\""]
        .iter()
        .filter_map(|core| during.sum("gochat_edge_connection_task_bytes", &[core]))
        .fold(0.0, f64::max);
    assert!(
        (1.0..=400.0).contains(&task),
        "a connection's task is {task} bytes"
    );
    // A client that closes gets its close answered: counted by code.
    a.ws.close(None).await?;
    let mut closes = 0.0;
    for _ in 0..50 {
        closes = count(
            &Scrape::of(&ops).await?,
            "gochat_edge_closes_total",
            &[r#"code="1000""#],
        );
        if closes >= 1.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(closes >= 1.0, "the close was counted");
    drop(b);
    // Every metric the alert rules and the dashboard use is exported.
    let control = env.get("HTTP").context("HTTP")?;
    // Consumer lag comes with librdkafka's statistics, every 5 s.
    let mut exported = Scrape::of(control).await?.names();
    for _ in 0..100 {
        if exported.contains("gochat_consumer_lag") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        exported = Scrape::of(control).await?.names();
    }
    let gateway = Scrape::of(&ops).await?.names();
    // A gateway's histograms are bucketed (a summary's sketch grew with the
    // connections it served; buckets add up across gateways).
    for name in ["gochat_edge_registry_write_seconds", "gochat_grpc_seconds"] {
        let buckets = format!("{name}_bucket");
        assert!(gateway.contains(&buckets), "{buckets} is not exported");
    }
    exported.extend(gateway);
    // What every hop reports: the send path's stages and batches, SQL, Redis,
    // the gateway's registry and both Kafka directions.
    for name in [
        "gochat_send_stage_seconds",
        "gochat_send_commit_sends",
        "gochat_sql_pool_connections",
        "gochat_redis_errors_total",
        "gochat_edge_registry_queue_depth",
        "gochat_edge_registry_write_seconds",
        "gochat_edge_upstream_records_total",
        "gochat_edge_downstream_records_total",
        "gochat_grpc_seconds",
    ] {
        assert!(exported.contains(name), "{name} is not exported");
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/compose");
    for file in ["prometheus/alerts.yml", "grafana/dashboards/gochat.json"] {
        let text = std::fs::read_to_string(root.join(file))?;
        for name in metric_names(&text) {
            assert!(
                exported.contains(&name),
                "{file} uses {name}, which no process exports"
            );
        }
    }
    Ok(())
}

/// The `gochat_*` metric names a rules file or dashboard mentions.
fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| word.starts_with("gochat_"))
        .map(str::to_owned)
        .collect()
}
